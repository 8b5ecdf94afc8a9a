"""The run-time vocabulary: what a check is, what one run of it is given and what it may raise.

It sits below db/, checks/ and the scheduler, so that every layer speaks of timeouts, cancels and failure
reasons the same way without importing from a layer above it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from exporter.metrics import MetricFamily, MetricSpec


class ErrorReason(StrEnum):
    """The small, fixed set of reasons a check can fail for (a label value, so it must stay small)."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    AUTH = "auth"
    QUERY = "query"
    GUARD = "guard"
    OTHER = "other"


class CheckError(Exception):
    """A check failed for a known reason. The message must never contain secrets."""

    def __init__(self, reason: ErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class CancelToken:
    """Lets the scheduler interrupt a running check, and tell it when it has been given up on.

    `cancel()` runs when a check overruns its timeout (for example to cancel its open cursor).
    `abandon()` runs when even the cancel did not bring the worker back (a frozen server): resources
    the worker holds must then be accounted as lost until it returns.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._abandoned = False
        self._on_cancel: list[Callable[[], None]] = []
        self._on_abandon: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def abandoned(self) -> bool:
        return self._abandoned

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register a callback for cancel(); returns a function that unregisters it.

        If the token is already cancelled, the callback runs at once.
        """
        return self._register(self._on_cancel, callback, lambda: self._cancelled)

    def on_abandon(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register a callback for abandon(); returns a function that unregisters it."""
        return self._register(self._on_abandon, callback, lambda: self._abandoned)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            callbacks, self._on_cancel = self._on_cancel, []
        for callback in callbacks:
            callback()

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            callbacks, self._on_abandon = self._on_abandon, []
        for callback in callbacks:
            callback()

    def _register(
        self, callbacks: list[Callable[[], None]], callback: Callable[[], None], fired: Callable[[], bool]
    ) -> Callable[[], None]:
        with self._lock:
            run_now = fired()
            if not run_now:
                callbacks.append(callback)
        if run_now:
            callback()

        def unregister() -> None:
            with self._lock:
                if callback in callbacks:
                    callbacks.remove(callback)

        return unregister


@dataclass(frozen=True)
class Findings:
    """Records a run found that people must look at (an audit's offending rows): how many there are, and
    the keys of the first ones. They travel with the result to the status page and the CLI, never into a
    label."""

    count: int
    samples: tuple[str, ...] = ()


@dataclass
class RunContext:
    """What a check receives for one run. Database checks hold their TargetDatabase themselves.

    A check that finds records to show people sets `findings`; the scheduler stores them with the result.
    """

    timeout: float
    cancel: CancelToken = field(default_factory=CancelToken)
    findings: Findings | None = None


class Check(Protocol):
    """The interface of every check kind."""

    kind: ClassVar[str]
    metrics: ClassVar[tuple[MetricSpec, ...]]

    @property
    def name(self) -> str: ...

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        """Collect once. Raise CheckError on failure; return an empty list when there is no data."""
        ...

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        """Families to publish when a run fails (for example erp_up 0); usually none."""
        ...
