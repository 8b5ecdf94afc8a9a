"""Draw a report's charts with matplotlib: SVG for the self-contained HTML report, PNG beside Markdown.

matplotlib is imported on the first chart only (the exporter itself never draws). The Agg backend needs no
display; the SVG keeps its text as text (smaller, searchable) and is made reproducible (fixed hash salt, no
date in the metadata), so the same history gives the same file.
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime
from typing import Any, Literal

from exporter.report.definitions import Thresholds, Unit
from exporter.report.engine import ChartData
from exporter.report.forecast import fit, history_of

Image = Literal["svg", "png"]

WARNING_COLOR = "#e08a00"
CRITICAL_COLOR = "#c4161c"
CLOSING_COLOR = "#5b8def"
#: how far ahead of the range's end a forecast line is drawn, as a share of the range
FORECAST_AHEAD = 0.5


def _pyplot() -> Any:
    # imported on the first chart: matplotlib costs ~40 MiB and the text reports never draw
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "erp-exporter", "font.size": 9,
                                "axes.spines.top": False, "axes.spines.right": False})
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def _scale(unit: Unit) -> tuple[float, str]:
    """(divisor, axis label) for a unit."""
    return {
        "ratio": (0.01, "%"),
        "seconds": (1.0, "seconds"),
        "bytes": (1024.0**3, "GiB"),
        "bytes_per_day": (1024.0**3, "GiB/day"),
        "bool": (1.0, "1 = yes"),
        "days": (1.0, "days"),
        "count_per_day": (1.0, "per day"),
    }.get(unit, (1.0, ""))


def _label(labels: dict[str, str], legend: tuple[str, ...]) -> str:
    return " ".join(labels.get(name, "") for name in legend if labels.get(name)) or "(all)"


def _x(data: ChartData) -> Any:
    """Where a time goes on the x axis: a date, or days since the start for charts of relative time."""
    if data.relative:
        return lambda seconds: seconds / 86400
    return lambda seconds: datetime.fromtimestamp(seconds, UTC)


def _thresholds(axes: Any, data: ChartData, thresholds: Thresholds, divisor: float) -> None:
    limit = data.chart.limit
    if limit is None:
        return
    warning, critical = thresholds.values(limit, {})
    for value, color, name in ((warning, WARNING_COLOR, "warning"), (critical, CRITICAL_COLOR, "critical")):
        if value is not None and math.isfinite(value):
            axes.axhline(value / divisor, color=color, linestyle=":", linewidth=1.2,
                         label=f"{name} ({value / divisor:g})")


def _forecast(axes: Any, data: ChartData, divisor: float, color: str, points: list[tuple[float, float]],
              moment: Any) -> None:
    """The least-squares line through the range, drawn ahead of its end when the history is enough."""
    history = history_of(points)
    if not history.enough(data.range_seconds):
        return
    trend = fit(points)
    if trend is None:
        return
    ahead = data.end + FORECAST_AHEAD * data.range_seconds
    if trend.at(ahead) < 0 <= trend.at(data.end) and (zero := trend.reaches(0.0)) is not None:
        ahead = zero  # what the charts show (sizes, counts, shares) stops at zero rather than going below it
    times = [points[0][0], ahead]
    axes.plot([moment(t) for t in times], [trend.at(t) / divisor for t in times], color=color, linestyle="--",
              linewidth=1, alpha=0.8)


def draw(data: ChartData, thresholds: Thresholds, image: Image) -> bytes:
    """The chart as an SVG or PNG file's bytes."""
    plt = _pyplot()
    _moment = _x(data)
    divisor, axis = _scale(data.chart.unit)
    figure, axes = plt.subplots(figsize=(8.0, 3.0), dpi=100 if image == "png" else 72)
    try:
        for start, end in data.closing:
            axes.axvspan(_moment(start), _moment(end), color=CLOSING_COLOR, alpha=0.12, linewidth=0)
        if data.closing:
            axes.plot([], [], color=CLOSING_COLOR, alpha=0.3, linewidth=6, label="closing period")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for index, series in enumerate(data.series[:12]):  # more lines than colors tell nothing apart
            points = [(t, v) for t, v in series.points if math.isfinite(v)]
            if not points:
                continue
            color = colors[index % len(colors)]
            axes.plot([_moment(t) for t, _ in points], [v / divisor for _, v in points], color=color, linewidth=1.3,
                      label=_label(dict(series.labels), data.chart.legend))
            if data.chart.forecast:
                _forecast(axes, data, divisor, color, points, _moment)
        _thresholds(axes, data, thresholds, divisor)
        if not data.series:
            axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center", color="#777")
        axes.set_xlim(_moment(data.start), _moment(data.end + (FORECAST_AHEAD * data.range_seconds
                                                               if data.chart.forecast else 0)))
        axes.set_ylabel(axis)
        axes.set_title(data.chart.title, loc="left", fontsize=10)
        axes.grid(True, alpha=0.25)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        if data.relative:
            axes.set_xlabel("days since the close started")
        else:
            figure.autofmt_xdate()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format=image, metadata={"Date": None} if image == "svg" else {"Software": None})
        return buffer.getvalue()
    finally:
        plt.close(figure)
