"""One monitored database: its pool, and sessions that run guarded, bounded, cancellable queries."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pyodbc

from exporter.db.connstr import ConnectionSpec
from exporter.db.dialect import Dialect, dialect_from_dbms_name
from exporter.db.errors import ClassifiedError, classify, error_message
from exporter.db.guard import GuardError, check_read_only
from exporter.db.pool import Backoff, ConnectionPool, Lease, OpenConnection, PoolStats
from exporter.db.session_setup import is_truthy, session_for
from exporter.run import CheckError, ErrorReason, RunContext

log = logging.getLogger(__name__)

# The driver manager's own pooling would keep connections we closed alive behind our back.
pyodbc.pooling = False

DEFAULT_MAX_ROWS = 100_000


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False

    def dicts(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by lower-case column name (drivers disagree on case)."""
        names = [c.lower() for c in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]

    def scalar(self) -> Any:
        """The first column of the first row, or None when there is no row."""
        return self.rows[0][0] if self.rows else None


@dataclass(frozen=True)
class ServerInfo:
    dialect: Dialect
    dbms_name: str
    dbms_version: str
    read_only: bool


class TargetDatabase:
    """Everything the checks of one target share: the connection spec, the pool, counters."""

    def __init__(self, name: str, spec: ConnectionSpec, max_connections: int, backoff: Backoff) -> None:
        self.name = name
        self.spec = spec
        self._secrets = [spec.password] if spec.password else []
        self._lock = threading.Lock()
        self._statements_total = 0
        self._server: ServerInfo | None = None
        self.pool = ConnectionPool(name, self._open, max_connections, backoff)

    # --- public API -------------------------------------------------------------------------------

    def set_read_timeout(self, seconds: float) -> None:
        """The read timeout of connections opened from now on. Set when the target's checks are built (it
        must outlast the longest of them), before the first connection is opened."""
        self.spec = replace(self.spec, read_timeout=seconds)

    @contextmanager
    def session(self, ctx: RunContext, fresh: bool = False) -> Iterator[Session]:
        """Check a connection out for the length of a `with` block."""
        lease = self.pool.acquire(
            ctx.cancel, wait=ctx.timeout, fresh=fresh, classify=self.classify_connect_error
        )
        session = Session(self, lease, ctx)
        try:
            yield session
        finally:
            session.close()

    @property
    def statements_total(self) -> int:
        with self._lock:
            return self._statements_total

    @property
    def server(self) -> ServerInfo | None:
        """What the last successful connect learned (None before the first)."""
        with self._lock:
            return self._server

    def pool_stats(self) -> PoolStats:
        return self.pool.stats()

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text

    def close(self) -> None:
        self.pool.close()

    # --- internals used by Session ----------------------------------------------------------------

    def count_statement(self) -> None:
        with self._lock:
            self._statements_total += 1

    def classify_query_error(self, exc: BaseException) -> ClassifiedError:
        return classify(exc, during_connect=False, secrets=self._secrets)

    def classify_connect_error(self, exc: BaseException) -> ClassifiedError:
        return classify(exc, during_connect=True, secrets=self._secrets)

    def _open(self, time_left: float) -> OpenConnection:
        """Connect within the configured login timeout, and never beyond the time the check has left."""
        started = time.monotonic()
        login_timeout = max(1, math.ceil(min(self.spec.connect_timeout, time_left)))
        raw = pyodbc.connect(
            self.spec.connection_string(login_timeout), autocommit=True, timeout=login_timeout
        )
        connect_seconds = time.monotonic() - started
        try:
            dbms_name = str(raw.getinfo(pyodbc.SQL_DBMS_NAME))
            dialect = dialect_from_dbms_name(dbms_name)
            read_only, version = self._prepare_session(raw, dialect)
        except Exception:
            raw.close()
            raise
        connection = OpenConnection(
            raw=raw,
            dialect=dialect,
            dbms_name=dbms_name,
            dbms_version=version,
            read_only=read_only,
            connect_seconds=connect_seconds,
            opened_at=time.monotonic(),
        )
        with self._lock:
            self._server = ServerInfo(dialect, dbms_name, version, read_only)
        return connection

    def _prepare_session(self, raw: Any, dialect: Dialect) -> tuple[bool, str]:
        """Make the session read-only and learn the server version. Returns (read_only, version)."""
        session = session_for(dialect)
        cursor = raw.cursor()
        try:
            if session.combined is not None:
                self.count_statement()
                try:
                    row = cursor.execute(session.combined).fetchone()
                except pyodbc.Error as exc:
                    log.info("combined session setup refused, setting up step by step",
                             extra={"target": self.name, "err": error_message(exc, self._secrets)})
                else:
                    if row is not None:
                        return is_truthy(row[0]), str(row[-1] or "").split()[0][:64] if row[-1] else ""
            for statement in session.setup:
                self.count_statement()
                try:
                    cursor.execute(statement)
                except pyodbc.Error as exc:
                    log.warning(
                        "session setup statement refused",
                        extra={"target": self.name, "err": error_message(exc, self._secrets)},
                    )
            read_only = False
            if session.read_only_probe is not None:
                self.count_statement()
                row = cursor.execute(session.read_only_probe).fetchone()
                read_only = row is not None and is_truthy(row[0])
            version = ""
            if session.version_query is not None:
                self.count_statement()
                row = cursor.execute(session.version_query).fetchone()
                version = str(row[0]).split()[0][:64] if row and row[0] is not None else ""
            return read_only, version
        finally:
            cursor.close()


class Session:
    """A checked-out connection. Every statement passes the read-only guard before it is sent."""

    def __init__(self, database: TargetDatabase, lease: Lease, ctx: RunContext) -> None:
        self.database = database
        self.ctx = ctx
        self.broken = False
        self._lease: Lease | None = lease
        self._statements = 0

    @property
    def lease(self) -> Lease:
        if self._lease is None:
            raise CheckError(ErrorReason.OTHER, "the session has no connection")
        return self._lease

    @property
    def dialect(self) -> Dialect:
        return self.lease.connection.dialect

    @property
    def connection(self) -> OpenConnection:
        return self.lease.connection

    def close(self) -> None:
        """Give the connection back to the pool (closed instead if it broke)."""
        if self._lease is not None:
            lease, self._lease = self._lease, None
            self.database.pool.release(lease, broken=self.broken)

    def query(self, sql: str, params: Sequence[Any] = (), max_rows: int = DEFAULT_MAX_ROWS) -> QueryResult:
        """Run one read-only query and fetch its rows. Raises CheckError with a classified reason."""
        try:
            check_read_only(sql, self.dialect)
        except GuardError as exc:
            raise CheckError(ErrorReason.GUARD, str(exc)) from None
        try:
            return self._run(sql, params, max_rows)
        except CheckError as exc:
            if exc.reason is ErrorReason.CONNECT and self.lease.reused and self._statements == 1:
                # A pooled connection the server closed meanwhile (restart, idle timeout): one fresh try.
                self._replace_connection()
                return self._run(sql, params, max_rows)
            raise

    @contextmanager
    def read_only_transaction(self) -> Iterator[None]:
        """Run the block's queries in one transaction on this connection; it is rolled back, never committed.

        Where the database supports it the session is read-only (session setup), and so is the transaction.
        Before it begins, a reused connection is probed (with query()'s one fresh try if the server closed
        it meanwhile, which cannot be done once steps have run) and the statement timeout is set outside the
        transaction (PostgreSQL undoes a SET made inside a transaction that is rolled back). Autocommit is
        restored afterwards; a connection that broke is not touched again: the pool closes it, which ends
        the transaction without a commit.
        """
        if self.lease.reused and self._statements == 0:
            self.query(session_for(self.dialect).probe_query, max_rows=1)
        else:
            self._apply_statement_timeout()
        raw = self.connection.raw
        try:
            raw.autocommit = False
        except pyodbc.Error as exc:
            failure = self.database.classify_query_error(exc)
            self.broken = self.broken or failure.connection_broken
            raise failure.as_check_error() from None
        try:
            yield
        finally:
            if not self.broken:
                try:
                    raw.rollback()
                    raw.autocommit = True
                except pyodbc.Error as exc:
                    log.debug("ending a read-only transaction failed: %s", type(exc).__name__)
                    self.broken = True

    # -----------------------------------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any], max_rows: int) -> QueryResult:
        if self.ctx.cancel.cancelled:
            raise CheckError(ErrorReason.TIMEOUT, "cancelled before the query was sent")
        self._apply_statement_timeout()
        cursor = self.connection.raw.cursor()
        cancel_lock = _CursorCancelLock()
        unregister = self.ctx.cancel.on_cancel(lambda: _cancel_in_background(cursor, cancel_lock))
        try:
            self._statements += 1
            self.database.count_statement()
            cursor.execute(sql, *params)
            columns = tuple(d[0] for d in cursor.description) if cursor.description else ()
            rows = [tuple(r) for r in cursor.fetchmany(max_rows + 1)] if columns else []
            truncated = len(rows) > max_rows
            return QueryResult(columns=columns, rows=rows[:max_rows], truncated=truncated)
        except pyodbc.Error as exc:
            failure = self.database.classify_query_error(exc)
            if failure.connection_broken:
                self.broken = True
            if self.ctx.cancel.cancelled:
                raise CheckError(
                    ErrorReason.TIMEOUT, f"query cancelled after {self.ctx.timeout:g}s"
                ) from None
            raise failure.as_check_error() from None
        finally:
            unregister()
            with cancel_lock.lock:  # never free the statement while a cancel is using it
                cancel_lock.closed = True
                try:
                    cursor.close()
                except pyodbc.Error:
                    self.broken = True

    def _apply_statement_timeout(self) -> None:
        """Keep the server-side statement limit equal to this check's timeout (a backstop to cancel)."""
        template = session_for(self.dialect).statement_timeout
        wanted = self.ctx.timeout
        if template is None or self.connection.statement_timeout == wanted:
            return
        statement = template.format(seconds=f"{wanted:g}", milliseconds=max(1, round(wanted * 1000)))
        cursor = self.connection.raw.cursor()
        try:
            self.database.count_statement()
            cursor.execute(statement)
            self.connection.statement_timeout = wanted
        except pyodbc.Error as exc:
            failure = self.database.classify_query_error(exc)
            self.broken = self.broken or failure.connection_broken
            raise failure.as_check_error() from None
        finally:
            cursor.close()

    def _replace_connection(self) -> None:
        self.broken = True
        self.close()
        self.broken = False
        self._lease = self.database.pool.acquire(
            self.ctx.cancel, wait=self.ctx.timeout, fresh=True, classify=self.database.classify_connect_error
        )


class _CursorCancelLock:
    """Orders a cancel against the close of the same cursor.

    SQLCancel racing SQLFreeStmt on one statement handle crashes drivers (the SQLite driver segfaulted when a
    query ended just as its timeout fired), so the query thread closes the cursor only when no cancel runs,
    and a cancel that comes after the close does nothing.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closed = False


def _cancel_in_background(cursor: Any, cancel_lock: _CursorCancelLock) -> None:
    """cursor.cancel() can itself block (MariaDB opens a KILL connection to a server that may be frozen),
    so it runs on its own daemon thread that the scheduler does not wait for (a query thread that ends
    meanwhile waits for it before closing the cursor; if that never comes, the worker is abandoned)."""

    def cancel() -> None:
        with cancel_lock.lock:
            if cancel_lock.closed:
                return
            try:
                cursor.cancel()
            except Exception as exc:
                log.debug("cursor cancel failed: %s", type(exc).__name__)

    threading.Thread(target=cancel, name="erp-cancel", daemon=True).start()
