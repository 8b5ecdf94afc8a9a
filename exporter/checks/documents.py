"""Business-document throughput from the ERP's own tables: erp_business_documents_total{document, event}.

Two kinds of pack query feed the one counter, each counting a document once when it reaches an event:

* `document_events`: the events that carry a stamp that never changes (a document's creation time),
  read since a watermark exactly like the job log (exporter/checks/pack_rows.py): rows at or after the
  watermark, ids at the watermark skipped, a round cut at its row limit goes on in the next one;
* `document_totals`: the events the ERP records only as a state (confirmed, posted, done: Tryton keeps no
  time of the change, and later writes move `write_date`), read as the ERP's own running total of the
  documents that reached the event; the counter grows by the total's growth.

Both *prime* first (exporter start, restart, reload): the events of the last hour are only marked seen,
the totals only remembered, so history is never counted again and the counters start at 0. Every
declared (document, event) pair is published from the start, so the first event after a restart is a
visible increase. A run that fails or is cancelled changes nothing; the next run counts what it missed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.pack_rows import Watermark, advance, label_value, require_columns, sql_for, timestamp
from exporter.checks.transactions_metrics import CounterAccumulator
from exporter.db.target import DEFAULT_MAX_ROWS, QueryResult, TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, MetricType, ValueConversionError, to_float
from exporter.packs.loader import PACK_LABEL
from exporter.packs.model import SINCE, PackQuery
from exporter.sqlparams import render_sql

BUSINESS_DOCUMENTS = MetricSpec(
    "erp_business_documents_total",
    MetricType.COUNTER,
    "Business documents that reached an event (created, confirmed, posted, done) since the exporter started, "
    "each counted once, from the ERP's own tables.",
    ("document", "event", PACK_LABEL),
)

PRIME_LOOKBACK = 3600.0  # seconds of events a new check reads to find where to start
MAX_EVENT_ROWS = 10_000  # rows per round; more are read in the next round
#: how far a round may grow when more rows than its limit share one stamp (the watermark cannot move then)
MAX_ROUND_GROWTH = 16


@dataclass(frozen=True)
class DocumentEvent:
    """One event of one business document, as a document_events query returns it."""

    id: str
    document: str
    event: str
    occurred_at: float  # seconds since the Unix epoch (UTC)

    @property
    def stamp(self) -> float:
        return self.occurred_at


def _not_a_number(pack: str, query: PackQuery, exc: ValueConversionError) -> CheckError:
    return CheckError(
        ErrorReason.QUERY, f"pack '{pack}' query '{query.name}' returned a value that is not a number: {exc}"
    )


def parse_event_rows(pack: str, query: PackQuery, rows: Iterable[dict[str, Any]]) -> list[DocumentEvent]:
    """Rows of a document_events result as events; rows without an id or a stamp are left out."""
    events: list[DocumentEvent] = []
    for row in rows:
        try:
            occurred_at = timestamp(row["occurred_at"])
        except ValueConversionError as exc:
            raise _not_a_number(pack, query, exc) from None
        if occurred_at is None or row["id"] is None:
            continue
        document, event = label_value(row["document"]), label_value(row["event"])
        events.append(DocumentEvent(str(row["id"]), document, event, occurred_at))
    return events


def parse_total_rows(pack: str, query: PackQuery, rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """Rows of a document_totals result as {(document, event): total}; a NULL total is 0."""
    totals: dict[tuple[str, str], float] = {}
    for row in rows:
        try:
            total = to_float(row["total"])
        except ValueConversionError as exc:
            raise _not_a_number(pack, query, exc) from None
        key = (label_value(row["document"]), label_value(row["event"]))
        totals[key] = totals.get(key, 0.0) + (total or 0.0)
    return totals


def _declared_pairs(query: PackQuery) -> list[tuple[str, str]]:
    return [(document, event) for document, events in query.documents.items() for event in events]


class _DocumentCounter(BaseCheck):
    """What both kinds share: the declared pairs, the counter, and the rule that one run counts at a time."""

    kind: ClassVar[str] = "pack"

    def __init__(
        self, name: str, database: TargetDatabase, pack_label: str, query: PackQuery, params: dict[str, int | float]
    ) -> None:
        super().__init__(name)
        self._database = database
        self._pack = pack_label
        self._query = query
        self._params = dict(params)
        self._pairs = frozenset(_declared_pairs(query))
        self._lock = threading.Lock()
        self._counts = CounterAccumulator([self._labels(pair) for pair in _declared_pairs(query)])

    def _labels(self, pair: tuple[str, str]) -> dict[str, str]:
        document, event = pair
        return {"document": document, "event": event, PACK_LABEL: self._pack}

    def _require_declared(self, pairs: Iterable[tuple[str, str]]) -> None:
        for pair in sorted(set(pairs) - self._pairs):
            declared = ", ".join(f"{document}/{event}" for document, event in sorted(self._pairs))
            raise CheckError(
                ErrorReason.QUERY,
                f"pack '{self._pack}' query '{self._query.name}' returned document '{pair[0]}' event "
                f"'{pair[1]}', which its `documents` do not declare (declared: {declared})",
            )

    def _read(self, ctx: RunContext, values: dict[str, float], max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
        with self._database.session(ctx) as session:
            template = sql_for(self._pack, self._query, session.dialect.value)
            sql = render_sql(template, {**self._params, **values})
            result = session.query(sql, max_rows=max_rows)
        require_columns(self._pack, self._query, result)
        if ctx.cancel.cancelled:
            raise CheckError(ErrorReason.TIMEOUT, "cancelled before the documents were counted")
        return result

    def count(self, document: str, event: str) -> float:
        """The counter's value for one pair (0 before anything was counted)."""
        return self._counts.value(self._labels((document, event)))

    def _families(self) -> list[MetricFamily]:
        return [self._counts.family(BUSINESS_DOCUMENTS)]


def _utc_now() -> float:
    return time.time()


class DocumentEventsCheck(_DocumentCounter):
    """A `document_events` query: events with a stamp that never changes, each counted once by a watermark."""

    def __init__(
        self,
        name: str,
        database: TargetDatabase,
        pack_label: str,
        query: PackQuery,
        params: dict[str, int | float],
        clock: Callable[[], float] = _utc_now,
        prime_lookback: float = PRIME_LOOKBACK,
        max_rows: int = MAX_EVENT_ROWS,
    ) -> None:
        super().__init__(name, database, pack_label, query, params)
        self._clock = clock
        self._prime_lookback = prime_lookback
        self._max_rows = max_rows
        self._watermark: Watermark | None = None  # None: not primed yet
        self._rows_per_round = max_rows

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
        with self._lock:
            rows_per_round = self._rows_per_round
        result = self._read(ctx, {SINCE: watermark.finished_at}, rows_per_round)
        new, next_watermark = advance(parse_event_rows(self._pack, self._query, result.dicts()), watermark)
        self._require_declared((event.document, event.event) for event in new)
        stuck = result.truncated and next_watermark.finished_at == watermark.finished_at
        if stuck and rows_per_round >= self._max_rows * MAX_ROUND_GROWTH:
            raise CheckError(
                ErrorReason.QUERY,
                f"pack '{self._pack}' query '{self._query.name}' returned more than {rows_per_round} rows with "
                "the same occurred_at: the watermark cannot move on",
            )
        with self._lock:
            if self._watermark != (None if priming else watermark):
                raise CheckError(ErrorReason.OTHER, "another run of this check counted these documents meanwhile")
            if not priming:
                for event in new:
                    self._counts.inc(self._labels((event.document, event.event)))
            self._watermark = next_watermark
            # More rows than a round reads share the watermark's stamp: read more next time, or it never moves.
            self._rows_per_round = rows_per_round * 2 if stuck else self._max_rows
        return self._families()


class DocumentTotalsCheck(_DocumentCounter):
    """A `document_totals` query: the ERP's totals of documents that reached an event; their growth is counted.

    A total that shrinks (a document left the event's state, which Tryton allows rarely) lowers the
    baseline without counting anything, so the counter never goes down and nothing is counted twice.
    """

    def __init__(
        self, name: str, database: TargetDatabase, pack_label: str, query: PackQuery, params: dict[str, int | float]
    ) -> None:
        super().__init__(name, database, pack_label, query, params)
        self._baseline: dict[tuple[str, str], float] | None = None  # None: not primed yet

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._lock:
            baseline = self._baseline
        returned = parse_total_rows(self._pack, self._query, self._read(ctx, {}).dicts())
        self._require_declared(returned)
        # A pair the query returned no row for has no document in the event yet: its total is 0, so the
        # first documents that reach it later are counted.
        totals = {pair: returned.get(pair, 0.0) for pair in self._pairs}
        with self._lock:
            if self._baseline is not baseline:
                raise CheckError(ErrorReason.OTHER, "another run of this check counted these documents meanwhile")
            if baseline is not None:
                for pair, total in totals.items():
                    grown = total - baseline[pair]
                    if grown > 0:
                        self._counts.inc(self._labels(pair), grown)
            self._baseline = totals
        return self._families()

    @property
    def primed(self) -> bool:
        with self._lock:
            return self._baseline is not None


def build_document_check(
    name: str, database: TargetDatabase, pack_label: str, query: PackQuery, params: dict[str, int | float]
) -> DocumentEventsCheck | DocumentTotalsCheck:
    """The check of a document_events or document_totals query."""
    if query.kind == "document_events":
        return DocumentEventsCheck(name, database, pack_label, query, params)
    return DocumentTotalsCheck(name, database, pack_label, query, params)
