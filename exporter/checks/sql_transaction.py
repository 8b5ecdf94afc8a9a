"""Synthetic SQL transactions: a named sequence of read-only queries, timed per step and in total.

The steps run in order in one transaction on one pooled connection (autocommit off for the duration,
always rolled back, autocommit restored: `Session.read_only_transaction`), so they see the database the way
a business transaction of the ERP does. Every statement passes the read-only guard, and the session is
read-only where the database supports it. Rows are fetched (up to MAX_ROWS per step, so the time includes
the transfer) and discarded.

A run that succeeds is observed in `erp_transaction_duration_seconds{transaction, step, source="sql"}` per
step and once without a `step` label for the whole transaction (first step sent to last step's rows
fetched; the connection checkout is not included: erp_database_connect_duration_seconds has that). A run
that fails is counted in `erp_transaction_failures_total{reason}` with the check's own error reason
(timeout, connect, auth, query, guard, other) and fails the check with it. See transaction_recorder for
why only successful runs are observed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.checks.transaction_recorder import TransactionError, TransactionRecorder
from exporter.checks.transactions_metrics import DEFAULT_BUCKETS, DURATION, FAILURES, LAST_SUCCESS
from exporter.config.model import CheckSettings, SqlTransactionCheckConfig
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec

SOURCE = "sql"
MAX_ROWS = 10_000
REASONS: tuple[str, ...] = tuple(reason.value for reason in ErrorReason)


@dataclass(frozen=True)
class SqlStep:
    name: str
    sql: str


class SqlTransactionCheck(BaseCheck):
    kind: ClassVar[str] = "sql_transaction"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (DURATION, FAILURES, LAST_SUCCESS)

    def __init__(
        self,
        name: str,
        database: TargetDatabase,
        steps: Sequence[SqlStep],
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name)
        if not steps:
            raise ValueError(f"sql transaction {name!r} needs at least one step")
        self._database = database
        self._steps = tuple(steps)
        self.recorder = TransactionRecorder(name, SOURCE, REASONS, buckets)

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        record = self.recorder.begin()
        timings: list[tuple[str, float]] = []
        try:
            with self._database.session(ctx) as session, session.read_only_transaction():
                started = time.monotonic()
                for step in self._steps:
                    step_started = time.monotonic()
                    try:
                        session.query(step.sql, max_rows=MAX_ROWS)
                    except CheckError as exc:
                        raise CheckError(exc.reason, f"step {step.name!r}: {exc.message}") from None
                    timings.append((step.name, time.monotonic() - step_started))
                total = time.monotonic() - started
        except CheckError as exc:
            self.recorder.fail(record, exc.reason.value)
            raise TransactionError(exc.reason, exc.reason.value, exc.message) from None
        self.recorder.succeed(record, timings, total)
        return self.recorder.families()

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        if not isinstance(error, TransactionError):
            # The scheduler gave up on the run (its timeout) or the run crashed: count it here, once.
            self.recorder.fail_current(error.reason.value)
        return self.recorder.families()


def _build(settings: CheckSettings, database: TargetDatabase) -> SqlTransactionCheck:
    assert isinstance(settings, SqlTransactionCheckConfig)
    return SqlTransactionCheck(
        settings.effective_name,
        database,
        [SqlStep(step.name, step.sql) for step in settings.steps],
        buckets=settings.buckets or DEFAULT_BUCKETS,
    )


def check_kind() -> CheckKind:
    """`sql_transaction`: one check per entry of a target, timing its steps as a business transaction."""
    return CheckKind("sql_transaction", SqlTransactionCheck.metrics, build_for_target=one_check_per_entry(_build))
