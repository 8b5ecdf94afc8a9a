"""Load ERP packs (shipped ones by name, the user's own by path), reporting every problem as
`file:line: key: message` with the same machinery and wording as the config.

A config's pack entries are checked against their pack in `exporter.config.pack_entries`, when the config
is loaded, so `check-config` reports a broken pack and a reload with one keeps the running config.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from exporter.db.dialect import Dialect
from exporter.db.guard import GuardError, check_read_only
from exporter.metrics import validate_buckets
from exporter.packs.model import (
    DOCUMENT_EVENT_COLUMNS,
    DOCUMENT_KINDS,
    DOCUMENT_TOTAL_COLUMNS,
    JOB_LOG_COLUMNS,
    SINCE,
    WATERMARK_KINDS,
    Pack,
    PackQuery,
)
from exporter.packs.shipped import queries_path, shipped_query_packs
from exporter.source.durations import format_duration
from exporter.source.validation import Wording, issues_from_validation
from exporter.source.yaml_source import PathKey, SourceError, SourceIssue, YamlDocument, format_path, load_yaml
from exporter.sqlparams import placeholders, render_sql

PACK_LABEL = "pack"
# Label names a pack metric must not take from a column: the exporter sets them itself (target, pack, check)
# or Prometheus owns them.
RESERVED_COLUMN_LABELS = frozenset({"target", "pack", "check", "le", "quantile", "job", "instance"})


class PackError(SourceError):
    """A pack file is invalid; `issues` name file, line and key of each problem."""


def shipped_packs() -> list[str]:
    """The names of the shipped packs with signal queries (exporter/packs/<name>/queries.yml)."""
    return shipped_query_packs()


def is_path_reference(reference: str) -> bool:
    """`pack: tryton` names a shipped pack; anything with a '/' or ending in .yml/.yaml is a file path."""
    return "/" in reference or "\\" in reference or reference.endswith((".yml", ".yaml"))


def reference_name(reference: str) -> str:
    """The default check-name prefix of a pack entry: the shipped name, or the file's stem."""
    return Path(reference).stem if is_path_reference(reference) else reference


def load_pack(reference: str, base_dir: Path | None = None) -> Pack:
    """A shipped pack by name, or a pack file by path (relative to `base_dir`); raise PackError."""
    if is_path_reference(reference):
        path = Path(reference).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return load_pack_file(path)
    if reference not in shipped_packs():
        raise PackError([SourceIssue(reference, None, "", _unknown_pack(reference))])
    return load_pack_file(queries_path(reference))


def load_pack_file(path: Path, display_name: str | None = None) -> Pack:
    """Read and validate one pack file; raise PackError naming file, line and key of every problem."""
    try:
        # Packs are SQL: taken literally, no ${VAR} expansion.
        document = load_yaml(path, display_name, expand_env=False, strict=False)
    except SourceError as exc:
        raise PackError(exc.issues) from None
    return validate_pack_document(document)


def validate_pack_document(document: YamlDocument) -> Pack:
    issues = list(document.issues)
    if not isinstance(document.data, dict):
        issues.append(document.issue((), "a pack is a mapping with name, description, erp and queries"))
        raise PackError(issues)
    try:
        pack = Pack.model_validate(document.data)
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, document, Pack, Wording()))
        raise PackError(_sorted(issues)) from None
    issues.extend(document.issue(path, message) for path, message in pack_issues(pack))
    if issues:
        raise PackError(_sorted(issues))
    return pack


def _sorted(issues: list[SourceIssue]) -> list[SourceIssue]:
    return sorted(set(issues), key=lambda issue: (issue.file, issue.line or 0, issue.path, issue.message))


def _unknown_pack(reference: str) -> str:
    return (
        f"unknown pack '{reference}'; shipped packs: {', '.join(shipped_packs()) or 'none'} "
        "(or give the path of a pack file ending in .yml)"
    )


# ---------------------------------------------------------------------------------------------------
# Rules that span several keys of a pack


def pack_issues(pack: Pack) -> Iterator[tuple[PathKey, str]]:
    """Yield (key path, message) for every cross-key problem of a validated pack."""
    for name, param in pack.params.items():
        path: PathKey = ("params", name)
        if param.min is not None and param.max is not None and param.min > param.max:
            yield (*path, "max"), f"must be at least min ({format_number(param.min)}), got {format_number(param.max)}"
        elif not within_bounds(param.default, param.min, param.max):
            bounds = format_bounds(param.min, param.max)
            yield (*path, "default"), f"must be within {bounds}, got {format_number(param.default)}"
    used: set[str] = set()
    query_names: list[str] = []
    metric_names: dict[str, PathKey] = {}
    for index, query in enumerate(pack.queries):
        path = ("queries", index)
        if query.name in query_names:
            yield (*path, "name"), f"duplicate query name '{query.name}'"
        query_names.append(query.name)
        if query.timeout > query.interval:
            yield (*path, "timeout"), (
                f"timeout {format_duration(query.timeout)} is longer than the interval "
                f"({format_duration(query.interval)}); a check must end before its next run"
            )
        for column in sorted({c for c in query.columns if query.columns.count(c) > 1}):
            yield (*path, "columns"), f"column '{column}' is listed twice"
        yield from _sql_issues(pack, query, path, used)
        if query.kind == "job_log":
            yield from _job_log_issues(query, path)
        elif query.kind in DOCUMENT_KINDS:
            yield from _document_issues(query, path)
        else:
            yield from _metrics_issues(query, path, metric_names)
    for name in pack.params:
        if name not in used:
            yield ("params", name), f"not used by any query (no :{name} in the SQL)"


def within_bounds(value: float, low: float | None, high: float | None) -> bool:
    """Whether `value` lies within the optional bounds `low`..`high`."""
    return (low is None or value >= low) and (high is None or value <= high)


def format_number(value: float | None) -> str:
    """A number as the YAML had it: 2592000, not 2.592e+06."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_bounds(low: float | None, high: float | None) -> str:
    """Bounds as a message shows them: 1..90, at least 1, at most 90."""
    if low is not None and high is not None:
        return f"{format_number(low)}..{format_number(high)}"
    return f"at least {format_number(low)}" if low is not None else f"at most {format_number(high)}"


def _sql_issues(pack: Pack, query: PackQuery, path: PathKey, used: set[str]) -> Iterator[tuple[PathKey, str]]:
    dialects = query.sql.items()
    if not dialects:
        yield (*path, "sql"), "needs the SQL of at least one dialect (postgresql, sqlite, mysql, mssql)"
    values: dict[str, int | float] = {**pack.defaults(), SINCE: 0}
    for dialect, sql in dialects:
        key: PathKey = (*path, "sql", dialect)
        names = placeholders(sql)
        used.update(names)
        problems = False
        for name in names:
            if name == SINCE and query.kind not in WATERMARK_KINDS:
                yield key, "uses :since, which only job_log and document_events queries have"
                problems = True
            elif name != SINCE and name not in pack.params:
                known = ", ".join(sorted(pack.params)) or "none"
                yield key, f"uses :{name} but the pack has no parameter '{name}' (params: {known})"
                problems = True
        if query.kind in WATERMARK_KINDS and SINCE not in names:
            rows = "rows finished" if query.kind == "job_log" else "events"
            yield key, f"a {query.kind} query must select the {rows} since the watermark: use :since"
        if problems:
            continue
        try:
            check_read_only(render_sql(sql, values), Dialect(dialect))
        except GuardError as exc:
            yield key, str(exc)


def _job_log_issues(query: PackQuery, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    missing = [column for column in JOB_LOG_COLUMNS if column not in query.columns]
    if missing:
        yield (*path, "columns"), (
            f"a job_log query returns {', '.join(JOB_LOG_COLUMNS)}; missing: {', '.join(missing)}"
        )
    if query.metrics:
        yield (*path, "metrics"), "a job_log query publishes the erp_transaction_* metrics; it has no metrics"
    if "documents" in query.model_fields_set:
        yield (*path, "documents"), "only a document_events or document_totals query has this key"
    if query.buckets is not None:
        try:
            validate_buckets(query.buckets)
        except ValueError as exc:
            yield (*path, "buckets"), str(exc)


def _document_issues(query: PackQuery, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    needed = DOCUMENT_EVENT_COLUMNS if query.kind == "document_events" else DOCUMENT_TOTAL_COLUMNS
    missing = [column for column in needed if column not in query.columns]
    if missing:
        yield (*path, "columns"), f"a {query.kind} query returns {', '.join(needed)}; missing: {', '.join(missing)}"
    if query.metrics:
        yield (*path, "metrics"), f"a {query.kind} query publishes erp_business_documents_total; it has no metrics"
    if not query.documents:
        yield (*path, "documents"), f"a {query.kind} query names the documents and events it returns"
    for document, events in query.documents.items():
        if not events:
            yield (*path, "documents", document), "needs at least one event"
        for event in sorted({event for event in events if events.count(event) > 1}):
            yield (*path, "documents", document), f"event '{event}' is listed twice"
    for key in ("buckets", "max_transactions"):
        if key in query.model_fields_set:
            yield (*path, key), "only a job_log query has this key"


def _metrics_issues(
    query: PackQuery, path: PathKey, metric_names: dict[str, PathKey]
) -> Iterator[tuple[PathKey, str]]:
    if not query.metrics:
        yield (*path, "metrics"), "a metrics query needs at least one metric (or kind: job_log)"
    for key in ("buckets", "max_transactions"):
        if key in query.model_fields_set:
            yield (*path, key), "only a job_log query has this key"
    if "documents" in query.model_fields_set:
        yield (*path, "documents"), "only a document_events or document_totals query has this key"
    columns = ", ".join(query.columns)
    for number, metric in enumerate(query.metrics):
        metric_path = (*path, "metrics", number)
        earlier = metric_names.setdefault(metric.name, metric_path)
        if earlier != metric_path:
            yield (*metric_path, "name"), f"metric '{metric.name}' is already published by {format_path(earlier)}"
        if metric.type == "counter" and not metric.name.endswith("_total"):
            yield (*metric_path, "name"), "a counter's name must end in _total"
        if metric.type == "gauge" and metric.name.endswith("_total"):
            yield (*metric_path, "name"), "only counters end in _total (set type: counter)"
        if metric.value not in query.columns:
            yield (*metric_path, "value"), f"column '{metric.value}' is not in the query's columns ({columns})"
        for label_index, label in enumerate(metric.labels):
            label_path = (*metric_path, "labels", label_index)
            if label not in query.columns:
                yield label_path, f"column '{label}' is not in the query's columns ({columns})"
            elif label in RESERVED_COLUMN_LABELS or label.startswith("__"):
                yield label_path, f"label name '{label}' is reserved (the exporter or Prometheus sets it)"
            elif label == metric.value:
                yield label_path, f"column '{label}' is the value; it cannot be a label too"
