"""deploy/alertmanager/alertmanager.yml: amtool check-config is clean, every route is exercised by an
`amtool config routes test` case with its expected receivers, every alert of the rules reaches the receiver
of its support line, and a real Alertmanager (Debian 0.25) applies the inhibition rules."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerting_rules import ALERTMANAGER_CONFIG, alert_rules, binary, run
from alerting_stack import WebhookReceiver, alertmanager_test_config, start_alertmanager, wait_for, walk_routes

LINE_RECEIVERS = {"1": "line1-service-desk", "2": "line2-erp-admins", "3": "line3-vendor"}
OWNERS = ("sales", "procurement", "production", "finance", "warehouse")

# (labels, receivers in the order amtool prints them). Together they end in every route of the tree.
ROUTE_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({"alertname": "Watchdog", "severity": "info", "support_line": "2"}, ["heartbeat"]),
    ({"alertname": "ErpAuditViolations", "owner": "sales", "support_line": "1"}, ["owner-sales"]),
    ({"alertname": "ErpAuditViolations", "owner": "procurement", "support_line": "1"}, ["owner-procurement"]),
    ({"alertname": "ErpAuditViolations", "owner": "production", "support_line": "1"}, ["owner-production"]),
    # an audit that line 2 must act on too goes to the owner and to the ERP admins
    ({"alertname": "ErpAuditViolations", "owner": "finance", "support_line": "2"},
     ["owner-finance", "line2-erp-admins"]),
    ({"alertname": "ErpAuditViolations", "owner": "warehouse", "support_line": "3"},
     ["owner-warehouse", "line3-vendor"]),
    # an owner without a receiver of its own: the service desk forwards it
    ({"alertname": "ErpAuditViolations", "owner": "hr", "support_line": "1"}, ["line1-service-desk"]),
    ({"alertname": "ErpProcessGroupGone", "severity": "critical", "support_line": "1"}, ["line1-service-desk"]),
    ({"alertname": "ErpTargetDown", "severity": "critical", "support_line": "2"}, ["line2-erp-admins"]),
    ({"alertname": "ErpTargetDown", "severity": "critical", "support_line": "3", "escalated": "true"},
     ["line3-vendor"]),
    # no support_line at all: the root's default receiver
    ({"alertname": "SomethingElse"}, ["line2-erp-admins"]),
]


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    return loaded


def amtool_routes(labels: dict[str, str]) -> list[str]:
    result = run([binary("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}",
                  *(f"{key}={value}" for key, value in labels.items())])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


# -- a model of Alertmanager's routing, to know which route each case ends in -----------------------------------

_MATCHER = re.compile(r'^\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"(.*)"\s*$')


def _matches(route: dict[str, Any], labels: dict[str, str]) -> bool:
    for matcher in route.get("matchers", []) or []:
        found = _MATCHER.match(matcher)
        assert found, f"matcher not understood by the test: {matcher}"
        name, op, value = found.groups()
        actual = labels.get(name, "")
        ok = {"=": actual == value, "!=": actual != value,
              "=~": re.fullmatch(value, actual) is not None, "!~": re.fullmatch(value, actual) is None}[op]
        if not ok:
            return False
    return True


def _ends(route: dict[str, Any], labels: dict[str, str], path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Paths of the routes an alert ends in (Alertmanager: first matching child, more with `continue`)."""
    ends: list[tuple[int, ...]] = []
    for index, child in enumerate(route.get("routes", []) or []):
        if _matches(child, labels):
            ends += _ends(child, labels, (*path, index))
            if not child.get("continue"):
                break
    return ends or [path]


def _routes_with_paths(route: dict[str, Any], path: tuple[int, ...] = ()) -> Iterator[tuple[tuple[int, ...], Any]]:
    yield path, route
    for index, child in enumerate(route.get("routes", []) or []):
        yield from _routes_with_paths(child, (*path, index))


# -- static checks ----------------------------------------------------------------------------------------------

def test_amtool_check_config_is_clean() -> None:
    result = run([binary("amtool"), "check-config", str(ALERTMANAGER_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(("labels", "receivers"), ROUTE_CASES, ids=[str(c[0]) for c in ROUTE_CASES])
def test_amtool_routes_each_case_to_its_expected_receivers(labels: dict[str, str], receivers: list[str]) -> None:
    assert amtool_routes(labels) == receivers


def test_the_route_cases_end_in_every_route_of_the_tree() -> None:
    root = config()["route"]
    ended = {path for labels, _ in ROUTE_CASES for path in _ends(root, labels)}
    # a route can only be an end when none of its children catches everything
    can_end = {path for path, route in _routes_with_paths(root)
               if not any(not child.get("matchers") for child in route.get("routes", []) or [])}
    assert can_end - ended == set(), "routes no case ends in"


def test_the_route_model_agrees_with_amtool_for_every_case() -> None:
    root = config()["route"]
    for labels, receivers in ROUTE_CASES:
        modelled = []
        for path in _ends(root, labels):
            node, receiver = root, root["receiver"]
            for index in path:
                node = node["routes"][index]
                receiver = node.get("receiver", receiver)
            modelled.append(receiver)
        assert modelled == receivers, labels


def test_every_alert_of_the_rules_reaches_the_receiver_of_its_support_line() -> None:
    seen = set()
    for rule in alert_rules():
        line = rule.labels["support_line"]
        if "{{" in line:
            continue  # the audit rule: covered by the owner cases above
        labels = {"alertname": rule.name, "severity": rule.labels["severity"], "support_line": line}
        if rule.escalated:
            labels["escalated"] = "true"
        key = tuple(sorted(labels.items()))
        if key in seen:
            continue
        seen.add(key)
        expected = ["heartbeat"] if rule.name == "Watchdog" else [LINE_RECEIVERS[line]]
        assert amtool_routes(labels) == expected, labels


def test_there_is_a_receiver_per_support_line_per_owner_and_a_heartbeat() -> None:
    names = {receiver["name"] for receiver in config()["receivers"]}
    assert names == {*LINE_RECEIVERS.values(), *(f"owner-{owner}" for owner in OWNERS), "heartbeat"}
    used = {route["receiver"] for route in walk_routes(config()["route"]) if "receiver" in route}
    assert used == names


def test_every_route_but_the_heartbeat_is_muted_in_planned_maintenance() -> None:
    root = config()["route"]
    for path, route in _routes_with_paths(root):
        if not path or route.get("routes"):
            continue  # the root cannot be muted; parents pass alerts on to their children
        muted = route.get("mute_time_intervals", [])
        if route["receiver"] == "heartbeat":
            assert muted == [], "the heartbeat must never be muted"
        else:
            assert muted == ["planned-maintenance"], route


def test_grouping_keeps_one_condition_per_notification() -> None:
    # site and landscape: one notification per landscape of a fleet (absent on a single Prometheus)
    assert config()["route"]["group_by"] == ["alertname", "site", "landscape", "target", "instance"]


# -- a real Alertmanager applies the inhibition rules -------------------------------------------------------------

def _alert(**labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"labels": labels, "annotations": {"summary": "test"},
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}


def test_alertmanager_inhibits_consequences_of_a_down_target_and_warnings_under_criticals(tmp_path: Path) -> None:
    with WebhookReceiver() as webhook:
        config_file = tmp_path / "alertmanager.yml"
        config_file.write_text(alertmanager_test_config(webhook))
        manager = start_alertmanager(config_file, tmp_path)
        try:
            line2 = {"support_line": "2"}
            manager.post_alerts([
                _alert(alertname="ErpTargetDown", target="erp-prod", severity="critical", component="availability",
                       **line2),
                _alert(alertname="ErpDatabaseSlow", target="erp-prod", severity="warning", component="database",
                       **line2),
                _alert(alertname="ErpCheckFailing", target="erp-prod", check="audit:x", severity="warning",
                       component="exporter", **line2),
                _alert(alertname="ErpDatabaseSlow", target="erp-batch", severity="warning", component="database",
                       **line2),
                _alert(alertname="ErpHostCpuHigh", instance="h1", severity="warning", component="host", **line2),
                _alert(alertname="ErpHostCpuHigh", instance="h1", severity="critical", component="host", **line2),
                _alert(alertname="ErpHostCpuHigh", instance="h2", severity="warning", component="host", **line2),
                _alert(alertname="ErpExporterDown", job="erp-exporter", instance="x:9861", severity="critical",
                       component="exporter", **line2),
                _alert(alertname="ErpTargetAbsent", job="erp-exporter", severity="critical",
                       component="availability", **line2),
            ])
            expected = {
                ("ErpTargetDown", "erp-prod", "", "critical"): False,
                ("ErpDatabaseSlow", "erp-prod", "", "warning"): True,     # its target is down
                ("ErpCheckFailing", "erp-prod", "", "warning"): True,     # its target is down
                ("ErpDatabaseSlow", "erp-batch", "", "warning"): False,   # another target
                ("ErpHostCpuHigh", "", "h1", "warning"): True,            # the critical of the same condition
                ("ErpHostCpuHigh", "", "h1", "critical"): False,
                ("ErpHostCpuHigh", "", "h2", "warning"): False,           # another host
                ("ErpExporterDown", "", "x:9861", "critical"): False,
                ("ErpTargetAbsent", "", "", "critical"): True,            # the exporter of its job is down
            }

            def inhibition() -> dict[tuple[str, str, str, str], bool]:
                state = {}
                for name in {key[0] for key in expected}:
                    for alert in manager.alerts(name):
                        labels = alert["labels"]
                        key = (name, labels.get("target", ""), labels.get("instance", ""), labels["severity"])
                        state[key] = bool(alert["status"]["inhibitedBy"])
                return state

            wait_for(lambda: inhibition() == expected, 10, f"inhibition differs: {inhibition()} != {expected}")
            # and what is delivered: the inhibited alerts never reach a receiver
            webhook.wait(lambda n: "ErpHostCpuHigh" in n.alertnames, timeout=10)
            time.sleep(1.5)  # one more group_interval for anything late
            delivered = {(alert["labels"]["alertname"], alert["labels"].get("target", ""),
                          alert["labels"].get("instance", ""), alert["labels"]["severity"])
                         for n in webhook.received(lambda n: n.status == "firing") for alert in n.payload["alerts"]}
            assert delivered == {key for key, inhibited in expected.items() if not inhibited}
        finally:
            manager.process.stop()


def test_alertmanager_lets_a_critical_log_error_silence_the_warning_of_its_own_log_and_pattern_only(
    tmp_path: Path,
) -> None:
    # ErpLogErrors fires per log and pattern on an exporter host (no target): log and pattern identify it.
    with WebhookReceiver() as webhook:
        config_file = tmp_path / "alertmanager.yml"
        config_file.write_text(alertmanager_test_config(webhook))
        manager = start_alertmanager(config_file, tmp_path)
        try:
            common = {"alertname": "ErpLogErrors", "job": "erp-exporter", "instance": "h1", "component": "host",
                      "support_line": "2"}
            manager.post_alerts([
                _alert(**common, log="trytond", pattern="traceback", severity="critical"),
                _alert(**common, log="trytond", pattern="traceback", severity="warning"),
                _alert(**common, log="postgresql", pattern="fatal", severity="warning"),
                _alert(**common, log="trytond", pattern="fatal", severity="warning"),
            ])
            expected = {
                ("trytond", "traceback", "critical"): False,
                ("trytond", "traceback", "warning"): True,    # the critical of the same log and pattern
                ("postgresql", "fatal", "warning"): False,    # another log
                ("trytond", "fatal", "warning"): False,       # another pattern
            }

            def inhibition() -> dict[tuple[str, str, str], bool]:
                return {(a["labels"]["log"], a["labels"]["pattern"], a["labels"]["severity"]):
                        bool(a["status"]["inhibitedBy"]) for a in manager.alerts("ErpLogErrors")}

            wait_for(lambda: inhibition() == expected, 10, f"inhibition differs: {inhibition()} != {expected}")
        finally:
            manager.process.stop()
