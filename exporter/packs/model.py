"""The ERP pack model: named read-only queries per SQL dialect and the metrics their columns become.

A pack is YAML (see `exporter/packs/tryton/queries.yml` and docs/packs.md). Each query declares the columns it
must return; a `metrics` query maps value columns to gauges or counters, a `job_log` query returns the
jobs the ERP finished since a watermark, which become `erp_transaction_duration_seconds` observations and
failures. Parameters (`:name` in the SQL) are numbers, declared with a default and bounds and overridable
per target; they are written into the SQL only as validated numbers, never as text (`exporter.sqlparams`,
shared with the audits).

Rules that span several keys (columns a metric needs, placeholders, the read-only guard) live in
`exporter.packs.loader`, which reports each at the exact key to change.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator

from exporter.source.base import NAME_PATTERN, StrictModel
from exporter.source.durations import PositiveDuration
from exporter.sqlparams import Number

PARAM_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
COLUMN_PATTERN = r"^[a-z_][a-z0-9_]*$"  # result columns are compared in lower case
METRIC_NAME_PATTERN = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"

#: the dialects a query's `sql` mapping may name
SQL_DIALECTS: tuple[str, ...] = ("postgresql", "sqlite", "mysql", "mssql")

#: what every `kind: job_log` query returns, one row per finished job
JOB_LOG_COLUMNS: tuple[str, ...] = ("id", "job", "finished_at", "duration_seconds", "success")
#: what every `kind: document_events` query returns, one row per event of a business document
DOCUMENT_EVENT_COLUMNS: tuple[str, ...] = ("id", "document", "event", "occurred_at")
#: what every `kind: document_totals` query returns, one row per document type and event
DOCUMENT_TOTAL_COLUMNS: tuple[str, ...] = ("document", "event", "total")
SINCE = "since"  # the watermark placeholder, `:since` (seconds since the Unix epoch, UTC)
#: the kinds whose SQL selects the rows since the watermark
WATERMARK_KINDS: tuple[str, ...] = ("job_log", "document_events")
#: the kinds that count business documents (erp_business_documents_total)
DOCUMENT_KINDS: tuple[str, ...] = ("document_events", "document_totals")

DEFAULT_QUERY_INTERVAL = 60.0
DEFAULT_QUERY_TIMEOUT = 10.0
DEFAULT_MAX_TRANSACTIONS = 100


def _sql_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected the SQL text")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


SqlText = Annotated[str, PlainValidator(_sql_text, json_schema_input_type=str)]
ColumnName = Annotated[str, Field(pattern=COLUMN_PATTERN)]
SnakeName = Annotated[str, Field(pattern=COLUMN_PATTERN)]  # document types and events: label values


class PackParam(StrictModel):
    """A number the SQL uses as `:name`; the target's pack entry may override it within min..max."""

    default: Number = Field(description="The value unless the target's pack entry sets its own.")
    min: Number | None = Field(default=None, description="Smallest value an override may have.")
    max: Number | None = Field(default=None, description="Largest value an override may have.")
    description: str = Field(default="", description="What the number means, with its unit.")


class PackSql(StrictModel):
    """The query text per dialect; a target runs the one of its own dialect."""

    postgresql: SqlText | None = None
    sqlite: SqlText | None = None
    mysql: SqlText | None = None
    mssql: SqlText | None = None

    def items(self) -> list[tuple[str, str]]:
        """(dialect, SQL) for every dialect that has a query."""
        return [(name, text) for name in SQL_DIALECTS if (text := getattr(self, name)) is not None]


class PackMetric(StrictModel):
    """One value column of a query published as a metric, one series per row, labelled by label columns."""

    name: Annotated[str, Field(pattern=METRIC_NAME_PATTERN)] = Field(description="The metric name (erp_...).")
    type: Literal["gauge", "counter"] = Field(
        default="gauge", description="gauge, or counter for a value the ERP itself only ever increases."
    )
    help: Annotated[str, Field(min_length=1)] = Field(description="What the metric means (HELP text).")
    value: ColumnName = Field(description="The column holding the value.")
    labels: list[ColumnName] = Field(
        default_factory=list, description="Columns whose values become labels of the same name."
    )


class PackQuery(StrictModel):
    """One named query of a pack; each becomes its own check `<pack>/<name>` with its own interval."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(description="Unique in the pack.")
    description: str = Field(default="", description="What the query measures and how.")
    kind: Literal["metrics", "job_log", "document_events", "document_totals"] = Field(
        default="metrics",
        description="metrics: columns become metrics; job_log: finished jobs since `:since` become "
        "erp_transaction_* observations, each counted once; document_events: business-document events "
        "since `:since`, each counted once in erp_business_documents_total; document_totals: the ERP's "
        "own totals of documents that reached an event, whose growth is counted there.",
    )
    interval: PositiveDuration = Field(default=DEFAULT_QUERY_INTERVAL, description="How often the query runs.")
    timeout: PositiveDuration = Field(
        default=DEFAULT_QUERY_TIMEOUT, description="A run that takes longer is cancelled."
    )
    sql: PackSql = Field(description="The query per dialect (postgresql, sqlite, mysql, mssql); at least one.")
    columns: Annotated[list[ColumnName], Field(min_length=1)] = Field(
        description="The columns the query must return (lower case); a result without one fails the check."
    )
    metrics: list[PackMetric] = Field(default_factory=list, description="For kind metrics: the metrics.")
    buckets: list[Number] | None = Field(
        default=None, description="For kind job_log: histogram bucket bounds in seconds (default: the standard)."
    )
    max_transactions: Annotated[int, Field(ge=1, le=10_000)] = Field(
        default=DEFAULT_MAX_TRANSACTIONS,
        description="For kind job_log: most distinct job names kept as `transaction` labels; the rest are "
        "counted under transaction=\"_other\".",
    )
    documents: dict[SnakeName, list[SnakeName]] = Field(
        default_factory=dict,
        description="For kinds document_events and document_totals: each document type the query returns "
        "and its events; every pair is published from the start (at 0), and a row with another pair fails "
        "the check (the bound on the series).",
    )


class Pack(StrictModel):
    """An ERP pack file."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(description="The `pack` label value.")
    description: Annotated[str, Field(min_length=1)] = Field(description="What the pack monitors.")
    erp: Annotated[str, Field(min_length=1)] = Field(description="The ERP product, e.g. tryton.")
    params: dict[Annotated[str, Field(pattern=PARAM_NAME_PATTERN)], PackParam] = Field(
        default_factory=dict, description="Numbers the SQL uses as `:name`, with defaults."
    )
    queries: Annotated[list[PackQuery], Field(min_length=1)] = Field(description="The pack's queries.")

    def query(self, name: str) -> PackQuery | None:
        return next((query for query in self.queries if query.name == name), None)

    def defaults(self) -> dict[str, int | float]:
        return {name: param.default for name, param in self.params.items()}

