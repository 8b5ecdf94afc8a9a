"""The human status page at `/`: targets, checks, last results and errors. Every value is escaped and
passed through the secret mask; connection strings are shown with the password replaced."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

from exporter import __version__
from exporter.checks.audits import AuditReport
from exporter.db.target import TargetDatabase
from exporter.metrics import StatusRole
from exporter.store import CheckState
from exporter.text_format import without_lone_surrogates


@dataclass(frozen=True)
class StatusView:
    """What the page shows, gathered by the caller (keeps this module free of app wiring)."""

    states: list[CheckState]
    databases: dict[str, TargetDatabase]
    reload_ok: bool
    reload_error: str
    config_file: str
    now_monotonic: float
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # target name -> static labels
    audits: list[AuditReport] = field(default_factory=list)  # data-governance audits and their samples


def _role_value(states: list[CheckState], role: StatusRole) -> float | None:
    """The first sample of a metric with this role among a target's latest results (None: none yet)."""
    for state in sorted(states, key=lambda s: s.key.check):
        for family in state.families:
            if family.spec.status_role is role and family.samples:
                value = family.samples[0].value
                return value if isinstance(value, float | int) else None
    return None


def _age(state: CheckState, now: float) -> str:
    if state.last_run_monotonic is None:
        return "not yet run"
    return f"{now - state.last_run_monotonic:.0f}s ago"


def render_status_page(view: StatusView, mask: Callable[[str], str]) -> str:
    """The whole HTML page as a string."""
    by_target: dict[str, list[CheckState]] = {}
    for state in view.states:
        by_target.setdefault(state.key.target, []).append(state)
    rows_targets = []
    for name, database in view.databases.items():
        server = database.server
        up = _role_value(by_target.get(name, []), StatusRole.TARGET_UP)
        can_write = _role_value(by_target.get(name, []), StatusRole.LOGIN_CAN_WRITE)
        read_only = server.read_only if server else None
        warnings = []
        if can_write == 1:
            warnings.append("the monitoring login could WRITE: restrict its grants (see README)")
        if read_only is False:
            warnings.append("session is not read-only at the database")
        labels = ", ".join(f"{key}={value}" for key, value in sorted(view.labels.get(name, {}).items()))
        dbms = f"{server.dialect.value} {server.dbms_version}" if server else "?"
        rows_targets.append(
            "<tr>"
            f"<td>{escape(mask(name))}</td>"
            f"<td class='{_css(up)}'>{'up' if up == 1 else 'down' if up == 0 else 'unknown'}</td>"
            f"<td>{escape(mask(labels))}</td>"
            f"<td>{escape(mask(dbms))}</td>"
            f"<td><code>{escape(mask(database.spec.describe()))}</code></td>"
            f"<td class='{'bad' if warnings else 'ok'}'>{escape('; '.join(warnings) or 'read-only')}</td>"
            "</tr>"
        )
    rows_checks = []
    for state in sorted(view.states, key=lambda s: (s.key.target, s.key.check)):
        stale = state.is_stale(view.now_monotonic)
        status = _status_word(state.success, stale)
        error = ""
        if state.error_reason is not None:
            error = f"{state.error_reason.value}: {state.error_message}"
        rows_checks.append(
            "<tr>"
            f"<td>{escape(mask(state.key.target or '-'))}</td><td>{escape(mask(state.key.check))}</td>"
            f"<td>{escape(mask(state.meta.kind))}</td><td>{state.meta.interval:g}s</td>"
            f"<td class='{'ok' if status == 'ok' else 'bad'}'>{status}</td>"
            f"<td>{escape(_age(state, view.now_monotonic))}</td><td>{state.duration:.3f}s</td>"
            f"<td>{state.series}</td><td>{escape(mask(error))}</td>"
            "</tr>"
        )
    reload_line = "ok" if view.reload_ok else f"FAILED, running the previous config: {view.reload_error}"
    page = _PAGE.format(
        version=escape(__version__),
        config=escape(mask(view.config_file)),
        reload=escape(mask(reload_line)),
        reload_class="ok" if view.reload_ok else "bad",
        generated=escape(time.strftime("%Y-%m-%d %H:%M:%S %Z")),
        targets="\n".join(rows_targets) or "<tr><td colspan=6>no targets configured</td></tr>",
        checks="\n".join(rows_checks) or "<tr><td colspan=9>no checks</td></tr>",
        audits=_audits_section(view.audits, mask),
    )
    # An error message or a row value may hold a lone surrogate (an undecodable byte a driver passed on):
    # it cannot be sent as UTF-8, and the page must not fail for it.
    return without_lone_surrogates(page)


def _audits_section(reports: list[AuditReport], mask: Callable[[str], str]) -> str:
    """Each audit with its owner, count and up to 20 keys of offending records (never labels: only here)."""
    if not reports:
        return ""
    rows = []
    for report in reports:
        audit, result = report.audit, report.result
        if result is None:
            count, css, keys = "not yet run", "", ""
        else:
            count = str(result.count)
            css = "bad" if result.count > audit.warning else "ok"
            shown = "".join(f"<li>{escape(mask(key))}</li>" for key in result.samples)
            more = result.count - len(result.samples)
            tail = f"<li>... and {more} more</li>" if more > 0 else ""
            keys = f"<ul>{shown}{tail}</ul>" if shown else ""
        rows.append(
            "<tr>"
            f"<td>{escape(mask(report.target))}</td><td>{escape(audit.name)}</td>"
            f"<td>{escape(audit.owner)}</td><td>{audit.support_line}</td><td>{escape(audit.severity)}</td>"
            f"<td class='{css}'>{escape(count)}</td><td>{audit.warning:g} / {audit.critical:g}</td>"
            f"<td>{escape(audit.description)}</td><td>{keys}</td>"
            "</tr>"
        )
    return (
        "<h2>Audits</h2>\n<table><tr><th>target</th><th>audit</th><th>owner</th><th>support line</th>"
        "<th>severity</th><th>violations</th><th>warning / critical above</th><th>what it finds</th>"
        "<th>sample keys (up to 20)</th></tr>\n" + "\n".join(rows) + "\n</table>\n"
    )


def _css(up: float | None) -> str:
    return "ok" if up == 1 else "bad" if up == 0 else ""


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>erp-exporter</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} .ok {{ color: #17702a; }} .bad {{ color: #b00020; font-weight: bold; }}
code {{ font-size: 0.85em; }}
</style></head><body>
<h1>erp-exporter {version}</h1>
<p><a href="/metrics">/metrics</a> · <a href="/-/healthy">/-/healthy</a> · <a href="/-/ready">/-/ready</a>
 · config <code>{config}</code> · last reload: <span class="{reload_class}">{reload}</span> · {generated}</p>
<h2>Targets</h2>
<table><tr><th>target</th><th>state</th><th>labels</th><th>database</th><th>connection</th>
<th>write protection</th></tr>
{targets}
</table>
<h2>Checks</h2>
<table><tr><th>target</th><th>check</th><th>kind</th><th>interval</th><th>status</th><th>last run</th>
<th>duration</th><th>series</th><th>last error</th></tr>
{checks}
</table>
{audits}</body></html>
"""


def _status_word(success: bool | None, stale: bool) -> str:
    if stale:
        return "stale"
    if success is None:
        return "pending"
    return "ok" if success else "failed"
