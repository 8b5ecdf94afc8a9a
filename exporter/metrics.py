"""The exporter's own model of metric samples.

Checks produce `MetricFamily` objects built from `MetricSpec` declarations; the exposition layer turns
them into prometheus_client families when it renders. Keeping this model free of prometheus_client lets
checks be tested as pure functions (rows in, samples out) and lets the results store reason about series
counts and staleness without touching the client library.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class HistogramValue:
    """A cumulative histogram: bucket upper bounds with cumulative counts, plus sum and count."""

    buckets: tuple[tuple[float, float], ...]
    sum: float
    count: float


@dataclass(frozen=True, slots=True)
class Sample:
    """One series. A value the source could not provide is kept with a `skip_reason` so the scheduler
    can count it ('null', 'not_a_number') instead of publishing a silent zero."""

    labels: Mapping[str, str]
    value: float | HistogramValue
    skip_reason: str | None = None


class StatusRole(StrEnum):
    """What a metric tells the status page about its target, so the page finds it without its name."""

    TARGET_UP = "target_up"  # 1 when the target's database answers
    LOGIN_CAN_WRITE = "login_can_write"  # 1 when the monitoring login could change data


@dataclass(frozen=True)
class MetricSpec:
    """The declaration of one metric: checks declare these as module constants.

    `labels` are the label names the check itself sets; target and static labels are added by the
    scheduler, so they are not listed here.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    status_role: StatusRole | None = None

    def family(self) -> MetricFamily:
        return MetricFamily(spec=self)

    def exposed_names(self) -> tuple[str, ...]:
        """The sample names this metric produces in the text exposition format."""
        if self.type is MetricType.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


@dataclass
class MetricFamily:
    """Samples of one metric, as produced by one check run."""

    spec: MetricSpec
    samples: list[Sample] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    def add(self, value: float | HistogramValue, **labels: str) -> MetricFamily:
        self.samples.append(Sample(labels=labels, value=value))
        return self

    def add_labels(self, labels: Mapping[str, str], value: float | HistogramValue) -> MetricFamily:
        self.samples.append(Sample(labels=dict(labels), value=value))
        return self

    def add_raw(self, raw: object, **labels: str) -> MetricFamily:
        """Add a value straight from a database row: NULL and non-numbers are kept as skipped samples."""
        try:
            value = to_float(raw)
        except ValueConversionError:
            self.samples.append(Sample(labels=labels, value=math.nan, skip_reason="not_a_number"))
            return self
        if value is None:
            self.samples.append(Sample(labels=labels, value=math.nan, skip_reason="null"))
        else:
            self.samples.append(Sample(labels=labels, value=value))
        return self


def gauge(name: str, help_text: str, *labels: str, status_role: StatusRole | None = None) -> MetricSpec:
    return MetricSpec(name=name, type=MetricType.GAUGE, help=help_text, labels=labels, status_role=status_role)


def counter(name: str, help_text: str, *labels: str) -> MetricSpec:
    if not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    return MetricSpec(name=name, type=MetricType.COUNTER, help=help_text, labels=labels)


def histogram(name: str, help_text: str, *labels: str) -> MetricSpec:
    return MetricSpec(name=name, type=MetricType.HISTOGRAM, help=help_text, labels=labels)


def count_series(families: Iterable[MetricFamily]) -> int:
    return sum(len(f.samples) for f in families)


class ValueConversionError(ValueError):
    """A database value that is not a number."""


def to_float(value: object) -> float | None:
    """Convert a database value to a float; None for SQL NULL.

    Drivers hand back int, Decimal, float, bool, and for psqlODBC booleans the strings '1'/'0'.
    Anything else that is not a number raises ValueConversionError, so the caller can count it
    instead of publishing a silent zero.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        result = float(str(value).strip())  # Decimal, numeric strings
    except (TypeError, ValueError) as exc:
        raise ValueConversionError(f"not a number: {str(value)[:40]!r}") from exc
    if math.isnan(result):
        raise ValueConversionError("NaN")
    return result


def validate_buckets(buckets: Sequence[float]) -> tuple[float, ...]:
    """Bucket bounds as a tuple; raise ValueError unless they are finite, positive and strictly increasing."""
    bounds = tuple(float(b) for b in buckets)
    if not bounds:
        raise ValueError("at least one bucket is needed")
    if any(not math.isfinite(b) or b <= 0 for b in bounds):
        raise ValueError("bucket bounds must be finite numbers above 0 (+Inf is always added)")
    if any(later <= earlier for earlier, later in itertools.pairwise(bounds)):
        raise ValueError("bucket bounds must be strictly increasing")
    return bounds
