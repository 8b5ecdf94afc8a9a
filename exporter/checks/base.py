"""What every check is: a named, scheduled producer of metric families.

Checks never write their own health metrics: the scheduler times every run and records success,
duration, last success and the error reason the same way for all (the node_exporter pattern).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, Protocol

from exporter.metrics import MetricFamily, MetricSpec

if TYPE_CHECKING:
    from exporter.db.target import TargetDatabase


class ErrorReason(str, Enum):
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
    """Lets the scheduler interrupt a running check (for example by cancelling its open cursor)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register a callback run when cancel() is called; returns a function that unregisters it."""
        with self._lock:
            run_now = self._cancelled
            if not run_now:
                self._callbacks.append(callback)
        if run_now:
            callback()

        def unregister() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unregister

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


@dataclass
class RunContext:
    """What a check receives for one run."""

    timeout: float
    cancel: CancelToken = field(default_factory=CancelToken)
    database: TargetDatabase | None = None

    def require_database(self) -> TargetDatabase:
        if self.database is None:
            raise CheckError(ErrorReason.OTHER, "this check needs a database target")
        return self.database


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


class BaseCheck:
    """Convenience base: a name and no failure families."""

    kind: ClassVar[str] = ""
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        return []
