"""Load ERP packs (shipped ones by name, the user's own by path) and resolve the pack entries of a config,
reporting every problem as `file:line: key: message` with the same machinery and wording as the config.

Resolution happens when the config is loaded, so `check-config` reports a broken pack and a reload with one
keeps the running config. The resolved pack is attached to its config entry (PackCheckConfig.resolved_pack),
and the check builder turns each selected query into its own check.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from exporter.config.durations import format_duration
from exporter.config.model import ExporterConfig, PackCheckConfig
from exporter.config.validation import issues_from_validation
from exporter.config.yaml_source import PathKey, SourceError, SourceIssue, YamlDocument, format_path, load_yaml
from exporter.db.dialect import Dialect, dialect_from_driver_name
from exporter.db.guard import GuardError, check_read_only
from exporter.metrics import validate_buckets
from exporter.packs.model import JOB_LOG_COLUMNS, SINCE, Pack, PackQuery
from exporter.sqlparams import placeholders, render_sql

PACK_LABEL = "pack"
# Label names a pack metric must not take from a column: the exporter sets them itself (target, pack, check)
# or Prometheus owns them.
RESERVED_COLUMN_LABELS = frozenset({"target", "pack", "check", "le", "quantile", "job", "instance"})


class PackError(SourceError):
    """A pack file is invalid; `issues` name file, line and key of each problem."""


def shipped_packs() -> list[str]:
    """The names of the packs shipped in exporter/packs/ (<name>.yml)."""
    root = importlib.resources.files("exporter.packs")
    return sorted(entry.name[: -len(".yml")] for entry in root.iterdir() if entry.name.endswith(".yml"))


def shipped_pack_path(name: str) -> Path:
    return Path(str(importlib.resources.files("exporter.packs") / f"{name}.yml"))


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
    return load_pack_file(shipped_pack_path(reference))


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
        issues.extend(issues_from_validation(exc, document, Pack))
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
            yield (*path, "max"), f"must be at least min ({_num(param.min)}), got {_num(param.max)}"
        elif not _within(param.default, param.min, param.max):
            yield (*path, "default"), f"must be within {_bounds(param.min, param.max)}, got {_num(param.default)}"
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
        else:
            yield from _metrics_issues(query, path, metric_names)
    for name in pack.params:
        if name not in used:
            yield ("params", name), f"not used by any query (no :{name} in the SQL)"


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _num(value: float | None) -> str:
    """A number as the YAML had it: 2592000, not 2.592e+06."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{_num(low)}..{_num(high)}"
    return f"at least {_num(low)}" if low is not None else f"at most {_num(high)}"


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
            if name == SINCE and query.kind != "job_log":
                yield key, "uses :since, which only job_log queries have"
                problems = True
            elif name != SINCE and name not in pack.params:
                known = ", ".join(sorted(pack.params)) or "none"
                yield key, f"uses :{name} but the pack has no parameter '{name}' (params: {known})"
                problems = True
        if query.kind == "job_log" and SINCE not in names:
            yield key, "a job_log query must select the rows finished since the watermark: use :since"
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
    if query.buckets is not None:
        try:
            validate_buckets(query.buckets)
        except ValueError as exc:
            yield (*path, "buckets"), str(exc)


def _metrics_issues(
    query: PackQuery, path: PathKey, metric_names: dict[str, PathKey]
) -> Iterator[tuple[PathKey, str]]:
    if not query.metrics:
        yield (*path, "metrics"), "a metrics query needs at least one metric (or kind: job_log)"
    for key in ("buckets", "max_transactions"):
        if key in query.model_fields_set:
            yield (*path, key), "only a job_log query has this key"
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


# ---------------------------------------------------------------------------------------------------
# Resolution of the config's pack entries


def resolve_config_packs(config: ExporterConfig, document: YamlDocument, base_dir: Path) -> list[SourceIssue]:
    """Load the pack of every `kind: pack` entry, check the entry against it, and attach it.

    Returns every problem: the pack file's own (in its file), and the entry's (unknown queries or params,
    params out of bounds, a timeout longer than a query's interval, no SQL for the target's dialect, two
    entries whose checks would have the same names).
    """
    issues: list[SourceIssue] = []
    packs: dict[str, Pack | PackError] = {}  # each reference read once per load
    for target_index, target in enumerate(config.targets):
        dialect = dialect_from_driver_name(target.driver or "")
        prefixes: dict[str, PathKey] = {}
        for check_index, entry in enumerate(target.checks):
            if not isinstance(entry, PackCheckConfig):
                continue
            path: PathKey = ("targets", target_index, "checks", check_index)
            pack = packs.get(entry.pack)
            if pack is None:
                try:
                    pack = load_pack(entry.pack, base_dir)
                except PackError as exc:
                    pack = exc
                packs[entry.pack] = pack
            if isinstance(pack, PackError):
                issues.extend(_entry_load_issues(pack, entry, path, document))
                continue
            entry_issues = list(_entry_issues(entry, pack, dialect))
            issues.extend(document.issue((*path, *key), message) for key, message in entry_issues)
            prefix = entry.name or pack.name
            earlier = prefixes.setdefault(prefix, path)
            if earlier != path:
                message = (
                    f"pack '{prefix}' already runs on this target (in {format_path(earlier)}); "
                    "give one of the entries a name"
                )
                issues.append(document.issue((*path, "pack"), message))
            if not entry_issues:
                entry.attach(pack)
    return issues


def _entry_load_issues(
    error: PackError, entry: PackCheckConfig, path: PathKey, document: YamlDocument
) -> list[SourceIssue]:
    """A pack that cannot be read is reported at the entry's `pack` key; its own problems in its file."""
    if len(error.issues) == 1 and error.issues[0].line is None:
        message = error.issues[0].message
        if is_path_reference(entry.pack) and not message.startswith("unknown pack"):
            message = f"cannot load pack {error.issues[0].file}: {message}"
        return [document.issue((*path, "pack"), message)]
    summary = document.issue((*path, "pack"), f"pack '{entry.pack}' is invalid ({len(error.issues)} problems below)")
    return [summary, *error.issues]


def _entry_issues(entry: PackCheckConfig, pack: Pack, dialect: Dialect) -> Iterator[tuple[PathKey, str]]:
    known = ", ".join(query.name for query in pack.queries)
    for index, name in enumerate(entry.queries or []):
        if pack.query(name) is None:
            yield ("queries", index), f"pack '{pack.name}' has no query '{name}' (it has: {known})"
        elif (entry.queries or []).index(name) != index:
            yield ("queries", index), f"query '{name}' is listed twice"
    for name, value in entry.params.items():
        param = pack.params.get(name)
        if param is None:
            has = ", ".join(sorted(pack.params)) or "none"
            yield ("params", name), f"pack '{pack.name}' has no parameter '{name}' (it has: {has})"
        elif not _within(value, param.min, param.max):
            yield ("params", name), f"must be within {_bounds(param.min, param.max)}, got {_num(value)}"
    if entry.buckets is not None:
        try:
            validate_buckets(entry.buckets)
        except ValueError as exc:
            yield ("buckets",), str(exc)
    queries = selected_queries(entry, pack)
    # (with the entry's own interval, the general rule in exporter.config.semantics reports it)
    if entry.timeout is not None and entry.interval is None and queries:
        shortest = min(queries, key=lambda query: query.interval)
        if entry.timeout > shortest.interval:
            yield ("timeout",), (
                f"timeout {format_duration(entry.timeout)} is longer than the interval of query "
                f"'{shortest.name}' ({format_duration(shortest.interval)}); a check must end before its next run"
            )
    for query in queries:
        if dialect is not Dialect.UNKNOWN and getattr(query.sql, dialect.value, None) is None:
            has = ", ".join(name for name, _ in query.sql.items())
            yield ("pack",), (
                f"query '{query.name}' of pack '{pack.name}' has no SQL for this target's dialect "
                f"{dialect.value} (it has: {has}); list the queries to run in `queries`"
            )


def selected_queries(entry: PackCheckConfig, pack: Pack) -> list[PackQuery]:
    """The entry's queries in pack order: those listed in `queries`, else all."""
    if entry.queries is None:
        return list(pack.queries)
    wanted = set(entry.queries)
    return [query for query in pack.queries if query.name in wanted]
