"""`erp-exporter report`: capacity and health reports from Prometheus' HTTP API, for capacity planners.

client.py asks Prometheus (instant queries, read-only), definitions.py holds the reports as data (rows of
PromQL and a unit), engine.py runs them, render.py prints them as text, Markdown or JSON, command.py is the CLI.
"""
