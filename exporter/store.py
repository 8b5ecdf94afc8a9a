"""The results store: the latest outcome of every check, and what the scheduler counted about it.

Scrapes read from here and never run a check. Every change bumps `version`, which is how the
exposition layer knows when its cached rendering is out of date.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from exporter.metrics import MetricFamily, Sample
from exporter.run import ErrorReason, Findings

SKIP_REASONS = ("null", "not_a_number")


@dataclass(frozen=True)
class CheckKey:
    """Identifies one scheduled check: target '' for checks that belong to no database target."""

    target: str
    check: str


@dataclass(frozen=True)
class CheckMeta:
    kind: str
    interval: float
    timeout: float
    series_limit: int
    labels: Mapping[str, str]  # target and static labels, added to every series of the check


@dataclass(frozen=True)
class Outcome:
    """The result of one run, as the scheduler hands it over."""

    success: bool
    duration: float
    families: list[MetricFamily]
    error_reason: ErrorReason | None = None
    error_message: str = ""
    findings: Findings | None = None
    start_delay: float | None = None  # how late the run started against its schedule (None: run on demand)


@dataclass(frozen=True)
class CheckState:
    """Everything known about one check; immutable, replaced on every change."""

    key: CheckKey
    meta: CheckMeta
    families: tuple[MetricFamily, ...] = ()
    success: bool | None = None
    duration: float = 0.0
    last_run_wall: float | None = None
    last_run_monotonic: float | None = None
    last_success_wall: float | None = None
    last_success_duration: float = 0.0
    # what the last successful run found for people to look at (kept while later runs fail)
    findings: Findings | None = None
    error_reason: ErrorReason | None = None
    error_message: str = ""
    runs_total: int = 0
    errors_total: Mapping[ErrorReason, int] = field(default_factory=lambda: dict.fromkeys(ErrorReason, 0))
    skipped_runs_total: int = 0
    skipped_values_total: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    series_dropped_total: int = 0
    series: int = 0
    start_delay: float | None = None  # of the last scheduled run

    def stale_after(self) -> float:
        """Seconds after the last run when its values may no longer be served as fresh."""
        return 2 * self.meta.interval + self.meta.timeout

    def is_stale(self, now_monotonic: float) -> bool:
        if self.last_run_monotonic is None:
            return False
        return now_monotonic - self.last_run_monotonic > self.stale_after()


class ResultStore:
    """Thread-safe map CheckKey -> CheckState with a change counter."""

    def __init__(
        self, monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._states: dict[CheckKey, CheckState] = {}
        self._version = 0
        self._monotonic = monotonic
        self._wall = wall

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until the version differs from `version` (or timeout); return the current version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version

    def configure(self, checks: Mapping[CheckKey, CheckMeta]) -> None:
        """Adopt a new set of checks (start-up or reload): keep history of those that remain."""
        with self._lock:
            self._states = {
                key: replace(self._states[key], meta=meta) if key in self._states else CheckState(key, meta)
                for key, meta in checks.items()
            }
            self._bump()

    def record(self, key: CheckKey, outcome: Outcome) -> None:
        """Store a finished run; series are labelled, limited and cleaned of skipped values here."""
        with self._lock:
            state = self._states.get(key)
            if state is None:  # the check was removed by a reload while it ran
                return
            families, skipped, dropped, series = _prepare(outcome.families, state.meta)
            errors = dict(state.errors_total)
            if outcome.error_reason is not None:
                errors[outcome.error_reason] += 1
            skipped_values = {r: state.skipped_values_total[r] + skipped.get(r, 0) for r in SKIP_REASONS}
            wall = self._wall()
            self._states[key] = replace(
                state,
                families=tuple(families),
                success=outcome.success,
                duration=outcome.duration,
                last_run_wall=wall,
                last_run_monotonic=self._monotonic(),
                last_success_wall=wall if outcome.success else state.last_success_wall,
                last_success_duration=outcome.duration if outcome.success else state.last_success_duration,
                findings=outcome.findings if outcome.success else state.findings,
                error_reason=outcome.error_reason,
                error_message=outcome.error_message,
                runs_total=state.runs_total + 1,
                errors_total=errors,
                skipped_values_total=skipped_values,
                series_dropped_total=state.series_dropped_total + dropped,
                series=series,
                start_delay=outcome.start_delay if outcome.start_delay is not None else state.start_delay,
            )
            self._bump()

    def record_skipped_run(self, key: CheckKey) -> None:
        """A run was due while the previous one still ran."""
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states[key] = replace(state, skipped_runs_total=state.skipped_runs_total + 1)
                self._bump()

    def touch(self) -> None:
        """Mark renderings out of date without a result change (a failed reload, for example)."""
        with self._lock:
            self._bump()

    def snapshot(self) -> tuple[int, list[CheckState]]:
        with self._lock:
            return self._version, list(self._states.values())

    def get(self, key: CheckKey) -> CheckState | None:
        with self._lock:
            return self._states.get(key)

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()


def _prepare(
    families: Iterable[MetricFamily], meta: CheckMeta
) -> tuple[list[MetricFamily], dict[str, int], int, int]:
    """Add the check's labels, drop skipped values (counting them), enforce the series limit."""
    prepared: list[MetricFamily] = []
    skipped: dict[str, int] = {}
    dropped = 0
    budget = meta.series_limit
    for family in families:
        kept: list[Sample] = []
        for sample in family.samples:
            if sample.skip_reason is not None:
                skipped[sample.skip_reason] = skipped.get(sample.skip_reason, 0) + 1
                continue
            if budget <= 0:
                dropped += 1
                continue
            budget -= 1
            kept.append(Sample(labels={**meta.labels, **sample.labels}, value=sample.value))
        if kept:
            prepared.append(MetricFamily(spec=family.spec, samples=kept))
    return prepared, skipped, dropped, meta.series_limit - budget
