"""The Grafana boards, one module each; tools/gen_dashboards.py writes them into grafana_dashboards/."""
