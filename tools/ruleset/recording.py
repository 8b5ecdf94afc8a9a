"""Recording rules: the shared signals (exporter/signals/) the alerts, the dashboards and the reports read."""

from __future__ import annotations

from exporter.signals.recorded import recorded_signals
from ruleset.builder import Group, RuleBuilder


def groups(b: RuleBuilder) -> list[Group]:
    signals = recorded_signals(b.calendar, int(b.month_end["days_before_close"]))
    return [Group("erp-recording", [{"record": signal.record, "expr": signal.expr} for signal in signals])]
