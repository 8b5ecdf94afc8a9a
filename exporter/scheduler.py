"""Runs every check in the background on its own interval, with jitter, a timeout and no overlap.

One scheduler thread keeps a heap of timed events: a check falling due, a running check reaching its
deadline (record a timeout and cancel it), and a cancelled check still not back after the grace period
(give up on its worker). Checks run on the bounded WorkerPool; scrapes never run anything.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum

from exporter.metrics import MetricFamily
from exporter.run import CancelToken, Check, CheckError, ErrorReason, RunContext
from exporter.store import CheckKey, Outcome, ResultStore
from exporter.workers import WorkerPool

log = logging.getLogger(__name__)

# after the grace, the abandon event still has to be handled by the scheduler thread
ABANDON_MARGIN = 1.0


@dataclass
class Job:
    """One configured check with its schedule."""

    key: CheckKey
    check: Check
    interval: float
    timeout: float
    running: bool = False
    runs_started: int = 0


class RunState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    TIMED_OUT = "timed_out"
    ABANDONED = "abandoned"


@dataclass
class Run:
    job: Job
    token: CancelToken = field(default_factory=CancelToken)
    state: RunState = RunState.QUEUED
    started_at: float = 0.0
    due_at: float | None = None  # when the schedule wanted it to start (None: run on demand)
    thread_id: int = 0
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def start_delay(self) -> float | None:
        """How late the run started against its due time: queueing for a worker and the scheduler's own lag."""
        return max(0.0, self.started_at - self.due_at) if self.due_at is not None and self.started_at else None


@dataclass(frozen=True)
class SchedulerSettings:
    jitter: float = 0.1
    cancel_grace: float = 2.0
    first_run_spread: float = 2.0  # first runs start within this many seconds, so /-/ready comes soon


class Scheduler:
    def __init__(
        self,
        jobs: list[Job],
        store: ResultStore,
        workers: WorkerPool,
        settings: SchedulerSettings,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._workers = workers
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lock = threading.Condition()
        self._events: list[tuple[float, int, str, Job | Run]] = []
        self._sequence = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._first_round_pending = {job.key for job in jobs}
        self.first_round_done = threading.Event()
        if not jobs:
            self.first_round_done.set()

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    def start(self, schedule: bool = True) -> None:
        """Start the scheduler thread; first runs are spread over a short window.

        With schedule=False only deadlines are enforced: that is what run_once() needs.
        """
        now = self._clock()
        with self._lock:
            for job in self._jobs if schedule else []:
                spread = min(self._settings.first_run_spread, job.interval * self._settings.jitter)
                self._push(now + self._rng.random() * spread, "due", job)
        self._thread = threading.Thread(target=self._loop, name="erp-scheduler", daemon=True)
        self._thread.start()

    def stop(self, wait: float = 5.0) -> None:
        """Stop scheduling; running checks are cancelled and not waited for beyond `wait`."""
        with self._lock:
            self._stopping = True
            runs = [payload for _, _, kind, payload in self._events if isinstance(payload, Run)]
            self._lock.notify_all()
        for run in runs:
            run.token.cancel()
        if self._thread is not None:
            self._thread.join(wait)

    def longest_run(self) -> float:
        """How long run_once() can take at most: the longest timeout, the cancel grace, then abandon."""
        longest = max((job.timeout for job in self._jobs), default=0.0)
        return longest + self._settings.cancel_grace + ABANDON_MARGIN

    def run_once(self, timeout: float | None = None) -> None:
        """Run every job once right now and wait for all to finish or time out (for `once` and tests)."""
        runs = [self._launch(job) for job in self._jobs]
        deadline = None if timeout is None else self._clock() + timeout
        for run in runs:
            remaining = None if deadline is None else max(0.0, deadline - self._clock())
            run.finished.wait(remaining)

    # --- the scheduler thread ------------------------------------------------------------------------

    def _push(self, when: float, kind: str, payload: Job | Run) -> None:
        heapq.heappush(self._events, (when, next(self._sequence), kind, payload))
        self._lock.notify_all()

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._stopping:
                    now = self._clock()
                    if self._events and self._events[0][0] <= now:
                        break
                    wait = self._events[0][0] - now if self._events else None
                    self._lock.wait(wait)
                if self._stopping:
                    return
                when, _, kind, payload = heapq.heappop(self._events)
            try:
                self._handle(when, kind, payload)
            except Exception:
                log.exception("scheduler event failed", extra={"event": kind})

    def _handle(self, when: float, kind: str, payload: Job | Run) -> None:
        if kind == "due" and isinstance(payload, Job):
            self._due(when, payload)
        elif kind == "deadline" and isinstance(payload, Run):
            self._deadline(payload)
        elif kind == "abandon" and isinstance(payload, Run):
            self._abandon(payload)

    def _due(self, when: float, job: Job) -> None:
        if job.running:
            self._store.record_skipped_run(job.key)
            log.debug(
                "run skipped: previous still running",
                extra={"target": job.key.target, "check": job.key.check},
            )
        else:
            self._launch(job, due_at=when)
        spread = self._settings.jitter * job.interval
        next_due = when + job.interval + self._rng.uniform(-spread / 2, spread / 2)
        with self._lock:
            self._push(max(next_due, self._clock()), "due", job)

    def _launch(self, job: Job, due_at: float | None = None) -> Run:
        run = Run(job=job, due_at=due_at)
        job.running = True
        job.runs_started += 1
        self._workers.submit(lambda: self._execute(run))
        return run

    def _deadline(self, run: Run) -> None:
        with self._lock:
            if run.state is not RunState.RUNNING:
                return
            run.state = RunState.TIMED_OUT
            self._push(self._clock() + self._settings.cancel_grace, "abandon", run)
        job = run.job
        self._store.record(
            job.key,
            Outcome(
                success=False,
                duration=self._clock() - run.started_at,
                families=_failure_families(job.check, CheckError(ErrorReason.TIMEOUT, "timeout")),
                error_reason=ErrorReason.TIMEOUT,
                error_message=f"no result within the {job.timeout:g}s timeout; cancelled",
                start_delay=run.start_delay,
            ),
        )
        self._mark_first_round(job)
        run.token.cancel()

    def _abandon(self, run: Run) -> None:
        with self._lock:
            if run.state is not RunState.TIMED_OUT:
                return
            run.state = RunState.ABANDONED
        log.warning(
            "check did not return after cancel; worker abandoned",
            extra={"target": run.job.key.target, "check": run.job.key.check},
        )
        run.token.abandon()
        self._workers.abandon(run.thread_id)
        run.job.running = False  # the next run may start (and fail fast on the hung target)
        run.finished.set()

    # --- worker side ------------------------------------------------------------------------------------

    def _execute(self, run: Run) -> None:
        job = run.job
        with self._lock:
            if self._stopping:
                job.running = False
                run.finished.set()
                return
            run.state = RunState.RUNNING
            run.started_at = self._clock()
            run.thread_id = threading.get_ident()
            self._push(run.started_at + job.timeout, "deadline", run)
        outcome = run_check(job.check, RunContext(timeout=job.timeout, cancel=run.token))
        outcome = replace(outcome, duration=self._clock() - run.started_at, start_delay=run.start_delay)
        with self._lock:
            late = run.state is not RunState.RUNNING
            if not late:
                run.state = RunState.DONE
            if run.state is not RunState.ABANDONED:
                job.running = False
        if not late:
            self._store.record(job.key, outcome)
            self._mark_first_round(job)
        run.finished.set()

    def _mark_first_round(self, job: Job) -> None:
        with self._lock:
            self._first_round_pending.discard(job.key)
            if not self._first_round_pending:
                self.first_round_done.set()


def run_check(check: Check, ctx: RunContext) -> Outcome:
    """Run a check once, turning every way it can fail into an Outcome with a reason."""
    try:
        families = check.run(ctx)
    except CheckError as exc:
        return Outcome(False, 0.0, _failure_families(check, exc), exc.reason, exc.message)
    except Exception as exc:
        log.exception("check crashed", extra={"check": check.name})
        error = CheckError(ErrorReason.OTHER, f"{type(exc).__name__}: {exc}"[:300])
        return Outcome(False, 0.0, _failure_families(check, error), error.reason, error.message)
    return Outcome(True, 0.0, families, findings=ctx.findings)


def _failure_families(check: Check, error: CheckError) -> list[MetricFamily]:
    try:
        return list(check.failure_families(error))
    except Exception:
        log.exception("failure_families crashed", extra={"check": check.name})
        return []


def jobs_by_key(jobs: list[Job]) -> Mapping[CheckKey, Job]:
    return {job.key: job for job in jobs}
