"""One definition per signal (exporter/signals/): the recording rules record exactly these expressions,
the alerts they carry exist, and the boards and reports read only series that some rule records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from exporter.report.definitions import REPORTS
from exporter.signals.recorded import recorded_signals

REPO = Path(__file__).resolve().parent.parent
THRESHOLDS = yaml.safe_load((REPO / "alert_rules" / "thresholds.yml").read_text())
RECORD_NAME = re.compile(r"erp:[a-z0-9_]+:[a-z0-9_]+")


def shipped_signals() -> tuple:
    calendar = THRESHOLDS["selectors"].get("calendar") or ""
    selector = "{" + calendar + "}" if calendar else ""
    return recorded_signals(selector, int(THRESHOLDS["month_end"]["days_before_close"]))


def test_the_recording_rules_record_each_signal_with_its_one_expression() -> None:
    rules = yaml.safe_load((REPO / "alert_rules" / "recording.rules.yml").read_text())["groups"][0]["rules"]
    assert [(rule["record"], rule["expr"]) for rule in rules] == [(s.record, s.expr) for s in shipped_signals()]


def test_every_signal_has_a_record_name_of_level_metric_operations_and_no_two_share_one() -> None:
    names = [signal.record for signal in shipped_signals()]
    assert all(RECORD_NAME.fullmatch(name) for name in names), names
    assert len(set(names)) == len(names)


def test_the_alert_that_thresholds_a_signal_is_in_the_thresholds_file() -> None:
    alerts = {signal.alert for signal in shipped_signals() if signal.alert}
    assert alerts and alerts <= set(THRESHOLDS["alerts"])


def shipped_records() -> set[str]:
    """Every series some shipped rule file records (the signals and the generated SLO rules)."""
    records: set[str] = set()
    for rule_file in (REPO / "alert_rules").glob("*.rules.yml"):
        for group in yaml.safe_load(rule_file.read_text())["groups"]:
            records.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return records


def test_every_signal_is_recorded_by_a_shipped_rule_file() -> None:
    assert {signal.record for signal in shipped_signals()} <= shipped_records()


def test_the_reports_read_only_recorded_series() -> None:
    recorded = shipped_records()
    used = set(RECORD_NAME.findall(json.dumps(repr(REPORTS))))
    assert used and used <= recorded


def test_the_boards_read_only_recorded_series() -> None:
    recorded = shipped_records()
    used: set[str] = set()
    for board in (REPO / "grafana_dashboards").glob("*.json"):
        for panel in json.loads(board.read_text()).get("panels", []):
            for target in panel.get("targets", []):
                used.update(RECORD_NAME.findall(target.get("expr", "")))
    assert used and used <= recorded
