"""The zero-write audit: read what the session's PostgreSQL and MariaDB servers logged and find every write,
DDL or SET that a monitoring login sent beyond session setup.

The servers log every statement (PostgreSQL `log_statement=all` with the user in each line's prefix, MariaDB's
general log with the user on each connection's Connect line). Fixture data is made by the superuser or root,
and the tests' own application logins are not monitoring logins, so only what the monitoring logins sent
counts. A test that sends a write on purpose through the monitoring login, to prove the database refuses it,
names it with `deliberate()` first: it is counted apart, never silently allowed.

Independent of exporter/db/guard.py on purpose: an audit that used the guard's own rules would share its holes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from exporter.db.session_setup import SESSIONS

# The logins the exporter monitors with in the tests: servers.EXPORTER_USER and the least-privilege
# monitoring roles some tests create (test_read_only, test_db_sessions, test_dashboards, test_db_health).
MONITORING_LOGINS = frozenset({"exporter", "erp_monitor", "sessions_monitor", "dash_monitor", "dbhealth_monitor"})

# PostgreSQL's log_line_prefix for the audited servers: the user and database of every line.
POSTGRES_LOG_PREFIX = "%m [%p] user=%u db=%d app=%a "
_PG_ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[(?P<pid>\d+)\] user=(?P<user>\S*) db=(?P<db>\S*) "
    r"app=(?P<app>.*?) (?P<level>[A-Z]+\d?):  (?P<message>.*)$"
)
_PG_STATEMENT = re.compile(r"^(?:statement|execute [^:]*): (?P<sql>.*)$", re.DOTALL)

# MariaDB's general log: "[date time]\t<id> <Command>\t<argument>", a statement may go on over more lines.
_MARIADB_ENTRY = re.compile(
    r"^(?:\d{6}\s+\d{1,2}:\d\d:\d\d)?\s+(?P<id>\d+) (?P<command>[A-Z][A-Za-z ]*?)\t(?P<arg>.*)$"
)
_MARIADB_STARTED = re.compile(r"^\S+, Version: .* started with:$")
_MARIADB_HEADER = re.compile(r"^(Tcp port: |Time\s+Id Command)")
_MARIADB_STATEMENT_COMMANDS = frozenset({"Query", "Prepare", "Execute"})

# What the drivers and the exporter send on every new connection (the session setup), exactly.
_SETUP_STATEMENTS = frozenset({
    # psqlODBC on connect
    "SET DateStyle = 'ISO';SET extra_float_digits = 2;show transaction_isolation",
    # MariaDB Connector/ODBC on connect
    "SET SESSION SQL_AUTO_IS_NULL=0",
    "SET autocommit=1",
    "SET autocommit=0",  # the sql_transaction check's transaction (autocommit off while it runs, then on)
    "SET session_track_schema= ON",
    "SET session_track_system_variables='autocommit,tx_isolation'",
    # the exporter's own (exporter/db/session_setup.py)
    *(statement for session in SESSIONS.values() for statement in session.setup),
    *(session.combined for session in SESSIONS.values() if session.combined),
})  # fmt: skip
_SETUP_PATTERNS = (
    # the per-check statement timeout (exporter/db/session_setup.py statement_timeout)
    re.compile(r"SET statement_timeout = \d+"),
    re.compile(r"SET SESSION max_statement_time = \d+(\.\d+)?"),
    # MariaDB Connector/ODBC cancels a query by a second connection of the same login (exporter/db: cancel)
    re.compile(r"KILL QUERY \d+"),
    # the read-only transaction of sql_transaction checks, and the driver's own transaction control
    re.compile(r"(BEGIN|START TRANSACTION)( READ ONLY| ISOLATION LEVEL [A-Z ]+?)*;?", re.IGNORECASE),
    re.compile(r"(COMMIT|ROLLBACK|END)( WORK)?;?", re.IGNORECASE),
    # psqlODBC outside autocommit: a savepoint around each statement, and the plans it prepared, dropped
    re.compile(r"(SAVEPOINT|RELEASE|ROLLBACK TO) _EXEC_SVP_0x[0-9a-f]+", re.IGNORECASE),
    re.compile(r'DEALLOCATE "_PLAN0x[0-9a-f]+"'),
    re.compile(r"SET (SESSION )?TRANSACTION READ ONLY", re.IGNORECASE),
)
_READ_FIRST_WORDS = frozenset({"SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "DESCRIBE", "DESC", "TABLE"})
# A write inside a query: data-modifying CTEs, SELECT INTO, row locks, functions that change state.
_WRITE_IN_QUERY = re.compile(
    r"\b(INSERT|UPDATE|DELETE|MERGE|UPSERT|REPLACE\s+INTO|TRUNCATE|DROP|ALTER|CREATE|GRANT|REVOKE|COPY|CALL|INTO"
    r"|FOR\s+(NO\s+KEY\s+)?UPDATE|FOR\s+(KEY\s+)?SHARE|LOCK\s+IN\s+SHARE\s+MODE"
    r"|set_config|nextval|setval|pg_advisory\w*|pg_try_advisory\w*|pg_terminate_backend|pg_cancel_backend"
    r"|pg_stat_reset\w*|lo_\w+|get_lock|release_lock|pg_reload_conf)\b",
    re.IGNORECASE,
)
_COMMENT_OR_LITERAL = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^'\\]|''|\\.)*'|\$\$.*?\$\$", re.DOTALL)


@dataclass(frozen=True)
class Statement:
    """One statement a server logged, with who sent it."""

    server: str  # the log it came from
    user: str
    sql: str


@dataclass
class AuditResult:
    """What the audit read: every statement of a monitoring login, and those it refuses."""

    audited: int = 0
    by_server: dict[str, int] = field(default_factory=dict)
    deliberate: list[Statement] = field(default_factory=list)
    violations: list[Statement] = field(default_factory=list)


_DELIBERATE: set[str] = set()


def deliberate(sql: str) -> str:
    """Name a write a test sends through a monitoring login on purpose (to prove the server refuses it)."""
    _DELIBERATE.add(sql)
    return sql


def parse_postgres_log(text: str, server: str = "postgresql") -> Iterator[Statement]:
    """Every statement in a PostgreSQL log written with POSTGRES_LOG_PREFIX (continuation lines joined)."""
    entry: re.Match[str] | None = None
    lines: list[str] = []

    def finished() -> Iterator[Statement]:
        if entry is not None and entry["level"] == "LOG":
            statement = _PG_STATEMENT.match("\n".join([entry["message"], *lines]))
            if statement is not None:
                yield Statement(server, entry["user"], statement["sql"].strip())

    for line in text.splitlines():
        match = _PG_ENTRY.match(line)
        if match is None:
            lines.append(line)
            continue
        yield from finished()
        entry, lines = match, []
    yield from finished()


def parse_mariadb_general_log(text: str, server: str = "mariadb") -> Iterator[Statement]:
    """Every Query, Prepare and Execute in a MariaDB general log, with the user of its connection."""
    users: dict[str, str] = {}
    current: tuple[str, list[str]] | None = None  # (connection id, lines of the statement)

    def finished() -> Iterator[Statement]:
        if current is not None:
            connection, parts = current
            yield Statement(server, users.get(connection, "?"), "\n".join(parts).strip())

    for line in text.splitlines():
        if _MARIADB_STARTED.match(line):  # a restart: connection ids begin again at 1
            yield from finished()
            current, users = None, {}
            continue
        if _MARIADB_HEADER.match(line):
            continue
        match = _MARIADB_ENTRY.match(line)
        if match is None:
            if current is not None:
                current[1].append(line)
            continue
        yield from finished()
        current = None
        command, argument = match["command"], match["arg"]
        if command in ("Connect", "Change user"):
            users[match["id"]] = argument.split("@", 1)[0]
        elif command in _MARIADB_STATEMENT_COMMANDS:
            current = (match["id"], [argument])
    yield from finished()


def is_session_setup(sql: str) -> bool:
    """Whether `sql` is one of the statements a driver or the exporter sends to set a new session up."""
    text = sql.strip()
    return text in _SETUP_STATEMENTS or any(pattern.fullmatch(text) for pattern in _SETUP_PATTERNS)


def writes(sql: str) -> bool:
    """Whether `sql` may write, change the schema or the session, or lock: anything but a plain query."""
    code = _COMMENT_OR_LITERAL.sub(" ", sql).strip().lstrip("(").strip()
    first = code.split(None, 1)[0].upper() if code else ""
    return first not in _READ_FIRST_WORDS or _WRITE_IN_QUERY.search(code) is not None


def parts(sql: str) -> list[str]:
    """The statements of one logged text, split at each ';' outside literals, quoted names and comments
    (psqlODBC sends "BEGIN;SELECT ..." and "SAVEPOINT ...;SELECT ..." as one text)."""
    found: list[str] = []
    start = 0
    for match in re.finditer(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\$\$.*?\$\$|;", sql, re.DOTALL):
        if match.group() == ";":
            found.append(sql[start : match.start()])
            start = match.end()
    found.append(sql[start:])
    return [part.strip() for part in found if part.strip()]


def allowed(sql: str) -> bool:
    """A plain query, or session setup; the whole text when it is one of the setup texts, else each part."""
    return is_session_setup(sql) or all(not writes(part) or is_session_setup(part) for part in parts(sql))


def audit(statements: Iterable[Statement], logins: frozenset[str] = MONITORING_LOGINS) -> AuditResult:
    """Every statement of a monitoring login, the deliberate writes apart, and the writes nobody allowed."""
    result = AuditResult()
    for statement in statements:
        if statement.user not in logins:
            continue
        result.audited += 1
        result.by_server[statement.server] = result.by_server.get(statement.server, 0) + 1
        if allowed(statement.sql):
            continue
        if statement.sql in _DELIBERATE:
            result.deliberate.append(statement)
        else:
            result.violations.append(statement)
    return result


def audit_logs(postgres_logs: Iterable[Path], mariadb_logs: Iterable[Path]) -> AuditResult:
    """Audit the log files of the session's servers (missing files: a server that never started)."""

    def statements() -> Iterator[Statement]:
        for path in postgres_logs:
            if path.is_file():
                yield from parse_postgres_log(path.read_text(errors="replace"), path.parent.name)
        for path in mariadb_logs:
            if path.is_file():
                yield from parse_mariadb_general_log(path.read_text(errors="replace"), path.parent.name)

    return audit(statements())

