"""Run a report: fill each row's PromQL template, ask Prometheus, and lay the answers out per subject."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from string import Template

from exporter.report.client import PrometheusClient, Sample, Series
from exporter.report.definitions import Chart, Limit, Report, Row, Section, Thresholds
from exporter.report.forecast import History
from exporter.signals.signal import FLEET_LABELS
from exporter.source.durations import format_duration

#: told after each query: (queries asked so far, queries in all) — the terminal's progress line
Progress = Callable[[int, int], None]

# Subqueries (the month-end peaks, fallbacks of missing recording rules) take this many steps over the range.
SUBQUERY_STEPS = 10_000
# The first and last sample of a trend's series are looked for on a coarser grid: timestamp() over 10,000
# subquery steps took 12-15 s per query on 92 days of backfilled blocks, and the span only has to be judged
# against 10 % of the range (one step of 1/200 is 0.5 %; the span found is never longer than the real one).
HISTORY_STEPS = 200


@dataclass(frozen=True)
class Options:
    range_text: str  # as given (a Prometheus duration, already validated)
    range_seconds: float
    end: float  # Unix seconds: every query is an instant query at this time
    site: str | None = None  # a fleet's site (docs/scaling.md); None on a single Prometheus
    environment: str | None = None
    target: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    owner: str | None = None  # governance only
    audit: str | None = None  # governance only

    @property
    def start(self) -> float:
        return self.end - self.range_seconds

    def filters(self) -> dict[str, str]:
        found = {"site": self.site, "environment": self.environment, "target": self.target, "owner": self.owner,
                 "audit": self.audit}
        return {name: value for name, value in found.items() if value is not None}


@dataclass(frozen=True)
class Line:
    """One line of a report: a row's value for one subject (and one set of detail labels)."""

    section: Section
    subject: str
    row: Row
    detail: dict[str, str]
    value: float | None  # None: the query returned nothing for this subject ("no data")
    status: str | None  # "ok", "warning", "critical"; None without a limit or a comparable value
    query: str  # the PromQL that answered (the fallback when the recording rule had nothing)
    history: History | None = None  # forecasts: the history the trend stands on (value None when too short)
    range_seconds: float = 0.0  # the report's range in seconds, to judge the history against

    @property
    def not_enough_history(self) -> bool:
        return self.history is not None and not self.history.enough(self.range_seconds)


@dataclass(frozen=True)
class ChartData:
    """A chart's series over the range, and the closing periods (start, end) to shade."""

    chart: Chart
    series: list[Series]
    closing: list[tuple[float, float]]
    query: str
    start: float
    end: float
    range_seconds: float
    relative: bool = False  # times are seconds since a start (the closes of the month-end report), not dates


@dataclass(frozen=True)
class ReportResult:
    report: Report
    options: Options
    prometheus: str  # the URL without credentials
    lines: list[Line]
    charts: list[ChartData] = field(default_factory=list)


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (Go escapes, which JSON's are a subset of)."""
    return json.dumps(value, ensure_ascii=False)


def variables(options: Options) -> dict[str, str]:
    """The values of the row templates' $variables for these options."""
    sel = "".join(f"{name}={promql_string(value)}," for name, value in options.filters().items())
    step_seconds = max(1.0, float(int(options.range_seconds / SUBQUERY_STEPS)))
    step = format_duration(step_seconds)
    history_step = format_duration(max(1.0, float(int(options.range_seconds / HISTORY_STEPS))))
    targets = ""
    if sel:
        targets = (
            f" and on ({FLEET_LABELS}, job, instance) group by ({FLEET_LABELS}, job, instance) "
            f'(last_over_time(erp_check_success{{target!="",{sel}}}[{options.range_text}]))'
        )
    thresholds = options.thresholds
    return {
        "range": options.range_text,
        "step": step,
        "step_seconds": f"{step_seconds:g}",
        "history_step": history_step,
        "sel": sel,
        "targets": targets,
        "fs": thresholds.selector("filesystem"),
        "dbmounts": f"mountpoint=~{promql_string(thresholds.selector('database_mountpoints'))}",
        "calendar": f"calendar={promql_string(calendar)}" if (calendar := thresholds.selector("calendar")) else "",
    }


def expand(template: str, values: dict[str, str]) -> str:
    return Template(template).substitute(values)


def status(limit: Limit | None, value: float | None, labels: dict[str, str], thresholds: Thresholds) -> str | None:
    """'critical', 'warning' or 'ok' for a value against a row's limit; None when there is nothing to compare."""
    if limit is None or value is None or math.isnan(value):
        return None
    warning, critical = thresholds.values(limit, labels)
    if warning is None and critical is None:
        return None

    def beyond(bound: float | None) -> bool:
        return bound is not None and (value < bound if limit.below else value > bound)

    if beyond(critical):
        return "critical"
    if beyond(warning):
        return "warning"
    return "ok"


def normalise(row: Row, value: float) -> float:
    """Days left of a trend that does not approach the limit (0, negative or -Inf growth) are +Inf: never."""
    if row.unit == "days" and (value < 0 or math.isinf(value)):
        return math.inf
    return value


def _grouping(section: Section, row: Row) -> list[str]:
    """The labels a row's series are told apart by: the section's subject and the row's detail."""
    return [name for name in (section.subject, *row.detail) if name]


def history_queries(section: Section, row: Row, values: dict[str, str]) -> tuple[str, str]:
    """(samples, seconds) of the trend's series over the range, per subject and detail: what a forecast stands on."""
    series = expand(row.trend, values)
    by = ", ".join(_grouping(section, row))
    points = f"max by ({by}) (count_over_time({series}[$range]))"
    stamps = f"timestamp({series})[$range:$history_step]"
    spread = f"max by ({by}) (max_over_time({stamps}) - min_over_time({stamps}))"
    return expand(points, values), expand(spread, values)


def _key(labels: Mapping[str, str], names: list[str]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in names)


class _Asker:
    """Asks the queries and tells the progress callback after each one."""

    def __init__(self, client: PrometheusClient, total: int, progress: Progress | None) -> None:
        self.client, self.total, self.progress, self.asked = client, total, progress, 0

    def _tick(self) -> None:
        self.asked += 1
        if self.progress:
            self.progress(self.asked, max(self.total, self.asked))

    def query(self, expr: str, at: float) -> list[Sample]:
        try:
            return self.client.query(expr, at)
        finally:
            self._tick()

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        try:
            return self.client.query_range(expr, start, end, step)
        finally:
            self._tick()


def planned_queries(report: Report, charts: bool) -> int:
    """About how many queries a report asks (fallbacks only when the recording rule has nothing)."""
    count = 0
    for section in report.sections:
        count += 1 if section.subjects else 0
        count += sum(1 + (2 if row.trend else 0) for row in section.rows)
    if charts:
        count += 1 + len(report.charts)
    return count


def run_report(report: Report, client: PrometheusClient, options: Options, *, charts: bool = False,
               progress: Progress | None = None) -> ReportResult:
    """Ask every row's query (one instant query each, at the end of the range) and build the lines; with
    ``charts``, ask each chart's range query too."""
    asker = _Asker(client, planned_queries(report, charts), progress)
    lines = _lines(report, asker, options)
    drawn = fetch_charts(report.charts, asker, options) if charts else []
    return ReportResult(report, options, client.display_url, lines, drawn)


def _histories(section: Section, row: Row, asker: _Asker, options: Options,
               values: dict[str, str]) -> dict[tuple[str, ...], History]:
    points_query, spread_query = history_queries(section, row, values)
    names = _grouping(section, row)
    points = {_key(s.labels, names): s.value for s in asker.query(points_query, options.end)}
    spreads = {_key(s.labels, names): s.value for s in asker.query(spread_query, options.end)}
    return {key: History(spreads.get(key, 0.0), int(count)) for key, count in points.items()}


def _lines(report: Report, asker: _Asker, options: Options) -> list[Line]:
    values = variables(options)
    lines: list[Line] = []
    for section in report.sections:
        answers: list[tuple[Row, str, list[Sample], dict[tuple[str, ...], History] | None]] = []
        for row in section.rows:
            query = expand(row.expr, values)
            samples = asker.query(query, options.end)
            if not samples and row.fallback:
                fallback = expand(row.fallback, values)
                fallback_samples = asker.query(fallback, options.end)
                if fallback_samples:
                    query, samples = fallback, fallback_samples
            histories = _histories(section, row, asker, options, values) if row.trend else None
            answers.append((row, query, samples, histories))
        subjects: set[str] = set()
        if section.subject:
            if section.subjects:
                listed = asker.query(expand(section.subjects, values), options.end)
                subjects.update(sample.labels.get(section.subject, "") for sample in listed)
            for _, _, samples, _ in answers:
                subjects.update(sample.labels.get(section.subject, "") for sample in samples)
        else:
            subjects.add("")
        # Series without the subject label (HTTP transactions have no target) come last, with their data only.
        for subject in sorted(subjects, key=lambda name: (name == "" and bool(section.subject), name)):
            for row, query, samples, histories in answers:
                mine = [s for s in samples if not section.subject or s.labels.get(section.subject, "") == subject]
                if not mine:
                    if subject or not section.subject:
                        lines.append(Line(section, subject, row, {}, None, None, query))
                    continue
                found = []
                names = _grouping(section, row)
                for sample in mine:
                    detail = {name: sample.labels[name] for name in row.detail if sample.labels.get(name)}
                    value: float | None = normalise(row, sample.value)
                    history = None
                    if histories is not None:
                        history = histories.get(_key(sample.labels, names), History(0.0, 0))
                        if not history.enough(options.range_seconds):
                            value = None
                    labels = dict(sample.labels)
                    found.append(
                        Line(section, subject, row, detail, value,
                             status(row.limit, value, labels, options.thresholds), query, history,
                             options.range_seconds)
                    )
                found.sort(key=lambda line: tuple(line.detail.get(name, "") for name in row.detail))
                lines.extend(found)
    return lines


#: points per chart series: enough for a smooth line, well under Prometheus' 11,000 per query
CHART_POINTS = 400
CLOSING = "max(erp_calendar_month_end_close{$calendar})"


def chart_step(range_seconds: float) -> float:
    return max(1.0, float(int(range_seconds / CHART_POINTS)))


def closing_periods(series: list[Series], step: float) -> list[tuple[float, float]]:
    """The (start, end) spans where the calendar series is 1, from a range query at ``step``."""
    spans: list[tuple[float, float]] = []
    for one in series:
        start: float | None = None
        last = 0.0
        for moment, value in one.points:
            on = value >= 1
            if start is not None and (not on or moment - last > step * 1.5):  # off again, or a gap in the data
                spans.append((start, last))
                start = None
            if on and start is None:
                start = moment
            last = moment
        if start is not None:
            spans.append((start, last))
    return sorted(spans)


def chart_series(asker: _Asker | PrometheusClient, chart: Chart, values: dict[str, str], start: float,
                 end: float, step: float) -> tuple[str, list[Series]]:
    """(the query that answered, its series in legend order): the chart's query, or its fallback when the
    recording rule has nothing."""
    query = expand(chart.expr, values)
    series = asker.query_range(query, start, end, step)
    if not series and chart.fallback:
        fallback = expand(chart.fallback, values)
        series = asker.query_range(fallback, start, end, step)
        query = fallback if series else query
    series.sort(key=lambda one: tuple(one.labels.get(name, "") for name in chart.legend))
    return query, series


def fetch_charts(charts: tuple[Chart, ...], asker: _Asker, options: Options) -> list[ChartData]:
    """Every chart's series over the range, and the closing periods to shade."""
    values = variables(options)
    first, last = options.start, options.end
    step = chart_step(last - first)
    closing = closing_periods(asker.query_range(expand(CLOSING, values), first, last, step), step)
    drawn = []
    for chart in charts:
        query, series = chart_series(asker, chart, values, first, last, step)
        drawn.append(ChartData(chart, series, closing, query, first, last, last - first))
    return drawn
