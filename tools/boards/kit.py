"""What every board is built with: thresholds from alert_rules/thresholds.yml, selectors of the
variables, PromQL helpers, the panel builders and the shared variables and annotations."""

from __future__ import annotations

import json
import re
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

REPO = Path(__file__).resolve().parent.parent.parent
OUT_DIR = REPO / "grafana_dashboards"
RULES_DIR = REPO / "alert_rules"
THRESHOLDS_FILE = RULES_DIR / "thresholds.yml"

DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "erp-exporter"

# Selectors of the variables. Target-scoped series carry target and the target's static labels; host,
# process, backup, log, calendar and exporter series carry only the scrape's job and instance. In a fleet
# (docs/scaling.md) every series also carries `site`; on a single Prometheus it is absent and "All" (.*)
# matches the empty value.
SITE = 'site=~"$site"'
T = f'{SITE}, environment=~"$environment", target=~"$target"'
INST = f'{SITE}, instance=~"$instance"'
# Checks of targets and of the exporter itself (host, backups...: target="")
CHECKS = f'{SITE}, instance=~"$instance", target=~"$target"'
NOT_JOB_LOG = 'source!="job_log"'
ENV = f'{SITE}, environment=~"$environment"'  # HTTP transactions carry their entry's labels, not a target
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
        query("site", "Site", "label_values(erp_up, site)",
              "The `site` of a fleet (the external label of the site's Prometheus agent pair); empty on a single "
              "Prometheus."),
        query("environment", "Environment", 'label_values(erp_up{site=~"$site"}, environment)',
              "The `environment` label of the targets (static target labels in the exporter's config)."),
        query("target", "Target", 'label_values(erp_up{site=~"$site", environment=~"$environment"}, target)',
              "A database of the ERP landscape (the exporter's `target` label)."),
        query("instance", "Exporter", f'label_values(erp_exporter_build_info{{job="{job}", site=~"$site"}}, instance)',
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


