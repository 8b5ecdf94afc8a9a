"""Faults on real databases: each is reported with the right reason within interval + timeout, the rest
of the exporter keeps working, and nothing leaks (threads, file descriptors, server connections)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from harness import RunningApp, open_fd_count, running_app, thread_count, wait_until
from servers import BlackholeServer, MariaDBServer, PostgresServer

from exporter.checks.base import ErrorReason

# Short, but long enough for a loaded 2-core CI machine to keep up.
INTERVAL = 1.0
TIMEOUT = 1.0
REPORT_WITHIN = INTERVAL + TIMEOUT + 2.0  # the promise is interval + timeout; 2 s of scheduling slack


def pg_target(
    port: int,
    password: str = "exporterpw",
    probe: str | None = None,
    fresh: bool = True,
    connect_timeout: str = "2s",
    name: str = "pg",
) -> str:
    probe_line = f'\n        probe_query: "{probe}"' if probe else ""
    return f"""
  - name: {name}
    driver: PostgreSQL Unicode
    connection: {{server: 127.0.0.1, port: {port}, database: appdb}}
    username: exporter
    password: {password}
    connect_timeout: {connect_timeout}
    backoff: {{initial: 200ms, max: 1s}}
    checks:
      - kind: db_response
        interval: 1s
        timeout: 1s
        fresh_connection: {str(fresh).lower()}{probe_line}
"""


def maria_target(
    port: int, password: str = "exporterpw", probe: str | None = None, fresh: bool = True, name: str = "maria"
) -> str:
    probe_line = f'\n        probe_query: "{probe}"' if probe else ""
    return f"""
  - name: {name}
    driver: MariaDB Unicode
    connection: {{server: 127.0.0.1, port: {port}, database: appdb}}
    username: exporter
    password: {password}
    connect_timeout: 2s
    backoff: {{initial: 200ms, max: 1s}}
    checks:
      - kind: db_response
        interval: 1s
        timeout: 1s
        fresh_connection: {str(fresh).lower()}{probe_line}
"""


def config(*targets: str) -> str:
    return f"""
global: {{interval: 1s, timeout: 1s, cancel_grace: 1s, jitter: 0}}
host: {{interval: 1s}}
targets:{"".join(targets)}
"""


def wait_for_failure(running: RunningApp, target: str, reason: ErrorReason, within: float) -> None:
    wait_until(
        lambda: (s := running.state(target, "db_response")).success is False and s.error_reason is reason,
        within,
        f"{target}: no failure with reason {reason.value} within {within}s; "
        f"state: {running.state(target, 'db_response').error_reason} "
        f"{running.state(target, 'db_response').error_message}",
    )


def wait_for_success(running: RunningApp, target: str, within: float) -> None:
    wait_until(
        lambda: running.state(target, "db_response").success is True,
        within,
        f"{target} did not succeed within {within}s: {running.state(target, 'db_response').error_message}",
    )


def assert_host_check_keeps_running(running: RunningApp) -> None:
    before = running.state("", "host").runs_total
    running.wait_for_run("", "host", before, timeout=REPORT_WITHIN)
    assert running.state("", "host").success is True


def exporter_backends(server: PostgresServer) -> int:
    return int(server.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'erp-exporter'"))


# --- unreachable servers ---------------------------------------------------------------------------------


def test_closed_port_is_reported_as_connect_failure_and_up_zero(tmp_path: Path, closed_port: int) -> None:
    with running_app(tmp_path, config(pg_target(closed_port))) as running:
        wait_for_failure(running, "pg", ErrorReason.CONNECT, REPORT_WITHIN)
        assert running.value("erp_up", target="pg") == 0
        assert_host_check_keeps_running(running)


def test_server_that_accepts_and_never_answers_is_a_timeout(
    tmp_path: Path, blackhole: BlackholeServer
) -> None:
    with running_app(tmp_path, config(pg_target(blackhole.port))) as running:
        wait_for_failure(running, "pg", ErrorReason.TIMEOUT, REPORT_WITHIN + 2)
        assert running.value("erp_up", target="pg") == 0
        assert_host_check_keeps_running(running)


def test_mariadb_blackhole_is_a_timeout_despite_the_driver_ignoring_login_timeout(
    tmp_path: Path, blackhole: BlackholeServer
) -> None:
    with running_app(tmp_path, config(maria_target(blackhole.port))) as running:
        wait_for_failure(running, "maria", ErrorReason.TIMEOUT, REPORT_WITHIN + 2)
        assert_host_check_keeps_running(running)


def test_down_target_is_retried_with_backoff_not_hammered(tmp_path: Path, blackhole: BlackholeServer) -> None:
    text = config(pg_target(blackhole.port, connect_timeout="1s"))
    # Three more checks on the same target, all due every second: without backoff, each would connect.
    text = text.replace(
        "        fresh_connection: true",
        "        fresh_connection: true\n"
        "      - {kind: db_response, name: probe2, interval: 1s, timeout: 1s}\n"
        "      - {kind: db_response, name: probe3, interval: 1s, timeout: 1s}\n"
        "      - {kind: privileges, interval: 1s, timeout: 1s}",
    )
    with running_app(tmp_path, text) as running:
        time.sleep(6)
        runs = sum(
            running.state("pg", c).runs_total for c in ("db_response", "probe2", "probe3", "privileges")
        )
    assert runs >= 12
    assert blackhole.connections_accepted < runs / 2, (blackhole.connections_accepted, runs)


def test_wrong_password_is_reported_as_auth(
    tmp_path: Path, postgres: PostgresServer, mariadb: MariaDBServer
) -> None:
    text = config(pg_target(postgres.port, password="wrong"), maria_target(mariadb.port, password="wrong"))
    with running_app(tmp_path, text) as running:
        wait_for_failure(running, "pg", ErrorReason.AUTH, REPORT_WITHIN)
        wait_for_failure(running, "maria", ErrorReason.AUTH, REPORT_WITHIN)
        assert "wrong" not in running.metrics()


# --- servers that go away or hang ----------------------------------------------------------------------


def test_server_stopped_during_a_check_is_reported_and_recovers_by_itself(
    tmp_path: Path, postgres_disruptable: PostgresServer
) -> None:
    server = postgres_disruptable
    text = config(pg_target(server.port, probe="SELECT pg_sleep(0.5)"))
    with running_app(tmp_path, text) as running:
        wait_for_success(running, "pg", REPORT_WITHIN)
        server.stop()
        wait_for_failure(running, "pg", ErrorReason.CONNECT, REPORT_WITHIN)
        assert_host_check_keeps_running(running)
        server.start()
        wait_for_success(running, "pg", REPORT_WITHIN + 1)  # + the longest backoff
        assert running.value("erp_up", target="pg") == 1


def test_mariadb_restart_is_survived(tmp_path: Path, mariadb_disruptable: MariaDBServer) -> None:
    server = mariadb_disruptable
    with running_app(tmp_path, config(maria_target(server.port, fresh=False))) as running:
        wait_for_success(running, "maria", REPORT_WITHIN)
        server.stop()
        wait_for_failure(running, "maria", ErrorReason.CONNECT, REPORT_WITHIN)
        server.start()
        wait_for_success(running, "maria", REPORT_WITHIN + 1)


def test_frozen_server_costs_one_abandoned_worker_and_recovers(
    tmp_path: Path, postgres_disruptable: PostgresServer
) -> None:
    server = postgres_disruptable
    # A pooled connection: the query is sent on an established session, and a frozen backend never answers.
    with running_app(tmp_path, config(pg_target(server.port, fresh=False))) as running:
        wait_for_success(running, "pg", REPORT_WITHIN)
        server.freeze()
        wait_for_failure(running, "pg", ErrorReason.TIMEOUT, REPORT_WITHIN)
        wait_until(
            lambda: running.value("erp_exporter_abandoned_workers") == 1,
            REPORT_WITHIN,
            "the hung worker was not abandoned",
        )
        runs = running.state("pg", "db_response").runs_total
        running.wait_for_run("pg", "db_response", runs + 2, timeout=4 * REPORT_WITHIN)
        assert running.state("pg", "db_response").error_reason is ErrorReason.TIMEOUT
        assert running.value("erp_exporter_abandoned_workers") == 1  # later runs fail fast, no new victims
        assert running.value("erp_database_pool_hung_connections", target="pg") == 1
        assert_host_check_keeps_running(running)
        server.thaw()
        wait_for_success(running, "pg", REPORT_WITHIN + 2)
        wait_until(
            lambda: running.value("erp_exporter_abandoned_workers") == 0,
            REPORT_WITHIN,
            "the abandoned worker did not come back after thaw",
        )


def test_frozen_mariadb_is_a_timeout_and_recovers(tmp_path: Path, mariadb_disruptable: MariaDBServer) -> None:
    server = mariadb_disruptable
    with running_app(tmp_path, config(maria_target(server.port, fresh=False))) as running:
        wait_for_success(running, "maria", REPORT_WITHIN)
        server.freeze()
        wait_for_failure(running, "maria", ErrorReason.TIMEOUT, REPORT_WITHIN)
        assert (running.value("erp_exporter_abandoned_workers") or 0) <= 1
        server.thaw()
        wait_for_success(running, "maria", REPORT_WITHIN + 8)  # READ_TIMEOUT may have to expire first


# --- slow queries -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "target_factory", "slow_query"),
    [
        ("postgres", pg_target, "SELECT pg_sleep(5)"),
        ("mariadb", maria_target, "SELECT SLEEP(5)"),
    ],
    ids=["postgresql", "mariadb"],
)
def test_query_slower_than_its_timeout_is_cancelled_and_reported_as_timeout(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    fixture: str,
    target_factory,
    slow_query: str,  # type: ignore[no-untyped-def]
) -> None:
    server = request.getfixturevalue(fixture)
    name = "pg" if fixture == "postgres" else "maria"
    with running_app(tmp_path, config(target_factory(server.port, probe=slow_query))) as running:
        wait_for_failure(running, name, ErrorReason.TIMEOUT, REPORT_WITHIN)
        assert running.value("erp_exporter_abandoned_workers") == 0  # cancel worked: nobody was given up on
        assert (running.value("erp_database_pool_connections", target=name) or 0) <= 2


def test_slow_sqlite_query_is_interrupted(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "slow.db"
    sqlite3.connect(db).execute("CREATE TABLE t (a)").connection.close()
    slow = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    text = f"""
global: {{interval: 1s, timeout: 1s, cancel_grace: 1s}}
host: {{enabled: false}}
targets:
  - name: lite
    driver: SQLite3
    connection: {{database: {db}}}
    checks:
      - {{kind: db_response, interval: 1s, timeout: 1s, probe_query: "{slow}"}}
"""
    with running_app(tmp_path, text) as running:
        wait_for_failure(running, "lite", ErrorReason.TIMEOUT, REPORT_WITHIN)
        assert running.value("erp_exporter_abandoned_workers") == 0


# --- leaks ------------------------------------------------------------------------------------------------


def test_fault_cycles_leak_no_threads_descriptors_or_connections(
    tmp_path: Path, postgres_disruptable: PostgresServer
) -> None:
    server = postgres_disruptable
    threads_before, fds_before = thread_count(), open_fd_count()
    with running_app(tmp_path, config(pg_target(server.port, probe="SELECT pg_sleep(0.3)"))) as running:
        for _ in range(3):
            wait_for_success(running, "pg", REPORT_WITHIN + 1)
            assert exporter_backends(server) <= 2  # max_connections
            server.stop()
            wait_for_failure(running, "pg", ErrorReason.CONNECT, REPORT_WITHIN)
            server.start()
        wait_for_success(running, "pg", REPORT_WITHIN + 1)
    wait_until(
        lambda: exporter_backends(server) == 0, 5, "connections stayed open after the exporter stopped"
    )
    wait_until(
        lambda: thread_count() <= threads_before + 1,
        5,
        f"threads leaked: {thread_count()} > {threads_before}",
    )
    wait_until(
        lambda: open_fd_count() <= fds_before + 2, 5, f"descriptors leaked: {open_fd_count()} > {fds_before}"
    )
