"""Database health checks (db_activity, db_size, db_maintenance, replication) on real servers.

Every test gets a database of its own on the session's PostgreSQL or MariaDB, so the counts are exact;
the situations (a long query, a row lock, a failed CREATE INDEX CONCURRENTLY, a streaming replica) are
made by the fixtures' own connections (psql, the mariadb client, the sqlite3 module), never through the
exporter, and every value is checked against what those independent connections measure.

The monitoring logins have the grants the checks document: pg_monitor on PostgreSQL; PROCESS and
SLAVE MONITOR on MariaDB.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness import odbc_database, running_app, wait_until
from servers import EXPORTER_PASSWORD, EXPORTER_USER, MariaDBServer, PostgresServer, ServerError, _run

from exporter.checks.base import Check, RunContext
from exporter.checks.db_activity import DbActivityCheck
from exporter.checks.db_maintenance import DbMaintenanceCheck
from exporter.checks.db_size import DbSizeCheck
from exporter.checks.replication import ReplicationCheck, replica_labels
from exporter.config.loader import ConfigError, load_config
from exporter.config.model import DbActivityCheckConfig, DbSizeCheckConfig
from exporter.config.semantics import effective_interval
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricFamily, Sample

MONITOR = "dbhealth_monitor"
MONITOR_PASSWORD = "dbhealth-pw"


# --- helpers -----------------------------------------------------------------------------------------


def target(
    driver: str, attributes: dict[str, str], user: str | None = MONITOR, password: str | None = MONITOR_PASSWORD
) -> TargetDatabase:
    return odbc_database(driver, attributes, user, password)


def run(check: Check) -> dict[str, list[Sample]]:
    families: list[MetricFamily] = check.run(RunContext(timeout=10))
    return {family.name: family.samples for family in families}


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    found = [s for s in samples[name] if dict(s.labels) == labels]
    assert len(found) == 1, f"{name}{labels}: {samples[name]}"
    assert found[0].skip_reason is None, f"{name}{labels} was skipped: {found[0].skip_reason}"
    assert isinstance(found[0].value, float)
    return found[0].value


def skipped(samples: dict[str, list[Sample]], name: str) -> str | None:
    """The skip reason of a metric's only sample (None: it has a value)."""
    (sample,) = samples[name]
    assert isinstance(sample.value, float)
    assert math.isnan(sample.value) == (sample.skip_reason is not None)
    return sample.skip_reason


def number(text: str) -> float:
    return float(text.strip())


def wait_above(read: Callable[[], str], minimum: float, what: str, interval: float = 0.05) -> float:
    """Poll an independent reading until it exceeds `minimum`; return that reading."""

    def probe() -> float | None:
        reading = number(read())
        return reading if reading > minimum else None

    return wait_until(probe, 20, f"{what} did not reach {minimum}", interval=interval)


class Client:
    """A database client process kept open: statements written to its stdin run as they arrive."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )

    def send(self, sql: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(sql + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 30) -> int:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.finish()


@dataclass
class Case:
    """A database of one test: `sql` runs as the superuser, `client()` keeps a session open."""

    name: str
    database: TargetDatabase
    sql: Callable[[str], str]
    client_argv: list[str]
    clients: list[Client] = field(default_factory=list)

    def client(self, first_sql: str | None = None) -> Client:
        client = Client(self.client_argv)
        self.clients.append(client)
        if first_sql is not None:
            client.send(first_sql)
        return client

    def statement(self, sql: str) -> Client:
        """Run one statement in the background (it ends when it is done, or at teardown)."""
        return self.client(sql)


# --- PostgreSQL fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_monitor(postgres: PostgresServer) -> Iterator[str]:
    postgres.psql(
        f"DROP ROLE IF EXISTS {MONITOR}; CREATE ROLE {MONITOR} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor;",
        database="postgres",
    )
    yield MONITOR
    postgres.psql(f"DROP ROLE IF EXISTS {MONITOR}", database="postgres")


def psql_argv(server: PostgresServer, database: str) -> list[str]:
    return [
        str(server.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
        "-h", str(server.socket_dir), "-p", str(server.port), "-U", server.superuser, "-d", database,
    ]  # fmt: skip


@pytest.fixture
def pg(postgres: PostgresServer, pg_monitor: str) -> Iterator[Case]:
    name = f"dbh_{uuid.uuid4().hex[:10]}"
    postgres.psql(f"CREATE DATABASE {name}", database="postgres")
    database = target("PostgreSQL Unicode", {"server": postgres.host, "port": str(postgres.port), "database": name})
    case = Case(name, database, lambda sql: postgres.psql(sql, database=name), psql_argv(postgres, name))
    yield case
    database.close()
    postgres.psql(f"DROP DATABASE {name} WITH (FORCE)", database="postgres")
    for client in case.clients:
        client.stop()


# --- db_activity on PostgreSQL ---------------------------------------------------------------------------


def test_postgresql_query_running_past_the_threshold_is_counted_with_its_age(pg: Case) -> None:
    started = time.time()
    pg.statement("SELECT pg_sleep(60);")
    age_sql = (
        "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)), 0) FROM pg_stat_activity "
        "WHERE datname = current_database() AND state = 'active' AND query LIKE 'SELECT pg_sleep(60)%'"
    )
    observed = wait_above(lambda: pg.sql(age_sql), 1.2, "the sleeping query's age")

    samples = run(DbActivityCheck("a", pg.database, long_query_threshold=1.0))

    assert value(samples, "erp_database_long_running_queries") == 1
    assert observed <= value(samples, "erp_database_oldest_query_age_seconds") <= time.time() - started
    assert value(samples, "erp_database_long_running_query_threshold_seconds") == 1.0
    assert value(samples, "erp_database_blocked_sessions") == 0
    assert value(samples, "erp_database_lock_wait_longest_seconds") == 0


def test_postgresql_idle_sessions_and_the_exporters_own_query_are_not_counted(pg: Case) -> None:
    pg.client("SELECT 1;")
    pg.client("BEGIN; SELECT 1;")
    idle_sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state IN ('idle', 'idle in transaction') AND pid <> pg_backend_pid()"
    )
    wait_until(lambda: pg.sql(idle_sql).strip() == "2", 20, "the two idle sessions did not appear")

    # Threshold 0: any query counted at all, the exporter's own included, would be over it.
    samples = run(DbActivityCheck("a", pg.database, long_query_threshold=0.0))

    assert value(samples, "erp_database_long_running_queries") == 0
    assert value(samples, "erp_database_oldest_query_age_seconds") == 0


def test_postgresql_session_waiting_for_a_row_lock_is_blocked_with_its_wait_age(pg: Case) -> None:
    pg.sql("CREATE TABLE account (id int PRIMARY KEY, balance int); INSERT INTO account VALUES (1, 0);")
    holder = pg.client("BEGIN; UPDATE account SET balance = balance + 1 WHERE id = 1;")
    in_transaction = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'"
    )
    wait_until(lambda: pg.sql(in_transaction).strip() == "1", 20, "the lock holder did not start")
    started = time.time()
    waiter = pg.statement("UPDATE account SET balance = balance + 10 WHERE id = 1;")
    wait_sql = (
        "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - l.waitstart)), 0) FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()"
    )
    observed = wait_above(lambda: pg.sql(wait_sql), 0.5, "the lock wait")

    samples = run(DbActivityCheck("a", pg.database, long_query_threshold=300.0))
    elapsed = time.time() - started

    assert value(samples, "erp_database_blocked_sessions") == 1
    assert observed <= value(samples, "erp_database_lock_wait_longest_seconds") <= elapsed
    holder.send("ROLLBACK;")
    assert waiter.finish() == 0 and holder.finish() == 0
    assert pg.sql("SELECT balance FROM account").strip() == "10"


# --- db_size on PostgreSQL -------------------------------------------------------------------------------


def stable(read: Callable[[], str], attempts: int = 5) -> Callable[[Callable[[], float]], float]:
    """Read `read` before and after `measure`; retry until both agree (background writers settle)."""

    def around(measure: Callable[[], float]) -> float:
        for _ in range(attempts):
            before = number(read())
            measured = measure()
            if number(read()) == before:
                assert measured == before
                return measured
        raise AssertionError("the value kept changing")

    return around


def test_postgresql_largest_tables_have_their_exact_size_and_row_estimate(pg: Case) -> None:
    pg.sql(
        "CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = false);"
        "INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;"
        "CREATE INDEX big_id ON big (id);"
        "CREATE TABLE middle (id int) WITH (autovacuum_enabled = false);"
        "INSERT INTO middle SELECT generate_series(1, 3000);"
        "CREATE TABLE small (id int) WITH (autovacuum_enabled = false);"
        "INSERT INTO small SELECT generate_series(1, 10);"
        "VACUUM ANALYZE big, middle, small;"
    )
    check = DbSizeCheck("s", pg.database, top_tables=2)

    samples = run(check)

    tables = {dict(s.labels)["table"] for s in samples["erp_database_table_size_bytes"]}
    assert tables == {"public.big", "public.middle"}
    for table in ("big", "middle"):
        size = number(pg.sql(f"SELECT pg_total_relation_size('{table}')"))
        assert value(samples, "erp_database_table_size_bytes", table=f"public.{table}") == size
        rows = number(pg.sql(f"SELECT count(*) FROM {table}"))
        assert value(samples, "erp_database_table_rows", table=f"public.{table}") == rows
    assert (
        number(pg.sql("SELECT pg_total_relation_size('big')"))
        > number(pg.sql("SELECT pg_total_relation_size('middle')"))
        > number(pg.sql("SELECT pg_total_relation_size('small')"))
    )
    database_size = stable(lambda: pg.sql("SELECT pg_database_size(current_database())"))
    database_size(lambda: value(run(check), "erp_database_size_bytes"))


def test_postgresql_top_tables_zero_publishes_only_the_database_size(pg: Case) -> None:
    pg.sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")

    samples = run(DbSizeCheck("s", pg.database, top_tables=0))

    assert value(samples, "erp_database_size_bytes") > 0
    assert samples["erp_database_table_size_bytes"] == [] and samples["erp_database_table_rows"] == []


# --- db_maintenance on PostgreSQL -----------------------------------------------------------------------


def test_postgresql_invalid_duplicate_and_unused_indexes_are_counted_exactly(pg: Case) -> None:
    pg.sql(
        "CREATE TABLE item (id int PRIMARY KEY, code int, price int);"
        "INSERT INTO item SELECT g, g % 10, g FROM generate_series(1, 200) g;"
        "CREATE INDEX item_price_1 ON item (price);"
        "CREATE INDEX item_price_2 ON item (price);"  # a duplicate of item_price_1
        "CREATE INDEX item_price_partial ON item (price) WHERE price > 100;"  # not one: other predicate
    )
    with pytest.raises(ServerError, match="could not create unique index"):
        pg.sql("CREATE UNIQUE INDEX CONCURRENTLY item_code_unique ON item (code);")  # codes repeat
    assert pg.sql("SELECT count(*) FROM pg_index WHERE NOT indisvalid").strip() == "1"

    samples = run(DbMaintenanceCheck("m", pg.database))

    assert value(samples, "erp_database_invalid_indexes") == 1
    assert value(samples, "erp_database_duplicate_indexes") == 1
    # Never scanned: the three price indexes; the primary key is unique and the invalid one is invalid.
    assert value(samples, "erp_database_unused_indexes") == 3


def test_postgresql_index_scanned_once_is_no_longer_unused(pg: Case) -> None:
    pg.sql(
        "CREATE TABLE item (id int PRIMARY KEY, price int);"
        "INSERT INTO item SELECT g, g FROM generate_series(1, 200) g;"
        "CREATE INDEX item_price ON item (price); CREATE INDEX item_id_price ON item (id, price);"
    )
    assert value(run(DbMaintenanceCheck("m", pg.database)), "erp_database_unused_indexes") == 2

    # psql's session ends after the query, which flushes its statistics.
    pg.sql("SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM item WHERE price = 5;")
    assert pg.sql("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'item_price'").strip() == "1"

    assert value(run(DbMaintenanceCheck("m", pg.database)), "erp_database_unused_indexes") == 1


def test_postgresql_vacuum_and_analyze_ages_are_skipped_until_a_table_was_vacuumed(pg: Case) -> None:
    pg.sql("CREATE TABLE t (id int) WITH (autovacuum_enabled = false); INSERT INTO t SELECT generate_series(1, 50);")

    samples = run(DbMaintenanceCheck("m", pg.database))

    assert skipped(samples, "erp_database_oldest_vacuum_age_seconds") == "null"
    assert skipped(samples, "erp_database_oldest_analyze_age_seconds") == "null"


def test_postgresql_vacuumed_table_has_a_small_vacuum_age(pg: Case) -> None:
    pg.sql("CREATE TABLE t (id int) WITH (autovacuum_enabled = false); INSERT INTO t SELECT generate_series(1, 50);")
    before_vacuum = time.time()
    pg.sql("VACUUM t;")

    samples = run(DbMaintenanceCheck("m", pg.database))

    vacuumed = pg.sql("SELECT extract(epoch FROM clock_timestamp() - last_vacuum) FROM pg_stat_user_tables")
    assert number(vacuumed) >= value(samples, "erp_database_oldest_vacuum_age_seconds") >= 0
    assert value(samples, "erp_database_oldest_vacuum_age_seconds") <= time.time() - before_vacuum
    assert skipped(samples, "erp_database_oldest_analyze_age_seconds") == "null"  # VACUUM alone


def test_postgresql_transaction_id_age_is_the_databases_datfrozenxid_age(pg: Case) -> None:
    xid_age = stable(lambda: pg.sql("SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()"))

    xid_age(lambda: value(run(DbMaintenanceCheck("m", pg.database)), "erp_database_transaction_id_age"))


# --- replication on PostgreSQL ---------------------------------------------------------------------------


def test_postgresql_primary_without_replicas_is_no_replica_and_has_no_lag_series(pg: Case) -> None:
    samples = run(ReplicationCheck("r", pg.database))

    assert value(samples, "erp_database_is_replica") == 0
    assert samples["erp_database_replication_lag_seconds"] == []


class StandbyServer(PostgresServer):
    """A streaming replica of another test server, made with pg_basebackup -R (about 0.2 s here)."""

    def __init__(self, base_dir: Path, primary: PostgresServer) -> None:
        super().__init__(base_dir)
        self._prepare_base_dir()
        _run(
            [
                self._bin("pg_basebackup"), "-h", primary.socket_dir, "-p", str(primary.port),
                "-U", primary.superuser, "-D", self.data_dir, "-R", "-X", "stream", "-c", "fast", "--no-sync",
            ],
            timeout=60,
            what="pg_basebackup",
            user=self._server_user(),
        )  # fmt: skip


@pytest.fixture
def standby(postgres: PostgresServer, pg_monitor: str, _servers_root: Path) -> Iterator[StandbyServer]:
    server = StandbyServer(_servers_root / f"standby-{uuid.uuid4().hex[:8]}", postgres)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_postgresql_standby_is_a_replica_and_its_primary_reports_its_lag(
    pg: Case, postgres: PostgresServer, standby: StandbyServer
) -> None:
    caught_up = (
        "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
        f"AND pg_last_wal_replay_lsn() >= '{postgres.psql('SELECT pg_current_wal_lsn()').strip()}'"
    )
    wait_until(lambda: standby.psql(caught_up).strip() == "t", 20, "the standby did not catch up")
    measured = "SELECT replay_lag IS NOT NULL OR replay_lsn = sent_lsn FROM pg_stat_replication"
    wait_until(lambda: postgres.psql(measured).strip() == "t", 20, "the primary has no lag reading")
    replica = target("PostgreSQL Unicode", {"server": standby.host, "port": str(standby.port), "database": "appdb"})
    try:
        on_standby = run(ReplicationCheck("r", replica))
    finally:
        replica.close()
    on_primary = run(ReplicationCheck("r", pg.database))

    assert value(on_standby, "erp_database_is_replica") == 1
    assert value(on_standby, "erp_database_replication_lag_seconds", replica="") == 0  # replayed all it got
    assert value(on_primary, "erp_database_is_replica") == 0
    assert [dict(s.labels) for s in on_primary["erp_database_replication_lag_seconds"]] == [
        {"replica": "walreceiver"}  # pg_basebackup -R sets no application_name: the standby's default
    ]
    assert 0 <= value(on_primary, "erp_database_replication_lag_seconds", replica="walreceiver") < 10


def test_replica_label_is_the_name_or_name_at_address_when_not_unique() -> None:
    assert replica_labels([("standby1", "10.0.0.2"), ("walreceiver", "10.0.0.3"), ("walreceiver", None)]) == [
        "standby1",
        "walreceiver@10.0.0.3",
        "walreceiver@local",
    ]
    assert replica_labels([("", "10.0.0.4"), ("x", "10.0.0.5"), ("x", "10.0.0.5")]) == [
        "@10.0.0.4",
        "x@10.0.0.5#1",
        "x@10.0.0.5#2",
    ]


# --- one round: the cost the closing note quotes ------------------------------------------------------------


def test_one_round_of_health_checks_costs_one_statement_per_check_on_postgresql(pg: Case) -> None:
    checks: list[Check] = [
        DbActivityCheck("a", pg.database),
        DbSizeCheck("s", pg.database),
        DbMaintenanceCheck("m", pg.database),
        ReplicationCheck("r", pg.database),
    ]
    for check in checks:  # warm: connect, session setup, statement_timeout
        run(check)
    before = pg.database.statements_total

    for check in checks:
        run(check)

    assert pg.database.statements_total - before == 4


def test_health_checks_run_in_the_exporter_with_target_labels(
    tmp_path: Path, postgres: PostgresServer, pg: Case
) -> None:
    pg.sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
    config = f"""
targets:
  - name: pg
    driver: PostgreSQL Unicode
    connection: {{server: 127.0.0.1, port: {postgres.port}, database: {pg.name}}}
    username: {MONITOR}
    password: {MONITOR_PASSWORD}
    labels: {{environment: test}}
    checks:
      - {{kind: db_activity, long_query_threshold: 1m}}
      - {{kind: db_size, top_tables: 5}}
      - {{kind: db_maintenance}}
      - {{kind: replication}}
host:
  enabled: false
"""
    with running_app(tmp_path, config) as app:
        for check in ("db_activity", "db_size", "db_maintenance", "replication"):
            app.wait_for_run("pg", check, after_runs=0, timeout=20)
        assert app.value("erp_database_long_running_query_threshold_seconds", target="pg", environment="test") == 60
        assert app.value("erp_database_table_size_bytes", target="pg", table="public.t") == number(
            pg.sql("SELECT pg_total_relation_size('t')")
        )
        assert app.value("erp_database_is_replica", target="pg") == 0
        assert app.value("erp_database_invalid_indexes", target="pg") == 0
        assert app.value("erp_check_success", target="pg", check="db_maintenance") == 1


# --- MariaDB ------------------------------------------------------------------------------------------


def mariadb_argv(server: MariaDBServer, database: str) -> list[str]:
    return [server.client, "--no-defaults", f"--socket={server.socket_path}", "-uroot", "--batch", database]


@pytest.fixture
def maria(mariadb: MariaDBServer) -> Iterator[Case]:
    name = f"dbh_{uuid.uuid4().hex[:10]}"
    account = f"'{MONITOR}'@'127.0.0.1'"
    mariadb.sql(
        f"CREATE DATABASE {name}; CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{MONITOR_PASSWORD}';"
        f"GRANT PROCESS, SLAVE MONITOR ON *.* TO {account}; GRANT SELECT ON {name}.* TO {account};"
    )
    database = target("MariaDB Unicode", {"server": mariadb.host, "port": str(mariadb.port), "database": name})
    case = Case(name, database, lambda sql: mariadb.sql(f"USE {name};\n{sql}"), mariadb_argv(mariadb, name))
    yield case
    database.close()
    threads = mariadb.sql(f"SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '{name}'").split()
    for thread in threads:
        with contextlib.suppress(ServerError):  # it ended meanwhile
            mariadb.sql(f"KILL {thread}")
    for client in case.clients:
        client.stop()
    mariadb.sql(f"DROP DATABASE {name}; DROP USER {account};")


def test_mariadb_query_running_past_the_threshold_is_counted_with_its_age(maria: Case) -> None:
    started = time.time()
    maria.statement("SELECT SLEEP(60);")
    age_sql = (
        "SELECT COALESCE(MAX(TIME_MS), 0) / 1000 FROM information_schema.PROCESSLIST "
        "WHERE DB = DATABASE() AND COMMAND = 'Query' AND INFO LIKE 'SELECT SLEEP(60)%'"
    )
    observed = wait_above(lambda: maria.sql(age_sql), 1.2, "the sleeping query's age")

    samples = run(DbActivityCheck("a", maria.database, long_query_threshold=1.0))

    assert value(samples, "erp_database_long_running_queries") == 1
    assert observed <= value(samples, "erp_database_oldest_query_age_seconds") <= time.time() - started
    assert value(samples, "erp_database_blocked_sessions") == 0


def test_mariadb_idle_sessions_and_the_exporters_own_query_are_not_counted(maria: Case) -> None:
    maria.client("SELECT 1;")
    maria.client("BEGIN; SELECT 1;")
    idle_sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND COMMAND = 'Sleep'"
    wait_until(lambda: maria.sql(idle_sql).strip() == "2", 20, "the two idle sessions did not appear")

    samples = run(DbActivityCheck("a", maria.database, long_query_threshold=0.0))

    assert value(samples, "erp_database_long_running_queries") == 0
    assert value(samples, "erp_database_oldest_query_age_seconds") == 0


def test_mariadb_session_waiting_for_a_row_lock_is_blocked_with_its_wait_age(maria: Case) -> None:
    maria.sql(
        "CREATE TABLE account (id int PRIMARY KEY, balance int) ENGINE=InnoDB; INSERT INTO account VALUES (1, 0);"
    )
    holder = maria.client("BEGIN; UPDATE account SET balance = balance + 1 WHERE id = 1;")
    # INNODB_TRX is a copy refreshed only when it was last read over 0.1 s ago: poll it slower than that.
    holding = "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'RUNNING'"
    wait_until(lambda: maria.sql(holding).strip() == "1", 20, "the lock holder did not start", interval=0.25)
    started = time.time()
    waiter = maria.statement("UPDATE account SET balance = balance + 10 WHERE id = 1;")
    wait_sql = (
        "SELECT COALESCE(MAX(TIMESTAMPDIFF(MICROSECOND, trx_wait_started, NOW(6))), 0) / 1000000 "
        "FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'"
    )
    observed = wait_above(lambda: maria.sql(wait_sql), 1.0, "the lock wait", interval=0.25)

    samples = run(DbActivityCheck("a", maria.database, long_query_threshold=300.0))
    elapsed = time.time() - started

    assert value(samples, "erp_database_blocked_sessions") == 1
    # trx_wait_started has whole seconds: the wait can read up to 1 s longer than it is.
    assert observed <= value(samples, "erp_database_lock_wait_longest_seconds") <= elapsed + 1
    holder.send("ROLLBACK;")
    assert waiter.finish() == 0 and holder.finish() == 0
    assert maria.sql("SELECT balance FROM account").strip() == "10"


def test_mariadb_largest_tables_have_the_size_and_rows_information_schema_reports(maria: Case) -> None:
    maria.sql(
        "CREATE TABLE big (id int PRIMARY KEY, pad varchar(300), KEY pad_idx (pad)) ENGINE=InnoDB;"
        "INSERT INTO big SELECT seq, REPEAT('x', 300) FROM seq_1_to_3000;"
        "CREATE TABLE middle (id int PRIMARY KEY, pad varchar(100)) ENGINE=InnoDB;"
        "INSERT INTO middle SELECT seq, REPEAT('y', 100) FROM seq_1_to_1000;"
        "CREATE TABLE small (id int PRIMARY KEY) ENGINE=InnoDB; INSERT INTO small VALUES (1);"
        "ANALYZE TABLE big, middle, small;"
    )

    samples = run(DbSizeCheck("s", maria.database, top_tables=2))

    reported = maria.sql(
        "SELECT TABLE_NAME, DATA_LENGTH + INDEX_LENGTH, TABLE_ROWS FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() ORDER BY 2 DESC"
    )
    rows = [line.split("\t") for line in reported.splitlines()]
    assert [name for name, _, _ in rows] == ["big", "middle", "small"]
    assert {dict(s.labels)["table"] for s in samples["erp_database_table_size_bytes"]} == {"big", "middle"}
    for name, size, estimate in rows[:2]:
        assert value(samples, "erp_database_table_size_bytes", table=name) == float(size)
        assert value(samples, "erp_database_table_rows", table=name) == float(estimate)
    assert value(samples, "erp_database_size_bytes") == sum(float(size) for _, size, _ in rows)


@pytest.fixture
def userstat(mariadb: MariaDBServer) -> Iterator[None]:
    """MariaDB's user statistics on (they are off by default), and off again afterwards."""
    mariadb.sql("SET GLOBAL userstat = 1; FLUSH INDEX_STATISTICS;")
    yield
    mariadb.sql("SET GLOBAL userstat = 0; FLUSH INDEX_STATISTICS;")


INDEXED_TABLE = (
    "CREATE TABLE item (id int PRIMARY KEY, code int, price int, UNIQUE KEY code_unique (code),"
    " KEY price_1 (price), KEY price_2 (price), KEY price_prefix_code (price, code)) ENGINE=InnoDB;"
    "INSERT INTO item SELECT seq, seq, seq FROM seq_1_to_100;"
)


def test_mariadb_duplicate_indexes_are_counted_and_unused_ones_not_published_without_statistics(
    maria: Case,
) -> None:
    maria.sql(INDEXED_TABLE)

    samples = run(DbMaintenanceCheck("m", maria.database))

    assert value(samples, "erp_database_duplicate_indexes") == 1  # price_2 repeats price_1
    assert "erp_database_unused_indexes" not in samples  # userstat and performance_schema are off
    assert "erp_database_invalid_indexes" not in samples  # MariaDB has no invalid indexes
    assert "erp_database_oldest_vacuum_age_seconds" not in samples


def test_mariadb_unused_indexes_come_from_user_statistics_when_they_are_on(maria: Case, userstat: None) -> None:
    maria.sql(INDEXED_TABLE)
    assert value(run(DbMaintenanceCheck("m", maria.database)), "erp_database_unused_indexes") == 3

    maria.sql("SELECT price FROM item FORCE INDEX (price_1) WHERE price = 5;")

    assert value(run(DbMaintenanceCheck("m", maria.database)), "erp_database_unused_indexes") == 2


class PerformanceSchemaMariaDB(MariaDBServer):
    """A private MariaDB with performance_schema on (it cannot be switched on at runtime; ~3 s to start)."""

    def _user_option(self) -> list[str]:
        return [*super()._user_option(), "--performance-schema=ON"]


def test_mariadb_unused_indexes_come_from_performance_schema_when_it_is_on(_servers_root: Path) -> None:
    server = PerformanceSchemaMariaDB(_servers_root / f"mariadb-ps-{uuid.uuid4().hex[:8]}")
    server.start()
    attributes = {"server": server.host, "port": str(server.port), "database": "appdb"}
    database = target("MariaDB Unicode", attributes, user=EXPORTER_USER, password=EXPORTER_PASSWORD)
    try:
        server.sql(
            "GRANT SELECT ON performance_schema.* TO 'exporter'@'127.0.0.1';"
            f"USE appdb; {INDEXED_TABLE}"
            "SELECT price FROM item FORCE INDEX (price_1) WHERE price = 5;"
        )
        assert server.sql("SELECT @@performance_schema").strip() == "1"

        samples = run(DbMaintenanceCheck("m", database))

        # price_1 read one row; price_2 and price_prefix_code none; code_unique and PRIMARY are unique.
        assert value(samples, "erp_database_unused_indexes") == 2
        assert value(samples, "erp_database_duplicate_indexes") == 1
    finally:
        database.close()
        server.stop()


def test_mariadb_server_that_replicates_from_no_one_is_no_replica(maria: Case) -> None:
    samples = run(ReplicationCheck("r", maria.database))

    assert value(samples, "erp_database_is_replica") == 0
    assert samples["erp_database_replication_lag_seconds"] == []


# --- SQLite -------------------------------------------------------------------------------------------


def test_sqlite_size_is_the_file_size_and_tables_are_sized_by_dbstat(tmp_path: Path) -> None:
    path = tmp_path / "erp.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, pad TEXT)")
        connection.execute("CREATE INDEX big_pad ON big (pad)")
        connection.executemany("INSERT INTO big (pad) VALUES (?)", [("x" * 500 + str(i),) for i in range(400)])
        connection.execute("CREATE TABLE middle (pad TEXT)")
        connection.executemany("INSERT INTO middle VALUES (?)", [("y" * 500,) for _ in range(50)])
        connection.execute("CREATE TABLE small (id INTEGER)")
    database = target("SQLite3", {"database": str(path)}, user=None)
    try:
        samples = run(DbSizeCheck("s", database, top_tables=2))
    finally:
        database.close()

    assert value(samples, "erp_database_size_bytes") == os.path.getsize(path)
    with sqlite3.connect(path) as connection:
        pages = dict(
            connection.execute(
                "SELECT m.tbl_name, sum(d.pgsize) FROM dbstat d JOIN sqlite_master m ON m.name = d.name "
                "GROUP BY m.tbl_name"
            ).fetchall()
        )
    assert pages["big"] > pages["middle"] > pages["small"]
    assert {dict(s.labels)["table"] for s in samples["erp_database_table_size_bytes"]} == {"big", "middle"}
    assert value(samples, "erp_database_table_size_bytes", table="big") == pages["big"]
    assert value(samples, "erp_database_table_size_bytes", table="middle") == pages["middle"]
    assert "erp_database_table_rows" not in samples  # SQLite keeps no row estimate


def test_sqlite_has_no_sessions_maintenance_statistics_or_replication(tmp_path: Path) -> None:
    path = tmp_path / "erp.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (id INTEGER)")
    database = target("SQLite3", {"database": str(path)}, user=None)
    try:
        for check in (
            DbActivityCheck("a", database),
            DbMaintenanceCheck("m", database),
            ReplicationCheck("r", database),
        ):
            assert check.run(RunContext(timeout=5)) == []
    finally:
        database.close()


# --- configuration ----------------------------------------------------------------------------------------


HEALTH_CONFIG = """\
targets:
  - name: erp
    driver: PostgreSQL Unicode
    checks:
      - kind: db_activity
      - kind: db_size
      - kind: db_maintenance
      - kind: replication
"""


def test_health_check_kinds_have_their_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "erp-exporter.yml"
    path.write_text(HEALTH_CONFIG)

    loaded = load_config(path)

    settings = loaded.config.global_
    checks = {check.kind_name: check for check in loaded.config.targets[0].checks}
    assert {kind: effective_interval(check, settings) for kind, check in checks.items()} == {
        "db_activity": 30.0,  # global.interval
        "db_size": 300.0,
        "db_maintenance": 900.0,
        "replication": 30.0,
    }
    activity, size = checks["db_activity"], checks["db_size"]
    assert isinstance(activity, DbActivityCheckConfig) and activity.long_query_threshold == 300.0
    assert isinstance(size, DbSizeCheckConfig) and size.top_tables == 10


BAD_SETTINGS = [
    pytest.param(
        "      - {kind: db_size, top_tables: 101}\n",
        "erp-exporter.yml:5: targets[0].checks[0].top_tables: must be at most 100, got 101",
        id="top_tables",
    ),
    pytest.param(
        "      - {kind: db_activity, long_query_threshold: 0s}\n",
        "erp-exporter.yml:5: targets[0].checks[0].long_query_threshold: expected a duration longer than 0s, got '0s'",
        id="long_query_threshold",
    ),
]


@pytest.mark.parametrize(("check", "message"), BAD_SETTINGS)
def test_health_check_settings_out_of_range_are_refused_at_their_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, check: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("erp-exporter.yml").write_text(HEALTH_CONFIG.split("      - kind:", maxsplit=1)[0] + check)

    with pytest.raises(ConfigError) as refused:
        load_config(Path("erp-exporter.yml"))

    assert [str(issue) for issue in refused.value.issues] == [message]


def test_replica_is_a_reserved_target_label(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("erp-exporter.yml").write_text(
        HEALTH_CONFIG.replace("    checks:\n", "    labels: {replica: a}\n    checks:\n")
    )

    with pytest.raises(ConfigError) as refused:
        load_config(Path("erp-exporter.yml"))

    assert [str(issue) for issue in refused.value.issues] == [
        "erp-exporter.yml:4: targets[0].labels.replica: label name 'replica' is reserved by the exporter's metrics"
    ]
