"""A small per-target connection pool: at most `max_size` connections, reused across checks, with
exponential backoff and jitter after failed connects, and accounting for connections lost to a hung
server."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.db.dialect import Dialect
from exporter.db.errors import ClassifiedError
from exporter.run import CancelToken, CheckError, ErrorReason

log = logging.getLogger(__name__)


@dataclass
class OpenConnection:
    """A live pyodbc connection plus what we learned when opening it."""

    raw: Any  # pyodbc.Connection (pyodbc ships no type stubs)
    dialect: Dialect
    dbms_name: str
    dbms_version: str
    read_only: bool
    connect_seconds: float
    opened_at: float
    statement_timeout: float | None = None  # the server-side limit currently set on this session
    idle_since: float | None = None  # when it last came back to the pool

    def expired(self, now: float, max_idle: float, max_lifetime: float) -> bool:
        """Unused for longer than `max_idle`, or open for longer than `max_lifetime`."""
        idle_since = self.opened_at if self.idle_since is None else self.idle_since
        return now - idle_since > max_idle or now - self.opened_at > max_lifetime

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception as exc:
            log.debug("closing connection failed: %s", type(exc).__name__)


@dataclass
class Lease:
    """A connection checked out of the pool by one check run."""

    connection: OpenConnection
    reused: bool
    hung: bool = False
    cancelling: bool = False  # its run timed out and a cancel was sent; not back yet
    fresh: bool = False  # opened for this run alone (login timing): closed after it, never pooled
    unregister_token_callbacks: Callable[[], None] = field(default=lambda: None)  # the cancel and abandon hooks


@dataclass(frozen=True)
class PoolStats:
    open: int
    in_use: int
    hung: int
    max_size: int
    connect_failures_total: int
    consecutive_failures: int
    backoff_remaining: float


class Backoff:
    """Exponential backoff with full jitter: after n failures wait random(0.5..1) * min(max, initial*2^n)."""

    def __init__(self, initial: float, maximum: float, rng: Callable[[], float] = random.random) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self.next_attempt_at = 0.0
        self._rng = rng

    def ready(self, now: float) -> bool:
        return now >= self.next_attempt_at

    def remaining(self, now: float) -> float:
        return max(0.0, self.next_attempt_at - now)

    def record_failure(self, now: float) -> float:
        delay: float = min(self.maximum, self.initial * (2**self.failures))
        delay *= 0.5 + 0.5 * float(self._rng())
        self.failures += 1
        self.next_attempt_at = now + delay
        return delay

    def record_success(self) -> None:
        self.failures = 0
        self.next_attempt_at = 0.0


class ConnectionPool:
    """Hands out connections to one target; never more than `max_size` open at once.

    An idle connection is closed after `max_idle` seconds unused (a check that stopped needing it), and
    every connection after `max_lifetime` seconds (to follow a failover or a moved address, and to let the
    server free what a long session holds). Each new connection costs the server a login, the session
    setup and the driver's own lookups, so a connection in regular use is not re-opened sooner.
    """

    def __init__(
        self,
        target: str,
        opener: Callable[[float], OpenConnection],
        max_size: int,
        backoff: Backoff,
        max_idle: float = 300.0,
        max_lifetime: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self._opener = opener
        self._max_size = max_size
        self._backoff = backoff
        self._max_idle = max_idle
        self._max_lifetime = max_lifetime
        self._clock = clock
        self._cond = threading.Condition()
        self._connect_lock = threading.Lock()  # one connect attempt in flight per target
        self._idle: list[OpenConnection] = []
        self._in_use = 0
        self._hung = 0
        self._cancelling = 0  # leases whose query was cancelled and has not returned yet
        self._closed = False
        self._connect_failures_total = 0
        self._last_failure: ClassifiedError | None = None

    def acquire(
        self,
        token: CancelToken,
        wait: float,
        fresh: bool = False,
        classify: Callable[[BaseException], ClassifiedError] | None = None,
    ) -> Lease:
        """Check a connection out; open one if needed (respecting backoff). Raises CheckError."""
        deadline = self._clock() + wait
        self._reserve_slot(token, wait)
        try:
            to_close, reused = self._take_idle(fresh)
            for old in to_close:
                old.close()
            if reused is not None:
                return self._lease(reused, token, reused=True)
            lease = self._lease(self._connect(classify, deadline), token, reused=False)
            lease.fresh = fresh
            return lease
        except BaseException:
            with self._cond:
                self._in_use -= 1
                self._cond.notify()
            raise

    def release(self, lease: Lease, broken: bool = False) -> None:
        """Return a connection; broken, hung and fresh ones are closed, never reused.

        A fresh connection (the probe's, to time a login) joining the idle ones would push the oldest pooled
        session out at the next probe: a new backend and its session setup every interval for nothing.
        """
        lease.unregister_token_callbacks()
        keep = not (broken or lease.hung or lease.fresh or self._closed)
        with self._cond:
            self._in_use -= 1
            if lease.hung:
                self._hung -= 1
            if lease.cancelling:
                self._cancelling -= 1
            if keep:
                lease.connection.idle_since = self._clock()
                self._idle.append(lease.connection)
            self._cond.notify()
        if not keep:
            lease.connection.close()

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(
                open=self._in_use + len(self._idle),
                in_use=self._in_use,
                hung=self._hung,
                max_size=self._max_size,
                connect_failures_total=self._connect_failures_total,
                consecutive_failures=self._backoff.failures,
                backoff_remaining=self._backoff.remaining(self._clock()),
            )

    def close(self) -> None:
        """Close idle connections; connections in use are closed when they come back."""
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for connection in idle:
            connection.close()

    # -----------------------------------------------------------------------------------------------

    def _reserve_slot(self, token: CancelToken, wait: float) -> None:
        deadline = self._clock() + wait
        unregister = token.on_cancel(self._wake_all)
        try:
            with self._cond:
                while True:
                    if self._closed:
                        raise CheckError(ErrorReason.OTHER, "the target was removed by a config reload")
                    if self._cancelling:
                        # The server did not answer an earlier query in time and has not answered its cancel
                        # yet: another query now would most likely hang beside it (a frozen server would
                        # cost a second worker before the first is even given up on).
                        raise CheckError(
                            ErrorReason.TIMEOUT,
                            "an earlier query on this target timed out and its cancel has not returned yet",
                        )
                    if self._hung:
                        raise CheckError(
                            ErrorReason.TIMEOUT,
                            "an earlier query on this target has not returned even after cancel (server "
                            "hung?); no more are sent until it does",
                        )
                    if token.cancelled:
                        raise CheckError(ErrorReason.TIMEOUT, "cancelled while waiting for a connection")
                    if self._in_use < self._max_size:
                        self._in_use += 1
                        return
                    remaining = deadline - self._clock()
                    if remaining <= 0:
                        raise CheckError(
                            ErrorReason.TIMEOUT,
                            f"all {self._max_size} connections to this target stayed busy",
                        )
                    self._cond.wait(remaining)
        finally:
            unregister()

    def _wake_all(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _take_idle(self, fresh: bool) -> tuple[list[OpenConnection], OpenConnection | None]:
        """Pick a reusable idle connection, and the idle ones to close (expired, or making room)."""
        now = self._clock()
        with self._cond:
            expired = [c for c in self._idle if c.expired(now, self._max_idle, self._max_lifetime)]
            self._idle = [c for c in self._idle if c not in expired]
            if not fresh and self._idle:
                return expired, self._idle.pop()
            if self._idle and self._in_use + len(self._idle) > self._max_size:
                expired.append(self._idle.pop(0))  # make room: the oldest goes
            return expired, None

    def _connect(
        self, classify: Callable[[BaseException], ClassifiedError] | None, deadline: float
    ) -> OpenConnection:
        # Single flight: while one check waits for a slow or dead server to answer, the others wait for
        # that answer (and its backoff) instead of opening connection attempts of their own.
        if not self._connect_lock.acquire(timeout=max(0.0, deadline - self._clock())):
            raise CheckError(ErrorReason.TIMEOUT, "another connect to this target did not finish in time")
        try:
            return self._connect_once(classify, deadline)
        finally:
            self._connect_lock.release()

    def _connect_once(
        self, classify: Callable[[BaseException], ClassifiedError] | None, deadline: float
    ) -> OpenConnection:
        with self._cond:
            now = self._clock()
            if not self._backoff.ready(now) and self._last_failure is not None:
                failure = self._last_failure
                raise CheckError(
                    failure.reason,
                    f"{failure.message} (not retrying for {self._backoff.remaining(now):.1f}s after "
                    f"{self._backoff.failures} failed connect(s))",
                )
        try:
            connection = self._opener(max(1.0, deadline - self._clock()))
        except CheckError as exc:
            self._record_failure(ClassifiedError(exc.reason, exc.message, True))
            raise
        except Exception as exc:
            failure = classify(exc) if classify else ClassifiedError(ErrorReason.CONNECT, str(exc), True)
            self._record_failure(failure)
            raise failure.as_check_error() from None
        with self._cond:
            self._backoff.record_success()
            self._last_failure = None
        return connection

    def _record_failure(self, failure: ClassifiedError) -> None:
        with self._cond:
            self._connect_failures_total += 1
            self._last_failure = failure
            delay = self._backoff.record_failure(self._clock())
        log.warning(
            "connect failed",
            extra={
                "target": self.target,
                "reason": failure.reason.value,
                "err": failure.message,
                "retry_in": round(delay, 1),
            },
        )

    def _lease(self, connection: OpenConnection, token: CancelToken, reused: bool) -> Lease:
        lease = Lease(connection=connection, reused=reused)

        def mark_hung() -> None:
            with self._cond:
                if not lease.hung:
                    lease.hung = True
                    self._hung += 1

        def mark_cancelling() -> None:
            with self._cond:
                if not lease.cancelling:
                    lease.cancelling = True
                    self._cancelling += 1

        unregister_abandon = token.on_abandon(mark_hung)
        unregister_cancel = token.on_cancel(mark_cancelling)

        def unregister() -> None:
            unregister_abandon()
            unregister_cancel()

        lease.unregister_token_callbacks = unregister
        return lease
