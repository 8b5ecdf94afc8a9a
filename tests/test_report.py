"""`erp-exporter report {capacity,health}` against a real Prometheus (Debian's binary) that scrapes the real
exporter (a subprocess) watching the session PostgreSQL, a private copy of the seeded Tryton database on
SQLite (with the Tryton pack) served by a real trytond that the test logs users into over JSON-RPC, a second
PostgreSQL that the test stops, and a target that is never up. The landscape is test_dashboards.py's (its
helpers are reused: the exporter config, the PostgreSQL ERP data, the https endpoint); Prometheus loads the
shipped rule files, so the recording rules and ALERTS have data. The report runs as a subprocess, as a
capacity planner would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import tryton
import yaml
from alerting_rules import binary
from alerting_stack import Exporter, ManagedProcess, Prometheus, start_exporter, start_prometheus, wait_for
from servers import EXPORTER_PASSWORD, EXPORTER_USER, PostgresServer, closed_port, free_port
from test_dashboards import HttpsEndpoint, copy_tryton, exporter_config, prepare_postgres, prometheus_config
from tryton import SEED_PASSWORD, TrytonInstall, TrytonRPC, TrytonServer

from exporter.report.client import PrometheusClient, Sample
from exporter.report.definitions import REPORTS, Thresholds
from exporter.report.engine import Options, expand, variables

REPO = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).parent / "erp-exporter")
RANGE = "5m"
# alice, bob (twice: two sessions, one user) and carol log in over JSON-RPC: 3 distinct users
LOGINS = ("alice", "bob", "bob", "carol")
TARGETS = {"erp-pg", "erp-tryton", "erp-down", "erp-stopped"}


@dataclass
class Landscape:
    prometheus: Prometheus
    exporter: Exporter
    work: Path


def add_stopped_target(config_text: str, server: PostgresServer) -> str:
    """The dashboards' exporter config plus `erp-stopped`: a PostgreSQL the test stops after it was up."""
    config: dict[str, Any] = yaml.safe_load(config_text)
    config["targets"].append({
        "name": "erp-stopped", "driver": "PostgreSQL Unicode",
        "connection": {"server": server.host, "port": server.port, "database": "postgres"},
        "username": EXPORTER_USER, "password": EXPORTER_PASSWORD, "labels": {"environment": "test"},
        "connect_timeout": "1s", "backoff": {"initial": "1s", "max": "2s"},
        "checks": [{"kind": "db_response", "interval": "1s", "timeout": "1s"}],
    })
    return yaml.safe_dump(config, sort_keys=False)


@pytest.fixture(scope="module")
def landscape(
    postgres: PostgresServer,
    _postgres_disruptable_session: PostgresServer,
    tryton_install: TrytonInstall,
    tryton_sqlite_db: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Landscape]:
    work = tmp_path_factory.mktemp("report")
    prepare_postgres(postgres)
    stopped = _postgres_disruptable_session
    stopped.thaw()
    stopped.start()
    # A private copy of the seeded Tryton database with nobody logged in, and its trytond.conf
    tryton_db = copy_tryton(tryton_sqlite_db, work / "tryton")
    tryton.write_config(tryton_db.parent / "trytond.conf", "sqlite://", sqlite_dir=tryton_db.parent)
    tryton.clear_sessions(tryton_db)
    tryton.clear_login_attempts(tryton_db)
    backups = work / "backups"
    backups.mkdir()
    dump = backups / "erp-1.sql"
    dump.write_text("-- PostgreSQL database dump\nSELECT 1;\n")
    three_hours_ago = time.time() - 3 * 3600
    os.utime(dump, (three_hours_ago, three_hours_ago))
    (work / "postgresql.log").write_text("")
    job = yaml.safe_load((REPO / "alert_rules" / "thresholds.yml").read_text())["selectors"]["exporter_job"]
    try:
        with (
            HttpsEndpoint(work) as endpoint,
            TrytonServer(tryton_install, tryton.sqlite_config_path(tryton_db), tryton_db.stem) as erp,
            TrytonRPC(erp.url, erp.database) as rpc,
        ):
            for login in LOGINS:
                rpc.login(login, SEED_PASSWORD)
            config = work / "erp-exporter.yml"
            config.write_text(add_stopped_target(
                exporter_config(work, postgres, tryton_db, endpoint.url, closed_port()), stopped))
            exporter = start_exporter(config, work)
            try:
                prom_config = work / "prometheus.yml"
                prom_config.write_text(prometheus_config(exporter.address, job))
                prometheus = start_prometheus(prom_config, work)
                try:
                    wait_for(lambda: (prometheus.value('count_over_time(erp_up{target="erp-stopped"}[1m])') or 0) >= 3,
                             30, "erp-stopped was never scraped up")
                    stopped.stop()
                    wait_for(lambda: prometheus.query('erp_up{target="erp-stopped"} == 0'), 30,
                             "erp-stopped never went down in Prometheus")
                    for expr in ('erp_users_logged_in{target="erp-tryton"} == 3',
                                 "erp:transaction_duration_seconds:p95 >= 0",
                                 "erp:audits_breaching:count_by_owner",
                                 "count_over_time(erp_database_size_bytes[1m]) >= 2"):
                        wait_for(partial(prometheus.query, expr), 30, f"no data for {expr}")
                    yield Landscape(prometheus, exporter, work)
                finally:
                    prometheus.process.stop()
            finally:
                exporter.process.stop()
    finally:
        stopped.thaw()
        stopped.start()


def report(landscape: Landscape, *args: str, url: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [COMMAND, "report", *args, f"--prometheus.url={url or landscape.prometheus.url}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


_json_cache: dict[tuple[str, ...], dict[str, Any]] = {}


def report_json(landscape: Landscape, kind: str, *extra: str) -> dict[str, Any]:
    """The JSON report (each distinct command runs once per module)."""
    key = (kind, *extra)
    if key not in _json_cache:
        done = report(landscape, kind, f"--range={RANGE}", "--format=json", *extra)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        _json_cache[key] = json.loads(done.stdout)
    return _json_cache[key]


def rows(document: dict[str, Any], row: str, subject: str, section: str = "targets") -> list[dict[str, Any]]:
    found = [r for r in document["rows"] if r["section"] == section and r["row"] == row and r["subject"] == subject]
    assert found, (section, row, subject)
    return found


def value(document: dict[str, Any], row: str, subject: str, section: str = "targets") -> float | None:
    (only,) = rows(document, row, subject, section)
    result: float | None = only["value"]
    return result


def number(document: dict[str, Any], row: str, subject: str, section: str = "targets") -> float:
    found = value(document, row, subject, section)
    assert found is not None, (section, row, subject, "no data")
    return found


def subjects(document: dict[str, Any], section: str) -> set[str]:
    return {r["subject"] for r in document["rows"] if r["section"] == section}


# -- capacity ------------------------------------------------------------------------------------------------


def test_capacity_peak_users_equals_the_users_logged_in_over_json_rpc(landscape: Landscape) -> None:
    document = report_json(landscape, "capacity")
    assert value(document, "users_peak", "erp-tryton") == len(set(LOGINS)) == 3
    assert rows(document, "users_peak", "erp-pg")[0]["no_data"] is True  # no ERP pack there: "no data", not 0
    assert rows(document, "users_peak", "erp-pg")[0]["display"] == "no data"


def test_capacity_month_end_peaks_are_split_by_the_closing_calendar(landscape: Landscape) -> None:
    # the landscape's calendar has a closing period on from yesterday to tomorrow: every sample is "during"
    document = report_json(landscape, "capacity")
    assert value(document, "users_peak_closing", "erp-tryton") == 3
    assert rows(document, "users_peak_outside", "erp-tryton")[0]["no_data"] is True


def test_capacity_lists_every_target_and_the_exporter_host(landscape: Landscape) -> None:
    document = report_json(landscape, "capacity")
    assert subjects(document, "targets") == TARGETS | {""}
    # the synthetic HTTP transaction has no target: it is listed apart, with its data only
    assert [(r["row"], r["labels"]) for r in document["rows"] if r["section"] == "targets" and r["subject"] == ""] \
        == [("latency_p95_peak", {"transaction": "portal_health"})]
    assert subjects(document, "hosts") == {landscape.exporter.address}
    assert {r["row"] for r in document["rows"]} == {row.key for s in REPORTS["capacity"].sections for row in s.rows}


def test_capacity_measures_latency_size_growth_and_the_host(landscape: Landscape) -> None:
    document = report_json(landscape, "capacity")
    latency = rows(document, "latency_p95_peak", "erp-pg")
    assert [r["labels"] for r in latency] == [{"transaction": "order_review"}]
    assert 0 < latency[0]["value"] <= 1  # the buckets' upper bound: 1s timeout
    assert latency[0]["query"].startswith("max by (target, transaction) (max_over_time(erp:transaction_duration")
    assert number(document, "database_size", "erp-pg") > 1_000_000
    assert 0 < number(document, "connections_peak", "erp-pg") < 1
    host = landscape.exporter.address
    assert 0 <= number(document, "cpu_peak", host, "hosts") <= 1
    assert number(document, "memory_used_peak", host, "hosts") > 0
    assert rows(document, "filesystem_free", host, "hosts")[0]["labels"]["mountpoint"]


def test_a_trend_over_minutes_of_history_says_not_enough_history_instead_of_a_number(landscape: Landscape) -> None:
    document = report_json(landscape, "capacity")
    growth = rows(document, "database_growth", "erp-pg")[0]
    assert growth["value"] is None and growth["display"] == "not enough history"
    assert growth["forecast"]["enough_history"] is False
    assert 0 < growth["forecast"]["history_seconds"] < 3600
    assert growth["forecast"]["method"].startswith("not enough history:")


# -- health --------------------------------------------------------------------------------------------------


def test_health_shows_the_stopped_target_partly_up_and_down_now(landscape: Landscape) -> None:
    document = report_json(landscape, "health")
    assert 0 < number(document, "up_ratio", "erp-stopped") < 1
    (now,) = rows(document, "up_now", "erp-stopped")
    assert (now["value"], now["display"], now["status"]) == (0, "no", "critical")
    assert value(document, "up_ratio", "erp-down") == 0
    assert value(document, "up_ratio", "erp-pg") == 1
    assert rows(document, "up_now", "erp-pg")[0]["status"] == "ok"


def test_health_lists_the_failing_checks_of_down_targets(landscape: Landscape) -> None:
    document = report_json(landscape, "health")

    def failing(target: str) -> dict[str, float]:
        return {r["labels"]["check"]: r["value"] for r in rows(document, "checks_failing", target)}

    def checks(target: str) -> set[str]:
        return {r["metric"]["check"] for r in landscape.prometheus.query(f'erp_check_success{{target="{target}"}}')}

    # never reachable: every check of erp-down has failed (db_response and the checks the exporter adds)
    assert failing("erp-down") == dict.fromkeys(checks("erp-down"), 1)
    assert "db_response" in checks("erp-down")
    # stopped: the 1s probe has failed since; a check with a long interval may still hold its last success
    assert failing("erp-stopped")["db_response"] == 1
    assert set(failing("erp-stopped")) <= checks("erp-stopped")
    assert [(r["labels"], r["value"]) for r in rows(document, "checks_failing", "erp-pg")] == [({}, 0)]
    assert [(r["labels"], r["value"]) for r in rows(document, "checks_stale", "erp-pg")] == [({}, 0)]


def test_health_counts_audits_over_their_warning_threshold_by_owner(landscape: Landscape) -> None:
    # customer_email_missing: 7 > 2 (sales); draft_orders: 500 > 10 (finance); orders_without_customer: 0 (procurement)
    document = report_json(landscape, "health")
    found = {r["labels"]["owner"]: r["value"] for r in rows(document, "audits_breaching", "erp-pg")}
    assert found == {"finance": 1, "procurement": 0, "sales": 1}
    assert rows(document, "audits_breaching", "erp-down")[0]["no_data"] is True


def test_health_reports_database_peaks_and_indexes(landscape: Landscape) -> None:
    document = report_json(landscape, "health")
    assert value(document, "long_running_peak", "erp-pg") == 0
    assert value(document, "blocked_peak", "erp-pg") == 0
    assert value(document, "invalid_indexes", "erp-pg") == 0
    assert value(document, "duplicate_indexes", "erp-pg") == 1  # sale_order_state_again repeats sale_order_state


def test_health_reports_backup_age_and_integrity(landscape: Landscape) -> None:
    document = report_json(landscape, "health")
    host = landscape.exporter.address
    (age,) = rows(document, "backup_age", host, "exporters")
    assert age["labels"] == {"backup": "nightly"}
    assert 3 * 3600 - 5 <= age["value"] <= 3 * 3600 + 300
    assert rows(document, "backup_intact", host, "exporters")[0]["display"] == "yes"
    assert value(document, "backup_files", host, "exporters") == 1


def test_health_lists_the_alerts_that_fired(landscape: Landscape) -> None:
    document = report_json(landscape, "health")
    fired = {r["labels"].get("alertname"): r["value"] for r in rows(document, "alerts_fired", "", "alerts")}
    assert fired["Watchdog"] == 1  # one series, firing all along
    filtered = report_json(landscape, "health", "--target=erp-pg", "--environment=test")
    # no alert of erp-pg fired: 0, not "no data" (Prometheus did evaluate alerts: the Watchdog fired)
    assert [(r["labels"], r["value"]) for r in rows(filtered, "alerts_fired", "", "alerts")] == [({}, 0)]


def test_target_filter_keeps_that_target_and_its_exporter(landscape: Landscape) -> None:
    document = report_json(landscape, "health", "--target=erp-pg", "--environment=test")
    assert document["filters"] == {"environment": "test", "target": "erp-pg"}
    assert subjects(document, "targets") == {"erp-pg"}
    assert subjects(document, "exporters") == {landscape.exporter.address}
    assert all('target="erp-pg"' in r["query"] for r in document["rows"] if r["section"] == "targets")


def test_every_fallback_finds_the_series_its_recording_rule_finds(landscape: Landscape) -> None:
    """Without the shipped recording rules, a row asks the raw series instead: same subjects and details."""
    client = PrometheusClient(landscape.prometheus.url)
    options = Options(RANGE, 300, time.time())
    values = variables(options)

    def labels(samples: list[Sample]) -> list[tuple[tuple[str, str], ...]]:
        return sorted(tuple(sorted(sample.labels.items())) for sample in samples)

    checked = []
    for definition in REPORTS.values():
        for section in definition.sections:
            for row in section.rows:
                if row.fallback:
                    primary = client.query(expand(row.expr, values), options.end)
                    fallback = client.query(expand(row.fallback, values), options.end)
                    assert primary and labels(primary) == labels(fallback), row.key
                    checked.append(row.key)
    client.close()
    assert sorted(checked) == ["connections_peak", "cpu_peak", "filesystem_free", "latency_p95_peak",
                               "memory_available_low"]


# -- formats -------------------------------------------------------------------------------------------------


def test_text_report_is_an_aligned_table_with_no_data_rows(landscape: Landscape) -> None:
    done = report(landscape, "capacity", f"--range={RANGE}")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["ERP capacity report", f"Prometheus: {landscape.prometheus.url}"]
    assert lines[2].startswith(f"Range:      {RANGE}: ")
    header = lines[lines.index("== Targets ==") + 1]
    assert header.split() == ["TARGET", "MEASURE", "DETAIL", "VALUE", "STATUS", "FORECAST", "BASIS"]
    users = next(line for line in lines if line.startswith("erp-tryton ") and "Peak logged-in ERP users" in line)
    no_data = next(line for line in lines if line.startswith("erp-pg ") and "Peak logged-in ERP users" in line)
    column = header.index("VALUE")
    assert users[column:].split() == ["3"]
    assert no_data[column:].rstrip() == "no data"
    assert users.index("Peak") == no_data.index("Peak") == header.index("MEASURE")


def test_markdown_report_has_a_table_per_section(landscape: Landscape) -> None:
    done = report(landscape, "health", f"--range={RANGE}", "--format=markdown")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("# ERP health report\n")
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## Targets", "## Exporters (host checks and backups)", "## Alerts"]
    assert "| erp-down | Up now |  | no | CRITICAL |" in text


# -- failures ------------------------------------------------------------------------------------------------


def test_prometheus_down_exits_1_with_one_line(landscape: Landscape) -> None:
    port = closed_port()
    done = report(landscape, "capacity", url=f"http://reporter:hunter2@127.0.0.1:{port}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (f"erp-exporter report: cannot reach Prometheus at http://127.0.0.1:{port}: "
                           "Connection refused\n")  # one line, without the URL's credentials


def test_url_that_is_not_prometheus_exits_1_with_one_line(landscape: Landscape) -> None:
    done = report(landscape, "health", url=f"http://{landscape.exporter.address}")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"erp-exporter report: Prometheus at http://{landscape.exporter.address} does not "
                                  "answer like a Prometheus HTTP API"), done.stderr
    done = report(landscape, "health", url="localhost:9090")  # no scheme: a bad flag, as the README says
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.rstrip().endswith("argument --prometheus.url: 'localhost:9090' is not an http:// or https:// "
                                         "URL (e.g. http://localhost:9090)"), done.stderr


def test_bad_range_exits_2(landscape: Landscape) -> None:
    for bad in ("5x", "0s", "-5m", ""):
        done = report(landscape, "capacity", f"--range={bad}")
        assert done.returncode == 2, (bad, done.stderr)
        assert "argument --range" in done.stderr
        assert done.stdout == ""


def test_bearer_token_is_sent_and_never_printed(landscape: Landscape, tmp_path: Path) -> None:
    token = "tok-" + os.urandom(8).hex()
    done = report(landscape, "capacity", f"--range={RANGE}", "--format=json",
                  env={"ERP_EXPORTER_PROMETHEUS_BEARER_TOKEN": token})
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    done = report(landscape, "health", f"--prometheus.bearer-token-file={token_file}",
                  url=f"http://127.0.0.1:{closed_port()}")
    assert done.returncode == 1
    assert token not in done.stdout + done.stderr


class AuthenticatedPrometheus(ManagedProcess):
    """A Prometheus that wants basic auth (its web config); ready when /-/ready answers with the credentials."""

    def __init__(self, work: Path, user: str, password: str) -> None:
        port = free_port()
        web = work / "web.yml"
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        web.write_text(yaml.safe_dump({"basic_auth_users": {user: hashed}}))
        config = work / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}, "scrape_configs": []}))
        super().__init__("prometheus", [
            binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={web}"],
            work / "prometheus.log", f"http://127.0.0.1:{port}/-/ready")
        self.url = f"http://127.0.0.1:{port}"
        self.credentials = (user, password)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")
        return requests.get(self.ready_url, auth=self.credentials, timeout=2).status_code == 200


def test_basic_auth_to_prometheus_and_the_password_never_printed(landscape: Landscape, tmp_path: Path) -> None:
    password = "pw-" + os.urandom(8).hex()
    prometheus = AuthenticatedPrometheus(tmp_path, "planner", password)
    prometheus.start()
    try:
        password_file = tmp_path / "password"
        password_file.write_text(password + "\n")
        done = report(landscape, "health", "--prometheus.username=planner",
                      f"--prometheus.password-file={password_file}", "--format=json", url=prometheus.url)
        assert done.returncode == 0, done.stderr
        # an empty Prometheus: no target, no exporter, and no alert data
        assert [(row["row"], row["no_data"]) for row in json.loads(done.stdout)["rows"]] == [
            ("alerts_fired", True), ("alerts_firing_now", True)]
        done = report(landscape, "health", "--prometheus.username=planner", url=prometheus.url,
                      env={"ERP_EXPORTER_PROMETHEUS_PASSWORD": password + "-wrong"})
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr == (f"erp-exporter report: Prometheus at {prometheus.url} refused the credentials "
                               "(HTTP 401)\n")
        # credentials in the URL are used as basic auth and stripped from every message
        done = report(landscape, "capacity", url=f"http://planner:{password}@{prometheus.url.removeprefix('http://')}")
        assert done.returncode == 0, done.stderr
        assert password not in done.stdout + done.stderr
        assert f"Prometheus: {prometheus.url}\n" in done.stdout
        assert "== Targets ==\n(no target over the range)\n" in done.stdout
    finally:
        prometheus.stop()


# -- definitions ---------------------------------------------------------------------------------------------


def test_the_packaged_thresholds_are_the_shipped_thresholds_file() -> None:
    # `make rules` (tools/gen_alert_rules.py) copies alert_rules/thresholds.yml into the package.
    packaged = REPO / "exporter" / "report" / "thresholds.yml"
    assert packaged.read_text() == (REPO / "alert_rules" / "thresholds.yml").read_text()
    assert Thresholds().raw == Thresholds.load(REPO / "alert_rules" / "thresholds.yml").raw


def test_health_lists_the_error_budget_left_per_transaction_and_objective(landscape: Landscape) -> None:
    document = report_json(landscape, "health")
    found = {(r["labels"]["transaction"], r["labels"]["slo"]): r["value"]
             for r in rows(document, "error_budget_left", "erp-pg")}
    direct = {(s["metric"]["transaction"], s["metric"]["slo"]): float(s["value"][1])
              for s in landscape.prometheus.query('erp:slo_error_budget:remaining_ratio{target="erp-pg"}')}
    assert set(found) == {("order_review", "availability"), ("order_review", "latency")}
    assert found == pytest.approx(direct)
    assert found[("order_review", "latency")] == 1  # every run well within 5 s: nothing spent
    assert rows(document, "error_budget_left", "erp-down")[0]["no_data"] is True
