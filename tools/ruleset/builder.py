"""What every rule file is built with: the thresholds, the alert conventions and the text helpers.

An area module (availability.py, capacity.py, ...) turns its part of alert_rules/thresholds.yml into rule
groups with a RuleBuilder; tools/gen_alert_rules.py puts the areas' groups into files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from generated_files import duration_seconds

# Which alerts a target that is down silences (Alertmanager inhibition matches on these components).
COMPONENTS = ("availability", "database", "transaction", "jobs", "backup", "host", "capacity", "month_end",
              "audit", "exporter", "meta")

def human_seconds(seconds: float) -> str:
    """A short human duration for texts: 0.5 -> 500ms, 90 -> 1m30s, 7200 -> 2h."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    rest = int(seconds)
    parts = []
    for unit, name in ((86400, "d"), (3600, "h"), (60, "m"), (1, "s")):
        if rest >= unit:
            parts.append(f"{rest // unit}{name}")
            rest %= unit
    return "".join(parts)


def human_ratio(value: float) -> str:
    return f"{value * 100:g}%"


def num(value: float) -> str:
    """A number as PromQL and texts show it: 2, 0.05, 1000000000 (no trailing .0, no exponent)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def fill(text: str, **values: object) -> str:
    """Replace @name@ placeholders (Go templates keep their {{ }} and $ untouched)."""
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    if re.search(r"@[a-z_]+@", text):
        raise ValueError(f"unfilled placeholder in {text!r}")
    return text


def promql(text: str) -> str:
    """A multi-line PromQL expression as written in the templates, without the common indentation."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join(line[indent:] for line in lines)


@dataclass
class Alert:
    name: str
    severity: str
    support_line: str
    component: str
    expr: str
    for_: str
    summary: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    escalate_after: str | None = None


@dataclass
class Group:
    name: str
    rules: list[dict[str, Any]] = field(default_factory=list)


class RuleBuilder:
    """Turns the thresholds into rule groups, one template method per concern."""

    def __init__(self, thresholds: dict[str, Any]) -> None:
        self.alerts: dict[str, dict[str, Any]] = thresholds["alerts"]
        self.base_url: str = str(thresholds["runbook_base_url"]).rstrip("/")
        selectors = thresholds["selectors"]
        self.job = f'job="{selectors["exporter_job"]}"'
        self.fs: str = selectors["filesystem"]
        self.db_mounts: str = selectors["database_mountpoints"]
        self.log_patterns: str = selectors["log_error_patterns"]
        calendar = selectors.get("calendar") or ""
        self.calendar = "{" + calendar + "}" if calendar else ""
        self.month_end: dict[str, Any] = thresholds["month_end"]
        self.slos: dict[str, Any] = thresholds["slos"]

    def a(self, name: str) -> dict[str, Any]:
        if name not in self.alerts:
            raise KeyError(f"thresholds.yml: alerts.{name} is missing")
        return self.alerts[name]

    def for_(self, name: str) -> str:
        return str(self.a(name).get("for", "0s"))

    def rule(self, alert: Alert) -> list[dict[str, Any]]:
        """The alerting rule, plus its escalation variant when the alert has one."""
        if alert.severity not in ("info", "warning", "critical"):
            raise ValueError(f"{alert.name}: bad severity {alert.severity}")
        if alert.component not in COMPONENTS:
            raise ValueError(f"{alert.name}: unknown component {alert.component}")
        labels = {"severity": alert.severity, "support_line": alert.support_line, "component": alert.component}
        labels.update(alert.labels)
        annotations = {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": f"{self.base_url}/{alert.name}.md",
        }
        rules = [rule_dict(alert.name, alert.expr, alert.for_, labels, annotations)]
        if alert.escalate_after:
            line = str(int(alert.support_line) + 1)
            after = alert.escalate_after
            escalated_labels = {**labels, "support_line": line, "escalated": "true"}
            escalated_annotations = {
                **annotations,
                "summary": f"Escalated to line {line}: {alert.summary}",
                "description": (
                    f"{alert.description} This has lasted longer than {after}, so it goes up to line {line}."
                ),
            }
            rules.append(rule_dict(alert.name, alert.expr, after, escalated_labels, escalated_annotations))
        return rules

    def pair(
        self,
        name: str,
        component: str,
        line: str,
        expr: str,
        summary: str,
        description: str,
        *,
        fmt: str = "num",
        escalate: str = "critical",
        texts: dict[str, object] | None = None,
        **extra: object,
    ) -> list[dict[str, Any]]:
        """Rules for each severity that has a value in thresholds.yml (warning and/or critical).

        `expr`, `summary` and `description` may use @threshold@ (the PromQL value), @shown@ (the value as
        a human text: fmt num|seconds|ratio|hours|days) and @for@. The escalation variant is added to the
        `escalate` severity when the alert has escalate_after.
        """
        spec = self.a(name)
        rules: list[dict[str, Any]] = []
        for severity in ("warning", "critical"):
            if severity not in spec:
                continue
            value = float(spec[severity])
            shown = shown_value(value, fmt)
            values = {"threshold": num(value), "shown": shown, **(texts or {}), **extra}
            escalate_after = spec.get("escalate_after") if severity == escalate else None
            rules += self._templated(name, severity, component, line, (expr, summary, description), values,
                                     escalate_after=escalate_after)
        return rules

    def single(
        self,
        name: str,
        severity: str,
        component: str,
        line: str,
        expr: str,
        summary: str,
        description: str,
        labels: dict[str, str] | None = None,
        texts: dict[str, object] | None = None,
        **extra: object,
    ) -> list[dict[str, Any]]:
        values = {**(texts or {}), **extra}
        return self._templated(name, severity, component, line, (expr, summary, description), values,
                               labels=labels, escalate_after=self.a(name).get("escalate_after"))

    def _templated(
        self,
        name: str,
        severity: str,
        component: str,
        line: str,
        templates: tuple[str, str, str],
        values: dict[str, object],
        labels: dict[str, str] | None = None,
        escalate_after: str | None = None,
    ) -> list[dict[str, Any]]:
        """The rules of one alert whose expression, summary and description are @name@ templates."""
        values = {"for": self.for_(name), **values}
        expr, summary, description = (fill(template, **values) for template in templates)
        return self.rule(Alert(name, severity, line, component, expr, self.for_(name), summary, description,
                               labels=labels or {}, escalate_after=escalate_after))

    def split_pair(
        self,
        name: str,
        component: str,
        line: str,
        *,
        warning: tuple[str, str],
        critical: tuple[str, str],
        summary: str,
        critical_fmt: str,
    ) -> list[dict[str, Any]]:
        """A severity pair where each severity watches its own metric (count, then age)."""
        spec = self.a(name)
        rules: list[dict[str, Any]] = []
        for severity, (expr, description), fmt in (
            ("warning", warning, "num"),
            ("critical", critical, critical_fmt),
        ):
            value = float(spec[severity])
            values = {"threshold": num(value), "shown": shown_value(value, fmt), "for": self.for_(name)}
            rules += self.rule(Alert(
                name=name, severity=severity, support_line=line, component=component,
                expr=fill(expr, **values), for_=self.for_(name), summary=fill(summary, **values),
                description=fill(description, **values),
            ))
        return rules

    def annotations(self, name: str, summary: str, description: str) -> dict[str, str]:
        return {"summary": summary, "description": description, "runbook_url": f"{self.base_url}/{name}.md"}


def shown_value(value: float, fmt: str) -> str:
    if fmt == "seconds":
        return human_seconds(value)
    if fmt == "ratio":
        return human_ratio(value)
    if fmt == "hours":
        return f"{num(value)}h"
    if fmt == "days":
        return f"{num(value)}d"
    return num(value)


def rule_dict(
    name: str, expr: str, for_: str, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if duration_seconds(for_) > 0:
        rule["for"] = for_
    rule["labels"] = labels
    rule["annotations"] = annotations
    return rule

