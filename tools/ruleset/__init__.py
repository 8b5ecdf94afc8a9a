"""The alert and recording rules by area; tools/gen_alert_rules.py writes them into alert_rules/."""
