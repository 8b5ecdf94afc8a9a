"""What the exporter runs on every new connection, per dialect: make the session read-only (the second
protection layer, independent of the statement guard), name it, and read what the server is.

These statements are the exporter's own and never come from the config, so they bypass the guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from exporter.db.dialect import Dialect


@dataclass(frozen=True)
class DialectSession:
    setup: tuple[str, ...]  # run once per connection
    read_only_probe: str | None  # returns one value that is truthy when the session is read-only
    version_query: str | None
    probe_query: str
    statement_timeout: str | None  # format with seconds=..., milliseconds=...
    # One round trip for setup, read-only probe and version where the dialect allows it: every statement on a
    # new connection is a round trip and a line in the server's log. One row: (read-only value, version).
    # When it fails, the statements above are run one by one (and a refused one is logged).
    combined: str | None = None


SESSIONS: dict[Dialect, DialectSession] = {
    Dialect.POSTGRESQL: DialectSession(
        setup=(
            "SET default_transaction_read_only = on",
            "SET application_name = 'erp-exporter'",
        ),
        read_only_probe="SHOW default_transaction_read_only",
        version_query="SHOW server_version",
        probe_query="SELECT 1",
        statement_timeout="SET statement_timeout = {milliseconds}",
        combined=("SELECT set_config('default_transaction_read_only', 'on', false), "
                  "set_config('application_name', 'erp-exporter', false) IS NOT NULL, "
                  "current_setting('server_version')"),
    ),
    Dialect.MYSQL: DialectSession(
        setup=("SET SESSION TRANSACTION READ ONLY",),
        read_only_probe="SELECT @@session.tx_read_only",
        version_query="SELECT VERSION()",
        probe_query="SELECT 1",
        statement_timeout="SET SESSION max_statement_time = {seconds}",
    ),
    Dialect.SQLITE: DialectSession(
        # The URI's mode=ro already refuses writes to the main database; query_only also covers
        # databases a statement might ATTACH.
        setup=("PRAGMA query_only = 1",),
        read_only_probe="PRAGMA query_only",
        version_query="SELECT sqlite_version()",
        probe_query="SELECT 1",
        statement_timeout=None,  # SQLite has none: the scheduler's cancel interrupts it
    ),
    Dialect.MSSQL: DialectSession(
        setup=("SET LOCK_TIMEOUT 5000",),
        read_only_probe=None,  # no session-level read-only mode: grants are the only boundary
        version_query="SELECT CAST(SERVERPROPERTY('ProductVersion') AS VARCHAR(64))",
        probe_query="SELECT 1",
        statement_timeout=None,
    ),
    Dialect.ORACLE: DialectSession(
        # SET TRANSACTION READ ONLY lasts one transaction only, useless under autocommit: grants it is.
        setup=(),
        read_only_probe=None,
        version_query="SELECT version FROM product_component_version WHERE ROWNUM = 1",
        probe_query="SELECT 1 FROM DUAL",
        statement_timeout=None,
    ),
}

GENERIC_SESSION = DialectSession(
    setup=(), read_only_probe=None, version_query=None, probe_query="SELECT 1", statement_timeout=None
)


def session_for(dialect: Dialect) -> DialectSession:
    return SESSIONS.get(dialect, GENERIC_SESSION)


def is_truthy(value: object) -> bool:
    """Interpret what drivers return for on/off settings: 'on', '1', 1, True."""
    if isinstance(value, str):
        return value.strip().lower() in {"on", "1", "true", "yes"}
    return bool(value)
