"""ERP pack checks: one check per query of a pack (exporter/packs/), named `<pack>/<query>`.

A `metrics` query maps value columns to gauges or counters, one series per row, labelled by label columns
and `pack`. `document_events` and `document_totals` queries count business documents (exporter/checks/
documents.py). A `job_log` query reads the jobs the ERP finished since a watermark and turns each into one
observation of erp_transaction_duration_seconds{source="job_log"} (and a failure count when it failed).

How a job is counted exactly once (JobLogCheck):

* the watermark is the newest `finished_at` seen, plus the ids of the rows finished exactly then; the
  query asks for rows with finished_at >= watermark, and rows at the watermark whose id was already seen
  are skipped, so several jobs finishing in the same second (ERPs often store whole seconds) are each
  counted once, even when they are committed in different rounds;
* rows come back ordered by finished_at; when a round is cut at the row limit, the watermark only moves to
  the newest row read, so the rest comes in the next round;
* a new check (exporter start, restart, reload) first *primes*: it reads the jobs finished in the last hour
  and only marks them seen, so history is never counted again and counters start at 0;
* the new watermark and the counts are applied together at the end of a successful run: a run that fails
  or times out changes nothing, and its jobs are counted by the next run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from exporter.checks import transactions_metrics as tm
from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.documents import (
    BUSINESS_DOCUMENTS,
    DocumentEventsCheck,
    DocumentTotalsCheck,
    build_document_check,
)
from exporter.checks.pack_rows import Watermark, advance, label_value, require_columns, sql_for, timestamp
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.loader import LoadedConfig
from exporter.config.model import CheckSettings, PackCheckConfig
from exporter.config.pack_entries import selected_queries
from exporter.config.schedule import check_schedule
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, MetricType, ValueConversionError, to_float
from exporter.packs.loader import PACK_LABEL, load_pack, shipped_packs
from exporter.packs.model import DOCUMENT_KINDS, SINCE, Pack, PackQuery
from exporter.sqlparams import render_sql

# ---------------------------------------------------------------------------------------------------
# The metrics a pack publishes (for `erp-exporter metrics` and the checks)


def _job_log_spec(spec: MetricSpec, *labels: str) -> MetricSpec:
    return replace(spec, labels=(*labels, PACK_LABEL))


#: the shared transaction metrics as a job_log query publishes them: no `step`, and the `pack` label
JOB_LOG_SPECS: tuple[MetricSpec, ...] = (
    _job_log_spec(tm.DURATION, "transaction", "source"),
    _job_log_spec(tm.FAILURES, "transaction", "source", "reason"),
    _job_log_spec(tm.LAST_SUCCESS, "transaction", "source"),
)


def query_metric_specs(query: PackQuery) -> tuple[MetricSpec, ...]:
    """The metrics a query publishes; every one also carries the `pack` label."""
    if query.kind == "job_log":
        return JOB_LOG_SPECS
    if query.kind in DOCUMENT_KINDS:
        return (BUSINESS_DOCUMENTS,)
    return tuple(
        MetricSpec(
            name=metric.name,
            type=MetricType.COUNTER if metric.type == "counter" else MetricType.GAUGE,
            help=metric.help.strip(),
            labels=(*metric.labels, PACK_LABEL),
        )
        for metric in query.metrics
    )


def shipped_metric_specs() -> tuple[MetricSpec, ...]:
    """Every metric the shipped packs can publish, without duplicates."""
    seen: dict[str, MetricSpec] = {}
    for name in shipped_packs():
        for query in load_pack(name).queries:
            for spec in query_metric_specs(query):
                seen.setdefault(spec.name, spec)
    return tuple(seen.values())



SOURCE = "job_log"
FAILED_REASON = "job_failed"
OTHER_TRANSACTION = "_other"  # the label of jobs beyond a query's max_transactions
PRIME_LOOKBACK = 3600.0  # seconds of history a new check reads to find the newest finished job
MAX_JOB_ROWS = 10_000  # rows per round; more are read in the next round


def rows_to_families(
    pack_label: str, query: PackQuery, specs: Sequence[MetricSpec], rows: Iterable[dict[str, Any]]
) -> list[MetricFamily]:
    """One family per metric of the query, one series per row (pure: rows in, samples out)."""
    families = [spec.family() for spec in specs]
    for row in rows:
        for metric, family in zip(query.metrics, families, strict=True):
            labels = {label: label_value(row[label]) for label in metric.labels}
            family.add_raw(row[metric.value], **labels, **{PACK_LABEL: pack_label})
    return families


class PackQueryCheck(BaseCheck):
    """A `metrics` query of a pack."""

    kind: ClassVar[str] = "pack"

    def __init__(
        self, name: str, database: TargetDatabase, pack_label: str, query: PackQuery, params: dict[str, int | float]
    ) -> None:
        super().__init__(name)
        self._database = database
        self._pack = pack_label
        self._query = query
        self._params = dict(params)
        self._specs = query_metric_specs(query)

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._database.session(ctx) as session:
            sql = render_sql(sql_for(self._pack, self._query, session.dialect.value), self._params)
            result = session.query(sql)
        require_columns(self._pack, self._query, result)
        return rows_to_families(self._pack, self._query, self._specs, result.dicts())


# ---------------------------------------------------------------------------------------------------
# job_log


@dataclass(frozen=True)
class JobRun:
    """One finished job as the job_log query returns it."""

    id: str
    job: str
    finished_at: float  # seconds since the Unix epoch (UTC)
    duration_seconds: float | None
    success: bool

    @property
    def stamp(self) -> float:
        return self.finished_at


def parse_job_rows(pack: str, query: PackQuery, rows: Iterable[dict[str, Any]]) -> list[JobRun]:
    """Rows of a job_log result as JobRuns; rows without finished_at (not finished) are left out."""
    runs: list[JobRun] = []
    for row in rows:
        try:
            finished_at = timestamp(row["finished_at"])
            duration = to_float(row["duration_seconds"])
            success = to_float(row["success"])
        except ValueConversionError as exc:
            raise CheckError(
                ErrorReason.QUERY, f"pack '{pack}' query '{query.name}' returned a value that is not a number: {exc}"
            ) from None
        if finished_at is None or row["id"] is None:
            continue
        job = label_value(row["job"]) or "unknown"
        duration = None if duration is None else max(0.0, duration)
        runs.append(JobRun(str(row["id"]), job, finished_at, duration, bool(success)))
    return runs


def _utc_now() -> float:
    return time.time()


class JobLogCheck(BaseCheck):
    """A `job_log` query of a pack: finished jobs as transaction durations and failures, each counted once."""

    kind: ClassVar[str] = "pack"

    def __init__(
        self,
        name: str,
        database: TargetDatabase,
        pack_label: str,
        query: PackQuery,
        params: dict[str, int | float],
        buckets: Sequence[float] | None = None,
        clock: Callable[[], float] = _utc_now,
        prime_lookback: float = PRIME_LOOKBACK,
        max_rows: int = MAX_JOB_ROWS,
    ) -> None:
        super().__init__(name)
        self._database = database
        self._pack = pack_label
        self._query = query
        self._params = dict(params)
        self._clock = clock
        self._prime_lookback = prime_lookback
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._watermark: Watermark | None = None  # None: not primed yet
        self._durations = tm.HistogramAccumulator(buckets if buckets is not None else tm.DEFAULT_BUCKETS)
        self._failures = tm.CounterAccumulator()
        self._last_success: dict[str, float] = {}
        self._transactions: set[str] = set()

    @property
    def watermark(self) -> Watermark | None:
        with self._lock:
            return self._watermark

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._lock:
            watermark = self._watermark
        priming = watermark is None
        if watermark is None:
            watermark = Watermark(self._clock() - self._prime_lookback)
        with self._database.session(ctx) as session:
            template = sql_for(self._pack, self._query, session.dialect.value)
            sql = render_sql(template, {**self._params, SINCE: watermark.finished_at})
            result = session.query(sql, max_rows=self._max_rows)
        require_columns(self._pack, self._query, result)
        runs = parse_job_rows(self._pack, self._query, result.dicts())
        new, next_watermark = advance(runs, watermark)
        if ctx.cancel.cancelled:
            raise CheckError(ErrorReason.TIMEOUT, "cancelled before the jobs were counted")
        with self._lock:
            if self._watermark != (None if priming else watermark):
                raise CheckError(ErrorReason.OTHER, "another run of this check counted these jobs meanwhile")
            for run in new:
                self._record(run, count=not priming)
            self._watermark = next_watermark
        return self._families()

    def _record(self, run: JobRun, count: bool) -> None:
        """Count one finished job (priming only learns its name and last success)."""
        transaction = self._transaction_label(run.job)
        labels = {"transaction": transaction, "source": SOURCE, PACK_LABEL: self._pack}
        self._failures.inc({**labels, "reason": FAILED_REASON}, 0.0)
        if run.success:
            self._last_success[transaction] = max(self._last_success.get(transaction, 0.0), run.finished_at)
        if not count:
            return
        if run.duration_seconds is not None:
            self._durations.observe(labels, run.duration_seconds)
        if not run.success:
            self._failures.inc({**labels, "reason": FAILED_REASON})

    def _transaction_label(self, job: str) -> str:
        if job in self._transactions:
            return job
        if len(self._transactions) < self._query.max_transactions:
            self._transactions.add(job)
            return job
        return OTHER_TRANSACTION

    def _families(self) -> list[MetricFamily]:
        duration_spec, failures_spec, last_success_spec = JOB_LOG_SPECS
        last_success = last_success_spec.family()
        with self._lock:
            stamps = sorted(self._last_success.items())
        for transaction, stamp in stamps:
            last_success.add(stamp, transaction=transaction, source=SOURCE, **{PACK_LABEL: self._pack})
        return [self._durations.family(duration_spec), self._failures.family(failures_spec), last_success]


# ---------------------------------------------------------------------------------------------------
# Building the checks of a config entry


def query_schedule(entry: PackCheckConfig, query: PackQuery) -> tuple[float, float]:
    """(interval, timeout) of one query's check: the entry's when set, else the query's own."""
    schedule = check_schedule(
        entry.interval, entry.timeout, default_interval=query.interval, default_timeout=query.timeout
    )
    return schedule.interval, schedule.timeout


def build_pack_checks(settings: CheckSettings, database: TargetDatabase, loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per selected query of the entry's pack, named `<pack>/<query>`."""
    assert isinstance(settings, PackCheckConfig)
    pack: Pack = settings.resolved_pack or load_pack(settings.pack, loaded.base_dir)
    label = settings.name or pack.name
    params = {**pack.defaults(), **settings.params}
    checks: list[ScheduledCheck] = []
    for query in selected_queries(settings, pack):
        name = f"{label}/{query.name}"
        interval, timeout = query_schedule(settings, query)
        check: PackQueryCheck | JobLogCheck | DocumentEventsCheck | DocumentTotalsCheck
        if query.kind in DOCUMENT_KINDS:
            check = build_document_check(name, database, label, query, params)
        elif query.kind == "job_log":
            buckets = settings.buckets if settings.buckets is not None else query.buckets
            check = JobLogCheck(name, database, label, query, params, buckets)
        else:
            check = PackQueryCheck(name, database, label, query, params)
        checks.append(ScheduledCheck(name, check, interval, timeout))
    return checks


def check_kind() -> CheckKind:
    """`pack`: an entry of a target runs each selected query of its ERP pack as a check of its own."""
    return CheckKind("pack", shipped_metric_specs(), build_for_target=build_pack_checks)
