"""The scheduler's promises: background runs on an interval, no overlap, timeouts, staleness, honest
failures, counted NULLs and a series cap.

The checks here are small check implementations written for the test (the scheduler's only
collaborator is the Check interface); the database-backed behaviour is proven in test_faults.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

from harness import wait_until

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.exposition import Exposition
from exporter.metrics import MetricFamily, MetricSpec, gauge
from exporter.scheduler import Job, Scheduler, SchedulerSettings
from exporter.store import CheckKey, CheckMeta, ResultStore
from exporter.workers import WorkerPool

VALUE = gauge("erp_test_value", "A test value.", "item")


class ScriptedCheck(BaseCheck):
    """Runs `behaviour` on every call; counts calls."""

    kind: ClassVar[str] = "scripted"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (VALUE,)

    def __init__(self, behaviour: Callable[[RunContext], list[MetricFamily]]) -> None:
        super().__init__("scripted")
        self.behaviour = behaviour
        self.calls = 0

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        self.calls += 1
        return self.behaviour(ctx)


def one_value(value: object = 1.0) -> Callable[[RunContext], list[MetricFamily]]:
    return lambda ctx: [VALUE.family().add_raw(value, item="a")]


KEY = CheckKey("t", "scripted")


@contextmanager
def scheduled(
    check: ScriptedCheck,
    interval: float = 0.2,
    timeout: float = 0.2,
    series_limit: int = 100,
    grace: float = 0.2,
    workers: int = 2,
) -> Iterator[tuple[ResultStore, Scheduler, WorkerPool]]:
    store = ResultStore()
    store.configure({KEY: CheckMeta("scripted", interval, timeout, series_limit, {"target": "t"})})
    pool = WorkerPool(workers, abandoned_limit=2)
    scheduler = Scheduler(
        [Job(KEY, check, interval, timeout)],
        store,
        pool,
        SchedulerSettings(jitter=0.1, cancel_grace=grace, first_run_spread=0.0),
    )
    scheduler.start()
    try:
        yield store, scheduler, pool
    finally:
        scheduler.stop()
        pool.stop()


def state_of(store: ResultStore):  # type: ignore[no-untyped-def]
    state = store.get(KEY)
    assert state is not None
    return state


def test_checks_run_in_the_background_on_their_interval() -> None:
    check = ScriptedCheck(one_value())
    with scheduled(check, interval=0.2) as (store, _, _):
        wait_until(lambda: state_of(store).runs_total >= 5, 5, "the check did not keep running")
    assert state_of(store).success is True


def test_ready_after_the_first_round() -> None:
    release = threading.Event()
    check = ScriptedCheck(lambda ctx: (release.wait(5), [])[1])
    with scheduled(check, interval=1, timeout=1) as (_, scheduler, _):
        assert not scheduler.first_round_done.is_set()
        release.set()
        assert scheduler.first_round_done.wait(5)


def test_a_run_is_skipped_and_counted_while_the_previous_one_still_runs() -> None:
    def slow(ctx: RunContext) -> list[MetricFamily]:
        time.sleep(0.5)
        return []

    check = ScriptedCheck(slow)
    with scheduled(check, interval=0.1, timeout=1.0, grace=1.0) as (store, _, _):
        wait_until(lambda: state_of(store).skipped_runs_total >= 3, 5, "overlapping runs were not skipped")
        wait_until(lambda: state_of(store).runs_total >= 1, 5, "no run finished")
    assert check.calls <= state_of(store).runs_total + 1  # never two at once


def test_timeout_is_recorded_at_the_deadline_and_the_check_is_cancelled() -> None:
    cancelled = threading.Event()

    def stuck(ctx: RunContext) -> list[MetricFamily]:
        ctx.cancel.on_cancel(cancelled.set)
        cancelled.wait(5)
        return [VALUE.family().add(1.0, item="late")]

    check = ScriptedCheck(stuck)
    with scheduled(check, interval=1.0, timeout=0.2) as (store, _, pool):
        wait_until(lambda: state_of(store).error_reason is ErrorReason.TIMEOUT, 5, "no timeout recorded")
        assert cancelled.is_set()
        assert state_of(store).families == ()  # the late result is not served
        assert pool.stats().abandoned == 0


def test_worker_that_ignores_cancel_is_abandoned_and_replaced() -> None:
    never = threading.Event()
    check = ScriptedCheck(lambda ctx: (never.wait(10), [])[1])
    with scheduled(check, interval=5.0, timeout=0.1, grace=0.1, workers=1) as (store, _, pool):
        wait_until(lambda: pool.stats().abandoned == 1, 5, "the worker was not abandoned")
        assert pool.stats().live == 1  # replaced, so other checks still have a worker
        never.set()
        wait_until(lambda: pool.stats().abandoned == 0, 5, "the abandoned worker did not come back")
    assert state_of(store).error_reason is ErrorReason.TIMEOUT


def test_failure_is_never_cached_as_success() -> None:
    results = iter([one_value(), one_value()])

    def flaky(ctx: RunContext) -> list[MetricFamily]:
        behaviour = next(results, None)
        if behaviour is None:
            raise CheckError(ErrorReason.QUERY, "relation does not exist")
        return behaviour(ctx)

    with scheduled(ScriptedCheck(flaky)) as (store, _, _):
        wait_until(lambda: state_of(store).error_reason is ErrorReason.QUERY, 5, "failure not recorded")
        state = state_of(store)
    assert state.success is False
    assert state.families == ()
    assert state.last_success_wall is not None  # when it last worked stays known
    assert state.errors_total[ErrorReason.QUERY] >= 1


def test_crashing_check_is_reported_as_other_and_others_go_on() -> None:
    def crash(ctx: RunContext) -> list[MetricFamily]:
        raise ZeroDivisionError("boom")

    with scheduled(ScriptedCheck(crash)) as (store, _, _):
        wait_until(lambda: state_of(store).runs_total >= 3, 5, "the scheduler stopped after a crash")
    assert state_of(store).error_reason is ErrorReason.OTHER
    assert "ZeroDivisionError" in state_of(store).error_message


def test_null_and_garbage_values_are_skipped_and_counted() -> None:
    def rows(ctx: RunContext) -> list[MetricFamily]:
        return [VALUE.family().add_raw(None, item="null").add_raw("n/a", item="text").add_raw(3, item="ok")]

    with scheduled(ScriptedCheck(rows)) as (store, _, _):
        wait_until(lambda: state_of(store).runs_total >= 1, 5, "no run")
        state = state_of(store)
    assert state.success is True
    assert [s.labels["item"] for f in state.families for s in f.samples] == ["ok"]
    assert state.skipped_values_total["null"] >= 1
    assert state.skipped_values_total["not_a_number"] >= 1


def test_series_above_the_limit_are_dropped_and_counted() -> None:
    def many(ctx: RunContext) -> list[MetricFamily]:
        family = VALUE.family()
        for index in range(50):
            family.add(float(index), item=str(index))
        return [family]

    with scheduled(ScriptedCheck(many), series_limit=10) as (store, _, _):
        wait_until(lambda: state_of(store).runs_total >= 1, 5, "no run")
        state = state_of(store)
    assert sum(len(f.samples) for f in state.families) == 10
    assert state.series_dropped_total >= 40


def test_result_older_than_two_intervals_plus_timeout_is_marked_stale_and_withheld() -> None:
    clock = [1000.0]
    store = ResultStore(monotonic=lambda: clock[0])
    store.configure({KEY: CheckMeta("scripted", 10.0, 5.0, 100, {"target": "t"})})
    from exporter.store import Outcome

    store.record(KEY, Outcome(True, 0.01, [VALUE.family().add(7.0, item="a")]))
    exposition = Exposition(store, lambda: [], monotonic=lambda: clock[0], include_process_metrics=False)
    fresh = exposition.get().plain.decode()
    assert 'erp_test_value{item="a",target="t"} 7.0' in fresh
    assert 'erp_check_stale{check="scripted",kind="scripted",target="t"} 0.0' in fresh
    clock[0] += 2 * 10.0 + 5.0 + 0.1
    stale = exposition.get().plain.decode()
    assert "erp_test_value{" not in stale
    assert 'erp_check_stale{check="scripted",kind="scripted",target="t"} 1.0' in stale


def test_scrapes_never_run_checks() -> None:
    check = ScriptedCheck(one_value())
    with scheduled(check, interval=5.0) as (store, _, _):
        wait_until(lambda: state_of(store).runs_total == 1, 5, "no first run")
        exposition = Exposition(store, lambda: [], include_process_metrics=False)
        for _ in range(100):
            exposition.get()
        assert check.calls == 1


def test_a_run_that_waited_for_a_busy_worker_reports_how_late_it_started() -> None:
    store = ResultStore()
    store.configure({KEY: CheckMeta("scripted", 5.0, 1.0, 100, {"target": "t"})})
    pool = WorkerPool(1, abandoned_limit=2)
    pool.submit(lambda: time.sleep(0.6))  # the only worker is busy when the first run falls due
    scheduler = Scheduler([Job(KEY, ScriptedCheck(one_value()), 5.0, 1.0)], store, pool,
                          SchedulerSettings(jitter=0.0, cancel_grace=0.2, first_run_spread=0.0))
    scheduler.start()
    try:
        wait_until(lambda: state_of(store).runs_total >= 1, 5, "the check never ran")
    finally:
        scheduler.stop()
        pool.stop()
    delay = state_of(store).start_delay
    assert delay is not None and delay >= 0.4
    page = Exposition(store, lambda: [], include_process_metrics=False).get().plain.decode()
    assert f'erp_check_start_delay_seconds{{check="scripted",kind="scripted",target="t"}} {delay!r}' in page
