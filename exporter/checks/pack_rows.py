"""What every kind of pack query shares: its SQL per dialect, the columns it must return, label values,
timestamps, and the watermark that counts streamed rows exactly once.

The watermark is the newest stamp read plus the ids of the rows stamped exactly then: a query asks for rows
stamped at or after the watermark, and rows at the watermark whose id was already seen are skipped. So
several rows with the same stamp (ERPs often store whole seconds) are each counted once, even when they are
committed in different rounds, and a round cut at its row limit goes on where it stopped.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from exporter.checks.base import CheckError, ErrorReason
from exporter.db.target import QueryResult
from exporter.metrics import to_float
from exporter.packs.model import PackQuery


def sql_for(pack: str, query: PackQuery, dialect: str) -> str:
    """The query's SQL for the target's dialect; a clear error when the pack has none for it."""
    sql: str | None = getattr(query.sql, dialect, None)
    if sql is None:
        has = ", ".join(name for name, _ in query.sql.items())
        message = f"pack '{pack}' query '{query.name}' has no SQL for {dialect} (it has: {has})"
        raise CheckError(ErrorReason.QUERY, message)
    return sql


def require_columns(pack: str, query: PackQuery, result: QueryResult) -> None:
    """Fail the check when the result lacks a column the query must return."""
    returned = [column.lower() for column in result.columns]
    for column in query.columns:
        if column not in returned:
            raise CheckError(
                ErrorReason.QUERY,
                f"pack '{pack}' query '{query.name}' returned no column '{column}' "
                f"(it returned: {', '.join(returned) or 'nothing'})",
            )


def label_value(value: object) -> str:
    """A column value as a label value (NULL is the empty string)."""
    return "" if value is None else str(value)


def timestamp(value: object) -> float | None:
    """A column holding seconds since the Unix epoch, or a timestamp the driver returned as one (naive: UTC)."""
    if isinstance(value, datetime.datetime):
        stamp = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return stamp.timestamp()
    return to_float(value)


class Stamped(Protocol):
    """A streamed row: an id unique in its query, and when it happened (seconds since the epoch, UTC)."""

    @property
    def id(self) -> str: ...

    @property
    def stamp(self) -> float: ...


RowT = TypeVar("RowT", bound=Stamped)


@dataclass(frozen=True)
class Watermark:
    """The newest stamp read, and the ids of the rows stamped exactly then."""

    finished_at: float
    ids: frozenset[str] = frozenset()


def advance(rows: Sequence[RowT], watermark: Watermark) -> tuple[list[RowT], Watermark]:
    """The rows not counted yet, oldest first, and the watermark after them (pure).

    A row is new when it is stamped after the watermark, or exactly at it with an id not seen at it. Rows
    stamped before the watermark were counted already (the SQL may return some: its bound may be coarser
    than the watermark).
    """
    current = [row for row in rows if row.stamp >= watermark.finished_at]
    new = [row for row in current if row.stamp > watermark.finished_at or row.id not in watermark.ids]
    new.sort(key=lambda row: (row.stamp, row.id))
    if not current:
        return new, watermark
    newest = max(row.stamp for row in current)
    at_newest = {row.id for row in current if row.stamp == newest}
    if newest == watermark.finished_at:
        at_newest |= watermark.ids
    return new, Watermark(newest, frozenset(at_newest))
