"""The self-contained HTML report: one file, styles and charts (inline SVG) embedded, no script, no request
to the network when it is opened. Every text from Prometheus is escaped."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from exporter.report.definitions import Thresholds
from exporter.report.engine import ChartData
from exporter.report.plot import draw
from exporter.report.render import NO_DATA, NOT_ENOUGH_HISTORY, Table

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1d2330; }
h1 { font-size: 1.5rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #d8dce3; padding-bottom: 0.2rem; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1rem 1rem; color: #4a5263; }
dl.meta dt { font-weight: 600; }
dl.meta dd { margin: 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.88rem; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #eceef2; vertical-align: top; }
th { background: #f4f6f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.WARNING { background: #fff1d6; color: #8a5300; font-weight: 600; }
td.CRITICAL { background: #fde0e0; color: #9b1117; font-weight: 600; }
td.nodata { color: #8a909c; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: #4a5263; font-size: 0.85rem; }
p.empty { color: #8a909c; }
footer { margin-top: 2.5rem; color: #8a909c; font-size: 0.8rem; }
"""

_XML_PROLOGUE = re.compile(r"^\s*<\?xml[^>]*\?>\s*(<!DOCTYPE[^>]*>\s*)?", re.DOTALL)


def inline_svg(svg: bytes) -> str:
    """An SVG file's text without its XML prologue, to put inside the HTML."""
    return _XML_PROLOGUE.sub("", svg.decode("utf-8"))


def _table(table: Table) -> str:
    out = [f"<h2>{escape(table.title)}</h2>"]
    if not table.rows:
        return "\n".join([*out, f'<p class="empty">{escape(table.empty)}</p>'])
    out.append("<table><thead><tr>" + "".join(f"<th>{escape(name)}</th>" for name in table.head) + "</tr></thead>")
    out.append("<tbody>")
    for row in table.rows:
        cells = []
        for index, cell in enumerate(row):
            classes = []
            if index in table.numeric:
                classes.append("num")
                if cell in (NO_DATA, NOT_ENOUGH_HISTORY):
                    classes.append("nodata")
            if index == table.status and cell:
                classes.append(cell)
            attribute = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attribute}>{escape(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _figure(data: ChartData, thresholds: Thresholds) -> str:
    parts = [data.chart.help] if data.chart.help else []
    if data.closing:
        parts.append("Shaded: closing periods of the business calendar.")
    if data.chart.forecast:
        parts.append("Dashed: the least-squares trend of each series ahead (drawn only with enough history).")
    caption = " ".join(parts)
    return (f"<figure>{inline_svg(draw(data, thresholds, 'svg'))}"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def render_html(title: str, head_lines: Sequence[tuple[str, str]], tables: Sequence[Table],
                charts: Sequence[ChartData], thresholds: Thresholds) -> str:
    """The whole HTML document."""
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = "".join(f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in head_lines)
    body = [f"<h1>{escape(title)}</h1>", f'<dl class="meta">{meta}</dl>']
    if charts:
        body.append("<h2>Charts</h2>")
        body.extend(_figure(data, thresholds) for data in charts)
    body.extend(_table(table) for table in tables)
    body.append(f"<footer>erp-exporter report, generated {escape(generated)}. Values beyond the thresholds of "
                "alert_rules/thresholds.yml are marked WARNING or CRITICAL.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")
