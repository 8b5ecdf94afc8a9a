"""The config's `kind: pack` entries: load each entry's pack, check the entry against it, and attach it.

Resolution happens when the config is loaded, so `check-config` reports a broken pack and a reload with one
keeps the running config. The resolved pack is attached to its config entry (PackCheckConfig.resolved_pack),
and the check builder turns each selected query into its own check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from exporter.config.model import ExporterConfig, PackCheckConfig
from exporter.db.dialect import Dialect, dialect_from_driver_name
from exporter.metrics import validate_buckets
from exporter.packs.loader import (
    PackError,
    format_bounds,
    format_number,
    is_path_reference,
    load_pack,
    within_bounds,
)
from exporter.packs.model import Pack, PackQuery
from exporter.source.durations import format_duration
from exporter.source.yaml_source import PathKey, SourceIssue, YamlDocument, format_path


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
        elif not within_bounds(value, param.min, param.max):
            yield ("params", name), f"must be within {format_bounds(param.min, param.max)}, got {format_number(value)}"
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
