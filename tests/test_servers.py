"""The throwaway servers work through the real ODBC drivers (pyodbc + unixODBC + psqlODBC/MariaDB)."""

from __future__ import annotations

import threading
import time
from contextlib import closing

import pyodbc
import pytest
from servers import BlackholeServer, MariaDBServer, PostgresServer


def _select_one(connection_string: str, timeout: int = 5) -> int:
    """Connect, run SELECT 1 and close (pyodbc's ``with connect()`` would not close the connection)."""
    with closing(pyodbc.connect(connection_string, autocommit=True, timeout=timeout)) as cnxn:
        value: int = cnxn.execute("SELECT 1").fetchone()[0]
    return value


def test_postgres_answers_select_1_as_the_exporter_role(postgres: PostgresServer) -> None:
    with closing(pyodbc.connect(postgres.connection_string(), autocommit=True, timeout=5)) as cnxn:
        assert cnxn.execute("SELECT 1").fetchone()[0] == 1
        row = cnxn.execute("SELECT current_user, current_database()").fetchone()
        assert tuple(row) == ("exporter", "appdb")  # a pyodbc.Row never equals a tuple
    assert postgres.psql("SELECT datdba::regrole FROM pg_database WHERE datname = 'appdb'") == "postgres\n"


def test_mariadb_answers_select_1_as_the_exporter_user(mariadb: MariaDBServer) -> None:
    with closing(pyodbc.connect(mariadb.connection_string(), autocommit=True, timeout=5)) as cnxn:
        assert cnxn.execute("SELECT 1").fetchone()[0] == 1
        row = cnxn.execute("SELECT USER(), DATABASE()").fetchone()
        assert tuple(row) == ("exporter@127.0.0.1", "appdb")
    assert mariadb.sql("SELECT COUNT(*) FROM mysql.user WHERE user = 'exporter'") == "2\n"


def test_psql_failure_raises_with_the_server_error(postgres: PostgresServer) -> None:
    with pytest.raises(RuntimeError, match="no_such_table"):
        postgres.psql("SELECT * FROM no_such_table")


def test_frozen_postgres_does_not_answer_a_new_connection_until_thawed(
    postgres_disruptable: PostgresServer,
) -> None:
    server = postgres_disruptable
    server.freeze()
    with pytest.raises(pyodbc.Error) as excinfo:
        pyodbc.connect(server.connection_string(), autocommit=True, timeout=2)
    assert excinfo.value.args[0] == "08001"
    assert "timeout expired" in excinfo.value.args[1]
    server.thaw()
    assert _select_one(server.connection_string()) == 1


def test_frozen_postgres_blocks_queries_on_existing_connections(postgres_disruptable: PostgresServer) -> None:
    server = postgres_disruptable
    results: list[int] = []
    with closing(pyodbc.connect(server.connection_string(), autocommit=True, timeout=5)) as cnxn:
        server.freeze()

        def query() -> None:
            results.append(cnxn.execute("SELECT 1").fetchone()[0])

        worker = threading.Thread(target=query, daemon=True)
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "the query on a frozen backend should block"
        server.thaw()
        worker.join(timeout=10)
        assert not worker.is_alive()
    assert results == [1]


def test_stopped_postgres_refuses_connections_and_starts_again(postgres_disruptable: PostgresServer) -> None:
    server = postgres_disruptable
    server.stop()
    server.stop()  # idempotent
    assert not server.is_running()
    with pytest.raises(pyodbc.Error) as excinfo:
        pyodbc.connect(server.connection_string(), autocommit=True, timeout=2)
    assert excinfo.value.args[0] == "08001"
    assert "Connection refused" in excinfo.value.args[1]
    server.start()
    server.start()  # idempotent
    assert _select_one(server.connection_string()) == 1


def test_restarted_postgres_has_a_new_postmaster_and_answers(postgres_disruptable: PostgresServer) -> None:
    before = postgres_disruptable.postmaster_pid()
    postgres_disruptable.restart()
    assert postgres_disruptable.postmaster_pid() not in (None, before)
    assert _select_one(postgres_disruptable.connection_string()) == 1


def test_stopped_mariadb_refuses_connections_and_a_restarted_one_accepts_them(
    mariadb_disruptable: MariaDBServer,
) -> None:
    server = mariadb_disruptable
    server.stop()
    server.stop()  # idempotent
    assert not server.is_running()
    with pytest.raises(pyodbc.Error) as excinfo:
        pyodbc.connect(server.connection_string(), autocommit=True, timeout=5)
    assert excinfo.value.args[0] == "HY000"
    assert "Can't connect to server" in excinfo.value.args[1]
    server.start()
    assert _select_one(server.connection_string()) == 1
    server.restart()
    assert _select_one(server.connection_string()) == 1


def test_blackhole_makes_a_postgres_login_time_out(blackhole: BlackholeServer) -> None:
    connection_string = (
        f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={blackhole.port};"
        "DATABASE=appdb;UID=exporter;PWD=exporterpw"
    )
    started = time.monotonic()
    with pytest.raises(pyodbc.Error) as excinfo:
        pyodbc.connect(connection_string, autocommit=True, timeout=2)
    elapsed = time.monotonic() - started
    assert excinfo.value.args[0] == "08001"
    assert "timeout expired" in excinfo.value.args[1]
    assert elapsed >= 1.0  # it waited for the login timeout rather than being refused
    assert blackhole.connections_accepted >= 1


def test_closed_port_refuses_a_postgres_login_at_once(closed_port: int) -> None:
    connection_string = (
        f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={closed_port};"
        "DATABASE=appdb;UID=exporter;PWD=exporterpw"
    )
    with pytest.raises(pyodbc.Error) as excinfo:
        pyodbc.connect(connection_string, autocommit=True, timeout=2)
    assert excinfo.value.args[0] == "08001"
    assert "Connection refused" in excinfo.value.args[1]
