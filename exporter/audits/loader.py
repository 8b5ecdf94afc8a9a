"""Load audit files and the shipped audit packs, reporting every problem as `file:line: key: message`
(the same machinery and wording as the config file).

Which audits each target runs (packs, files, inline audits, exclusions and overrides of a `kind: audits`
entry) is resolved in `exporter.config.audit_entries`, when the config is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from exporter.audits.model import (
    ANY_DIALECT,
    SNAKE_NAME_PATTERN,
    SNAKE_NAME_WORDS,
    AuditConfig,
    AuditFile,
)
from exporter.db.dialect import Dialect
from exporter.db.guard import GuardError, check_read_only
from exporter.packs.shipped import audits_path, shipped_audit_packs
from exporter.source.base import NAME_PATTERN
from exporter.source.validation import NAME_PATTERN_WORDS, Wording, issues_from_validation
from exporter.source.yaml_source import PathKey, SourceError, SourceIssue, YamlDocument, load_yaml
from exporter.sqlparams import placeholders, render_sql

AUDIT_FILE_WORDING = Wording(patterns={NAME_PATTERN: NAME_PATTERN_WORDS, SNAKE_NAME_PATTERN: SNAKE_NAME_WORDS})


def available_packs() -> list[str]:
    """The names of the shipped packs with audits (exporter/packs/<name>/audits.yml)."""
    return shipped_audit_packs()


def pack_path(name: str) -> Path:
    """The audits file of a shipped pack."""
    return audits_path(name)


@dataclass(frozen=True)
class LocatedAudit:
    """An audit and where it was written, so a problem with it can name that file, line and key."""

    audit: AuditConfig
    document: YamlDocument
    path: PathKey
    source: str

    def issue(self, message: str, *key: str | int) -> SourceIssue:
        return self.document.issue((*self.path, *key), message)


# ---------------------------------------------------------------------------------------------------
# Audit files


def load_audit_file(path: Path, display_name: str | None = None) -> list[AuditConfig]:
    """Read and validate one audit file (`audits:` list); raise SourceError naming file, line and key."""
    document = load_audit_document(path, display_name)
    return [located.audit for located in validate_audit_document(document, display_name or str(path))]


def load_audit_document(path: Path, display_name: str | None) -> YamlDocument:
    # Audit files are SQL: taken literally, no ${VAR} expansion.
    return load_yaml(path, display_name, expand_env=False, strict=False)


def validate_audit_document(document: YamlDocument, source: str) -> list[LocatedAudit]:
    issues = list(document.issues)
    data = document.data
    if not isinstance(data, dict):
        issues.append(document.issue((), "an audit file is a mapping with an `audits:` list"))
        raise SourceError(issues)
    try:
        parsed = AuditFile.model_validate(data)
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, document, AuditFile, AUDIT_FILE_WORDING))
        raise SourceError(_sorted(issues)) from None
    located = [LocatedAudit(audit, document, ("audits", index), source) for index, audit in enumerate(parsed.audits)]
    issues.extend(duplicate_name_issues(located))
    for item in located:
        issues.extend(audit_issues(item))
    if issues:
        raise SourceError(_sorted(issues))
    return located


def _sorted(issues: list[SourceIssue]) -> list[SourceIssue]:
    return sorted(issues, key=lambda issue: (issue.file, issue.line or 0, issue.path))


def duplicate_name_issues(located: list[LocatedAudit]) -> Iterator[SourceIssue]:
    seen: dict[str, LocatedAudit] = {}
    for item in located:
        first = seen.setdefault(item.audit.name, item)
        if first is not item:
            where = "" if first.source == item.source else f" (also in {first.source})"
            yield item.issue(f"duplicate audit name '{item.audit.name}'{where}", "name")


def audit_issues(item: LocatedAudit) -> Iterator[SourceIssue]:
    """Placeholders and params that do not match, and SQL the read-only guard refuses."""
    audit = item.audit
    used = audit.placeholders()
    for name in used:
        if name not in audit.params:
            yield item.issue(f"uses :{name} but params has no '{name}'", "sql")
    texts = [audit.sql] if isinstance(audit.sql, str) else list(audit.sql.values())
    for name in audit.params:
        if name not in used:
            # `{name}` was the placeholder of the SQL before it became `:name` (it still is in descriptions)
            hint = f"; write :{name}, not {{{name}}}" if any(f"{{{name}}}" in text for text in texts) else ""
            yield item.issue(f"not used by the sql (no :{name} in it{hint})", "params", name)
    yield from _guard_issues(item, audit.params)


def _guard_issues(item: LocatedAudit, params: dict[str, int | float]) -> Iterator[SourceIssue]:
    sql = item.audit.sql
    queries = {ANY_DIALECT: sql} if isinstance(sql, str) else dict(sql)
    for dialect, text in queries.items():
        key: tuple[str, ...] = ("sql",) if dialect == ANY_DIALECT else ("sql", dialect)
        if any(name not in params for name in placeholders(text)):
            continue  # reported as a placeholder without a param
        try:
            check_read_only(render_sql(text, params), None if dialect == ANY_DIALECT else Dialect(dialect))
        except GuardError as exc:
            yield item.issue(str(exc), *key)
