"""`report month-end`: one month's close against the previous ones, closing periods read from the calendar.

A close is a run of ``erp_calendar_month_end_close == 1`` (the calendar check of the exporter); the close of a
month is the last run that starts in that month (a period of the last working days that runs into the next
month's first days belongs to the month it started in). Months without such a run say so: nothing is guessed
from the dates. Each close is measured with the MONTH_END report, its range being exactly the close.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from exporter.report.client import PrometheusClient, Series
from exporter.report.definitions import MONTH_END, Report
from exporter.report.engine import (
    CLOSING,
    ChartData,
    Line,
    Options,
    Progress,
    ReportResult,
    chart_series,
    chart_step,
    closing_periods,
    expand,
    run_report,
    variables,
)
from exporter.report.render import NO_DATA, Table, display
from exporter.source.durations import format_duration

SEARCH_AFTER_MONTH = 7 * 86400.0  # a close that starts in the month may run this far into the next one


@dataclass(frozen=True)
class Close:
    month: str  # YYYY-MM
    start: float | None  # None: the calendar series had no closing period starting in that month
    end: float | None
    in_progress: bool = False

    @property
    def found(self) -> bool:
        return self.start is not None and self.end is not None

    @property
    def seconds(self) -> float:
        return (self.end or 0.0) - (self.start or 0.0)


@dataclass(frozen=True)
class MonthEndResult:
    options: Options
    prometheus: str
    closes: list[Close]  # this month first, then the previous ones, newest first
    results: list[ReportResult | None]  # per close, None when it was not found
    charts: list[ChartData]

    @property
    def report(self) -> Report:
        return MONTH_END


def parse_month(text: str) -> tuple[int, int]:
    """(year, month) of ``YYYY-MM``; ValueError otherwise."""
    try:
        moment = datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise ValueError(f"expected a month like 2026-10, got {text!r}") from None
    return moment.year, moment.month


def month_name(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def shift(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def month_start(year: int, month: int) -> float:
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def find_close(client: PrometheusClient, options: Options, year: int, month: int) -> Close:
    """The close of one month from the calendar series, cut at the report's end when still on.

    The run is found on a grid of up to 10,000 steps over the month and a week; its start and end are then
    looked for again second by second within one step, so a close that begins at midnight says midnight.
    """
    begin = month_start(year, month)
    following = month_start(*shift(year, month, 1))
    end = min(following + SEARCH_AFTER_MONTH, options.end)
    name = month_name(year, month)
    if end <= begin:
        return Close(name, None, None)
    calendar = expand(CLOSING, variables(options))
    step = max(60.0, float(int((end - begin) / 10_000)))
    series: list[Series] = client.query_range(calendar, begin, end, step)
    starting = [span for span in closing_periods(series, step) if begin <= span[0] < following]
    if not starting:
        return Close(name, None, None)
    first_on, last_on = starting[-1]
    start = _first_moment(client, calendar, max(begin, first_on - step), first_on, on=True) or first_on
    off = _first_moment(client, calendar, last_on, min(last_on + step, end), on=False)
    if off is None:
        return Close(name, start, end, in_progress=True)
    return Close(name, start, off)


def _first_moment(client: PrometheusClient, calendar: str, after: float, until: float, *, on: bool) -> float | None:
    """The first second in (after, until] at which the calendar is on, or (``on=False``) no longer on: off, or
    no data because the series stopped."""
    if until <= after:
        return None
    grid = [after + second for second in range(1, int(until - after) + 1)]
    on_at = {moment for one in client.query_range(calendar, grid[0], grid[-1], 1.0)
             for moment, value in one.points if value >= 1} if grid else set()
    return next((moment for moment in grid if (moment in on_at) == on), None)


def _options_for(options: Options, close: Close) -> Options:
    seconds = max(60.0, close.seconds)
    return replace(options, range_text=format_duration(float(int(seconds))), range_seconds=seconds,
                   end=close.end or options.end)


def run_month_end(client: PrometheusClient, options: Options, month: str | None, previous: int,
                  charts: bool = False, progress: Progress | None = None) -> MonthEndResult:
    """Find this month's close and the ``previous`` ones before it, and measure each."""
    known: list[Close] = []
    if month is not None:
        year, number = parse_month(month)
    else:  # the month of the newest close that has started by the end of the range
        moment = datetime.fromtimestamp(options.end, UTC)
        year, number = moment.year, moment.month
        this_month = find_close(client, options, year, number)
        if this_month.found:
            known.append(this_month)
        else:
            year, number = shift(year, number, -1)
    closes = [*known, *(find_close(client, options, *shift(year, number, -back))
                        for back in range(len(known), previous + 1))]
    results: list[ReportResult | None] = []
    for index, close in enumerate(closes):
        results.append(run_report(MONTH_END, client, _options_for(options, close)) if close.found else None)
        if progress:
            progress(index + 1, len(closes) + (1 if charts else 0))
    drawn = close_charts(client, options, closes) if charts else []
    if progress and charts:
        progress(len(closes) + 1, len(closes) + 1)
    return MonthEndResult(options, client.display_url, closes, results, drawn)


def close_charts(client: PrometheusClient, options: Options, closes: Sequence[Close]) -> list[ChartData]:
    """Each chart with one line per close and series, on a common axis: the time since the close started."""
    values = variables(options)
    found = [close for close in closes if close.found]
    longest = max((close.seconds for close in found), default=0.0)
    drawn = []
    for chart in MONTH_END.charts:
        lines: list[Series] = []
        query = expand(chart.expr, values)
        for close in found:
            start, end = close.start or 0.0, close.end or 0.0
            _, series = chart_series(client, chart, values, start, end, chart_step(end - start))
            lines.extend(Series({**one.labels, "close": close.month},
                                tuple((t - start, v) for t, v in one.points)) for one in series)
        relative = replace(chart, legend=("close", *chart.legend))
        drawn.append(ChartData(relative, lines, [], query, 0.0, longest, longest, relative=True))
    return drawn


# -- the comparison --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compared:
    """One measure of one subject across the closes (values in the closes' order; None: no data)."""

    section: str
    subject: str
    row: str
    title: str
    detail: str
    lines: list[Line | None]


def change(now: float | None, before: float | None) -> str:
    """The change from the previous close: '+12.5%', '-3.0%', 'new', or '' when either has no number."""
    if now is None or before is None or not math.isfinite(now) or not math.isfinite(before):
        return ""
    if before == 0:
        return "±0" if now == 0 else "new"
    return f"{(now - before) / abs(before) * 100:+.1f}%"


def compared(result: MonthEndResult) -> list[Compared]:
    """Every measure of every subject, with its line in each close (first seen order)."""
    order: list[tuple[str, str, str, str]] = []
    found: dict[tuple[str, str, str, str], list[Line | None]] = {}
    titles: dict[tuple[str, str, str, str], str] = {}
    for index, report in enumerate(result.results):
        if report is None:
            continue
        for line in report.lines:
            detail = ", ".join(f"{k}={v}" for k, v in line.detail.items())
            key = (line.section.key, line.subject, line.row.key, detail)
            if key not in found:
                order.append(key)
                found[key] = [None] * len(result.closes)
                titles[key] = line.row.title
            found[key][index] = line
    sections = [section.key for section in MONTH_END.sections]
    rows = [row.key for section in MONTH_END.sections for row in section.rows]
    order.sort(key=lambda key: (sections.index(key[0]), key[1], rows.index(key[2]), key[3]))
    return [Compared(key[0], key[1], key[2], titles[key], key[3], found[key]) for key in order]


def close_label(close: Close) -> str:
    return f"{close.month}{' (so far)' if close.in_progress else ''}"


def month_end_tables(result: MonthEndResult) -> list[Table]:
    """One table per section: the measure in this close, in each previous one, and the change."""
    every = compared(result)
    heads = [close_label(close) for close in result.closes]
    tables = []
    for section in MONTH_END.sections:
        mine = [one for one in every if one.section == section.key]
        head = [*([section.subject] if section.subject else []), "measure", "detail", *heads, "status",
                "change vs previous close"]
        rows = []
        for one in mine:
            values = [display(line) if line is not None else NO_DATA for line in one.lines]
            first = one.lines[0]
            status = first.status.upper() if first is not None and first.status not in (None, "ok") else ""
            before = one.lines[1] if len(one.lines) > 1 else None
            rows.append([*([one.subject] if section.subject else []), one.title, one.detail, *values, status,
                         change(first.value if first else None, before.value if before else None)])
        offset = 1 if section.subject else 0
        numeric = (*range(offset + 2, offset + 2 + len(heads)), offset + 3 + len(heads))
        tables.append(Table(section.title, head, rows, numeric, offset + 2 + len(heads),
                            f"(no {section.subject or 'data'} in these closes)", bool(section.subject)))
    return tables


def _when(seconds: float | None) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC") if seconds is not None else ""


def month_end_header(result: MonthEndResult) -> list[tuple[str, str]]:
    lines = [("Prometheus", result.prometheus)]
    for close in result.closes:
        if close.found:
            text = f"{_when(close.start)} to {_when(close.end)} ({format_duration(float(int(close.seconds)))})"
            lines.append((f"Close {close_label(close)}", text))
        else:
            lines.append((f"Close {close.month}", "no closing period in the calendar series "
                          "(erp_calendar_month_end_close) starting in that month"))
    filters = ", ".join(f"{name}={value}" for name, value in result.options.filters().items())
    lines.append(("Filters", filters or "none"))
    return lines


def month_end_json(result: MonthEndResult) -> dict[str, object]:
    rows = []
    for one in compared(result):
        first = one.lines[0]
        before = one.lines[1] if len(one.lines) > 1 else None
        rows.append({
            "section": one.section, "subject": one.subject, "row": one.row, "title": one.title,
            "detail": one.detail,
            "unit": next(line.row.unit for line in one.lines if line is not None),
            "values": {close.month: (line.value if line is not None and line.value is not None
                                     and math.isfinite(line.value) else None)
                       for close, line in zip(result.closes, one.lines, strict=True)},
            "status": first.status if first is not None else None,
            "change": change(first.value if first else None, before.value if before else None) or None,
        })
    return {
        "report": "month-end",
        "title": MONTH_END.title,
        "prometheus": result.prometheus,
        "closes": [{"month": close.month, "found": close.found, "in_progress": close.in_progress,
                    "start": datetime.fromtimestamp(close.start, UTC).isoformat() if close.start else None,
                    "end": datetime.fromtimestamp(close.end, UTC).isoformat() if close.end else None}
                   for close in result.closes],
        "filters": result.options.filters(),
        "rows": rows,
    }
