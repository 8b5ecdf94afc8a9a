"""db_sessions: database sessions by state, the connection limit and the share used, on real servers.

Each test opens its own sessions with its own connections (idle ones, one idle in a transaction, one
holding a row lock and one waiting for it) and compares what the check reports with an independent count
taken by the test's own client at the same moment (before and after the check, retried until both agree).
The check counts every session the server counts against its limit, its own included: that one is
`active` (it is running the query), so the expected numbers are the independent count plus that one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyodbc
import pytest
import sqlglot
from harness import odbc_database, running_app, wait_until
from servers import MariaDBServer, PostgresServer

from exporter.checks.base import CancelToken, CheckError, ErrorReason, RunContext
from exporter.checks.db_sessions import (
    MSSQL_SQL,
    SESSIONS_SQL,
    STATES,
    DbSessionsCheck,
    counts_from_row,
    counts_to_families,
)
from exporter.db.connstr import ConnectionSpec
from exporter.db.dialect import Dialect
from exporter.db.guard import check_read_only
from exporter.db.pool import Backoff, ConnectionPool, OpenConnection
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricFamily

MONITOR_USER = "sessions_monitor"  # has pg_monitor / PROCESS: sees every session
MONITOR_PASSWORD = "monitorpw"
APP_USER = "sessions_app"  # MariaDB: the test's own sessions, told apart by user
APP_PASSWORD = "apppw"
APP_NAME = "db-sessions-test"  # PostgreSQL: the test's own sessions, told apart by application_name
IDLE_SESSIONS = 3
OPENED = {"active": 0, "idle": IDLE_SESSIONS, "idle_in_transaction": 2, "waiting": 1}  # lock holder idles in tx


# --- servers: a monitoring login, a table to lock ----------------------------------------------------------


def prepare_postgres(server: PostgresServer) -> None:
    server.psql(
        f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{MONITOR_USER}') THEN
            CREATE ROLE {MONITOR_USER} LOGIN PASSWORD '{MONITOR_PASSWORD}';
          END IF;
        END $$;
        GRANT pg_monitor TO {MONITOR_USER};
        CREATE TABLE IF NOT EXISTS db_sessions_rows (id int PRIMARY KEY, v int NOT NULL DEFAULT 0);
        INSERT INTO db_sessions_rows (id) VALUES (1) ON CONFLICT DO NOTHING;
        """
    )


@pytest.fixture(scope="module")
def pg(postgres: PostgresServer) -> PostgresServer:
    prepare_postgres(postgres)
    return postgres


@pytest.fixture(scope="module")
def maria(mariadb: MariaDBServer) -> MariaDBServer:
    account = "'{}'@'127.0.0.1'"
    monitor, app = account.format(MONITOR_USER), account.format(APP_USER)
    mariadb.sql(
        f"""
        CREATE USER IF NOT EXISTS {monitor} IDENTIFIED BY '{MONITOR_PASSWORD}';
        GRANT PROCESS ON *.* TO {monitor};
        GRANT SELECT ON appdb.* TO {monitor};
        CREATE USER IF NOT EXISTS {app} IDENTIFIED BY '{APP_PASSWORD}';
        GRANT ALL ON appdb.* TO {app};
        CREATE TABLE IF NOT EXISTS appdb.db_sessions_rows (id INT PRIMARY KEY, v INT NOT NULL DEFAULT 0)
          ENGINE=InnoDB;
        INSERT IGNORE INTO appdb.db_sessions_rows (id) VALUES (1);
        """
    )
    return mariadb


def target_database(driver: str, host: str, port: int, user: str, password: str) -> TargetDatabase:
    # One connection: the check's own session is the only one the exporter holds.
    attributes = {"server": host, "port": str(port), "database": "appdb"}
    return odbc_database(driver, attributes, user, password, max_connections=1)


@contextmanager
def closing(database: TargetDatabase) -> Iterator[TargetDatabase]:
    try:
        yield database
    finally:
        database.close()


# --- the test's own sessions -------------------------------------------------------------------------------


@contextmanager
def open_sessions(
    connect: Callable[[], pyodbc.Connection], idle_in_transaction_sql: str, lock_sql: str
) -> Iterator[None]:
    """IDLE_SESSIONS idle sessions, one idle in a transaction, one holding a row lock in an open transaction
    and one waiting for that lock (its statement runs on a thread until the holder rolls back)."""
    connections: list[pyodbc.Connection] = []
    waiter_thread: threading.Thread | None = None
    waiter_errors: list[BaseException] = []
    holder: pyodbc.Connection | None = None
    try:
        for _ in range(IDLE_SESSIONS):
            connections.append(connect())
        in_transaction = connect()
        connections.append(in_transaction)
        in_transaction.autocommit = False
        in_transaction.execute(idle_in_transaction_sql).fetchall()
        holder = connect()
        connections.append(holder)
        holder.autocommit = False
        holder.execute(lock_sql)
        waiter = connect()
        connections.append(waiter)

        def wait_for_the_lock() -> None:
            try:
                waiter.execute(lock_sql)
            except BaseException as exc:  # reported by the test, not lost on the thread
                waiter_errors.append(exc)

        waiter_thread = threading.Thread(target=wait_for_the_lock, name="db-sessions-waiter", daemon=True)
        waiter_thread.start()
        yield
    finally:
        if holder is not None:
            holder.rollback()  # lets the waiter through
        if waiter_thread is not None:
            waiter_thread.join(timeout=30)
        for connection in connections:
            connection.close()
    assert not waiter_errors, waiter_errors


# --- independent counts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Census:
    """Client sessions as the test's own client sees them (its own session left out)."""

    others: Counter[str]  # by state: every session but the exporter's
    others_total: int  # every session but the exporter's, in a state or not
    mine: Counter[str]  # by state: the sessions this test opened
    exporter: int  # sessions of the check's login (its one pooled connection)


def pg_census(server: PostgresServer) -> Census:
    output = server.psql(
        "SELECT coalesce(state, ''), coalesce(wait_event_type, ''), application_name, usename "
        "FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    others: Counter[str] = Counter()
    mine: Counter[str] = Counter()
    total = exporter = 0
    for line in output.splitlines():
        state, wait, application, user = line.split("|", 3)
        if user == MONITOR_USER:
            exporter += 1
            continue
        total += 1
        if wait == "Lock":
            kind = "waiting"
        elif state in ("active", "fastpath function call"):
            kind = "active"
        elif state == "idle":
            kind = "idle"
        elif state.startswith("idle in transaction"):
            kind = "idle_in_transaction"
        else:
            continue
        others[kind] += 1
        if application == APP_NAME:
            mine[kind] += 1
    return Census(others, total, mine, exporter)


def maria_census(server: MariaDBServer) -> Census:
    output = server.sql(
        "SELECT 'p', ID, USER, COMMAND, COALESCE(STATE, '') FROM information_schema.PROCESSLIST "
        "WHERE ID <> CONNECTION_ID();\n"
        "SELECT 't', trx_mysql_thread_id, trx_state FROM information_schema.INNODB_TRX;\n"
    )
    processes: list[list[str]] = []
    transactions: dict[str, str] = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if fields[0] == "p":
            processes.append([*fields, ""][1:5])
        elif fields[0] == "t":
            transactions[fields[1]] = fields[2]
    others: Counter[str] = Counter()
    mine: Counter[str] = Counter()
    total = exporter = 0
    for thread_id, user, command, state in processes:
        if command == "Daemon" or user == "system user":
            continue
        if user == MONITOR_USER:
            exporter += 1
            continue
        total += 1
        transaction = transactions.get(thread_id)
        if command == "Sleep":
            kind = "idle_in_transaction" if transaction else "idle"
        elif (
            transaction == "LOCK WAIT" or state == "User lock" or (state.startswith("Waiting for") and "lock" in state)
        ):
            kind = "waiting"
        else:
            kind = "active"
        others[kind] += 1
        if user == APP_USER:
            mine[kind] += 1
    return Census(others, total, mine, exporter)


# --- what the check reports ----------------------------------------------------------------------------------


def reported(families: list[MetricFamily]) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in families:
        for sample in family.samples:
            key = family.name + "".join(f"{{{v}}}" for v in sample.labels.values())
            assert isinstance(sample.value, float | int)
            values[key] = float(sample.value)
    return values


def measure(check: DbSessionsCheck, census: Callable[[], Census]) -> tuple[dict[str, float], Census]:
    """Run the check between two independent counts; retry until nothing changed in between."""
    check.run(RunContext(timeout=10))  # the first run opens the exporter's connection
    for _ in range(10):
        before = census()
        values = reported(check.run(RunContext(timeout=10)))
        if census() == before:
            return values, before
    raise AssertionError("the sessions kept changing while the check ran")


def expected_from(census: Census, max_connections: int) -> dict[str, float]:
    """The independent count plus the check's own session, which is active while it counts."""
    states = {state: float(census.others[state]) for state in STATES}
    states["active"] += 1
    connections = census.others_total + 1
    return {
        **{f"erp_database_sessions{{{state}}}": value for state, value in states.items()},
        "erp_database_connections": float(connections),
        "erp_database_max_connections": float(max_connections),
        "erp_database_connections_used_ratio": connections / max_connections,
    }


def assert_matches(values: dict[str, float], census: Census, max_connections: int) -> None:
    assert census.exporter == 1  # only the check's own connection, idle in its pool between runs
    assert {state: census.mine[state] for state in STATES} == OPENED
    assert values == expected_from(census, max_connections)


# --- real PostgreSQL and MariaDB ---------------------------------------------------------------------------


def test_postgresql_sessions_by_state_equal_an_independent_count(pg: PostgresServer) -> None:
    def connect() -> pyodbc.Connection:
        connection = pyodbc.connect(pg.connection_string("postgres", pg.superuser_password), autocommit=True)
        connection.execute(f"SET application_name = '{APP_NAME}'")
        return connection

    max_connections = int(pg.psql("SHOW max_connections"))
    database = target_database("PostgreSQL Unicode", pg.host, pg.port, MONITOR_USER, MONITOR_PASSWORD)
    with closing(database), open_sessions(connect, "SELECT 1", "UPDATE db_sessions_rows SET v = v + 1 WHERE id = 1"):
        wait_until(lambda: pg_census(pg).mine["waiting"] == 1, 10, "the waiter never waited for the lock")
        values, census = measure(DbSessionsCheck("db_sessions", database), lambda: pg_census(pg))
    assert_matches(values, census, max_connections)


def test_mariadb_sessions_by_state_equal_an_independent_count(maria: MariaDBServer) -> None:
    """The session idle in a transaction reads an InnoDB table: `BEGIN; SELECT 1` opens no InnoDB
    transaction, so the server itself cannot tell it from an idle session (documented in the check)."""

    def connect() -> pyodbc.Connection:
        return pyodbc.connect(maria.connection_string(APP_USER, APP_PASSWORD), autocommit=True)

    max_connections = int(maria.sql("SELECT @@max_connections"))
    database = target_database("MariaDB Unicode", maria.host, maria.port, MONITOR_USER, MONITOR_PASSWORD)
    with (
        closing(database),
        open_sessions(connect, "SELECT v FROM db_sessions_rows", "UPDATE db_sessions_rows SET v = v + 1 WHERE id = 1"),
    ):
        wait_until(lambda: maria_census(maria).mine["waiting"] == 1, 10, "the waiter never waited for the lock")
        values, census = measure(DbSessionsCheck("db_sessions", database), lambda: maria_census(maria))
    assert_matches(values, census, max_connections)


def test_postgresql_login_without_pg_monitor_fails_with_reason_auth(pg: PostgresServer) -> None:
    database = target_database("PostgreSQL Unicode", pg.host, pg.port, "exporter", "exporterpw")
    with closing(database), pytest.raises(CheckError) as failed:
        DbSessionsCheck("db_sessions", database).run(RunContext(timeout=10))
    assert failed.value.reason is ErrorReason.AUTH
    assert "GRANT pg_monitor" in failed.value.message


def test_mariadb_login_without_process_privilege_fails_with_reason_auth(maria: MariaDBServer) -> None:
    database = target_database("MariaDB Unicode", maria.host, maria.port, "exporter", "exporterpw")
    with closing(database), pytest.raises(CheckError) as failed:
        DbSessionsCheck("db_sessions", database).run(RunContext(timeout=10))
    assert failed.value.reason is ErrorReason.AUTH
    assert "GRANT PROCESS" in failed.value.message


# --- SQLite: no sessions ---------------------------------------------------------------------------------------


def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "erp.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (x INTEGER)")
    return path


def test_sqlite_target_gets_db_sessions_by_default_and_publishes_no_session_metrics(tmp_path: Path) -> None:
    config = f"""
global: {{interval: 1s, timeout: 1s, jitter: 0}}
host: {{enabled: false}}
targets:
  - name: lite
    driver: SQLite3
    connection: {{database: {sqlite_file(tmp_path)}}}
"""
    with running_app(tmp_path, config) as running:
        wait_until(lambda: running.state("lite", "db_sessions").success, 10, "db_sessions did not succeed")
        assert running.value("erp_check_success", check="db_sessions", target="lite") == 1
        assert running.value("erp_up", target="lite") == 1
        for name in ("erp_database_sessions", "erp_database_connections", "erp_database_max_connections",
                     "erp_database_connections_used_ratio"):  # fmt: skip
            assert running.value(name, target="lite") is None, name


def test_sqlite_check_does_not_connect_again_once_the_dialect_is_known(tmp_path: Path) -> None:
    spec = ConnectionSpec("SQLite3", None, {"database": str(sqlite_file(tmp_path))}, None, None, 5, 30)
    with closing(TargetDatabase("lite", spec, 1, Backoff(0.1, 0.5))) as database:
        check = DbSessionsCheck("db_sessions", database)
        assert check.run(RunContext(timeout=5)) == []
        statements = database.statements_total
        assert check.run(RunContext(timeout=5)) == []
        assert database.statements_total == statements
        assert database.pool_stats().open == 1  # the first run's connection, not a second one


# --- MS SQL Server: cannot run here ------------------------------------------------------------------------------


def test_mssql_statement_passes_the_read_only_guard_and_parses() -> None:
    """There is no SQL Server on this machine, so the MS SQL statement cannot run here: this test only
    proves that the exporter would send it (the read-only guard accepts it under T-SQL's rules) and that
    it is well-formed T-SQL (sqlglot's T-SQL parser reads it without error)."""
    check_read_only(MSSQL_SQL, Dialect.MSSQL)
    tree = sqlglot.parse_one(MSSQL_SQL, read="tsql", error_level=sqlglot.ErrorLevel.RAISE)
    assert isinstance(tree, sqlglot.exp.Select)
    assert [column.alias for column in tree.expressions] == [*STATES, "connections", "max_connections"]
    assert {table.name for table in tree.find_all(sqlglot.exp.Table)} == {"dm_exec_sessions", "dm_exec_requests"}


@pytest.mark.parametrize("dialect", [Dialect.POSTGRESQL, Dialect.MYSQL])
def test_runnable_statements_pass_the_read_only_guard_of_their_dialect(dialect: Dialect) -> None:
    check_read_only(SESSIONS_SQL[dialect], dialect)


# --- the published families ----------------------------------------------------------------------------------


def test_all_four_states_are_published_with_zero_when_there_are_none() -> None:
    row = {"active": 1, "idle": 0, "idle_in_transaction": None, "waiting": 0, "connections": 1,
           "max_connections": 100}  # fmt: skip
    assert reported(counts_to_families(counts_from_row(row))) == {
        "erp_database_sessions{active}": 1.0,
        "erp_database_sessions{idle}": 0.0,
        "erp_database_sessions{idle_in_transaction}": 0.0,
        "erp_database_sessions{waiting}": 0.0,
        "erp_database_connections": 1.0,
        "erp_database_max_connections": 100.0,
        "erp_database_connections_used_ratio": 0.01,
    }


# --- faults --------------------------------------------------------------------------------------------------------


def pg_target(name: str, port: int) -> str:
    return f"""
  - name: {name}
    driver: PostgreSQL Unicode
    connection: {{server: 127.0.0.1, port: {port}, database: appdb}}
    username: {MONITOR_USER}
    password: {MONITOR_PASSWORD}
    connect_timeout: 2s
    backoff: {{initial: 200ms, max: 1s}}
    checks:
      - {{kind: db_sessions, interval: 1s, timeout: 1s}}
      - {{kind: db_response, interval: 1s, timeout: 1s}}
"""


def test_database_that_is_down_fails_with_reason_connect_and_other_checks_keep_working(
    tmp_path: Path, pg: PostgresServer, postgres_disruptable: PostgresServer
) -> None:
    prepare_postgres(postgres_disruptable)
    config = f"""
global: {{interval: 1s, timeout: 1s, cancel_grace: 1s, jitter: 0}}
host: {{interval: 1s}}
targets:{pg_target("down", postgres_disruptable.port)}{pg_target("up", pg.port)}
"""
    with running_app(tmp_path, config) as running:
        wait_until(lambda: running.state("down", "db_sessions").success, 10, "db_sessions never succeeded")
        assert running.value("erp_database_sessions", target="down", state="idle") is not None
        postgres_disruptable.stop()
        wait_until(
            lambda: (
                (s := running.state("down", "db_sessions")).success is False and s.error_reason is ErrorReason.CONNECT
            ),
            5,
            f"no connect failure: {running.state('down', 'db_sessions').error_message}",
        )
        assert running.value("erp_database_sessions", target="down", state="idle") is None  # no stale values
        for target, check in (("up", "db_sessions"), ("up", "db_response"), ("", "host")):
            before = running.state(target, check).runs_total
            running.wait_for_run(target, check, before, timeout=5)
            assert running.state(target, check).success is True, running.state(target, check).error_message
        assert running.value("erp_database_max_connections", target="up") == int(pg.psql("SHOW max_connections"))


# --- the probe's fresh connection and the pool ---------------------------------------------------------------


def backend_pid(database: TargetDatabase, fresh: bool) -> int:
    with database.session(RunContext(timeout=10.0), fresh=fresh) as session:
        return int(session.query("SELECT pg_backend_pid()").rows[0][0])


def test_fresh_connections_for_login_timing_never_push_a_pooled_session_out(pg: PostgresServer) -> None:
    attributes = {"server": pg.host, "port": str(pg.port), "database": "appdb"}
    with closing(odbc_database("PostgreSQL Unicode", attributes, "exporter", "exporterpw",
                               max_connections=2)) as database:
        pooled = backend_pid(database, fresh=False)
        probes = [backend_pid(database, fresh=True) for _ in range(3)]
        assert len(set(probes)) == 3 and pooled not in probes  # each probe logs in anew
        assert database.pool_stats().open == 1  # the probes' connections were closed, not pooled
        assert backend_pid(database, fresh=False) == pooled  # the pooled session survived every probe


class SteppedClock:
    """A monotonic clock the test moves by hand: connection ages of minutes without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sqlite_pool(tmp_path: Path, clock: SteppedClock) -> tuple[ConnectionPool, list[OpenConnection]]:
    """A pool of real SQLite ODBC connections whose ages are read from `clock`; also every connection opened."""
    opened: list[OpenConnection] = []

    def open_connection(_timeout: float) -> OpenConnection:
        raw = pyodbc.connect(f"DRIVER={{SQLite3}};Database={tmp_path / 'pool.db'}", autocommit=True)
        connection = OpenConnection(raw, Dialect.SQLITE, "SQLite", "3", True, 0.0, opened_at=clock())
        opened.append(connection)
        return connection

    return ConnectionPool("pool", open_connection, 2, Backoff(1.0, 10.0), max_idle=300.0, max_lifetime=3600.0,
                          clock=clock), opened


def use_once(pool: ConnectionPool) -> OpenConnection:
    lease = pool.acquire(CancelToken(), wait=5.0)
    pool.release(lease)
    return lease.connection


def test_a_pooled_connection_in_regular_use_is_kept_past_the_idle_limit(tmp_path: Path) -> None:
    clock = SteppedClock()
    pool, opened = sqlite_pool(tmp_path, clock)
    first = use_once(pool)
    for _ in range(20):  # every 60 s for 20 min: never idle for 300 s
        clock.now += 60
        assert use_once(pool) is first
    assert len(opened) == 1
    pool.close()


def test_a_pooled_connection_unused_for_longer_than_the_idle_limit_is_replaced(tmp_path: Path) -> None:
    clock = SteppedClock()
    pool, opened = sqlite_pool(tmp_path, clock)
    first = use_once(pool)
    clock.now += 301
    assert use_once(pool) is not first
    assert len(opened) == 2
    pool.close()


def test_every_pooled_connection_is_replaced_after_its_lifetime(tmp_path: Path) -> None:
    clock = SteppedClock()
    pool, opened = sqlite_pool(tmp_path, clock)
    first = use_once(pool)
    for _ in range(60):  # in use every 60 s: kept for the hour
        clock.now += 60
        assert use_once(pool) is first
    clock.now += 60
    assert use_once(pool) is not first
    assert len(opened) == 2
    pool.close()
