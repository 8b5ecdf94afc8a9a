"""Shared fixtures: real throwaway database servers (see ``servers.py``).

Servers start lazily (only when a test asks for them), once per session, and are stopped at session end,
also when tests fail. Tests that stop or freeze a server must use the ``*_disruptable`` fixtures: those are
separate instances, restored (thawed and started) after every test, so a fault never leaks into the next.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import BlackholeServer, MariaDBServer, PostgresServer
from servers import closed_port as _pick_closed_port


def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    """Fail the run if any test was skipped: a skipped test is not a passed test.

    A missing driver or server binary must turn the run red, not silently shrink it.
    """
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1  # a skipped test is not a passed test


@pytest.fixture(scope="session")
def _servers_root(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A session directory for the servers' data, outside pytest's basetemp.

    pytest's basetemp (/tmp/pytest-of-root) is mode 0700, which the ``postgres`` OS user cannot traverse,
    so the servers live in their own directory under /tmp (mode 0711). It is removed at session end when
    no test failed, and kept (with the server logs) for inspection otherwise.
    """
    root = Path(tempfile.mkdtemp(prefix="exporter-test-servers-"))
    os.chmod(root, 0o711)  # noqa: S103 - the postgres OS user must traverse it (it cannot list it)
    yield root
    if request.session.testsfailed == 0:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(_servers_root: Path) -> Iterator[PostgresServer]:
    """A running PostgreSQL shared by the whole session. Do not stop or freeze it."""
    server = PostgresServer(_servers_root / "postgres")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb(_servers_root: Path) -> Iterator[MariaDBServer]:
    """A running MariaDB shared by the whole session. Do not stop or freeze it."""
    server = MariaDBServer(_servers_root / "mariadb")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _postgres_disruptable_session(_servers_root: Path) -> Iterator[PostgresServer]:
    """The session's second PostgreSQL, reserved for tests that stop, restart or freeze it."""
    server = PostgresServer(_servers_root / "postgres-disruptable")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _mariadb_disruptable_session(_servers_root: Path) -> Iterator[MariaDBServer]:
    """The session's second MariaDB, reserved for tests that stop, restart or freeze it."""
    server = MariaDBServer(_servers_root / "mariadb-disruptable")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_disruptable(_postgres_disruptable_session: PostgresServer) -> Iterator[PostgresServer]:
    """A running PostgreSQL that the test may stop, restart or freeze; thawed and restarted afterwards."""
    server = _postgres_disruptable_session
    server.thaw()
    server.start()
    yield server
    server.thaw()
    server.start()


@pytest.fixture
def mariadb_disruptable(_mariadb_disruptable_session: MariaDBServer) -> Iterator[MariaDBServer]:
    """A running MariaDB that the test may stop, restart or freeze; thawed and restarted afterwards."""
    server = _mariadb_disruptable_session
    server.thaw()
    server.start()
    yield server
    server.thaw()
    server.start()


@pytest.fixture
def blackhole() -> Iterator[BlackholeServer]:
    """A started TCP server on 127.0.0.1 that accepts, reads and never answers."""
    server = BlackholeServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (connections are refused at once)."""
    return _pick_closed_port()
