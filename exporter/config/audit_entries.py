"""The config's `kind: audits` entries: the audits each target runs, and every problem on the way.

An audits entry names shipped packs, user files and inline audits; it may exclude some, and override
parameters, thresholds, owner, support line, severity, interval or timeout per audit. Resolution happens
when the config is loaded, so `check-config` reports a broken audit file and a reload with one keeps the
running config.
"""

from __future__ import annotations

from pathlib import Path

from exporter.audits.loader import (
    LocatedAudit,
    audit_issues,
    available_packs,
    duplicate_name_issues,
    load_audit_document,
    pack_path,
    validate_audit_document,
)
from exporter.audits.model import ANY_DIALECT, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, ResolvedAudit, render_description
from exporter.config.model import AuditsCheckConfig, ExporterConfig
from exporter.config.schedule import check_timeout
from exporter.db.dialect import Dialect, dialect_from_driver_name
from exporter.source.durations import format_duration
from exporter.source.yaml_source import PathKey, SourceError, SourceIssue, YamlDocument, format_path
from exporter.sqlparams import render_sql

AuditsByCheck = dict[tuple[str, str], tuple[ResolvedAudit, ...]]
"""(target name, audits entry name) -> the audits that entry runs on that target."""


def resolve_config_audits(
    config: ExporterConfig, document: YamlDocument, base_dir: Path
) -> tuple[AuditsByCheck, list[SourceIssue]]:
    """The audits of every `kind: audits` entry of every target, and every problem found on the way."""
    resolved: AuditsByCheck = {}
    issues: list[SourceIssue] = []
    files: dict[Path, list[LocatedAudit] | SourceError] = {}  # each file read once per load
    for target_index, target in enumerate(config.targets):
        dialect = dialect_from_driver_name(target.driver or "")
        run_by: dict[str, PathKey] = {}  # audit name -> the entry that runs it on this target
        for check_index, check in enumerate(target.checks):
            if not isinstance(check, AuditsCheckConfig):
                continue
            entry_path: PathKey = ("targets", target_index, "checks", check_index)
            audits, entry_issues = _resolve_entry(check, entry_path, document, base_dir, dialect, files)
            issues.extend(entry_issues)
            for audit in audits:
                earlier = run_by.setdefault(audit.name, entry_path)
                if earlier != entry_path:
                    message = f"audit '{audit.name}' already runs on this target (in {format_path(earlier)})"
                    issues.append(document.issue(entry_path, message))
            resolved[(target.name, check.effective_name)] = tuple(audits)
    return resolved, issues


def _entry_sources(
    entry: AuditsCheckConfig,
    entry_path: PathKey,
    document: YamlDocument,
    base_dir: Path,
    files: dict[Path, list[LocatedAudit] | SourceError],
) -> tuple[list[LocatedAudit], list[SourceIssue]]:
    """Every audit the entry names (packs, then files, then inline), with the problems of reading them."""
    located: list[LocatedAudit] = []
    issues: list[SourceIssue] = []
    sources: list[tuple[PathKey, Path, str]] = []
    packs = available_packs()
    for index, pack in enumerate(entry.packs):
        if pack not in packs:
            message = f"unknown audit pack '{pack}'; available: {', '.join(packs) or 'none'}"
            issues.append(document.issue((*entry_path, "packs", index), message))
        else:
            sources.append(((*entry_path, "packs", index), pack_path(pack), f"audit pack '{pack}'"))
    for index, name in enumerate(entry.files):
        path = base_dir / name
        if not path.is_file():
            issues.append(document.issue((*entry_path, "files", index), f"cannot read {path}: no such file"))
        else:
            sources.append(((*entry_path, "files", index), path, str(path)))
    for _, path, source in sources:
        cached = files.get(path.resolve())
        if cached is None:
            try:
                cached = validate_audit_document(load_audit_document(path, str(path)), source)
            except SourceError as exc:
                cached = exc
            files[path.resolve()] = cached
        if isinstance(cached, SourceError):
            issues.extend(cached.issues)
        else:
            located.extend(LocatedAudit(item.audit, item.document, item.path, source) for item in cached)
    inline = [
        LocatedAudit(audit, document, (*entry_path, "audits", index), "this config file")
        for index, audit in enumerate(entry.audits)
    ]
    for item in inline:
        issues.extend(audit_issues(item))
    return [*located, *inline], issues


def _resolve_entry(
    entry: AuditsCheckConfig,
    entry_path: PathKey,
    document: YamlDocument,
    base_dir: Path,
    dialect: Dialect,
    files: dict[Path, list[LocatedAudit] | SourceError],
) -> tuple[list[ResolvedAudit], list[SourceIssue]]:
    located, issues = _entry_sources(entry, entry_path, document, base_dir, files)
    issues.extend(duplicate_name_issues(located))
    by_name = {item.audit.name: item for item in reversed(located)}  # the first definition wins
    known = ", ".join(sorted(by_name)) or "none"

    def unknown(kind: str, name: str, *key: str | int) -> SourceIssue:
        return document.issue((*entry_path, *key), f"{kind} names no audit of this entry: '{name}' (known: {known})")

    for index, name in enumerate(entry.exclude):
        if name not in by_name:
            issues.append(unknown("exclude", name, "exclude", index))
    for name, values in entry.params.items():
        if name not in by_name:
            issues.append(unknown("params", name, "params", name))
            continue
        own = by_name[name].audit.params
        for param in values:
            if param not in own:
                has = ", ".join(sorted(own)) or "none"
                message = f"audit '{name}' has no parameter '{param}' (it has: {has})"
                issues.append(document.issue((*entry_path, "params", name, param), message))
    for name in entry.overrides:
        if name not in by_name:
            issues.append(unknown("overrides", name, "overrides", name))

    resolved: list[ResolvedAudit] = []
    excluded = set(entry.exclude)
    for item in located:
        audit = item.audit
        if audit.name in excluded or by_name.get(audit.name) is not item:
            continue
        result, problems = _resolve_one(item, entry, entry_path, document, dialect)
        issues.extend(problems)
        if result is not None:
            resolved.append(result)
    return resolved, issues


def _resolve_one(
    item: LocatedAudit, entry: AuditsCheckConfig, entry_path: PathKey, document: YamlDocument, dialect: Dialect
) -> tuple[ResolvedAudit | None, list[SourceIssue]]:
    audit = item.audit
    issues: list[SourceIssue] = []
    override = entry.overrides.get(audit.name)
    override_path: PathKey = (*entry_path, "overrides", audit.name)
    params = {**audit.params, **entry.params.get(audit.name, {})}
    warning = override.warning if override and override.warning is not None else audit.warning
    critical = override.critical if override and override.critical is not None else audit.critical
    if critical < warning:
        key = "critical" if override and override.critical is not None else "warning"
        message = f"the critical threshold ({critical:g}) must be at least the warning threshold ({warning:g})"
        issues.append(document.issue((*override_path, key), message))
    interval = _first(override.interval if override else None, audit.interval, entry.interval) or DEFAULT_INTERVAL
    timeout = _first(override.timeout if override else None, audit.timeout, entry.timeout)
    if timeout is not None and timeout > interval:
        message = (
            f"timeout {format_duration(timeout)} of audit '{audit.name}' is longer than its interval "
            f"({format_duration(interval)}); a check must end before its next run"
        )
        if override and override.timeout is not None:
            issues.append(document.issue((*override_path, "timeout"), message))
        elif audit.timeout is not None:
            issues.append(item.issue(message, "timeout"))
        else:
            issues.append(document.issue((*entry_path, "timeout"), message))
    timeout = check_timeout(timeout, DEFAULT_TIMEOUT, interval)
    sql = {ANY_DIALECT: audit.sql} if isinstance(audit.sql, str) else dict(audit.sql)
    if dialect is not Dialect.UNKNOWN and dialect.value not in sql and ANY_DIALECT not in sql:
        message = (
            f"audit '{audit.name}' has no SQL for this target's dialect {dialect.value} "
            f"(it has: {', '.join(sorted(sql))}); exclude it or add the query"
        )
        issues.append(document.issue(entry_path, message))
    if any(name not in params for name in audit.placeholders()):
        return None, issues  # reported where the audit is written (a placeholder without a param)
    resolved = ResolvedAudit(
        name=audit.name,
        description=render_description(audit.description.strip(), params),  # '{days} days' reads '30 days'
        category=audit.category,
        owner=override.owner if override and override.owner else audit.owner,
        support_line=override.support_line if override and override.support_line else audit.support_line,
        severity=override.severity if override and override.severity else audit.severity,
        warning=warning,
        critical=critical,
        interval=interval,
        timeout=timeout,
        sql={key: render_sql(text, params) for key, text in sql.items()},
        params=params,
        source=item.source,
    )
    return (None if issues else resolved), issues


def _first(*values: float | None) -> float | None:
    for value in values:
        if value is not None:
            return value
    return None
