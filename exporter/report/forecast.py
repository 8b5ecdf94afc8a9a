"""Honest forecasts: a trend says how it was made and how much history it stands on, and says nothing when
that history is too short to mean anything.

Every forecast of the reports is a least-squares line through the samples of the range (PromQL ``deriv``,
the same fit the charts draw). It is given only when the series has at least ``MIN_POINTS`` samples spread
over at least ``MIN_HISTORY_SHARE`` of the range and at least ``MIN_HISTORY_SECONDS``: 10 minutes of data
in a one-hour range do not tell how many days a disk has left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from exporter.source.durations import format_duration

METHOD = "linear trend (least squares, PromQL deriv)"
MIN_POINTS = 10
MIN_HISTORY_SHARE = 0.10
MIN_HISTORY_SECONDS = 3600.0


@dataclass(frozen=True)
class History:
    """How much of a series a trend stands on: the time between its first and last sample, and the samples."""

    seconds: float
    points: int

    def needed(self, range_seconds: float) -> float:
        """The history a forecast over this range needs, in seconds."""
        return max(MIN_HISTORY_SHARE * range_seconds, MIN_HISTORY_SECONDS)

    def enough(self, range_seconds: float) -> bool:
        return self.points >= MIN_POINTS and self.seconds >= self.needed(range_seconds)

    def describe(self, range_seconds: float) -> str:
        """'linear trend (...) over 6d 2h of history, 720 samples' or why there is no forecast."""
        spread = _span(self.seconds)
        if self.enough(range_seconds):
            return f"{METHOD} over {spread} of history, {self.points} samples"
        return (f"not enough history: {spread} and {self.points} samples; a forecast needs "
                f"{_span(self.needed(range_seconds))} and {MIN_POINTS} samples")


def _span(seconds: float) -> str:
    return format_duration(float(max(0, round(seconds))))


@dataclass(frozen=True)
class Trend:
    """y = slope * t + intercept, fitted by least squares (t in Unix seconds)."""

    slope: float
    intercept: float

    def at(self, moment: float) -> float:
        return self.slope * moment + self.intercept

    def reaches(self, level: float) -> float | None:
        """When the line reaches ``level`` (Unix seconds), None when it is flat."""
        if self.slope == 0:
            return None
        return (level - self.intercept) / self.slope


def fit(points: Sequence[tuple[float, float]]) -> Trend | None:
    """The least-squares line through the points (PromQL deriv's fit), None for fewer than two distinct times."""
    if len(points) < 2:
        return None
    count = len(points)
    mean_t = sum(t for t, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    slope = sum((t - mean_t) * (y - mean_y) for t, y in points) / spread
    return Trend(slope, mean_y - slope * mean_t)


def history_of(points: Sequence[tuple[float, float]]) -> History:
    """The history a list of samples covers."""
    if not points:
        return History(0.0, 0)
    return History(points[-1][0] - points[0][0], len(points))
