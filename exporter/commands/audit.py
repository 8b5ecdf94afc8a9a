"""`erp-exporter audit NAME`: run one audit once against its target and print what it found, and the
audit table `erp-exporter once` prints after its check table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from exporter.app import build_runtime, run_checks_once
from exporter.audits.model import ResolvedAudit
from exporter.checks.audits import AuditReport, AuditResult, audit_result
from exporter.checks.builtin import default_registry
from exporter.config.loader import LoadedConfig
from exporter.store import CheckKey, ResultStore

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


def level(audit: ResolvedAudit, count: int) -> str:
    """'critical', 'warning' or 'ok': the count against the thresholds (above, not equal, is a breach)."""
    if count > audit.critical:
        return "critical"
    if count > audit.warning:
        return "warning"
    return "ok"


def find_audit(
    loaded: LoadedConfig, name: str, target: str | None
) -> tuple[tuple[str, ResolvedAudit] | None, str]:
    """The (target, audit) to run, or None and the reason in words."""
    found = [
        (target_name, audit)
        for (target_name, _), audits in loaded.audits.items()
        for audit in audits
        if audit.name == name and (target is None or target_name == target)
    ]
    if len(found) == 1:
        return found[0], ""
    if found:
        targets = ", ".join(sorted(t for t, _ in found))
        return None, f"audit '{name}' runs on several targets ({targets}): choose one with --target"
    known = sorted({audit.name for audits in loaded.audits.values() for audit in audits})
    where = f" on target '{target}'" if target else ""
    return None, f"no audit named '{name}'{where}; configured audits: {', '.join(known) or 'none'}"


def run_audit(
    loaded: LoadedConfig, name: str, target: str | None, out: TextIO, err: TextIO, mask: Callable[[str], str]
) -> int:
    """Run one audit once and print its report; the exit code of `erp-exporter audit`."""
    choice, problem = find_audit(loaded, name, target)
    if choice is None:
        print(f"{loaded.source}: {problem}", file=err)
        return EXIT_CONFIG
    target_name, audit = choice
    key = CheckKey(target_name, audit.check_name)
    store = ResultStore()
    runtime = build_runtime(loaded, default_registry(), store, only=lambda candidate: candidate == key)
    run_checks_once(runtime, store)
    state = store.get(key)
    for line in describe(target_name, audit):
        print(line, file=out)
    result = audit_result(state) if state is not None else None
    if state is None or not state.success or result is None:
        reason = state.error_reason.value if state and state.error_reason else "other"
        message = state.error_message if state and state.error_reason else "no result"
        print(f"FAILED ({reason}): {mask(message)}", file=err)
        return EXIT_FAILED
    for line in describe_result(audit, result):
        print(mask(line), file=out)
    return EXIT_OK


def describe(target: str, audit: ResolvedAudit) -> list[str]:
    rows = [
        ("audit", audit.name),
        ("target", target),
        ("description", audit.description),
        ("category", audit.category),
        ("owner", audit.owner),
        ("support line", str(audit.support_line)),
        ("severity", audit.severity),
        ("thresholds", f"warning above {audit.warning:g}, critical above {audit.critical:g}"),
    ]
    if audit.params:
        rows.append(("params", ", ".join(f"{key}={value:g}" for key, value in sorted(audit.params.items()))))
    rows.append(("source", audit.source))
    return [f"{label:<13} {value}" for label, value in rows]


def describe_result(audit: ResolvedAudit, result: AuditResult) -> list[str]:
    lines = [
        f"{'violations':<13} {result.count} ({level(audit, result.count)})",
        f"{'duration':<13} {result.duration:.3f}s",
    ]
    if result.samples:
        lines.append(f"sample keys ({len(result.samples)} of {result.count}):")
        lines.extend(f"  {key}" for key in result.samples)
    return lines


def audit_table(reports: list[AuditReport]) -> list[str]:
    """The lines `erp-exporter once` prints for audits: target, audit, owner, line, count, level."""
    if not reports:
        return []
    rows = [("TARGET", "AUDIT", "OWNER", "LINE", "SEVERITY", "VIOLATIONS", "LEVEL", "SAMPLE KEYS")]
    for report in reports:
        audit, result = report.audit, report.result
        count = "-" if result is None else str(result.count)
        state = "no result" if result is None else level(audit, result.count)
        sample = "" if result is None else "; ".join(result.samples[:3])
        if result is not None and result.count > 3:
            sample += f"; ... ({result.count - 3} more)"
        rows.append(
            (report.target, audit.name, audit.owner, str(audit.support_line), audit.severity, count, state, sample)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
            for row in rows]
