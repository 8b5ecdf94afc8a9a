"""Renderers of a report: an aligned text table, Markdown, JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from exporter.report.client import finite
from exporter.report.definitions import Unit
from exporter.report.engine import Line, ReportResult

NO_DATA = "no data"
NEVER = "never at this trend"
FORMATS = ("text", "markdown", "json")


def _iec(value: float) -> str:
    sign = "-" if value < 0 else ""
    size = abs(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def format_value(value: float | None, unit: Unit) -> str:
    """How a value reads in the text and Markdown tables."""
    if value is None:
        return NO_DATA
    if math.isnan(value):
        return "n/a"
    if unit == "days":
        if math.isinf(value):
            return NEVER
        return f"{value * 24:.1f} hours" if value < 1 else f"{value:.1f} days"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "seconds":
        return _duration(value) if value >= 0 else f"-{_duration(-value)}"
    if unit == "bytes":
        return _iec(value)
    if unit == "bytes_per_day":
        return f"{'+' if value > 0 else ''}{_iec(value)}/day"
    if unit == "bool":
        return "yes" if value >= 1 else "no"
    return _number(value)


def _detail(line: Line) -> str:
    return ", ".join(f"{name}={value}" for name, value in line.detail.items())


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _header(result: ReportResult) -> list[tuple[str, str]]:
    options = result.options
    filters = ", ".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in options.filters().items())
    return [
        ("Prometheus", result.prometheus),
        ("Range", f"{options.range_text}: {_when(options.start)} to {_when(options.end)}"),
        ("Filters", filters or "none"),
    ]


def _sections(result: ReportResult) -> list[tuple[str, str, list[Line]]]:
    """(title, subject label, lines) per section, in the report's order."""
    out = []
    for section in result.report.sections:
        lines = [line for line in result.lines if line.section is section]
        out.append((section.title, section.subject, lines))
    return out


def _cells(line: Line) -> list[str]:
    """[subject,] measure, detail, value, status (the status only when it is not ok)."""
    subject = [line.subject or f"(no {line.section.subject})"] if line.section.subject else []
    status = line.status.upper() if line.status is not None and line.status != "ok" else ""
    return [*subject, line.row.title, _detail(line), format_value(line.value, line.row.unit), status]


def _head(subject: str) -> list[str]:
    return [*([subject] if subject else []), "measure", "detail", "value", "status"]


def render_text(result: ReportResult) -> str:
    out = [result.report.title]
    out += [f"{name + ':':<12}{value}" for name, value in _header(result)]
    for title, subject, lines in _sections(result):
        out += ["", f"== {title} =="]
        if not lines:
            out.append(f"(no {subject or 'data'} over the range)")
            continue
        head = [name.upper() for name in _head(subject)]
        rows = [head] + [_cells(line) for line in lines]
        widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
        if subject:  # the subject once per group of lines
            for index in range(len(rows) - 1, 1, -1):
                if rows[index][0] == rows[index - 1][0]:
                    rows[index] = ["", *rows[index][1:]]
        for row in rows:
            out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def render_markdown(result: ReportResult) -> str:
    out = [f"# {result.report.title}", ""]
    out += [f"- **{name}:** {_md(value)}" for name, value in _header(result)]
    for title, subject, lines in _sections(result):
        if not lines:
            out += ["", f"## {title}", "", f"(no {subject or 'data'} over the range)"]
            continue
        head = _head(subject)
        align = ["---"] * len(head)
        align[-2] = "---:"
        out += ["", f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
        out += ["| " + " | ".join(_md(cell) for cell in _cells(line)) + " |" for line in lines]
    return "\n".join(out) + "\n"


def line_json(line: Line) -> dict[str, Any]:
    value = line.value
    return {
        "section": line.section.key,
        "subject_label": line.section.subject,
        "subject": line.subject,
        "row": line.row.key,
        "title": line.row.title,
        "labels": line.detail,
        "unit": line.row.unit,
        "no_data": value is None,
        "value": None if value is None else finite(value),
        "display": format_value(value, line.row.unit),
        "status": line.status,
        "query": line.query,
    }


def render_json(result: ReportResult) -> str:
    options = result.options
    document = {
        "report": result.report.key,
        "title": result.report.title,
        "prometheus": result.prometheus,
        "range": options.range_text,
        "range_seconds": options.range_seconds,
        "start": datetime.fromtimestamp(options.start, UTC).isoformat(),
        "end": datetime.fromtimestamp(options.end, UTC).isoformat(),
        "filters": options.filters(),
        "sections": [
            {"key": section.key, "title": section.title, "subject_label": section.subject}
            for section in result.report.sections
        ],
        "rows": [line_json(line) for line in result.lines],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render(result: ReportResult, fmt: str) -> str:
    if fmt == "json":
        return render_json(result)
    if fmt == "markdown":
        return render_markdown(result)
    return render_text(result)
