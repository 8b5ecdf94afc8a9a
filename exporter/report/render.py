"""Renderers of a report: an aligned text table, Markdown, JSON (HTML is exporter/report/html.py)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.report.client import finite
from exporter.report.definitions import Unit
from exporter.report.engine import Line, ReportResult

NO_DATA = "no data"
NEVER = "never at this trend"
NOT_ENOUGH_HISTORY = "not enough history"
NOT_A_NUMBER = "n/a (NaN)"  # Prometheus answered NaN: a ratio of two zeros, a quantile of no observations
LEVELS = ("ok", "warning", "critical")
FORMATS = ("text", "markdown", "json", "html")


def _iec(value: float) -> str:
    sign = "-" if value < 0 else ""
    size = abs(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _duration(seconds: float) -> str:
    if seconds == 0:
        return "0 s"
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
        return NOT_A_NUMBER
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
    if unit == "level":
        return LEVELS[min(max(int(value), 0), 2)]
    if unit == "count_per_day":
        return f"{'+' if value > 0 else ''}{_number(round(value, 2))}/day"
    return _number(value)


def _detail(line: Line) -> str:
    return ", ".join(f"{name}={value}" for name, value in line.detail.items())


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Table:
    """One section as the text, Markdown and HTML renderers lay it out: a head, rows of cells, and the index of
    the value columns (right-aligned) and of the status column (coloured in HTML)."""

    title: str
    head: list[str]
    rows: list[list[str]]
    numeric: tuple[int, ...]
    status: int | None
    empty: str
    grouped: bool  # the first column names a group (printed once per group in text)


def header(result: ReportResult) -> list[tuple[str, str]]:
    options = result.options
    filters = ", ".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in options.filters().items())
    return [
        ("Prometheus", result.prometheus),
        ("Range", f"{options.range_text}: {_when(options.start)} to {_when(options.end)}"),
        ("Filters", filters or "none"),
    ]


def display(line: Line) -> str:
    """The value cell: the formatted value, or why a forecast has none."""
    if line.not_enough_history:
        return NOT_ENOUGH_HISTORY
    return format_value(line.value, line.row.unit)


def basis(line: Line) -> str:
    """How a forecast was made and what it stands on; empty for a plain measure."""
    return line.history.describe(line.range_seconds) if line.history is not None else ""


def _cells(line: Line, with_basis: bool) -> list[str]:
    """[subject,] measure, detail, value, status (only when it is not ok)[, basis]."""
    subject = [line.subject or f"(no {line.section.subject})"] if line.section.subject else []
    status = line.status.upper() if line.status is not None and line.status != "ok" else ""
    cells = [*subject, line.row.title, _detail(line), display(line), status]
    return [*cells, basis(line)] if with_basis else cells


def tables(result: ReportResult) -> list[Table]:
    """The report's sections as tables, in the report's order."""
    out = []
    for section in result.report.sections:
        lines = [line for line in result.lines if line.section is section]
        with_basis = any(row.trend for row in section.rows)
        head = [*([section.subject] if section.subject else []), "measure", "detail", "value", "status"]
        if with_basis:
            head.append("forecast basis")
        value_column = len(head) - (3 if with_basis else 2)
        out.append(Table(section.title, head, [_cells(line, with_basis) for line in lines], (value_column,),
                         value_column + 1, f"(no {section.subject or 'data'} over the range)", bool(section.subject)))
    return out


def text_tables(title: str, head_lines: list[tuple[str, str]], found: list[Table]) -> str:
    out = [title]
    width = max([12, *(len(name) + 2 for name, _ in head_lines)])
    out += [f"{name + ':':<{width}}{value}" for name, value in head_lines]
    for table in found:
        out += ["", f"== {table.title} =="]
        if not table.rows:
            out.append(table.empty)
            continue
        rows = [[name.upper() for name in table.head], *[list(row) for row in table.rows]]
        widths = [max(len(row[i]) for row in rows) for i in range(len(table.head))]
        if table.grouped:  # the subject once per group of lines
            for index in range(len(rows) - 1, 1, -1):
                if rows[index][0] == rows[index - 1][0]:
                    rows[index] = ["", *rows[index][1:]]
        for row in rows:
            out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(out) + "\n"


def render_text(result: ReportResult) -> str:
    return text_tables(result.report.title, header(result), tables(result))


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def markdown_tables(title: str, head_lines: list[tuple[str, str]], found: list[Table],
                    images: Sequence[tuple[str, str]] = ()) -> str:
    """Markdown: the header as a list, a table per section, then the charts' images ``(title, file name)``."""
    out = [f"# {title}", ""]
    out += [f"- **{name}:** {_md(value)}" for name, value in head_lines]
    for table in found:
        out += ["", f"## {table.title}", ""]
        if not table.rows:
            out.append(table.empty)
            continue
        align = ["---:" if index in table.numeric else "---" for index in range(len(table.head))]
        out += ["| " + " | ".join(table.head) + " |", "|" + "|".join(align) + "|"]
        out += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in table.rows]
    if images:
        out += ["", "## Charts", ""]
        out += [f"![{_md(name)}]({file})\n" for name, file in images]
    return "\n".join(out).rstrip("\n") + "\n"


def render_markdown(result: ReportResult, images: Sequence[tuple[str, str]] = ()) -> str:
    return markdown_tables(f"{result.report.title}", header(result), tables(result), images)


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
        "display": display(line),
        "status": line.status,
        "query": line.query,
        **({"forecast": {"method": basis(line), "history_seconds": line.history.seconds,
                         "samples": line.history.points, "enough_history": not line.not_enough_history}}
           if line.history is not None else {}),
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
    """The text, Markdown (without charts) or JSON document of a report."""
    if fmt == "json":
        return render_json(result)
    if fmt == "markdown":
        return render_markdown(result)
    return render_text(result)
