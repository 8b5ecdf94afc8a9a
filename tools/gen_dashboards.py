#!/usr/bin/env python3
"""Generate the Grafana dashboards in grafana_dashboards/ from code and alert_rules/thresholds.yml.

    .venv/bin/python tools/gen_dashboards.py            # rewrite grafana_dashboards/*.json
    .venv/bin/python tools/gen_dashboards.py --check    # exit 1 if the committed files are out of date

Library: grafana-foundation-sdk (Grafana Labs), pinned in pyproject.toml's dev extras to the Grafana 11.6 build
``1769699379!11.6.0``. Why this one and not grafanalib: the SDK's builders are generated from Grafana's own
schemas (typed DataSourceRef, fieldConfig, variables and annotations; schemaVersion 41), it had releases in
2026, while grafanalib's last release is 0.7.1 (January 2024, 52 commits unreleased, its owner wound down)
and writes schemaVersion 12 with legacy target fields. The pin matters: PEP 440 epochs are build
timestamps, and a plain ``pip install grafana-foundation-sdk`` resolves to the older Grafana 10.1 build
(uploaded last, so with the highest epoch).

What every board shares (tests/test_dashboards.py checks all of it, and runs every query against a real
Prometheus that scraped the real exporter):
  - variables ``datasource`` (Prometheus), ``environment``, ``target`` (label_values of erp_up) and
    ``instance`` (the exporter: host, backup, log and self metrics carry no target label);
  - every panel has a unit and the ``${datasource}`` data source, a stable id; every board a stable uid;
  - thresholds equal the alert rules': read here from alert_rules/thresholds.yml, the same file
    tools/gen_alert_rules.py reads. A threshold step means "at or above this": ``> N`` on a count is a
    step at N + 1; a value that alerts when it falls is coloured red below the critical and orange below
    the warning value. Panels without an alert have a single neutral step;
  - queries use the recording rules of alert_rules/recording.rules.yml where one exists.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, stat, statetimeline, table
from grafana_foundation_sdk.builders import timeseries as ts_builder
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "grafana_dashboards"
RULES_DIR = REPO / "alert_rules"
THRESHOLDS_FILE = RULES_DIR / "thresholds.yml"

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "erp-exporter"

# Selectors of the variables. Target-scoped series carry target and the target's static labels; host,
# process, backup, log, calendar and exporter series carry only the scrape's job and instance.
T = 'environment=~"$environment", target=~"$target"'
INST = 'instance=~"$instance"'
# Checks of targets and of the exporter itself (host, backups...: target="")
CHECKS = 'instance=~"$instance", target=~"$target"'
NOT_JOB_LOG = 'source!="job_log"'
ENV = 'environment=~"$environment"'  # HTTP transactions carry their entry's labels, not a target
FIRING = 'alertstate="firing"'
NOT_WATCHDOG = 'alertname!="Watchdog"'
AUDIT_CHECKS = 'check=~"audit:.*"'  # scheduled jobs have no latency objective (same as the alerts)

GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"
FACTOR = "suffix:x"  # a ratio of two values shown as 1.3x (Grafana's custom unit syntax)


# -- thresholds --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Steps:
    """Threshold steps: a base colour, then (value, colour) pairs, each meaning "at or above value"."""

    base: str
    steps: tuple[tuple[float, str], ...] = ()

    def config(self) -> dashboard.ThresholdsConfig:
        values = [models.Threshold(None, self.base)] + [models.Threshold(v, c) for v, c in self.steps]
        return dashboard.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(values)

    @property
    def alerting(self) -> bool:
        return bool(self.steps)


NEUTRAL = Steps(GREEN)


def above(warning: float | None = None, critical: float | None = None, *, count: bool = False) -> Steps:
    """An alert that fires when the value is above warning / critical. On a count, ``> N`` is ``>= N + 1``."""
    shift = 1 if count else 0
    steps: list[tuple[float, str]] = []
    if warning is not None:
        steps.append((_number(warning) + shift, ORANGE))
    if critical is not None:
        steps.append((_number(critical) + shift, RED))
    return Steps(GREEN, tuple(steps))


def below(warning: float, critical: float | None = None) -> Steps:
    """An alert that fires when the value falls below warning / critical (e.g. free memory)."""
    if critical is None:
        return Steps(ORANGE, ((_number(warning), GREEN),))
    return Steps(RED, ((_number(critical), ORANGE), (_number(warning), GREEN)))


BAD_AT_ZERO = Steps(RED, ((1, GREEN),))  # up == 0, integrity_ok == 0, files == 0, ...: alerts on 0
BAD_AT_ONE = Steps(GREEN, ((1, RED),))  # can_write == 1, stale == 1, any failing check: alerts on 1


def _number(value: Any) -> float:
    number = float(value)
    return int(number) if number.is_integer() else number


_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = (7 * 86400, 86400, 3600, 60, 1)


def duration_seconds(text: str) -> int:
    """Seconds of a Prometheus duration ("1h30m" -> 5400)."""
    match = _DURATION.match(str(text))
    if not match or not text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(int(part) * unit for part, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if part)


@dataclass(frozen=True)
class Limits:
    """What the boards read from alert_rules/ (thresholds.yml, and the audit comparison of the rules)."""

    raw: dict[str, Any]
    audit_comparison: str = ">"

    def alert(self, name: str) -> dict[str, Any]:
        alerts: dict[str, Any] = self.raw["alerts"]
        if name not in alerts:
            raise KeyError(f"alert {name} is not in thresholds.yml")
        entry: dict[str, Any] = alerts[name] or {}
        return entry

    def value(self, name: str, key: str) -> Any:
        entry = self.alert(name)
        if key not in entry:
            raise KeyError(f"thresholds.yml: alerts.{name}.{key} is missing")
        return entry[key]

    def overrides(self, name: str) -> tuple[str, dict[str, dict[str, Any]]]:
        entry = self.alert(name).get("overrides") or {}
        return str(entry.get("label", "")), dict(entry.get("values") or {})

    @property
    def selectors(self) -> dict[str, Any]:
        selectors: dict[str, Any] = self.raw["selectors"]
        return selectors

    @property
    def month_end(self) -> dict[str, Any]:
        month_end: dict[str, Any] = self.raw["month_end"]
        return month_end

    def calendar_matcher(self) -> str:
        calendar = str(self.selectors.get("calendar") or "")
        return f'calendar="{calendar}"' if calendar else ""


def load_limits(rules_dir: Path = RULES_DIR) -> Limits:
    raw = yaml.safe_load((rules_dir / "thresholds.yml").read_text())
    return Limits(raw, audit_comparison(rules_dir / "governance.rules.yml"))


def audit_comparison(governance_rules: Path) -> str:
    """The comparison the ErpAuditViolations rule makes against the published thresholds (> or >=)."""
    text = governance_rules.read_text()
    found = set(re.findall(r"erp_audit_violations\s*(>=|>)\s*on\b", text))
    if len(found) != 1:
        raise ValueError(f"{governance_rules}: expected one comparison of erp_audit_violations, found {found}")
    comparison: str = found.pop()
    return comparison


# -- PromQL helpers ------------------------------------------------------------------------------------------


def sel(metric: str, *matchers: str) -> str:
    """metric{m1, m2} (empty matchers left out)."""
    inner = ", ".join(m for m in matchers if m)
    return f"{metric}{{{inner}}}" if inner else metric


def previous_close(expr_at: Callable[[str], str], limits: Limits) -> str:
    """The value at the same point of the previous close: ``offset`` 4w when that was inside a closing period,
    else 5w (month_end.previous_close_offsets), the same rule as ErpMonthEnd*AbovePreviousClose."""
    close = sel("erp_calendar_month_end_close", limits.calendar_matcher())
    parts = [
        f"({expr_at(offset)}\n and on () (max({close} offset {offset}) == 1))"
        for offset in limits.month_end["previous_close_offsets"]
    ]
    return "\nor\n".join(parts)


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def builder(self, ref_id: str) -> prometheus.Dataquery:
        query = prometheus.Dataquery().expr(self.expr).ref_id(ref_id).datasource(DATASOURCE)
        if self.legend:
            query = query.legend_format(self.legend)
        if self.table:
            query = query.format(PromQueryFormat.TABLE).instant()
        elif self.instant:
            query = query.instant()
        else:
            query = query.range()
        return query


def mapping(values: dict[int, tuple[str, str]]) -> list[models.ValueMapping]:
    options = {
        str(value): models.ValueMappingResult(text=text, color=color, index=index)
        for index, (value, (text, color)) in enumerate(values.items())
    }
    return [models.ValueMap(options=options)]


# -- panels -------------------------------------------------------------------------------------------------


@dataclass
class Board:
    """One dashboard: panels are laid out left to right, 24 columns wide, in rows."""

    uid: str
    title: str
    description: str
    time_from: str
    refresh: str
    tags: list[str]
    min_interval: str | None = None  # the shortest $__interval of the board's panels (long ranges)
    builder: dashboard.Dashboard = field(init=False)
    next_id: int = 1

    def __post_init__(self) -> None:
        self.builder = (
            dashboard.Dashboard(self.title)
            .uid(self.uid)
            .description(self.description)
            .tags([TAG, *self.tags])
            .editable()
            .time(self.time_from, "now")
            .timezone("browser")
            .refresh(self.refresh)
            .tooltip(models.DashboardCursorSync.CROSSHAIR)
            .link(
                dashboard.DashboardLink("ERP boards")
                .type(models.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
        )

    def _id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def row(self, title: str) -> None:
        self.builder = self.builder.with_row(dashboard.Row(title).id(self._id()))

    def add(self, panel: Any, title: str, description: str, unit: str, queries: Sequence[Query],
            steps: Steps, width: int, height: int) -> None:
        panel = (
            panel.id(self._id())
            .title(title)
            .description(description)
            .datasource(DATASOURCE)
            .unit(unit)
            .thresholds(steps.config())
            .span(width)
            .height(height)
        )
        if self.min_interval:
            panel = panel.interval(self.min_interval)
        for index, query in enumerate(queries):
            panel = panel.with_target(query.builder(chr(ord("A") + index)))
        self.builder = self.builder.with_panel(panel)

    def timeseries(self, title: str, description: str, unit: str, queries: Sequence[Query],
                   steps: Steps = NEUTRAL, width: int = 12, height: int = 8, stack: bool = False,
                   minimum: float | None = None, overrides: Iterable[tuple[str, Steps]] = ()) -> None:
        panel = (
            ts_builder.Panel()
            .line_width(1)
            .fill_opacity(25 if stack else 10)
            .span_nulls(False)
            .legend(
                common.VizLegendOptions()
                .display_mode(common_models.LegendDisplayMode.LIST)
                .placement(common_models.LegendPlacement.BOTTOM)
                .show_legend(True)
            )
            .tooltip(common.VizTooltipOptions().mode(common_models.TooltipDisplayMode.MULTI)
                     .sort(common_models.SortOrder.DESCENDING))
            .thresholds_style(
                common.GraphThresholdsStyleConfig().mode(
                    common_models.GraphThresholdsStyleMode.DASHED if steps.alerting
                    else common_models.GraphThresholdsStyleMode.OFF
                )
            )
        )
        if stack:
            panel = panel.stacking(common.StackingConfig().mode(common_models.StackingMode.NORMAL))
        if minimum is not None:
            panel = panel.min(minimum)
        for regexp, override in overrides:
            value = models.DynamicConfigValue("thresholds", override.config().build())
            panel = panel.override_by_regexp(regexp, [value])
        self.add(panel, title, description, unit, queries, steps, width, height)

    def stat(self, title: str, description: str, unit: str, queries: Sequence[Query], steps: Steps = NEUTRAL,
             width: int = 6, height: int = 5, mappings: dict[int, tuple[str, str]] | None = None,
             no_value: str | None = None, reducer: str = "lastNotNull") -> None:
        panel = (
            stat.Panel()
            .color_mode(common_models.BigValueColorMode.BACKGROUND if steps.alerting or mappings
                        else common_models.BigValueColorMode.VALUE)
            .graph_mode(common_models.BigValueGraphMode.AREA if not mappings else common_models.BigValueGraphMode.NONE)
            .text_mode(common_models.BigValueTextMode.VALUE_AND_NAME)
            .reduce_options(common.ReduceDataOptions().calcs([reducer]).values(False))
        )
        if mappings:
            panel = panel.mappings(mapping(mappings))
        if no_value is not None:
            panel = panel.no_value(no_value)
        self.add(panel, title, description, unit, queries, steps, width, height)

    def state_timeline(self, title: str, description: str, queries: Sequence[Query],
                       mappings: dict[int, tuple[str, str]], steps: Steps, width: int = 24,
                       height: int = 6) -> None:
        panel = (
            statetimeline.Panel()
            .show_value(common_models.VisibilityMode.NEVER)
            .merge_values(True)
            .row_height(0.8)
            .fill_opacity(70)
            .mappings(mapping(mappings))
        )
        self.add(panel, title, description, "none", queries, steps, width, height)

    def bar_gauge(self, title: str, description: str, unit: str, queries: Sequence[Query],
                  steps: Steps = NEUTRAL, width: int = 12, height: int = 8) -> None:
        panel = (
            bargauge.Panel()
            .orientation(common_models.VizOrientation.HORIZONTAL)
            .display_mode(common_models.BarGaugeDisplayMode.BASIC)
            .show_unfilled(True)
            .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )
        self.add(panel, title, description, unit, queries, steps, width, height)

    def table(self, title: str, description: str, unit: str, queries: Sequence[Query],
              columns: dict[str, str], steps: Steps = NEUTRAL, width: int = 24, height: int = 8,
              column_units: dict[str, str] | None = None, status_column: str | None = None,
              status_mappings: dict[int, tuple[str, str]] | None = None, sort_by: str | None = None) -> None:
        """A table of instant queries merged on their labels; `columns` renames (and orders) the kept fields:
        "Value #A" is query A's value. Fields not listed are hidden."""
        panel = table.Panel().cell_height(common_models.TableCellHeight.SM).filterable(True)
        if len(queries) > 1:
            panel = panel.with_transformation(models.DataTransformerConfig(id_val="merge", options={}))
        panel = panel.with_transformation(
            models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": {"Time": True, "__name__": True, "job": True},
                    "includeByName": dict.fromkeys(columns, True),
                    "indexByName": {name: index for index, name in enumerate(columns)},
                    "renameByName": columns,
                },
            )
        )
        if sort_by:
            panel = panel.sort_by([common.TableSortByFieldState().display_name(sort_by).desc(True)])
        for name, column_unit in (column_units or {}).items():
            panel = panel.override_by_name(name, [models.DynamicConfigValue("unit", column_unit)])
        if status_column and status_mappings:
            panel = panel.override_by_name(
                status_column,
                [
                    models.DynamicConfigValue("mappings", mapping(status_mappings)),
                    models.DynamicConfigValue("custom.cellOptions", {"type": "color-background"}),
                ],
            )
        self.add(panel, title, description, unit, queries, steps, width, height)

    def build(self, variables: Sequence[Builder[models.VariableModel]],
              annotations: Sequence[Builder[models.AnnotationQuery]] = ()) -> dict[str, Any]:
        board = self.builder.variables(list(variables))
        if annotations:
            board = board.annotations(list(annotations))
        payload: dict[str, Any] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
        return payload


# -- variables and annotations --------------------------------------------------------------------------------


def variables(limits: Limits, *extra: Builder[models.VariableModel]) -> list[Builder[models.VariableModel]]:
    job = limits.selectors["exporter_job"]

    def query(name: str, label: str, expr: str, description: str) -> dashboard.QueryVariable:
        return (
            dashboard.QueryVariable(name)
            .label(label)
            .description(description)
            .datasource(DATASOURCE)
            .query(expr)
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(models.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
            .current(models.VariableOption(selected=True, text="All", value="$__all"))
        )

    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        .description("The Prometheus that scrapes the ERP exporters."),
        query("environment", "Environment", "label_values(erp_up, environment)",
              "The `environment` label of the targets (static target labels in the exporter's config)."),
        query("target", "Target", 'label_values(erp_up{environment=~"$environment"}, target)',
              "A database of the ERP landscape (the exporter's `target` label)."),
        query("instance", "Exporter", f'label_values(erp_exporter_build_info{{job="{job}"}}, instance)',
              "An exporter (one per ERP landscape or host): host, backup, log and the exporter's own series."),
        *extra,
    ]


def closing_period_annotation(limits: Limits) -> dashboard.AnnotationQuery:
    close = sel("erp_calendar_month_end_close", limits.calendar_matcher())
    return (
        dashboard.AnnotationQuery()
        .name("Closing period")
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color("rgba(255, 152, 48, 0.25)")
        .expr(f"max({close}) == 1")
    )


# -- the boards ----------------------------------------------------------------------------------------------


UP_MAP = {0: ("DOWN", RED), 1: ("UP", GREEN)}


def overview(limits: Limits) -> dict[str, Any]:
    board = Board("erp-overview", "ERP overview",
                  "Health at a glance, per target: is each ERP database up and fast, how many users are on, do the "
                  "checks run, what is firing.", "now-6h", "30s", ["overview"])
    slow = "ErpDatabaseSlow"
    latency = "ErpTransactionLatencyHigh"
    failures = "ErpTransactionFailureRatioHigh"
    saturated = "ErpDatabaseConnectionsSaturated"
    users = "ErpMonthEndUsersTrend"
    task_errors = "ErpTaskErrors"
    board.row("Availability")
    board.stat("Database up", "erp_up: did the database answer the probe query (ErpTargetDown fires on 0).", "none",
               [Query(sel("erp_up", T), "{{target}}")], BAD_AT_ZERO, width=8, mappings=UP_MAP)
    board.timeseries("Database round trip", f"Round trip of the probe query; ErpDatabaseSlow above "
                     f"{limits.value(slow, 'warning')} s (warning) and {limits.value(slow, 'critical')} s (critical).",
                     "s", [Query(sel("erp_database_probe_duration_seconds", T), "{{target}}")],
                     above(limits.value(slow, "warning"), limits.value(slow, "critical")), width=8)
    board.timeseries("Login time", "How long opening the probe's connection took (login included).", "s",
                     [Query(sel("erp_database_connect_duration_seconds", T), "{{target}}")], width=8)
    board.stat("ERP processes", "Running processes of each ERP process group (ErpProcessGroupGone fires on 0).",
               "none", [Query(sel("erp_process_group_processes", INST), "{{group}} on {{instance}}")], BAD_AT_ZERO,
               width=8)
    board.stat("Certificate expires in", "Time left until the certificate of each https business transaction expires "
               f"(ErpTlsCertificateExpiring below {limits.value('ErpTlsCertificateExpiring', 'warning')} and "
               f"{limits.value('ErpTlsCertificateExpiring', 'critical')} days).", "s",
               [Query(f"{sel('erp_tls_certificate_expiry_timestamp_seconds', ENV)} - time()",
                      "{{transaction}}")],
               below(limits.value("ErpTlsCertificateExpiring", "warning") * 86400,
                     limits.value("ErpTlsCertificateExpiring", "critical") * 86400), width=8)
    board.table("ERP and database versions", "What runs on each target: the ERP pack's product and version, and the "
                "database's.", "none",
                [Query(f"max by (target, dbms, database_version) (label_replace({sel('erp_database_info', T)}, "
                       '"database_version", "$1", "version", "(.*)"))', table=True),
                 Query(f"max by (target, erp, erp_version) (label_replace({sel('erp_info', T)}, "
                       '"erp_version", "$1", "version", "(.*)"))', table=True)],
                {"target": "Target", "erp": "ERP", "erp_version": "ERP version", "dbms": "Database",
                 "database_version": "Database version"}, width=8)
    board.row("Load")
    label, per_target = limits.overrides(users)
    user_overrides = [(f"^{re.escape(name)}$", above(values["warning"])) for name, values in per_target.items()
                      if label == "target"]
    board.timeseries("Logged-in ERP users", "Distinct users with an ERP session active within the pack's window; the "
                     f"line is the capacity the system is sized for ({users}).", "short",
                     [Query(f"sum by (target) ({sel('erp_users_logged_in', T)})", "{{target}}")],
                     above(limits.value(users, "warning")), overrides=user_overrides)
    board.timeseries("ERP sessions", "ERP sessions active within the pack's window.", "short",
                     [Query(f"sum by (target) ({sel('erp_sessions_active', T)})", "{{target}}")])
    board.timeseries("Database connections used", "Connections against the database server's limit "
                     f"({saturated}).", "percentunit",
                     [Query(sel("erp:database_connections_used:ratio", T), "{{target}}")],
                     above(limits.value(saturated, "warning"), limits.value(saturated, "critical")), minimum=0)
    t_label, objectives = limits.overrides(latency)
    latency_overrides = [(f"^{re.escape(name)} on .*", above(values.get("warning"), values.get("critical")))
                         for name, values in objectives.items() if t_label == "transaction"]
    board.timeseries("Business transaction p95", f"p95 of each synthetic business transaction over 5 minutes "
                     f"({latency}; scheduled jobs have no objective and are left out).", "s",
                     [Query(sel("erp:transaction_duration_seconds:p95", T, NOT_JOB_LOG),
                            "{{transaction}} on {{target}}")],
                     above(limits.value(latency, "warning"), limits.value(latency, "critical")),
                     overrides=latency_overrides)
    board.timeseries("Business transaction failures", f"Failed share of each business transaction's runs over 10 "
                     f"minutes ({failures}).", "percentunit",
                     [Query(sel("erp:transaction_failures:ratio_rate10m", T, NOT_JOB_LOG),
                            "{{transaction}} on {{target}}")],
                     above(limits.value(failures, "warning"), limits.value(failures, "critical")), minimum=0)
    board.timeseries("Transaction and job runs", "Runs per second of the synthetic business transactions (sql, "
                     "http) and of the ERP's scheduled jobs (job_log).", "ops",
                     [Query(f"sum by (target, source) ({sel('erp:transactions:rate5m', T)})",
                            "{{source}} on {{target}}")])
    board.timeseries("ERP task errors", "Errors of scheduled jobs and background tasks that nobody has solved yet "
                     f"(open or processing; {task_errors} above {limits.value(task_errors, 'warning')} for "
                     f"{limits.value(task_errors, 'for')}).", "short",
                     [Query(f"sum by (target) ({sel('erp_task_errors', T)})", "{{target}}")],
                     above(limits.value(task_errors, "warning"), count=True), minimum=0)
    board.row("Checks and alerts")
    board.stat("Checks failing", "Checks whose last run failed, per target (ErpCheckFailing); checks of the exporter "
               "itself (host, backups, calendars) show as target \"exporter\".", "none",
               [Query(f'label_replace(sum by (target) ({sel("erp_check_success", T)} == bool 0), '
                      f'"target", "exporter", "target", "")', "{{target}}")],
               BAD_AT_ONE, width=8)
    board.stat("Check errors in the time range", "Failed check runs within the dashboard's time range, per target.",
               "none", [Query("label_replace(sum by (target) "
                              f'(increase({sel("erp_check_errors_total", T)}[$__range])), '
                              f'"target", "exporter", "target", "")', "{{target}}")], width=8)
    board.stat("Alerts firing", "Firing alerts by severity (the Watchdog, which always fires, left out).", "none",
               [Query(f"count by (severity) ({sel('ALERTS', FIRING, NOT_WATCHDOG, T)})",
                      "{{severity}}")], BAD_AT_ONE, width=8, no_value="0")
    board.table("Firing alerts", "Every firing alert with its severity, support line and target.", "none",
                [Query(sel("ALERTS", FIRING, NOT_WATCHDOG, T), table=True)],
                {"alertname": "Alert", "severity": "Severity", "support_line": "Line", "target": "Target",
                 "component": "Component", "owner": "Owner", "escalated": "Escalated"}, height=7)
    return board.build(variables(limits))


def month_end(limits: Limits) -> dict[str, Any]:
    board = Board("erp-month-end", "ERP month-end close",
                  "Users, response times and transactions now against the same point of the previous close "
                  "(4 weeks back, or 5 when that was no close), the closing periods shaded, and the trends toward "
                  "the limits that the early-warning alerts watch.", "now-7d", "1m", ["month-end"])
    calendar = limits.calendar_matcher()
    horizon = duration_seconds(limits.month_end["horizon"])
    window = limits.month_end["trend_window"]
    horizon_text = limits.month_end["horizon"]
    days_before = int(limits.month_end["days_before_close"])
    latency = "ErpTransactionLatencyHigh"
    load_factor = "ErpMonthEndLoadAbovePreviousClose"
    latency_factor = "ErpMonthEndLatencyAbovePreviousClose"
    slow = "ErpDatabaseSlow"
    closing = {0: ("open", GREEN), 1: ("closing", ORANGE)}

    board.row("Calendar")
    board.state_timeline("Closing periods", "Each closing period of each business calendar: on (closing) or off.",
                         [Query(f"max by (calendar, period) ({sel('erp_calendar_closing_period', calendar)})",
                                "{{calendar}}: {{period}}")], closing, Steps(GREEN, ((1, ORANGE),)), width=12)
    board.stat("Business days to the next close", f"0 while a period is on; the month-end early warning opens "
               f"{days_before} business days before (month_end.days_before_close).", "none",
               [Query(f"min by (calendar, period) ({sel('erp_calendar_workdays_to_close', calendar)})",
                      "{{calendar}}: {{period}}")], Steps(ORANGE, ((days_before + 1, GREEN),)), width=6, height=6)
    board.stat("Month-end window", "1 while a close is on or starts within the early-warning window "
               "(recording rule erp:month_end_window:active).", "none",
               [Query("erp:month_end_window:active", "window")], Steps(GREEN, ((1, ORANGE),)), width=6, height=6,
               mappings={0: ("quiet", GREEN), 1: ("close", ORANGE)})

    board.row("Now against the previous close")
    users_now = f"sum by (target) ({sel('erp_users_logged_in', T)})"
    board.timeseries("Logged-in users", "Logged-in ERP users now, and at the same point of the previous close.",
                     "short",
                     [Query(users_now, "{{target}} now"),
                      Query(previous_close(lambda o: f"sum by (target) ({sel('erp_users_logged_in', T)} offset {o})",
                                           limits), "{{target}} previous close")],
                     above(limits.value("ErpMonthEndUsersTrend", "warning")))
    peak = sel("erp:users_logged_in:max_over_1h", T)
    board.timeseries("Users against the previous close", f"Peak users of the last hour divided by the same at the "
                     f"previous close ({load_factor} above {limits.value(load_factor, 'warning')}x, with at least "
                     f"{limits.value(load_factor, 'min_users')} users).", FACTOR,
                     [Query(f"{peak}\n/\n({previous_close(lambda o: f'{peak} offset {o}', limits)})", "{{target}}")],
                     above(limits.value(load_factor, "warning")))
    p95 = sel("erp:transaction_duration_seconds:p95", T, NOT_JOB_LOG)
    board.timeseries("Business transaction p95", f"p95 now and at the previous close ({latency}).", "s",
                     [Query(p95, "{{transaction}} on {{target}} now"),
                      Query(previous_close(lambda o: f"{p95} offset {o}", limits),
                            "{{transaction}} on {{target}} previous close")],
                     above(limits.value(latency, "warning"), limits.value(latency, "critical")))
    board.timeseries("p95 against the previous close", f"p95 now divided by the p95 at the previous close "
                     f"({latency_factor} above {limits.value(latency_factor, 'warning')}x, when p95 is at least "
                     f"{limits.value(latency_factor, 'min_seconds')} s).", FACTOR,
                     [Query(f"{p95}\n/\n({previous_close(lambda o: f'{p95} offset {o}', limits)})",
                            "{{transaction}} on {{target}}")],
                     above(limits.value(latency_factor, "warning")))
    rate = f"sum by (target, transaction) ({sel('erp:transactions:rate5m', T)})"
    board.timeseries("Transactions per second", "Runs per second of each business transaction and scheduled job, "
                     "now and at the previous close.", "ops",
                     [Query(rate, "{{transaction}} on {{target}} now"),
                      Query(previous_close(
                          lambda o: f"sum by (target, transaction) ({sel('erp:transactions:rate5m', T)} offset {o})",
                          limits), "{{transaction}} on {{target}} previous close")])
    probe = sel("erp_database_probe_duration_seconds", T)
    board.timeseries("Database round trip", f"Round trip of the probe query now and at the previous close ({slow}).",
                     "s", [Query(probe, "{{target}} now"),
                           Query(previous_close(lambda o: f"{probe} offset {o}", limits), "{{target}} previous close")],
                     above(limits.value(slow, "warning"), limits.value(slow, "critical")))

    board.row(f"Early warning: where the trend of the last {window} is in {horizon_text}")
    board.timeseries("Users forecast", f"predict_linear of logged-in users ({window} fit, {horizon_text} ahead) "
                     "against the capacity the system is sized for (ErpMonthEndUsersTrend).", "short",
                     [Query(users_now, "{{target}} now"),
                      Query(f"predict_linear({sel('erp_users_logged_in', T)}[{window}], {horizon})",
                            f"{{{{target}}}} in {horizon_text}")],
                     above(limits.value("ErpMonthEndUsersTrend", "warning")), width=8)
    board.timeseries("Connections forecast", "Share of the connection limit the trend reaches "
                     "(ErpMonthEndConnectionsTrend).", "percentunit",
                     [Query(f"predict_linear({sel('erp_database_connections', T)}[{window}], {horizon})\n/\n"
                            f"{sel('erp_database_max_connections', T)}", f"{{{{target}}}} in {horizon_text}")],
                     above(limits.value("ErpMonthEndConnectionsTrend", "warning")), width=8, minimum=0)
    board.timeseries("p95 forecast", f"Where the p95 trend is in {horizon_text} (ErpMonthEndLatencyTrend: the "
                     f"{latency} warning objective).", "s",
                     [Query(f"predict_linear({p95}[{window}], {horizon})", f"{{{{transaction}}}} on {{{{target}}}} in "
                            f"{horizon_text}")],
                     above(limits.value(latency, "warning")), width=8)
    return board.build(variables(limits), [closing_period_annotation(limits)])


def database(limits: Limits) -> dict[str, Any]:
    board = Board("erp-database", "ERP database health",
                  "Sessions, long queries and locks, size and the largest tables, index health, vacuum and "
                  "transaction-ID age, replication, backups and the database log.", "now-6h", "30s", ["database"])
    saturated = "ErpDatabaseConnectionsSaturated"
    long_queries = "ErpDatabaseLongRunningQueries"
    blocked = "ErpDatabaseBlockedSessions"
    xid = "ErpDatabaseTransactionIdWraparound"
    lag = "ErpDatabaseReplicationLag"
    stale = "ErpBackupStale"
    log_errors = "ErpLogErrors"
    log_window = limits.value(log_errors, "window")
    error_matches = sel("erp_log_matches_total", INST, f'pattern=~"{limits.selectors["log_error_patterns"]}"')

    board.row("Sessions")
    board.timeseries("Sessions by state", "Database sessions: active, idle, idle in transaction, waiting on a lock.",
                     "short", [Query(f"sum by (target, state) ({sel('erp_database_sessions', T)})",
                                     "{{target}} {{state}}")], stack=True)
    board.timeseries("Connections used", f"Connections / max_connections ({saturated}).", "percentunit",
                     [Query(sel("erp:database_connections_used:ratio", T), "{{target}}")],
                     above(limits.value(saturated, "warning"), limits.value(saturated, "critical")), minimum=0)
    board.row("Queries and locks")
    board.timeseries("Long-running queries", f"Queries running longer than the check's threshold ({long_queries} "
                     "warning on any).", "short",
                     [Query(sel("erp_database_long_running_queries", T), "{{target}}")],
                     above(limits.value(long_queries, "warning"), count=True), width=6)
    board.timeseries("Oldest running query", f"Age of the oldest running query ({long_queries} critical), and the "
                     "threshold above which a query counts as long-running.", "s",
                     [Query(sel("erp_database_oldest_query_age_seconds", T), "{{target}}"),
                      Query(sel("erp_database_long_running_query_threshold_seconds", T),
                            "{{target}} long-running from")],
                     above(critical=limits.value(long_queries, "critical")), width=6)
    board.timeseries("Blocked sessions", f"Sessions waiting for a lock another session holds ({blocked} warning).",
                     "short", [Query(sel("erp_database_blocked_sessions", T), "{{target}}")],
                     above(limits.value(blocked, "warning"), count=True), width=6)
    board.timeseries("Longest lock wait", f"How long the longest current lock wait has lasted ({blocked} critical).",
                     "s", [Query(sel("erp_database_lock_wait_longest_seconds", T), "{{target}}")],
                     above(critical=limits.value(blocked, "critical")), width=6)
    board.row("Size")
    board.timeseries("Database size", "Size of the database on disk.", "bytes",
                     [Query(sel("erp_database_size_bytes", T), "{{target}}")], width=8)
    board.timeseries("Database growth per day", "deriv over 6 hours (recording rule erp:database_size_bytes:deriv6h), "
                     "per day.", "bytes", [Query(f"{sel('erp:database_size_bytes:deriv6h', T)} * 86400", "{{target}}")],
                     width=8)
    board.bar_gauge("Largest tables", "The largest tables with their indexes (the check's top N).", "bytes",
                    [Query(f"sort_desc({sel('erp_database_table_size_bytes', T)})", "{{target}}: {{table}}",
                           instant=True)], width=8)
    board.table("Largest tables: size and rows", "Size (indexes included) and estimated rows of the largest tables.",
                "bytes", [Query(sel("erp_database_table_size_bytes", T), table=True),
                          Query(sel("erp_database_table_rows", T), table=True)],
                {"target": "Target", "table": "Table", "Value #A": "Size", "Value #B": "Rows"},
                column_units={"Rows": "short"}, sort_by="Size")
    board.row("Index health and maintenance")
    board.stat("Invalid indexes", "Indexes left invalid by a failed CREATE INDEX CONCURRENTLY "
               "(ErpDatabaseInvalidIndexes).", "none", [Query(sel("erp_database_invalid_indexes", T), "{{target}}")],
               above(limits.value("ErpDatabaseInvalidIndexes", "warning"), count=True))
    board.stat("Unused indexes", "Non-unique indexes never scanned since the statistics were reset.", "none",
               [Query(sel("erp_database_unused_indexes", T), "{{target}}")])
    board.stat("Duplicate indexes", "Indexes that repeat another index of the same table.", "none",
               [Query(sel("erp_database_duplicate_indexes", T), "{{target}}")])
    board.stat("Replication role", "Whether each target is a primary or a replica.", "none",
               [Query(sel("erp_database_is_replica", T), "{{target}}")],
               mappings={0: ("primary", GREEN), 1: ("replica", BLUE)})
    board.timeseries("Oldest vacuum and analyze", "Time since the user table vacuumed (analyzed) longest ago was.",
                     "s", [Query(sel("erp_database_oldest_vacuum_age_seconds", T), "{{target}} vacuum"),
                           Query(sel("erp_database_oldest_analyze_age_seconds", T), "{{target}} analyze")])
    board.timeseries("Transaction ID age", f"PostgreSQL transactions since the oldest unfrozen ID; wraparound stops "
                     f"writes at about 2.1 billion ({xid}).", "short",
                     [Query(sel("erp_database_transaction_id_age", T), "{{target}}")],
                     above(limits.value(xid, "warning"), limits.value(xid, "critical")))
    board.row("Replication")
    board.timeseries("Replication lag", f"How far each replica is behind its primary ({lag}).", "s",
                     [Query(sel("erp_database_replication_lag_seconds", T), "{{target}} {{replica}}")],
                     above(limits.value(lag, "warning"), limits.value(lag, "critical")), width=24)
    board.row("Backups and the database log")
    board.stat("Backup age", f"Time since the newest backup file was written ({stale}).", "s",
               [Query(f"time() - {sel('erp_backup_newest_timestamp_seconds', INST)}", "{{backup}}")],
               above(limits.value(stale, "warning") * 3600, limits.value(stale, "critical") * 3600))
    board.stat("Newest backup intact", "Whether the newest backup passed its integrity checks "
               "(ErpBackupIntegrityFailed).", "none", [Query(sel("erp_backup_integrity_ok", INST), "{{backup}}")],
               BAD_AT_ZERO, mappings={0: ("FAILED", RED), 1: ("OK", GREEN)})
    board.stat("Backup files", "Backup files found (ErpBackupMissing fires on 0).", "none",
               [Query(sel("erp_backup_files", INST), "{{backup}}")], BAD_AT_ZERO)
    board.timeseries("Newest backup size", "Size of the newest backup file: a sudden drop is a truncated dump.",
                     "bytes", [Query(sel("erp_backup_newest_size_bytes", INST), "{{backup}}")], width=6, height=5)
    board.timeseries("Database log matches", "Lines of the followed logs that matched each pattern (errors, fatals, "
                     "deadlocks, tracebacks...).", "short",
                     [Query(f"sum by (instance, log, pattern) (increase({sel('erp_log_matches_total', INST)}"
                            "[$__rate_interval]))", "{{log}}: {{pattern}}")])
    board.timeseries(f"Log error lines in {log_window}", f"Lines of each followed log that matched an error pattern "
                     f"(selectors.log_error_patterns) within {log_window}; {log_errors} warns on any and is critical "
                     f"above {limits.value(log_errors, 'critical')}.", "short",
                     [Query(f"sum by (instance, log, pattern) (increase({error_matches}[{log_window}]))",
                            "{{log}}: {{pattern}}")],
                     above(limits.value(log_errors, "warning"), limits.value(log_errors, "critical"), count=True),
                     minimum=0)
    return board.build(variables(limits))


def governance(limits: Limits) -> dict[str, Any]:
    board = Board("erp-governance", "ERP data governance scorecard",
                  "Data-quality and compliance audits by owning department: violations against each audit's own "
                  "warning and critical thresholds (the same comparison as the ErpAuditViolations alert).",
                  "now-7d", "5m", ["governance"])
    owner_var = (
        dashboard.QueryVariable("owner").label("Owner").description("The department that owns the audited data.")
        .datasource(DATASOURCE)
        .query(f"label_values({sel('erp_audit_violations', T)}, owner)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True).include_all(True).all_value(".*")
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )
    owner = 'owner=~"$owner"'
    cmp = limits.audit_comparison
    on = "on (job, instance, target, audit) group_left ()"
    violations = sel("erp_audit_violations", T, owner)
    breaching = sel("erp:audits_breaching:count_by_owner", T, owner)
    by_owner = sel("erp:audit_violations:sum_by_owner", T, owner)
    status = (f"({violations} {cmp} bool {on} erp_audit_warning_threshold)\n+ on (job, instance, target, audit)\n"
              f"({violations} {cmp} bool {on} erp_audit_critical_threshold)")
    statuses = {0: ("OK", GREEN), 1: ("warning", ORANGE), 2: ("critical", RED)}

    board.row("Scorecard")
    board.stat("Audits over their warning threshold", "Audits in breach (recording rule "
               "erp:audits_breaching:count_by_owner).", "none",
               [Query(f"sum({breaching})", "audits")],
               BAD_AT_ONE, no_value="0")
    board.stat("Audits over their critical threshold", "Audits whose violations are critical.", "none",
               [Query(f"count({violations} {cmp} {on} erp_audit_critical_threshold)", "audits")],
               BAD_AT_ONE, no_value="0")
    board.stat("Violations", "Records in violation, all audits.", "none",
               [Query(f"sum({violations})", "records")])
    board.stat("Audits", "Audits that report.", "none", [Query(f"count({violations})", "audits")])
    board.table("Scorecard by owner", "Per owning department: its audits, how many are over their warning and "
                "critical thresholds, and the records in violation.", "none",
                [Query(f"count by (owner) ({violations})", table=True),
                 Query(f"sum by (owner) ({breaching})", table=True),
                 Query(f"count by (owner) ({violations} {cmp} {on} erp_audit_critical_threshold)", table=True),
                 Query(f"sum by (owner) ({by_owner})", table=True)],
                {"owner": "Owner", "Value #A": "Audits", "Value #B": "Over warning", "Value #C": "Over critical",
                 "Value #D": "Violations"}, width=12, sort_by="Over warning")
    board.bar_gauge("Violations by audit", "Records in violation per audit.", "none",
                    [Query(f"sort_desc(sum by (owner, audit) ({violations}))", "{{owner}}: {{audit}}", instant=True)])
    board.row("Audits")
    board.table("Audits against their thresholds", "Every audit with its violations, its own thresholds and its "
                "status: warning when the violations are over the warning threshold, critical when over the critical "
                "one.", "none",
                [Query(violations, table=True),
                 Query(sel("erp_audit_warning_threshold", T, owner), table=True),
                 Query(sel("erp_audit_critical_threshold", T, owner), table=True),
                 Query(status, table=True)],
                {"owner": "Owner", "audit": "Audit", "category": "Category", "target": "Target",
                 "support_line": "Line", "severity": "Severity", "Value #A": "Violations", "Value #B": "Warning over",
                 "Value #C": "Critical over", "Value #D": "Status"},
                status_column="Status", status_mappings=statuses, sort_by="Status", height=10)
    board.timeseries("Violations by owner", "Records in violation per owning department (recording rule "
                     "erp:audit_violations:sum_by_owner).", "short",
                     [Query(f"sum by (owner) ({by_owner})", "{{owner}}")],
                     stack=True)
    board.timeseries("Audits in breach by owner", "Audits over their warning threshold per owning department.",
                     "short", [Query(f"sum by (owner) ({breaching})", "{{owner}}")], stack=True)
    board.table("Audit runs", "Whether each audit's last run succeeded, and how long ago it last did.", "none",
                [Query(sel("erp_check_success", T, AUDIT_CHECKS), table=True),
                 Query(f"time() - {sel('erp_check_last_success_timestamp_seconds', T, AUDIT_CHECKS)}",
                       table=True)],
                {"target": "Target", "check": "Audit", "Value #A": "Last run", "Value #B": "Since last success"},
                column_units={"Since last success": "s"}, status_column="Last run",
                status_mappings={0: ("failed", RED), 1: ("ok", GREEN)})
    return board.build(variables(limits, owner_var))


def capacity(limits: Limits) -> dict[str, Any]:
    board = Board("erp-capacity", "ERP capacity planning",
                  "Months of history and linear forecasts to the limits: disk, database size, connections, users, "
                  "CPU and memory. Closing periods are shaded. Prometheus needs the retention (or a long-term "
                  "store) for the range you pick.", "now-90d", "", ["capacity"], min_interval="5m")
    fs = limits.selectors["filesystem"]
    db_mounts = f'mountpoint=~"{limits.selectors["database_mountpoints"]}"'
    filling = "ErpFilesystemFillingUp"
    disk_low = "ErpHostDiskSpaceLow"
    growth = "ErpDatabaseGrowthFillsDisk"
    saturated = "ErpDatabaseConnectionsSaturated"
    cpu = "ErpHostCpuHigh"
    memory = "ErpHostMemoryPressure"
    fill_hours = limits.value(filling, "warning")["hours"]
    growth_days = limits.value(growth, "warning")

    board.row("Disk")
    board.timeseries("Filesystem free share", f"Available / size of each filesystem ({disk_low}).", "percentunit",
                     [Query(f"min_over_time({sel('erp:host_filesystem_avail:ratio', INST, fs)}[$__interval])",
                            "{{instance}} {{mountpoint}}")],
                     below(limits.value(disk_low, "warning"), limits.value(disk_low, "critical")), minimum=0)
    board.timeseries("Filesystem free space forecast", f"Free space now and where the 6-hour trend puts it in "
                     f"{fill_hours} hours ({filling}: below 0 means full).", "bytes",
                     [Query(sel("erp_host_filesystem_avail_bytes", INST, fs), "{{instance}} {{mountpoint}} now"),
                      Query(f"predict_linear({sel('erp_host_filesystem_avail_bytes', INST, fs)}[6h], "
                            f"{fill_hours} * 3600)", f"{{{{instance}}}} {{{{mountpoint}}}} in {fill_hours}h")],
                     Steps(RED, ((0, GREEN),)))
    board.row("Database")
    board.timeseries("Database size and forecast", f"Size now and in {growth_days} days on the 6-hour trend.",
                     "bytes", [Query(sel("erp_database_size_bytes", T), "{{target}} now"),
                               Query(f"predict_linear({sel('erp_database_size_bytes', T)}[6h], {growth_days} * 86400)",
                                     f"{{{{target}}}} in {growth_days} days")])
    board.timeseries("Database growth against free disk", f"Growth expected within {growth_days} days, and the free "
                     f"space on the database host's data filesystems ({growth}: growth above free space).", "bytes",
                     [Query(f"predict_linear({sel('erp_database_size_bytes', T)}[6h], {growth_days} * 86400)\n- "
                            f"{sel('erp_database_size_bytes', T)}", f"{{{{target}}}} growth in {growth_days} days"),
                      Query(f"min by (instance) ({sel('erp_host_filesystem_avail_bytes', INST, fs, db_mounts)})",
                            "{{instance}} free on the data disk")])
    board.timeseries("Connections used: peaks and forecast", f"Highest share of the connection limit per interval, "
                     f"and where the trend of the last {limits.month_end['trend_window']} is in "
                     f"{limits.month_end['horizon']} ({saturated}).", "percentunit",
                     [Query(f"max_over_time({sel('erp:database_connections_used:ratio', T)}[$__interval])",
                            "{{target}} peak"),
                      Query(f"predict_linear({sel('erp_database_connections', T)}[{limits.month_end['trend_window']}], "
                            f"{duration_seconds(limits.month_end['horizon'])})\n/\n"
                            f"{sel('erp_database_max_connections', T)}",
                            f"{{{{target}}}} in {limits.month_end['horizon']}")],
                     above(limits.value(saturated, "warning"), limits.value(saturated, "critical")), minimum=0)
    board.timeseries("Database statements per second", "Load the exporter itself puts on each database.", "ops",
                     [Query(f"sum by (target) (rate({sel('erp_database_statements_total', T)}[$__rate_interval]))",
                            "{{target}}")])
    board.row("Users")
    users = "ErpMonthEndUsersTrend"
    surge = "ErpUsersSurging"
    board.timeseries("Logged-in users: hourly peaks and 30-day forecast", f"Peak users per hour (recording rule "
                     f"erp:users_logged_in:max_over_1h) and the 7-day trend 30 days ahead, against the capacity the "
                     f"system is sized for ({users}).", "short",
                     [Query(f"max by (target) ({sel('erp:users_logged_in:max_over_1h', T)})", "{{target}} peak"),
                      Query(f"max by (target) (predict_linear({sel('erp:users_logged_in:max_over_1h', T)}[7d], "
                            "30 * 86400))", "{{target}} in 30 days")],
                     above(limits.value(users, "warning")))
    board.timeseries("Users against the previous week's peak", f"Users now divided by the peak of the 7 days before "
                     f"the last hour ({surge}: above {limits.value(surge, 'warning')}x with at least "
                     f"{limits.value(surge, 'min_users')} users).", FACTOR,
                     [Query(f"{sel('erp_users_logged_in', T)}\n/\n"
                            f"max_over_time({sel('erp_users_logged_in', T)}[7d] offset 1h)", "{{target}}")],
                     above(limits.value(surge, "warning")))
    board.row("Host")
    board.timeseries("CPU busy", f"Busy share of all CPUs over 5 minutes ({cpu}).", "percentunit",
                     [Query(f"max_over_time({sel('erp:host_cpu_busy:ratio_rate5m', INST)}[$__interval])",
                            "{{instance}}")],
                     above(limits.value(cpu, "warning"), limits.value(cpu, "critical")), width=8, minimum=0)
    board.timeseries("Memory available", f"Available / total memory ({memory}: fires below).", "percentunit",
                     [Query(f"min_over_time({sel('erp:host_memory_available:ratio', INST)}[$__interval])",
                            "{{instance}}")],
                     below(limits.value(memory, "warning"), limits.value(memory, "critical")), width=8, minimum=0)
    board.timeseries("Disk busy", "Share of time each disk had I/O in flight over 5 minutes (ErpHostDiskBusy).",
                     "percentunit",
                     [Query(f"max_over_time({sel('erp:host_disk_io_time:ratio_rate5m', INST)}[$__interval])",
                            "{{instance}} {{device}}")],
                     above(limits.value("ErpHostDiskBusy", "warning")), width=8, minimum=0)
    board.timeseries("ERP process memory", "Resident memory of each ERP process group.", "bytes",
                     [Query(sel("erp_process_group_resident_memory_bytes", INST), "{{group}} on {{instance}}")])
    board.timeseries("ERP process CPU", "CPU seconds per second (cores) each ERP process group uses.", "short",
                     [Query(f"sum by (instance, group) (rate({sel('erp_process_group_cpu_seconds_total', INST)}"
                            "[$__rate_interval]))", "{{group}} on {{instance}}")])
    return board.build(variables(limits), [closing_period_annotation(limits)])


def exporter_health(limits: Limits) -> dict[str, Any]:
    job = f'job="{limits.selectors["exporter_job"]}"'
    board = Board("erp-exporter", "ERP exporter health",
                  "The exporter's own health: scrapes, checks (success, duration against the timeout, errors by "
                  "reason, staleness), workers, connection pools, and the alerting pipeline.", "now-6h", "30s",
                  ["exporter"])
    results = {0: ("failed", RED), 1: ("ok", GREEN)}
    board.row("Exporter")
    board.stat("Exporter up", "Prometheus' scrape of the exporter (ErpExporterDown fires on 0).", "none",
               [Query(sel("up", job, INST), "{{instance}}")], BAD_AT_ZERO, mappings=UP_MAP)
    board.stat("Configuration loaded", "Whether the last configuration (re)load succeeded "
               "(ErpExporterConfigReloadFailed).", "none",
               [Query(sel("erp_exporter_config_last_reload_successful", INST), "{{instance}}")], BAD_AT_ZERO,
               mappings={0: ("FAILED", RED), 1: ("OK", GREEN)})
    board.stat("Alerting pipeline", "The Watchdog alert always fires: when it does not, rule evaluation is broken.",
               "none", [Query(sel("ALERTS", 'alertname="Watchdog"', 'alertstate="firing"'), "Watchdog")],
               BAD_AT_ZERO, mappings={1: ("Watchdog firing", GREEN)}, no_value="NO WATCHDOG")
    board.stat("Monitoring login can write", "1 when a target's monitoring login could change data "
               "(ErpDatabaseLoginCanWrite); it should be read-only.", "none",
               [Query(sel("erp_database_login_can_write", T), "{{target}}")], BAD_AT_ONE,
               mappings={0: ("read-only", GREEN), 1: ("CAN WRITE", RED)})
    board.timeseries("Scrape duration", "How long Prometheus' scrape of /metrics took.", "s",
                     [Query(sel("scrape_duration_seconds", job, INST), "{{instance}}")], width=8)
    board.timeseries("Samples per scrape", "Samples each scrape returned.", "short",
                     [Query(sel("scrape_samples_scraped", job, INST), "{{instance}}")], width=8)
    board.timeseries("Renders per second", "Times the exposition was rendered (it is cached between scrapes).",
                     "ops",
                     [Query(f"rate({sel('erp_exporter_renders_total', INST)}[$__rate_interval])", "{{instance}}")],
                     width=8)
    board.row("Checks")
    board.state_timeline("Check results", "Result of each check's last run.",
                         [Query(sel("erp_check_success", CHECKS), "{{target}} {{check}}")], results,
                         BAD_AT_ZERO, height=10)
    board.timeseries("Check duration against its timeout", "Duration of each check's last run / its timeout: "
                     "near 100% it is about to be cancelled.", "percentunit",
                     [Query(f"{sel('erp_check_duration_seconds', CHECKS)}\n/\n"
                            f"{sel('erp_check_timeout_seconds', CHECKS)}",
                            "{{target}} {{check}}")], minimum=0)
    board.timeseries("Check errors by reason", "Failed runs per reason (timeout, connect, auth, query, guard, "
                     "other); ErpCheckFailing when a check fails every run.", "short",
                     [Query(f"sum by (target, check, reason) (increase({sel('erp_check_errors_total', CHECKS)}"
                            "[$__rate_interval])) > 0", "{{target}} {{check}}: {{reason}}")])
    board.stat("Stale checks", "Checks whose last result is older than two intervals plus the timeout "
               "(ErpCheckStale); their values are withheld.", "none",
               [Query(f"sum({sel('erp_check_stale', CHECKS)})", "stale")], BAD_AT_ONE)
    board.timeseries("Time since last success", "Per check; a check that never succeeded has no line.", "s",
                     [Query(f"time() - {sel('erp_check_last_success_timestamp_seconds', CHECKS)}",
                            "{{target}} {{check}}")], width=18)
    board.timeseries("Series per check", "Series each check published on its last run (capped by series_limit).",
                     "short", [Query(sel("erp_check_series", CHECKS), "{{target}} {{check}}")])
    board.timeseries("Series dropped", "Series dropped because a check exceeded its series_limit.", "short",
                     [Query(f"sum by (target, check) (increase({sel('erp_check_series_dropped_total', CHECKS)}"
                            "[$__rate_interval]))", "{{target}} {{check}}")])
    board.row("Workers and connections")
    board.timeseries("Workers busy", "Worker threads running a check, and how many there are.", "short",
                     [Query(sel("erp_exporter_workers_busy", INST), "{{instance}} busy"),
                      Query(sel("erp_exporter_workers", INST), "{{instance}} workers")], width=8)
    board.timeseries("Abandoned workers", "Workers given up on because a driver call did not return even after "
                     "cancel (a hung server), and the most that are replaced.", "short",
                     [Query(sel("erp_exporter_abandoned_workers", INST), "{{instance}} abandoned"),
                      Query(sel("erp_exporter_abandoned_workers_limit", INST), "{{instance}} limit")], width=8)
    board.timeseries("Connection pools", "Connections the exporter holds to each database, against its own limit.",
                     "short", [Query(sel("erp_database_pool_connections", T), "{{target}} open"),
                               Query(sel("erp_database_pool_max_connections", T), "{{target}} limit")], width=8)
    board.stat("Hung connections", "Connections stuck in a query that did not return even after cancel "
               "(ErpDatabaseHungConnections).", "none",
               [Query(sel("erp_database_pool_hung_connections", T), "{{target}}")],
               above(limits.value("ErpDatabaseHungConnections", "warning"), count=True), width=8)
    board.timeseries("Connect backoff", "Seconds until a target that failed to connect is tried again.", "s",
                     [Query(sel("erp_database_connect_backoff_seconds", T), "{{target}}")], width=8)
    board.table("Exporter version", "Version of each exporter and of its Python.", "none",
                [Query(sel("erp_exporter_build_info", INST), table=True)],
                {"instance": "Exporter", "version": "Version", "python_version": "Python"}, width=8, height=5)
    return board.build(variables(limits))


BOARDS: dict[str, Callable[[Limits], dict[str, Any]]] = {
    "erp-overview.json": overview,
    "erp-month-end.json": month_end,
    "erp-database.json": database,
    "erp-governance.json": governance,
    "erp-capacity.json": capacity,
    "erp-exporter.json": exporter_health,
}


def generate(limits: Limits) -> dict[str, str]:
    """File name -> JSON text of every board."""
    return {name: json.dumps(make(limits), indent=2, sort_keys=True) + "\n" for name, make in BOARDS.items()}


def write(out_dir: Path, limits: Limits) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generate(limits).items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are out of date")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    limits = load_limits()
    if args.check:
        stale = [name for name, text in generate(limits).items()
                 if not (args.out / name).exists() or (args.out / name).read_text() != text]
        for name in stale:
            print(f"out of date: {args.out / name} (run tools/gen_dashboards.py)", file=sys.stderr)
        return 1 if stale else 0
    for path in write(args.out, limits):
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
