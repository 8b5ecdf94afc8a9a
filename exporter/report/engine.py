"""Run a report: fill each row's PromQL template, ask Prometheus, and lay the answers out per subject."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from string import Template

from exporter.report.client import PrometheusClient, Sample
from exporter.report.definitions import Limit, Report, Row, Section, Thresholds
from exporter.source.durations import format_duration

# Subqueries (the month-end peaks, fallbacks of missing recording rules) take this many steps over the range.
SUBQUERY_STEPS = 10_000


@dataclass(frozen=True)
class Options:
    range_text: str  # as given (a Prometheus duration, already validated)
    range_seconds: float
    end: float  # Unix seconds: every query is an instant query at this time
    environment: str | None = None
    target: str | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def start(self) -> float:
        return self.end - self.range_seconds

    def filters(self) -> dict[str, str]:
        found = {"environment": self.environment, "target": self.target}
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


@dataclass(frozen=True)
class ReportResult:
    report: Report
    options: Options
    prometheus: str  # the URL without credentials
    lines: list[Line]


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (Go escapes, which JSON's are a subset of)."""
    return json.dumps(value, ensure_ascii=False)


def variables(options: Options) -> dict[str, str]:
    """The values of the row templates' $variables for these options."""
    sel = "".join(f"{name}={promql_string(value)}," for name, value in options.filters().items())
    step = format_duration(max(1.0, float(int(options.range_seconds / SUBQUERY_STEPS))))
    targets = ""
    if sel:
        targets = (
            " and on (job, instance) group by (job, instance) "
            f'(last_over_time(erp_check_success{{target!="",{sel}}}[{options.range_text}]))'
        )
    thresholds = options.thresholds
    return {
        "range": options.range_text,
        "step": step,
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


def run_report(report: Report, client: PrometheusClient, options: Options) -> ReportResult:
    """Ask every row's query (one instant query each, at the end of the range) and build the lines."""
    values = variables(options)
    lines: list[Line] = []
    for section in report.sections:
        answers: list[tuple[Row, str, list[Sample]]] = []
        for row in section.rows:
            query = expand(row.expr, values)
            samples = client.query(query, options.end)
            if not samples and row.fallback:
                fallback = expand(row.fallback, values)
                fallback_samples = client.query(fallback, options.end)
                if fallback_samples:
                    query, samples = fallback, fallback_samples
            answers.append((row, query, samples))
        subjects: set[str] = set()
        if section.subject:
            if section.subjects:
                listed = client.query(expand(section.subjects, values), options.end)
                subjects.update(sample.labels.get(section.subject, "") for sample in listed)
            for _, _, samples in answers:
                subjects.update(sample.labels.get(section.subject, "") for sample in samples)
        else:
            subjects.add("")
        # Series without the subject label (HTTP transactions have no target) come last, with their data only.
        for subject in sorted(subjects, key=lambda name: (name == "" and bool(section.subject), name)):
            for row, query, samples in answers:
                mine = [s for s in samples if not section.subject or s.labels.get(section.subject, "") == subject]
                if not mine:
                    if subject or not section.subject:
                        lines.append(Line(section, subject, row, {}, None, None, query))
                    continue
                found = []
                for sample in mine:
                    detail = {name: sample.labels[name] for name in row.detail if sample.labels.get(name)}
                    value = normalise(row, sample.value)
                    labels = dict(sample.labels)
                    found.append(
                        Line(section, subject, row, detail, value,
                             status(row.limit, value, labels, options.thresholds), query)
                    )
                found.sort(key=lambda line: tuple(line.detail.get(name, "") for name in row.detail))
                lines.extend(found)
    return ReportResult(report, options, client.display_url, lines)
