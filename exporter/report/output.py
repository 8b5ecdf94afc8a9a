"""Where a report goes: stdout or ``--output``; HTML with its charts inside, Markdown with PNG charts beside."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from exporter.report.definitions import Thresholds
from exporter.report.engine import ChartData, ReportResult
from exporter.report.html import render_html
from exporter.report.month_end import MonthEndResult, month_end_header, month_end_json, month_end_tables
from exporter.report.plot import draw
from exporter.report.render import header, markdown_tables, render, tables, text_tables


def chart_file(output: Path, data: ChartData) -> Path:
    """The PNG beside a Markdown report: ``capacity.md`` -> ``capacity-users.png``."""
    return output.with_name(f"{output.stem}-{data.chart.key}.png")


def _write_pngs(output: Path, charts: list[ChartData], thresholds: Thresholds) -> list[tuple[str, str]]:
    images = []
    for data in charts:
        target = chart_file(output, data)
        target.write_bytes(draw(data, thresholds, "png"))
        images.append((data.chart.title, target.name))
    return images


def _emit(text: str, output: str) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def write_report(result: ReportResult, fmt: str, output: str) -> None:
    """Write a capacity, health or governance report in ``fmt`` to ``output`` (stdout when empty)."""
    thresholds = result.options.thresholds
    if fmt == "html":
        text = render_html(result.report.title, header(result), tables(result), result.charts, thresholds)
    elif fmt == "markdown" and output:
        images = _write_pngs(Path(output), result.charts, thresholds)
        text = markdown_tables(result.report.title, header(result), tables(result), images)
    else:
        text = render(result, fmt)
    _emit(text, output)


def write_month_end(result: MonthEndResult, fmt: str, output: str, thresholds: Thresholds) -> None:
    """Write the month-end comparison in ``fmt`` to ``output`` (stdout when empty)."""
    title = result.report.title
    found = month_end_tables(result)
    head = month_end_header(result)
    if fmt == "json":
        text = json.dumps(month_end_json(result), indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        text = render_html(title, head, found, result.charts, thresholds)
    elif fmt == "markdown":
        images = _write_pngs(Path(output), result.charts, thresholds) if output else []
        text = markdown_tables(title, head, found, images)
    else:
        text = text_tables(title, head, found)
    _emit(text, output)
