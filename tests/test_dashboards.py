"""The Grafana dashboards (grafana_dashboards/*.json, made by tools/gen_dashboards.py).

No Grafana server installs here (toolchain.md), so a board is checked through what Grafana would do with it:
its structure (units, the datasource variable, the variables its queries use, thresholds equal to the alert
rules') and every query it sends. The queries run against a real Prometheus (Debian's binary) that scrapes
the real exporter (a subprocess) watching a real PostgreSQL, a real Tryton database on SQLite, an https
endpoint, backups, a log, a calendar with a closing period on, and a target that is down; its rule files are
the shipped alert_rules/*.rules.yml, so the recording rules and ALERTS have data. Every query must return
data, or be listed in EXPECTED_EMPTY with the reason (and a query that only lacks history because of an
``offset`` must return data without it). The run writes the panel/query/result table as Markdown to
``$ERP_DASHBOARD_REPORT`` (default /tmp/erp-dashboards-queries.md).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from alerting_stack import Exporter, Prometheus, start_exporter, start_prometheus, wait_for
from servers import PostgresServer, closed_port, free_port

REPO = Path(__file__).resolve().parent.parent
BOARDS_DIR = REPO / "grafana_dashboards"
RULES_DIR = REPO / "alert_rules"
GENERATOR = REPO / "tools" / "gen_dashboards.py"
REPORT = Path(os.environ.get("ERP_DASHBOARD_REPORT", "/tmp/erp-dashboards-queries.md"))

BOARD_UIDS = {
    "erp-overview.json": "erp-overview",
    "erp-month-end.json": "erp-month-end",
    "erp-database.json": "erp-database",
    "erp-governance.json": "erp-governance",
    "erp-capacity.json": "erp-capacity",
    "erp-exporter.json": "erp-exporter",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Unit ids of Grafana's value formats that the boards use (a custom "suffix:<text>" is also a unit)
GRAFANA_UNITS = {"none", "short", "s", "bytes", "percentunit", "ops"}
GRAFANA_GLOBALS = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}
# What Grafana puts in for its global variables: $__rate_interval is 4 scrape intervals (15 s default) = 1m.
GLOBAL_VALUES = {"__rate_interval": "1m", "__interval": "30s", "__range": "1h"}

OFFSET_REASON = ("the previous close is {offset} back; this Prometheus holds a minute of data (Prometheus needs "
                 "36 days of retention for it)")
# (board uid, panel title, refId) -> why the query returns nothing in the test
EXPECTED_EMPTY = {
    ("erp-database", "Replication lag", "A"): "no replica: the test's PostgreSQL has no standby",
    ("erp-month-end", "Logged-in users", "B"): OFFSET_REASON.format(offset="4 or 5 weeks"),
    ("erp-month-end", "Users against the previous close", "A"): OFFSET_REASON.format(offset="4 or 5 weeks"),
    ("erp-month-end", "Business transaction p95", "B"): OFFSET_REASON.format(offset="4 or 5 weeks"),
    ("erp-month-end", "p95 against the previous close", "A"): OFFSET_REASON.format(offset="4 or 5 weeks"),
    ("erp-month-end", "Transactions per second", "B"): OFFSET_REASON.format(offset="4 or 5 weeks"),
    ("erp-month-end", "Database round trip", "B"): OFFSET_REASON.format(offset="4 or 5 weeks"),
    ("erp-month-end", "Documents created per hour", "B"): OFFSET_REASON.format(offset="4 or 5 weeks"),
    ("erp-month-end", "Documents posted, confirmed and done per hour", "B"):
        OFFSET_REASON.format(offset="4 or 5 weeks"),
    **{("erp-database", panel, ref): "the opt-in db_statements check needs pg_stat_statements preloaded; the "
       "shared test PostgreSQL is started without it (tests/test_db_statements.py tests the check on one with it)"
       for panel, ref in (("Statement time per second", "A"), ("Top statements over the range", "A"),
                          ("Top statements over the range", "B"), ("Top statements over the range", "C"))},
    ("erp-capacity", "Users against the previous week's peak", "A"):
        "the peak of the 7 days before the last hour (offset 1h); this Prometheus holds a minute of data",
}
OFFSET = re.compile(r"\s+offset\s+\d+[smhdwy]")


@cache
def generator() -> ModuleType:
    """tools/gen_dashboards.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_dashboards", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def thresholds() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((RULES_DIR / "thresholds.yml").read_text())
    return loaded


def boards() -> dict[str, dict[str, Any]]:
    return {name: json.loads((BOARDS_DIR / name).read_text()) for name in BOARD_UIDS}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


@dataclass(frozen=True)
class PanelQuery:
    board: str
    panel: str
    ref: str
    expr: str


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(board["uid"], panel["title"], target["refId"], target["expr"])
        for board in boards().values() for panel in panels(board) for target in panel["targets"]
    ]


def annotation_queries() -> list[PanelQuery]:
    return [
        PanelQuery(board["uid"], f"annotation: {annotation['name']}", "-", annotation["expr"])
        for board in boards().values() for annotation in board.get("annotations", {}).get("list", [])
    ]


def used_variables(text: str) -> set[str]:
    return set(re.findall(r"\$\{?([A-Za-z_]\w*)", text))


# -- the files and their structure --------------------------------------------------------------------------


def test_committed_dashboards_equal_what_the_generator_makes() -> None:
    gen = generator()
    made = gen.generate(gen.load_limits(RULES_DIR))
    assert sorted(made) == sorted(BOARD_UIDS) == sorted(p.name for p in BOARDS_DIR.glob("*.json"))
    for name, text in made.items():
        assert (BOARDS_DIR / name).read_text() == text, f"grafana_dashboards/{name} is out of date: run " \
                                                        "tools/gen_dashboards.py"


def test_every_board_has_its_stable_uid_and_unique_panel_ids() -> None:
    for name, board in boards().items():
        assert board["uid"] == BOARD_UIDS[name]
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)) and 0 not in ids, name


def test_every_panel_has_a_unit_and_the_datasource_variable() -> None:
    for board in boards().values():
        for panel in panels(board):
            where = f"{board['uid']} / {panel['title']}"
            unit = panel["fieldConfig"]["defaults"].get("unit", "")
            assert unit in GRAFANA_UNITS or unit.startswith("suffix:"), f"{where}: unit {unit!r}"
            assert panel["datasource"] == DATASOURCE, where
            assert panel["targets"], f"{where}: no query"
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, where
                assert target["expr"].strip(), where


def test_every_board_defines_the_variables_datasource_environment_target() -> None:
    for board in boards().values():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert {"datasource", "site", "environment", "target", "instance"} <= set(variables), board["uid"]
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        for name in ("site", "environment", "target", "instance"):
            assert variables[name]["type"] == "query" and variables[name]["datasource"] == DATASOURCE
            assert variables[name]["query"].startswith("label_values(")


def test_every_variable_a_query_uses_exists() -> None:
    for board in boards().values():
        defined = {v["name"] for v in board["templating"]["list"]} | GRAFANA_GLOBALS
        texts = [t["expr"] for p in panels(board) for t in p["targets"]]
        texts += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
        texts += [a["expr"] for a in board.get("annotations", {}).get("list", [])]
        for text in texts:
            assert used_variables(text) <= defined, f"{board['uid']}: {used_variables(text) - defined} in {text}"


# -- thresholds ---------------------------------------------------------------------------------------------


def expected_thresholds() -> dict[tuple[str, str], list[tuple[float, str]]]:
    """(board, panel) -> threshold steps above the base, computed here from thresholds.yml.

    A step is "at or above": an alert on ``count > N`` is a step at N + 1; a value alerting when it falls
    below warning / critical is red under critical, orange under warning, green from warning on."""
    a = thresholds()["alerts"]
    month_end = thresholds()["month_end"]

    def above(name: str, *keys: str, count: bool = False, scale: float = 1) -> list[tuple[float, str]]:
        colours = {"warning": "orange", "critical": "red"}
        return [(a[name][key] * scale + (1 if count else 0), colours[key]) for key in keys]

    def below(name: str, scale: float = 1) -> list[tuple[float, str]]:
        return [(a[name]["critical"] * scale, "orange"), (a[name]["warning"] * scale, "green")]

    at_zero: list[tuple[float, str]] = [(1, "green")]  # alerts on == 0 (up, integrity, files)
    at_one: list[tuple[float, str]] = [(1, "red")]  # alerts on == 1 or any (can_write, stale, failing)
    both = ("warning", "critical")
    return {
        ("erp-exporter", "Check start delay against its interval"): [(a["ErpChecksStartingLate"]["share"], "orange")],
        ("erp-overview", "Database up"): at_zero,
        ("erp-overview", "Database round trip"): above("ErpDatabaseSlow", *both),
        ("erp-overview", "ERP processes"): at_zero,
        ("erp-overview", "Certificate expires in"): below("ErpTlsCertificateExpiring", 86400),
        ("erp-overview", "Logged-in ERP users"): above("ErpMonthEndUsersTrend", "warning"),
        ("erp-overview", "Database connections used"): above("ErpDatabaseConnectionsSaturated", *both),
        ("erp-overview", "Business transaction p95"): above("ErpTransactionLatencyHigh", *both),
        ("erp-overview", "Business transaction failures"): above("ErpTransactionFailureRatioHigh", *both),
        ("erp-overview", "ERP task errors"): above("ErpTaskErrors", "warning", count=True),
        ("erp-overview", "Checks failing"): at_one,
        ("erp-overview", "Alerts firing"): at_one,
        ("erp-month-end", "Closing periods"): [(1, "orange")],
        ("erp-month-end", "Business days to the next close"): [(month_end["days_before_close"] + 1, "green")],
        ("erp-month-end", "Month-end window"): [(1, "orange")],
        ("erp-month-end", "Logged-in users"): above("ErpMonthEndUsersTrend", "warning"),
        ("erp-month-end", "Users against the previous close"): above("ErpMonthEndLoadAbovePreviousClose", "warning"),
        ("erp-month-end", "Business transaction p95"): above("ErpTransactionLatencyHigh", *both),
        ("erp-month-end", "p95 against the previous close"): above("ErpMonthEndLatencyAbovePreviousClose", "warning"),
        ("erp-month-end", "Database round trip"): above("ErpDatabaseSlow", *both),
        ("erp-month-end", "Posting backlog"): above("ErpMonthEndPostingBacklog", "warning"),
        ("erp-month-end", "Users forecast"): above("ErpMonthEndUsersTrend", "warning"),
        ("erp-month-end", "Connections forecast"): above("ErpMonthEndConnectionsTrend", "warning"),
        ("erp-month-end", "p95 forecast"): above("ErpTransactionLatencyHigh", "warning"),
        ("erp-database", "Connections used"): above("ErpDatabaseConnectionsSaturated", *both),
        ("erp-database", "Long-running queries"): above("ErpDatabaseLongRunningQueries", "warning", count=True),
        ("erp-database", "Oldest running query"): above("ErpDatabaseLongRunningQueries", "critical"),
        ("erp-database", "Blocked sessions"): above("ErpDatabaseBlockedSessions", "warning", count=True),
        ("erp-database", "Longest lock wait"): above("ErpDatabaseBlockedSessions", "critical"),
        ("erp-database", "Invalid indexes"): above("ErpDatabaseInvalidIndexes", "warning", count=True),
        ("erp-database", "Transaction ID age"): above("ErpDatabaseTransactionIdWraparound", *both),
        ("erp-database", "Replication lag"): above("ErpDatabaseReplicationLag", *both),
        ("erp-database", "Backup age"): above("ErpBackupStale", *both, scale=3600),
        ("erp-database", "Newest backup intact"): at_zero,
        ("erp-database", "Backup files"): at_zero,
        ("erp-database", f"Log error lines in {a['ErpLogErrors']['window']}"):
            above("ErpLogErrors", *both, count=True),
        ("erp-governance", "Audits over their warning threshold"): at_one,
        ("erp-governance", "Audits over their critical threshold"): at_one,
        ("erp-capacity", "Filesystem free share"): below("ErpHostDiskSpaceLow"),
        ("erp-capacity", "Filesystem free space forecast"): [(0, "green")],
        ("erp-capacity", "Connections used: peaks and forecast"): above("ErpDatabaseConnectionsSaturated", *both),
        ("erp-capacity", "Logged-in users: hourly peaks and 30-day forecast"):
            above("ErpMonthEndUsersTrend", "warning"),
        ("erp-capacity", "Users against the previous week's peak"): above("ErpUsersSurging", "warning"),
        ("erp-capacity", "CPU busy"): above("ErpHostCpuHigh", *both),
        ("erp-capacity", "Memory available"): below("ErpHostMemoryPressure"),
        ("erp-capacity", "Disk busy"): above("ErpHostDiskBusy", "warning"),
        ("erp-exporter", "Exporter up"): at_zero,
        ("erp-exporter", "Configuration loaded"): at_zero,
        ("erp-exporter", "Alerting pipeline"): at_zero,
        ("erp-exporter", "Monitoring login can write"): at_one,
        ("erp-exporter", "Check results"): at_zero,
        ("erp-exporter", "Stale checks"): at_one,
        ("erp-exporter", "Hung connections"): above("ErpDatabaseHungConnections", "warning", count=True),
    }


def test_thresholds_equal_the_alert_rules() -> None:
    expected = expected_thresholds()
    seen = set()
    for board in boards().values():
        for panel in panels(board):
            key = (board["uid"], panel["title"])
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert steps[0]["value"] is None, key
            found = [(step["value"], step["color"]) for step in steps[1:]]
            assert found == expected.get(key, []), key  # panels without an alert: one neutral step
            seen.add(key)
    assert set(expected) <= seen, set(expected) - seen


def test_timeseries_show_their_alert_thresholds_as_lines() -> None:
    for board in boards().values():
        for panel in panels(board):
            if panel["type"] != "timeseries":
                continue
            alerting = len(panel["fieldConfig"]["defaults"]["thresholds"]["steps"]) > 1
            mode = panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]
            assert mode == ("dashed" if alerting else "off"), (board["uid"], panel["title"])


def test_per_label_objectives_of_the_alerts_become_field_overrides() -> None:
    gen = generator()
    raw = copy.deepcopy(thresholds())
    raw["alerts"]["ErpTransactionLatencyHigh"]["overrides"] = {
        "label": "transaction", "values": {"month_close.run": {"warning": 30, "critical": 120}}}
    raw["alerts"]["ErpMonthEndUsersTrend"]["overrides"] = {"label": "target", "values": {"erp-big": {"warning": 900}}}
    board = gen.overview(gen.Limits(raw, ">"))
    by_title = {panel["title"]: panel for panel in panels(board)}
    latency = by_title["Business transaction p95"]["fieldConfig"]["overrides"]
    assert [o["matcher"] for o in latency] == [{"id": "byRegexp", "options": r"^month_close\.run on .*"}]
    assert [(s["value"], s["color"]) for s in latency[0]["properties"][0]["value"]["steps"]] == [
        (None, "green"), (30, "orange"), (120, "red")]
    users = by_title["Logged-in ERP users"]["fieldConfig"]["overrides"]
    assert [o["matcher"] for o in users] == [{"id": "byRegexp", "options": "^erp\\-big$"}]
    assert [(s["value"], s["color"]) for s in users[0]["properties"][0]["value"]["steps"]] == [
        (None, "green"), (900, "orange")]


def test_governance_status_makes_the_comparison_of_the_audit_alert() -> None:
    rule = (RULES_DIR / "governance.rules.yml").read_text()
    comparison = set(re.findall(r"erp_audit_violations\s*(>=|>)\s*on\b", rule))
    board = boards()["erp-governance.json"]
    status = next(t["expr"] for p in panels(board) if p["title"] == "Audits against their thresholds"
                  for t in p["targets"] if t["refId"] == "D")
    assert comparison == set(re.findall(r"(>=|>) bool on", status))


# -- every query against a real Prometheus ------------------------------------------------------------------


MONITOR = "dash_monitor"
MONITOR_PASSWORD = "dashpw"
DATABASE = "dashboards_erp"


def prepare_postgres(server: PostgresServer) -> None:
    """An ERP-like database with data, a duplicate and an unused index, vacuumed; a pg_monitor login."""
    server.psql(
        f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE);\n"
        f"CREATE DATABASE {DATABASE};\n"
        f"DROP ROLE IF EXISTS {MONITOR};\n"
        f"CREATE ROLE {MONITOR} LOGIN PASSWORD '{MONITOR_PASSWORD}';\n"
        f"GRANT pg_monitor TO {MONITOR};\n",
        database="postgres",
    )
    server.psql(
        "CREATE TABLE customer (id serial PRIMARY KEY, name text NOT NULL, email text);\n"
        "INSERT INTO customer (name, email) SELECT 'customer ' || g, CASE WHEN g % 40 = 0 THEN NULL "
        "ELSE 'c' || g || '@example.com' END FROM generate_series(1, 280) g;\n"
        "CREATE TABLE sale_order (id serial PRIMARY KEY, customer int REFERENCES customer, state text NOT NULL, "
        "amount numeric NOT NULL);\n"
        "INSERT INTO sale_order (customer, state, amount) SELECT 1 + g % 280, CASE WHEN g % 10 = 0 THEN 'draft' "
        "ELSE 'done' END, g FROM generate_series(1, 5000) g;\n"
        "CREATE INDEX sale_order_state ON sale_order (state);\n"
        "CREATE INDEX sale_order_state_again ON sale_order (state);\n"
        "CREATE INDEX customer_name ON customer (name);\n"
        f"GRANT USAGE ON SCHEMA public TO {MONITOR};\n"
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR};\n"
        "VACUUM ANALYZE;\n",
        database=DATABASE,
    )


def copy_tryton(source: Path, directory: Path) -> Path:
    """A private copy of the session's seeded Tryton database (SQLite's backup API: a consistent snapshot)."""
    directory.mkdir()
    target = directory / source.name
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


def utc(moment: dt.datetime) -> str:
    """A naive UTC timestamp as Tryton stores it."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


def tryton_write(path: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    with closing(sqlite3.connect(path, timeout=30)) as connection:
        connection.execute(sql, params)
        connection.commit()


class HttpsEndpoint:
    """A loopback https server with a self-signed certificate (30 days): the synthetic HTTP transaction's ERP."""

    def __init__(self, directory: Path) -> None:
        key, cert = directory / "tls.key", directory / "tls.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "30", "-subj", "/CN=localhost"],
            check=True, capture_output=True, timeout=60,
        )

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HttpsEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def exporter_config(work: Path, postgres: PostgresServer, tryton_db: Path, https_url: str, down_port: int) -> str:
    today = dt.datetime.now(dt.UTC).date()
    audits = [
        {"name": "customer_email_missing", "description": "Customers without an e-mail address.",
         "sql": "SELECT name AS key FROM customer WHERE email IS NULL", "category": "data_quality",
         "owner": "sales", "support_line": 1, "severity": "warning", "warning": 2, "critical": 50},
        {"name": "draft_orders", "description": "Sale orders left in draft.",
         "sql": "SELECT id AS key FROM sale_order WHERE state = 'draft'", "category": "compliance",
         "owner": "finance", "support_line": 2, "severity": "warning", "warning": 10, "critical": 100},
        {"name": "orders_without_customer", "description": "Sale orders without a customer.",
         "sql": "SELECT id AS key FROM sale_order WHERE customer IS NULL", "category": "data_quality",
         "owner": "procurement", "support_line": 1, "severity": "info", "warning": 0, "critical": 5},
    ]
    config = {
        "global": {"interval": "2s", "timeout": "2s", "jitter": 0, "workers": 6},
        "host": {"interval": "2s"},
        "process_groups": [{"name": "postgres", "process_name": "^postgres$", "interval": "2s"}],
        "targets": [
            {
                "name": "erp-pg", "driver": "PostgreSQL Unicode",
                "connection": {"server": postgres.host, "port": postgres.port, "database": DATABASE},
                "username": MONITOR, "password": MONITOR_PASSWORD, "labels": {"environment": "test"},
                "checks": [
                    {"kind": "db_response", "interval": "1s", "timeout": "1s"},
                    {"kind": "db_sessions", "interval": "1s", "timeout": "1s"},
                    {"kind": "db_activity", "interval": "2s", "long_query_threshold": "30s"},
                    {"kind": "db_size", "interval": "2s", "top_tables": 5},
                    {"kind": "db_maintenance", "interval": "2s"},
                    {"kind": "replication", "interval": "2s"},
                    {"kind": "sql_transaction", "name": "order_review", "interval": "1s", "timeout": "1s",
                     "steps": [{"name": "open_orders", "sql": "SELECT id FROM sale_order WHERE state = 'draft'"},
                               {"name": "customers", "sql": "SELECT count(*) FROM customer"}]},
                    {"kind": "audits", "interval": "2s", "timeout": "2s", "audits": audits},
                ],
            },
            {
                "name": "erp-tryton", "driver": "SQLite3", "connection": {"database": str(tryton_db)},
                "labels": {"environment": "test"},
                "checks": [{"kind": "pack", "pack": "tryton", "interval": "2s", "timeout": "2s"},
                           {"kind": "audits", "packs": ["tryton"], "interval": "2s", "timeout": "2s"}],
            },
            {
                "name": "erp-down", "driver": "PostgreSQL Unicode",
                "connection": {"server": "127.0.0.1", "port": down_port, "database": DATABASE},
                "username": MONITOR, "password": MONITOR_PASSWORD, "labels": {"environment": "test"},
                "connect_timeout": "1s", "backoff": {"initial": "1s", "max": "2s"},
                "checks": [{"kind": "db_response", "interval": "1s", "timeout": "1s"}],
            },
        ],
        "http_transactions": [
            {"name": "portal_health", "protocol": "http", "base_url": https_url, "labels": {"environment": "test"},
             "interval": "2s", "timeout": "2s", "tls": {"verify": False},
             "steps": [{"name": "health", "path": "/health", "expect_regex": '"status": ?"ok"'}]},
        ],
        "backups": [{"name": "nightly", "path": str(work / "backups"), "format": "plain", "min_age": "0s",
                     "interval": "2s"}],
        "logs": [{"name": "postgresql", "path": str(work / "postgresql.log"), "presets": ["postgresql"],
                  "interval": "1s"}],
        "calendars": [
            {"name": "ops", "timezone": "UTC", "workdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
             "interval": "2s",
             "closing_periods": [
                 {"type": "dates", "name": "year-end-close",
                  "dates": [{"start": (today - dt.timedelta(days=1)).isoformat(),
                             "end": (today + dt.timedelta(days=1)).isoformat()}]},
                 {"type": "month_end", "name": "month-end"},
             ]},
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def prometheus_config(exporter_address: str, job: str) -> str:
    return yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted(RULES_DIR.glob("*.rules.yml"))],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [exporter_address]}]}],
    })


@dataclass
class Stack:
    prometheus: Prometheus
    exporter: Exporter
    values: dict[str, str]  # dashboard variable -> what Grafana would put in the query


def query(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    """/api/v1/query; a parse or evaluation error fails the test with Prometheus' message."""
    url = f"{prometheus.url}/api/v1/query?query={urllib.parse.quote(expr)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test server
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        pytest.fail(f"Prometheus refused the query ({exc.code}): {exc.read().decode()}\n{expr}", pytrace=False)
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.fixture(scope="module")
def stack(
    postgres: PostgresServer, tryton_sqlite_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("dashboards")
    prepare_postgres(postgres)
    tryton_db = copy_tryton(tryton_sqlite_db, work / "tryton")
    now = dt.datetime.now(dt.UTC)
    for user in (2, 3, 4):  # alice, bob, carol are logged in; bob twice
        for _ in range(2 if user == 3 else 1):
            tryton_write(tryton_db, "INSERT INTO ir_session (create_uid, create_date, key) VALUES (?, ?, ?)",
                         (user, utc(now), hashlib.sha256(os.urandom(8)).hexdigest()))
    backups = work / "backups"
    backups.mkdir()
    dump = backups / "erp-1.sql"
    dump.write_text("-- PostgreSQL database dump\nSELECT 1;\n")
    (backups / "erp-1.sql.sha256").write_text(f"{hashlib.sha256(dump.read_bytes()).hexdigest()}  erp-1.sql\n")
    three_hours_ago = time.time() - 3 * 3600
    os.utime(dump, (three_hours_ago, three_hours_ago))
    log = work / "postgresql.log"
    log.write_text("")
    job = thresholds()["selectors"]["exporter_job"]
    with HttpsEndpoint(work) as endpoint:
        config = work / "erp-exporter.yml"
        config.write_text(exporter_config(work, postgres, tryton_db, endpoint.url, closed_port()))
        exporter = start_exporter(config, work)
        try:
            prom_config = work / "prometheus.yml"
            prom_config.write_text(prometheus_config(exporter.address, job))
            prometheus = start_prometheus(prom_config, work)
            try:
                fail_a_scheduled_job(prometheus, tryton_db)
                with log.open("a") as lines:
                    lines.write("2026-01-01 00:00:00 UTC [1] ERROR:  deadlock detected\n")
                values = {
                    "site": ".*",  # Grafana's "All": this single Prometheus has no site label
                    "environment": "test",
                    "target": "(erp-pg|erp-tryton|erp-down)",
                    "instance": exporter.address,
                    "owner": "(sales|finance|procurement|production|logistics)",
                    **GLOBAL_VALUES,
                }
                yield Stack(prometheus, exporter, values)
            finally:
                prometheus.process.stop()
        finally:
            exporter.process.stop()


def fail_a_scheduled_job(prometheus: Prometheus, tryton_db: Path) -> None:
    """One run of a scheduled job that succeeds, then one that fails: ErpScheduledJobFailing (no `for`) fires,
    so ALERTS has a firing alert besides the Watchdog. The success comes first so that the failure counter
    exists at 0 before it becomes 1 (increase() needs both samples)."""
    cron = 2
    wait_for(lambda: query(prometheus, 'erp_check_runs_total{check="tryton/job_runs"} >= 1'), 30,
             "the job log check never ran")
    started = dt.datetime.now(dt.UTC)
    tryton_write(tryton_db, "INSERT INTO ir_cron_log (cron, started, ended, create_date, create_uid) "
                 "VALUES (?, ?, ?, ?, 0)", (cron, utc(started - dt.timedelta(seconds=2)), utc(started), utc(started)))
    wait_for(lambda: query(prometheus, 'count_over_time(erp_transaction_failures_total{source="job_log"}[1m]) >= 2'),
             30, "the scheduled job's failure counter was never scraped")
    tryton_write(tryton_db, "INSERT INTO ir_error (origin, message, description, state, create_date, create_uid) "
                 "VALUES (?, 'Boom', 'Traceback', 'open', ?, 0)", (f"ir.cron,{cron}", utc(dt.datetime.now(dt.UTC))))


def substitute(expr: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"no test value for ${name}"
        return values[name]

    return re.sub(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)", value, expr)


@dataclass
class Outcome:
    query: PanelQuery
    series: int
    sample: str = ""  # the first series' value
    without_offset: int | None = None


def run_all(stack: Stack, queries: list[PanelQuery]) -> dict[PanelQuery, Outcome]:
    outcomes = {}
    for item in queries:
        expr = substitute(item.expr, stack.values)
        result = query(stack.prometheus, expr)
        outcome = Outcome(item, len(result), f"{float(result[0]['value'][1]):.4g}" if result else "")
        if OFFSET.search(expr):
            outcome.without_offset = len(query(stack.prometheus, OFFSET.sub("", expr)))
        outcomes[item] = outcome
    return outcomes


def missing(outcomes: dict[PanelQuery, Outcome]) -> list[PanelQuery]:
    """Queries that should have data and have none yet."""
    return [q for q, o in outcomes.items()
            if (o.series == 0 and (q.board, q.panel, q.ref) not in EXPECTED_EMPTY)
            or (o.without_offset == 0)]


def write_report(outcomes: dict[PanelQuery, Outcome]) -> None:
    lines = ["| board | panel | query | result in the test |", "|---|---|---|---|"]
    for item, outcome in outcomes.items():
        expr = " ".join(item.expr.split()).replace("|", "\\|")
        reason = EXPECTED_EMPTY.get((item.board, item.panel, item.ref))
        if outcome.series:
            result = f"data: {outcome.series} series (first: {outcome.sample})"
        else:
            result = f"expected empty: {reason}" if reason else "NO DATA"
        if outcome.without_offset is not None:
            result += f"; without the offset: {outcome.without_offset} series"
        lines.append(f"| {item.board} | {item.panel} ({item.ref}) | `{expr}` | {result} |")
    REPORT.write_text("\n".join(lines) + "\n")


def test_every_panel_query_returns_data_from_a_real_prometheus_or_is_expected_empty(stack: Stack) -> None:
    queries = panel_queries() + annotation_queries()
    keys = {(q.board, q.panel, q.ref) for q in queries}
    assert set(EXPECTED_EMPTY) <= keys, set(EXPECTED_EMPTY) - keys
    deadline = time.monotonic() + 60
    while True:
        outcomes = run_all(stack, queries)
        if not missing(outcomes) or time.monotonic() > deadline:
            break
        time.sleep(1)
    write_report(outcomes)
    assert [f"{q.board} / {q.panel} / {q.ref}: {q.expr}" for q in missing(outcomes)] == []
    for key in EXPECTED_EMPTY:  # the list stays honest: what it calls empty is empty
        outcome = next(o for q, o in outcomes.items() if (q.board, q.panel, q.ref) == key)
        assert outcome.series == 0, f"{key} returns data: take it off EXPECTED_EMPTY"


def test_the_scheduled_job_alert_fires_so_the_alert_panels_have_data(stack: Stack) -> None:
    firing = wait_for(lambda: query(stack.prometheus, 'ALERTS{alertname="ErpScheduledJobFailing", '
                                                      'alertstate="firing"}'), 30, "no firing alert")
    assert {(a["metric"]["target"], a["metric"]["severity"]) for a in firing} == {("erp-tryton", "warning")}


def test_every_variable_query_returns_the_test_values(stack: Stack) -> None:
    expected = {"site": set(), "environment": {"test"}, "target": {"erp-pg", "erp-tryton", "erp-down"},
                "instance": {stack.exporter.address},
                "owner": {"sales", "finance", "procurement", "production", "logistics"}}
    for board in boards().values():
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            text = substitute(variable["query"], stack.values)
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", text)
            assert match, text
            url = (f"{stack.prometheus.url}/api/v1/label/{match.group(2)}/values?"
                   f"match[]={urllib.parse.quote(match.group(1))}")
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback test server
                found = set(json.load(response)["data"])
            assert expected[variable["name"]] <= found, (board["uid"], variable["name"], found)
