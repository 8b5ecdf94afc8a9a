"""What a synthetic transaction check keeps across runs, and the rule that each run counts exactly once.

A run either succeeds (every step and the whole transaction are observed once in the histogram, and the
last success time moves) or fails (the failure counter for its reason grows by one). Only successful runs
are observed, so for every transaction the `_count` of each step's series equals the `_count` of the
whole transaction's series: the number of successful runs. Steps that completed before a later step
failed are not observed; the failure counter says what happened to that run.

The scheduler may give up on a run that overruns its timeout before the check itself notices; it then
asks the check for its failure families with a timeout error. `fail_current()` counts that run once, and
whatever the abandoned run reports later is ignored (`succeed()`/`fail()` on a finished run do nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from exporter.checks.base import CheckError, ErrorReason
from exporter.checks.transactions_metrics import (
    DEFAULT_BUCKETS,
    LAST_SUCCESS,
    CounterAccumulator,
    HistogramAccumulator,
)
from exporter.metrics import MetricFamily


class TransactionError(CheckError):
    """A run of a synthetic transaction failed and has been counted under `transaction_reason`."""

    def __init__(self, reason: ErrorReason, transaction_reason: str, message: str) -> None:
        super().__init__(reason, message)
        self.transaction_reason = transaction_reason


@dataclass
class RunRecord:
    """One run; `finished` once it has been counted as a success or a failure."""

    finished: bool = False
    tls_expiry: float | None = None  # the certificate's notAfter read during this run (http over TLS)


class TransactionRecorder:
    """Histograms, failure counters and last success of one transaction; thread-safe."""

    def __init__(
        self,
        transaction: str,
        source: str,
        reasons: Iterable[str],
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        self.transaction = transaction
        self.source = source
        self.histograms = HistogramAccumulator(buckets)
        self.failures = CounterAccumulator(
            [{"transaction": transaction, "source": source, "reason": reason} for reason in reasons]
        )
        self._lock = threading.Lock()
        self._current: RunRecord | None = None
        self._last_success: float | None = None

    def begin(self) -> RunRecord:
        record = RunRecord()
        with self._lock:
            self._current = record
        return record

    def succeed(self, record: RunRecord, steps: Sequence[tuple[str, float]], total: float) -> bool:
        """Observe every step and the total once; False (nothing observed) if the run was already counted."""
        with self._lock:
            if record.finished:
                return False
            record.finished = True
            for step, seconds in steps:
                self.histograms.observe(self._labels(step=step), seconds)
            self.histograms.observe(self._labels(), total)
            self._last_success = time.time()
        return True

    def fail(self, record: RunRecord, reason: str) -> bool:
        """Count the run as failed for `reason`; False if it was already counted."""
        with self._lock:
            if record.finished:
                return False
            record.finished = True
            self.failures.inc(self._labels(reason=reason))
        return True

    def fail_current(self, reason: str) -> None:
        """The scheduler gave up on the running run: count it now, unless it has been counted already."""
        with self._lock:
            record = self._current
        if record is not None:
            self.fail(record, reason)

    def current(self) -> RunRecord | None:
        with self._lock:
            return self._current

    def families(self) -> list[MetricFamily]:
        families = [self.histograms.family(), self.failures.family()]
        with self._lock:
            last_success = self._last_success
        if last_success is not None:
            families.append(LAST_SUCCESS.family().add(last_success, **self._labels()))
        return families

    def _labels(self, **extra: str) -> dict[str, str]:
        return {"transaction": self.transaction, "source": self.source, **extra}
