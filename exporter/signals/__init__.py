"""Named PromQL signals shared by the alert rules, the Grafana boards and `erp-exporter report`.

One definition per signal: the recording rule that computes it (`record`), the expression it records
(`expr`) and the alert of alert_rules/thresholds.yml that holds its warning and critical values. The rule
generator records them (tools/ruleset/recording.py), the boards and the reports read the recorded series
and fall back to the expression where the recording rules may be missing. Modules by area; this package
imports nothing from the rest of the exporter.
"""
