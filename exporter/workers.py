"""A bounded pool of worker threads that can give up on a worker stuck in a driver call.

Python cannot kill a thread blocked inside a C driver (a frozen server leaves pyodbc waiting forever),
so an abandoned worker is replaced by a fresh one while it is left to finish on its own. The number of
abandoned workers is capped: beyond the cap the pool shrinks instead of growing, so a misbehaving
landscape can never make the exporter spawn threads without end.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Task = Callable[[], None]


@dataclass(frozen=True)
class WorkerStats:
    size: int
    live: int
    busy: int
    abandoned: int
    abandoned_limit: int
    abandoned_total: int


class WorkerPool:
    def __init__(self, size: int, abandoned_limit: int, name: str = "erp-worker") -> None:
        self._size = size
        self._abandoned_limit = abandoned_limit
        self._name = name
        self._queue: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live = 0  # threads that take tasks from the queue
        self._busy = 0
        self._abandoned: set[int] = set()  # thread idents given up on
        self._abandoned_total = 0
        self._serial = 0
        self._stopping = False
        for _ in range(size):
            self._spawn()

    def submit(self, task: Task) -> None:
        self._queue.put(task)

    def abandon(self, thread_id: int) -> None:
        """Give up on the worker running in thread `thread_id`; replace it while under the cap."""
        with self._lock:
            if thread_id in self._abandoned or self._stopping:
                return
            self._abandoned.add(thread_id)
            self._abandoned_total += 1
            self._live -= 1
            self._busy -= 1
            replace = len(self._abandoned) <= self._abandoned_limit
            # counted in the same step, so stats() never shows the pool a worker short in between
            replacement = self._reserve_worker() if replace else None
        log.warning("worker abandoned", extra={"abandoned": len(self._abandoned), "replaced": replace})
        if replacement is not None:
            self._start_worker(replacement)

    def stats(self) -> WorkerStats:
        with self._lock:
            return WorkerStats(
                size=self._size,
                live=self._live,
                busy=self._busy,
                abandoned=len(self._abandoned),
                abandoned_limit=self._abandoned_limit,
                abandoned_total=self._abandoned_total,
            )

    def stop(self, timeout: float = 5.0) -> None:
        """Ask every live worker to finish after its current task; abandoned ones are not waited for."""
        with self._lock:
            self._stopping = True
            live = self._live
        for _ in range(live):
            self._queue.put(None)

    # -----------------------------------------------------------------------------------------------

    def _spawn(self) -> None:
        with self._lock:
            name = self._reserve_worker()
        self._start_worker(name)

    def _reserve_worker(self) -> str:
        """Count a new live worker and name it; the caller holds the lock."""
        self._live += 1
        self._serial += 1
        return f"{self._name}-{self._serial}"

    def _start_worker(self, name: str) -> None:
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def _loop(self) -> None:
        me = threading.get_ident()
        while True:
            task = self._queue.get()
            if task is None:
                with self._lock:
                    self._live -= 1
                return
            with self._lock:
                self._busy += 1
            try:
                task()
            except Exception:
                log.exception("worker task crashed")
            with self._lock:
                if me in self._abandoned:
                    # Back from a hung call. Rejoin only if we were never replaced (the cap was hit).
                    self._abandoned.discard(me)
                    rejoin = self._live < self._size and not self._stopping
                    if rejoin:
                        self._live += 1
                else:
                    self._busy -= 1
                    rejoin = True
            if not rejoin:
                return
