"""The business transaction metrics every transaction source shares (synthetic SQL, synthetic HTTP, job logs).

One histogram for all sources, so a board or an alert can compare a synthetic login with the ERP's own job
durations: `erp_transaction_duration_seconds{transaction, step, source}`. The series without a `step` label
is the whole transaction; per-step series carry the step's name.

Histograms and counters accumulate inside the check object across runs (the store replaces a check's
families on every run), so they start at 0 when the check is built and only grow.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping, Sequence

from exporter.metrics import HistogramValue, MetricFamily, MetricSpec, counter, gauge, histogram, validate_buckets

DEFAULT_BUCKETS: tuple[float, ...] = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
"""Upper bounds in seconds that suit ERP work: tens of milliseconds to ten minutes."""

DURATION = histogram(
    "erp_transaction_duration_seconds",
    "How long a business transaction took; the series without a step label is the whole transaction.",
    "transaction",
    "step",
    "source",
)
FAILURES = counter(
    "erp_transaction_failures_total",
    "Business transactions that failed, by reason.",
    "transaction",
    "source",
    "reason",
)
LAST_SUCCESS = gauge(
    "erp_transaction_last_success_timestamp_seconds",
    "When the business transaction last succeeded, in seconds since the Unix epoch.",
    "transaction",
    "source",
)


class HistogramAccumulator:
    """Cumulative histograms per label set, thread-safe; what a check publishes on every run.

    Observations only add: counts and sums never decrease while the object lives.
    """

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.buckets: tuple[float, ...] = validate_buckets(buckets)
        self._lock = threading.Lock()
        # label set (sorted items) -> (per-bucket counts, not cumulative, plus the +Inf slot; sum)
        self._series: dict[tuple[tuple[str, str], ...], tuple[list[int], list[float]]] = {}

    def observe(self, labels: Mapping[str, str], seconds: float) -> None:
        key = tuple(sorted(labels.items()))
        index = bisect.bisect_left(self.buckets, seconds)  # le semantics: a value equal to a bound is in it
        with self._lock:
            counts, total = self._series.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            counts[index] += 1
            total[0] += seconds

    def count(self, labels: Mapping[str, str]) -> int:
        """How many observations the series with exactly these labels has (0 if none)."""
        with self._lock:
            series = self._series.get(tuple(sorted(labels.items())))
            return 0 if series is None else sum(series[0])

    def snapshot(self) -> list[tuple[dict[str, str], HistogramValue]]:
        """Every series as (labels, cumulative histogram), in the order they were first observed."""
        with self._lock:
            items = [(key, list(counts), total[0]) for key, (counts, total) in self._series.items()]
        result = []
        for key, counts, total in items:
            cumulative: list[tuple[float, float]] = []
            running = 0
            for bound, count in zip(self.buckets, counts, strict=False):
                running += count
                cumulative.append((bound, float(running)))
            result.append((dict(key), HistogramValue(tuple(cumulative), total, float(sum(counts)))))
        return result

    def family(self, spec: MetricSpec = DURATION) -> MetricFamily:
        family = spec.family()
        for labels, value in self.snapshot():
            family.add_labels(labels, value)
        return family


class CounterAccumulator:
    """Counters per label set, thread-safe; they start at 0 for the label sets given and only grow."""

    def __init__(self, initial: Sequence[Mapping[str, str]] = ()) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[tuple[str, str], ...], float] = {
            tuple(sorted(labels.items())): 0.0 for labels in initial
        }

    def inc(self, labels: Mapping[str, str], amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only grows")
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, labels: Mapping[str, str]) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def family(self, spec: MetricSpec = FAILURES) -> MetricFamily:
        with self._lock:
            items = list(self._values.items())
        family = spec.family()
        for key, value in items:
            family.add_labels(dict(key), value)
        return family
