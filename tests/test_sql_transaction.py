"""Synthetic SQL transactions on real databases: steps timed in one read-only transaction that is always
rolled back, failures counted by reason, the statement guard and the timeout in force.

Histogram counts are read from the check's own families after k runs (exact values); the app tests read
them from the exposition.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pyodbc
import pytest
from harness import odbc_database, running_app, wait_until
from servers import MariaDBServer, PostgresServer

from exporter.checks.base import CheckError, ErrorReason, RunContext
from exporter.checks.sql_transaction import SqlStep, SqlTransactionCheck
from exporter.config.loader import ConfigError, load_config
from exporter.db.target import TargetDatabase
from exporter.metrics import HistogramValue, MetricFamily

DIALECTS = ["pg_db", "maria_db", "sqlite_db"]
STEPS = [
    SqlStep("open_orders", "SELECT id, amount FROM sqltx_orders WHERE state = 'open' ORDER BY id"),
    SqlStep("order_total", "SELECT sum(amount) FROM sqltx_orders"),
]


def database(driver: str, attributes: dict[str, str], user: str | None, password: str | None) -> TargetDatabase:
    return odbc_database(driver, attributes, user, password, name="erp", max_connections=1)


@pytest.fixture
def pg_db(postgres: PostgresServer) -> Iterator[TargetDatabase]:
    postgres.psql(
        "DROP TABLE IF EXISTS sqltx_orders; CREATE TABLE sqltx_orders (id int, state text, amount int); "
        "INSERT INTO sqltx_orders VALUES (1, 'open', 10), (2, 'done', 20), (3, 'open', 30); "
        "GRANT SELECT ON sqltx_orders TO exporter;"
    )
    db = database(
        "PostgreSQL Unicode",
        {"server": postgres.host, "port": str(postgres.port), "database": "appdb"},
        "exporter",
        "exporterpw",
    )
    yield db
    db.close()
    postgres.psql("DROP TABLE IF EXISTS sqltx_orders")


@pytest.fixture
def maria_db(mariadb: MariaDBServer) -> Iterator[TargetDatabase]:
    mariadb.sql(
        "DROP TABLE IF EXISTS appdb.sqltx_orders; "
        "CREATE TABLE appdb.sqltx_orders (id int, state varchar(10), amount int) ENGINE=InnoDB; "
        "INSERT INTO appdb.sqltx_orders VALUES (1, 'open', 10), (2, 'done', 20), (3, 'open', 30);"
    )
    db = database(
        "MariaDB Unicode",
        {"server": mariadb.host, "port": str(mariadb.port), "database": "appdb"},
        "exporter",
        "exporterpw",
    )
    yield db
    db.close()
    mariadb.sql("DROP TABLE IF EXISTS appdb.sqltx_orders")


def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "erp.db"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE sqltx_orders (id INTEGER, state TEXT, amount INTEGER)")
        connection.execute("INSERT INTO sqltx_orders VALUES (1, 'open', 10), (2, 'done', 20), (3, 'open', 30)")
    return path


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[TargetDatabase]:
    db = database("SQLite3", {"database": str(sqlite_file(tmp_path))}, None, None)
    yield db
    db.close()


def histogram_counts(families: list[MetricFamily]) -> dict[str | None, float]:
    """erp_transaction_duration_seconds _count per step (None: the whole transaction)."""
    family = next(f for f in families if f.name == "erp_transaction_duration_seconds")
    counts: dict[str | None, float] = {}
    for sample in family.samples:
        assert isinstance(sample.value, HistogramValue)
        counts[sample.labels.get("step")] = sample.value.count
    return counts


def failures(families: list[MetricFamily]) -> dict[str, float]:
    family = next(f for f in families if f.name == "erp_transaction_failures_total")
    return {sample.labels["reason"]: float(sample.value) for sample in family.samples}  # type: ignore[arg-type]


def run_failing(check: SqlTransactionCheck, timeout: float = 10) -> CheckError:
    with pytest.raises(CheckError) as raised:
        check.run(RunContext(timeout=timeout))
    return raised.value


NO_FAILURES = {"timeout": 0.0, "connect": 0.0, "auth": 0.0, "query": 0.0, "guard": 0.0, "other": 0.0}


@pytest.mark.parametrize("fixture", DIALECTS)
def test_each_step_and_the_whole_transaction_are_observed_once_per_run(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    db: TargetDatabase = request.getfixturevalue(fixture)
    check = SqlTransactionCheck("order_review", db, STEPS, buckets=(0.5, 5, 60))
    for _ in range(3):
        families = check.run(RunContext(timeout=10))
    assert histogram_counts(families) == {"open_orders": 3.0, "order_total": 3.0, None: 3.0}
    duration = next(f for f in families if f.name == "erp_transaction_duration_seconds")
    labels = [dict(sample.labels) for sample in duration.samples]
    assert labels == [
        {"transaction": "order_review", "step": "open_orders", "source": "sql"},
        {"transaction": "order_review", "step": "order_total", "source": "sql"},
        {"transaction": "order_review", "source": "sql"},
    ]
    total = duration.samples[2].value
    assert isinstance(total, HistogramValue)
    assert [bound for bound, _ in total.buckets] == [0.5, 5, 60]
    assert failures(families) == NO_FAILURES
    last = next(f for f in families if f.name == "erp_transaction_last_success_timestamp_seconds")
    assert [dict(s.labels) for s in last.samples] == [{"transaction": "order_review", "source": "sql"}]
    assert time.time() - float(last.samples[0].value) < 30  # type: ignore[arg-type]


@pytest.mark.parametrize("fixture", DIALECTS)
def test_connection_is_back_in_autocommit_after_the_transaction(fixture: str, request: pytest.FixtureRequest) -> None:
    db: TargetDatabase = request.getfixturevalue(fixture)
    check = SqlTransactionCheck("order_review", db, STEPS)
    check.run(RunContext(timeout=10))
    with db.session(RunContext(timeout=10)) as session:  # max_connections 1: the transaction's connection
        assert session.lease.reused
        assert session.connection.raw.autocommit is True


def test_postgres_transaction_is_read_only_and_holds_nothing_afterwards(
    pg_db: TargetDatabase, postgres: PostgresServer
) -> None:
    # 1 / 0 would be folded at plan time; the aggregate is evaluated only when the branch is taken
    read_only = (
        "SELECT CASE WHEN current_setting('transaction_read_only') = 'on' THEN 1"
        " ELSE 1 / (count(*) - count(*)) END FROM sqltx_orders"
    )
    check = SqlTransactionCheck("order_review", pg_db, [*STEPS, SqlStep("read_only", read_only)])
    families = check.run(RunContext(timeout=10))
    assert histogram_counts(families)[None] == 1.0
    # the pooled connection is idle (not idle in transaction) and holds no lock on the table
    state = postgres.psql(
        "SELECT a.state, (SELECT count(*) FROM pg_locks l"
        " WHERE l.pid = a.pid AND l.relation = 'sqltx_orders'::regclass)"
        " FROM pg_stat_activity a WHERE a.application_name = 'erp-exporter' AND a.datname = 'appdb'"
    )
    assert state == "idle|0\n"


def test_postgres_steps_run_in_one_transaction(pg_db: TargetDatabase, postgres: PostgresServer) -> None:
    steps = [SqlStep("first", "SELECT pg_sleep(0.4)"), SqlStep("second", "SELECT pg_sleep(0.4), 2")]
    seen: dict[str, set[str]] = {}
    stop = threading.Event()

    def watch() -> None:
        with closing(
            pyodbc.connect(postgres.connection_string(user="postgres", password="superpw"), autocommit=True)
        ) as cnxn:
            while not stop.is_set():
                for query, xact_start in cnxn.execute(
                    "SELECT query, xact_start::text FROM pg_stat_activity"
                    " WHERE application_name = 'erp-exporter' AND state = 'active' AND query LIKE '%pg_sleep%'"
                ).fetchall():
                    seen.setdefault(xact_start, set()).add(query)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        SqlTransactionCheck("two_sleeps", pg_db, steps).run(RunContext(timeout=10))
    finally:
        stop.set()
        watcher.join()
    # one transaction start for both steps (psqlODBC prefixes BEGIN, then a savepoint per statement)
    assert [{query.rsplit(";", 1)[-1] for query in queries} for queries in seen.values()] == [
        {"SELECT pg_sleep(0.4)", "SELECT pg_sleep(0.4), 2"}
    ]


def test_mariadb_transaction_is_over_after_the_run(maria_db: TargetDatabase, mariadb: MariaDBServer) -> None:
    check = SqlTransactionCheck("order_review", maria_db, STEPS)
    check.run(RunContext(timeout=10))
    trx = mariadb.sql(
        "SELECT count(*) FROM information_schema.innodb_trx t JOIN information_schema.processlist p"
        " ON p.id = t.trx_mysql_thread_id WHERE p.user = 'exporter'"
    )
    assert trx == "0\n"


def test_sqlite_transaction_releases_its_read_lock(tmp_path: Path) -> None:
    path = sqlite_file(tmp_path)
    db = database("SQLite3", {"database": str(path)}, None, None)
    try:
        SqlTransactionCheck("order_review", db, STEPS).run(RunContext(timeout=10))
        # a reader still in a transaction would hold a SHARED lock and make this fail at once
        with closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as writer:
            writer.execute("BEGIN EXCLUSIVE")
            writer.execute("ROLLBACK")
    finally:
        db.close()


@pytest.mark.parametrize("fixture", DIALECTS)
def test_write_statement_in_a_step_is_refused_by_the_guard(fixture: str, request: pytest.FixtureRequest) -> None:
    db: TargetDatabase = request.getfixturevalue(fixture)
    steps = [STEPS[0], SqlStep("cleanup", "DELETE FROM sqltx_orders")]
    check = SqlTransactionCheck("order_review", db, steps)
    error = run_failing(check)
    assert error.reason is ErrorReason.GUARD
    assert error.message.startswith("step 'cleanup': refused: statement starts with 'DELETE'")
    families = check.failure_families(error)
    assert failures(families) == {**NO_FAILURES, "guard": 1.0}
    assert histogram_counts(families) == {}
    with db.session(RunContext(timeout=10)) as session:
        assert session.query("SELECT count(*) FROM sqltx_orders").scalar() == 3


def test_failing_step_counts_a_query_failure_and_observes_nothing(pg_db: TargetDatabase) -> None:
    check = SqlTransactionCheck("order_review", pg_db, [STEPS[0], SqlStep("missing", "SELECT * FROM no_such_table")])
    first = run_failing(check)
    second = run_failing(check)
    assert first.reason is second.reason is ErrorReason.QUERY
    assert first.message.startswith("step 'missing': ")
    assert 'relation "no_such_table" does not exist' in first.message
    families = check.failure_families(second)
    assert failures(families) == {**NO_FAILURES, "query": 2.0}
    assert histogram_counts(families) == {}
    assert not any(f.name == "erp_transaction_last_success_timestamp_seconds" for f in families)


def test_write_statement_in_a_step_is_refused_when_the_config_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "erp-exporter.yml"
    path.write_text(
        """targets:
  - name: erp
    driver: PostgreSQL Unicode
    checks:
      - kind: sql_transaction
        name: order_review
        steps:
          - {name: open_orders, sql: "SELECT 1"}
          - {name: cleanup, sql: "UPDATE sqltx_orders SET state = 'done'"}
          - {name: open_orders, sql: "SELECT 2"}
"""
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert [(issue.line, issue.path, issue.message) for issue in raised.value.issues] == [
        (9, "targets[0].checks[0].steps[1].sql",
         "refused: statement starts with 'UPDATE'; only SELECT, WITH, VALUES, SHOW or EXPLAIN are allowed"),
        (10, "targets[0].checks[0].steps[2].name", "duplicate step name 'open_orders'"),
    ]  # fmt: skip


def test_timeout_cancels_the_transaction_and_other_checks_go_on(
    postgres: PostgresServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    text = f"""
targets:
  - name: erp
    driver: PostgreSQL Unicode
    connection: {{server: 127.0.0.1, port: {postgres.port}, database: appdb}}
    username: exporter
    password: exporterpw
    max_connections: 2
    checks:
      - {{kind: db_response, interval: 1s, timeout: 1s}}
      - kind: sql_transaction
        name: month_end
        interval: 30s
        timeout: 1s
        steps:
          - {{name: quick, sql: "SELECT 1"}}
          - {{name: slow, sql: "SELECT pg_sleep(20)"}}
host: {{enabled: false}}
"""
    with running_app(tmp_path, text) as running:
        state = running.wait_for_run("erp", "month_end", 0, 15)
        assert state.error_reason is ErrorReason.TIMEOUT
        assert running.value("erp_transaction_failures_total", transaction="month_end", reason="timeout") == 1
        assert running.value("erp_transaction_failures_total", transaction="month_end", reason="query") == 0
        assert running.value("erp_transaction_duration_seconds_count", transaction="month_end") is None

        def sleeping() -> str:
            return postgres.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'erp-exporter'"
                " AND query LIKE '%pg_sleep(20)%' AND state = 'active'"
            )

        wait_until(lambda: sleeping() == "0\n", 5, "the slow step was not cancelled")
        probe = running.wait_for_run("erp", "db_response", running.state("erp", "db_response").runs_total, 10)
        assert probe.success is True
        assert running.value("erp_up", target="erp") == 1
        # the abandoned run reports late: still counted once
        time.sleep(1.5)
        assert running.value("erp_transaction_failures_total", transaction="month_end", reason="timeout") == 1
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text
