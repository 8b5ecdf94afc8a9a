"""The monitor never writes to the ERP: two independent layers, each proven on its own, and the report of
a login that could write (the real boundary)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import odbc_database
from servers import MariaDBServer, PostgresServer
from statement_audit import deliberate

from exporter.checks.base import CheckError, ErrorReason, RunContext
from exporter.checks.privileges import PrivilegesCheck
from exporter.db.target import TargetDatabase


def database(
    driver: str,
    attributes: dict[str, str],
    user: str | None = "exporter",
    password: str | None = "exporterpw",
) -> TargetDatabase:
    return odbc_database(driver, attributes, user, password)


@pytest.fixture
def pg_db(postgres: PostgresServer) -> Iterator[TargetDatabase]:
    postgres.psql(
        "DROP TABLE IF EXISTS ro_probe; CREATE TABLE ro_probe (id int); "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ro_probe TO exporter;"
    )
    db = database(
        "PostgreSQL Unicode", {"server": postgres.host, "port": str(postgres.port), "database": "appdb"}
    )
    yield db
    db.close()
    postgres.psql("DROP TABLE IF EXISTS ro_probe")


@pytest.fixture
def maria_db(mariadb: MariaDBServer) -> Iterator[TargetDatabase]:
    mariadb.sql("DROP TABLE IF EXISTS appdb.ro_probe; CREATE TABLE appdb.ro_probe (id int)")
    db = database("MariaDB Unicode", {"server": mariadb.host, "port": str(mariadb.port), "database": "appdb"})
    yield db
    db.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[TargetDatabase]:
    path = tmp_path / "erp.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE ro_probe (id INTEGER)")
    db = database("SQLite3", {"database": str(path)}, user=None, password=None)
    yield db
    db.close()


def write_bypassing_the_guard(db: TargetDatabase, sql: str) -> CheckError:
    """Send a write straight through the session, as if the guard had a hole (named to the zero-write
    audit as deliberate: it proves the session refuses it)."""
    with db.session(RunContext(timeout=5)) as session, pytest.raises(CheckError) as refused:
        session._run(deliberate(sql), (), max_rows=10)
    return refused.value


# --- layer 1: the statement guard ------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["pg_db", "maria_db", "sqlite_db"])
def test_guard_refuses_a_write_before_it_reaches_the_database(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    db: TargetDatabase = request.getfixturevalue(fixture)
    statements_before = db.statements_total
    with db.session(RunContext(timeout=5)) as session:
        sent_for_session = db.statements_total
        with pytest.raises(CheckError) as refused:
            session.query("INSERT INTO ro_probe VALUES (1)")
    assert refused.value.reason is ErrorReason.GUARD
    assert db.statements_total == sent_for_session >= statements_before  # nothing more was sent


# --- layer 2: read-only sessions ---------------------------------------------------------------------------


def test_postgresql_session_refuses_writes_even_without_the_guard(
    pg_db: TargetDatabase, postgres: PostgresServer
) -> None:
    error = write_bypassing_the_guard(pg_db, "INSERT INTO ro_probe VALUES (1)")
    assert "read-only transaction" in error.message
    assert postgres.psql("SELECT count(*) FROM ro_probe").strip() == "0"


def test_postgresql_data_modifying_cte_is_refused_by_the_session(
    pg_db: TargetDatabase, postgres: PostgresServer
) -> None:
    error = write_bypassing_the_guard(
        pg_db, "WITH x AS (INSERT INTO ro_probe VALUES (2) RETURNING id) SELECT * FROM x"
    )
    assert "read-only transaction" in error.message
    assert postgres.psql("SELECT count(*) FROM ro_probe").strip() == "0"


def test_mariadb_session_refuses_writes_even_without_the_guard(
    maria_db: TargetDatabase, mariadb: MariaDBServer
) -> None:
    error = write_bypassing_the_guard(maria_db, "INSERT INTO ro_probe VALUES (1)")
    assert "READ ONLY transaction" in error.message
    assert mariadb.sql("SELECT count(*) FROM appdb.ro_probe").strip() == "0"


def test_mariadb_session_refuses_temporary_tables(maria_db: TargetDatabase) -> None:
    error = write_bypassing_the_guard(maria_db, "CREATE TEMPORARY TABLE scratch (id int)")
    assert "READ ONLY" in error.message


def test_sqlite_session_refuses_writes_even_without_the_guard(
    sqlite_db: TargetDatabase, tmp_path: Path
) -> None:
    error = write_bypassing_the_guard(sqlite_db, "INSERT INTO ro_probe VALUES (1)")
    assert "readonly" in error.message
    with sqlite3.connect(tmp_path / "erp.db") as connection:
        assert connection.execute("SELECT count(*) FROM ro_probe").fetchone() == (0,)


def test_sqlite_session_refuses_writes_to_attached_databases(
    sqlite_db: TargetDatabase, tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    error = write_bypassing_the_guard(sqlite_db, f"ATTACH DATABASE '{other}' AS other")
    assert error.reason is ErrorReason.QUERY
    assert not other.exists() or other.stat().st_size == 0


def test_sqlite_target_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    db = database("SQLite3", {"database": str(missing)}, user=None, password=None)
    with pytest.raises(CheckError) as failed, db.session(RunContext(timeout=5)):
        pass
    assert failed.value.reason is ErrorReason.CONNECT
    assert not missing.exists()


@pytest.mark.parametrize("fixture", ["pg_db", "maria_db", "sqlite_db"])
def test_sessions_are_reported_read_only(request: pytest.FixtureRequest, fixture: str) -> None:
    db: TargetDatabase = request.getfixturevalue(fixture)
    with db.session(RunContext(timeout=5)) as session:
        assert session.connection.read_only is True


# --- the real boundary: what the login may do ------------------------------------------------------------


def privileges(db: TargetDatabase) -> dict[str, float]:
    families = PrivilegesCheck("privileges", db).run(RunContext(timeout=10))
    return {f.name: float(f.samples[0].value) for f in families}  # type: ignore[arg-type]


def test_postgresql_login_with_write_grants_is_reported(pg_db: TargetDatabase) -> None:
    result = privileges(pg_db)
    assert result["erp_database_login_can_write"] == 1
    assert result["erp_database_login_superuser"] == 0
    assert result["erp_database_login_writable_objects"] >= 1


def test_postgresql_minimal_monitoring_login_is_reported_safe(postgres: PostgresServer) -> None:
    postgres.psql(
        "DROP ROLE IF EXISTS erp_monitor; CREATE ROLE erp_monitor LOGIN PASSWORD 'monitorpw'; "
        "GRANT pg_monitor TO erp_monitor; DROP TABLE IF EXISTS ro_items; CREATE TABLE ro_items (id int); "
        "GRANT SELECT ON ro_items TO erp_monitor;"
    )
    db = database(
        "PostgreSQL Unicode",
        {"server": postgres.host, "port": str(postgres.port), "database": "appdb"},
        user="erp_monitor",
        password="monitorpw",
    )
    try:
        assert privileges(db) == {
            "erp_database_login_can_write": 0,
            "erp_database_login_superuser": 0,
            "erp_database_login_writable_objects": 0,
        }
    finally:
        db.close()
        postgres.psql("DROP TABLE ro_items; DROP ROLE erp_monitor;")


def test_postgresql_superuser_login_is_reported(postgres: PostgresServer) -> None:
    db = database(
        "PostgreSQL Unicode",
        {"server": postgres.host, "port": str(postgres.port), "database": "appdb"},
        user=postgres.superuser,
        password=postgres.superuser_password,
    )
    try:
        result = privileges(db)
    finally:
        db.close()
    assert result["erp_database_login_superuser"] == 1
    assert result["erp_database_login_can_write"] == 1


def test_mariadb_login_with_all_privileges_is_reported(maria_db: TargetDatabase) -> None:
    result = privileges(maria_db)
    assert result["erp_database_login_can_write"] == 1
    assert result["erp_database_login_writable_objects"] >= 1


def test_mariadb_select_only_login_is_reported_safe(mariadb: MariaDBServer) -> None:
    mariadb.sql(
        "DROP USER IF EXISTS 'erp_monitor'@'127.0.0.1'; "
        "CREATE USER 'erp_monitor'@'127.0.0.1' IDENTIFIED BY 'monitorpw'; "
        "GRANT SELECT ON appdb.* TO 'erp_monitor'@'127.0.0.1'; "
        "GRANT PROCESS ON *.* TO 'erp_monitor'@'127.0.0.1';"
    )
    db = database(
        "MariaDB Unicode",
        {"server": mariadb.host, "port": str(mariadb.port), "database": "appdb"},
        user="erp_monitor",
        password="monitorpw",
    )
    try:
        assert privileges(db) == {
            "erp_database_login_can_write": 0,
            "erp_database_login_superuser": 0,
            "erp_database_login_writable_objects": 0,
        }
    finally:
        db.close()
        mariadb.sql("DROP USER 'erp_monitor'@'127.0.0.1'")


def test_a_new_postgresql_connection_costs_one_setup_statement_and_is_read_only_and_named(
    pg_db: TargetDatabase,
) -> None:
    before = pg_db.statements_total
    with pg_db.session(RunContext(timeout=10.0), fresh=True) as session:
        setup = pg_db.statements_total - before
        read_only, name = session.query("SELECT current_setting('default_transaction_read_only'), "
                                        "current_setting('application_name')").rows[0]
        assert session.connection.read_only is True
        assert session.connection.dbms_version.split(".")[0].isdigit()
    assert setup == 1  # set_config of both settings and the version in one round trip
    assert (read_only, name) == ("on", "erp-exporter")
