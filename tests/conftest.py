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
from hypothesis import HealthCheck, settings
from servers import BlackholeServer, MariaDBServer, PostgresServer
from servers import closed_port as _pick_closed_port
from statement_audit import POSTGRES_LOG_PREFIX, AuditResult, audit_logs

# The fuzz tests are specifications with a fixed budget: the same examples on every run (derandomized, no
# example database carried between runs), each test sets its own max_examples, and no per-example deadline
# (a loaded 2-core CI machine would turn a slow example into a flaky failure).
settings.register_profile(
    "erp",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("erp")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
    """Fail the run if any test was skipped: a skipped test is not a passed test.

    A missing driver or server binary must turn the run red, not silently shrink it.
    """
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = 1  # a skipped test is not a passed test


# Every statement the session's servers receive is logged, for the zero-write audit at the end.
_LOGGED_POSTGRES = {"log_statement": "all", "log_line_prefix": POSTGRES_LOG_PREFIX}
_AUDITS: list[AuditResult] = []


def _general_log(directory: Path) -> Path:
    return directory / "general.log"


def _logged_mariadb(directory: Path) -> MariaDBServer:
    return MariaDBServer(directory, ["--general-log=1", f"--general-log-file={_general_log(directory)}"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many statements the zero-write audit read (it runs when the servers' directory is removed)."""
    for result in _AUDITS:
        servers = ", ".join(f"{name} {count}" for name, count in sorted(result.by_server.items())) or "none"
        terminalreporter.write_line(
            f"zero-write audit: {result.audited} statements of the monitoring logins audited ({servers}); "
            f"{len(result.deliberate)} deliberate writes by tests refused by design; "
            f"{len(result.violations)} writes, DDL or SET beyond session setup"
        )


@pytest.fixture(scope="session")
def _servers_root(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A session directory for the servers' data, outside pytest's basetemp.

    pytest's basetemp (/tmp/pytest-of-root) is mode 0700, which the ``postgres`` OS user cannot traverse,
    so the servers live in their own directory under /tmp (mode 0711). It is removed at session end when
    no test failed, and kept (with the server logs) for inspection otherwise.

    Before that, once every server has stopped, the zero-write audit reads their statement logs and fails
    the run (an error at teardown) on any write, DDL or SET a monitoring login sent beyond session setup.
    """
    root = Path(tempfile.mkdtemp(prefix="exporter-test-servers-"))
    os.chmod(root, 0o711)  # noqa: S103 - the postgres OS user must traverse it (it cannot list it)
    yield root
    result = audit_logs(
        [root / name / "server.log" for name in ("postgres", "postgres-disruptable")],
        [_general_log(root / name) for name in ("mariadb", "mariadb-disruptable")],
    )
    _AUDITS.append(result)
    if result.violations:
        listed = "\n".join(f"  {s.server} {s.user}: {s.sql[:300]}" for s in result.violations[:20])
        pytest.fail(
            f"zero-write audit: {len(result.violations)} statements of a monitoring login were not read-only "
            f"(logs kept in {root}):\n{listed}",
            pytrace=False,
        )
    if request.session.testsfailed == 0:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(_servers_root: Path) -> Iterator[PostgresServer]:
    """A running PostgreSQL shared by the whole session. Do not stop or freeze it."""
    server = PostgresServer(_servers_root / "postgres", _LOGGED_POSTGRES)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb(_servers_root: Path) -> Iterator[MariaDBServer]:
    """A running MariaDB shared by the whole session. Do not stop or freeze it."""
    server = _logged_mariadb(_servers_root / "mariadb")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _postgres_disruptable_session(_servers_root: Path) -> Iterator[PostgresServer]:
    """The session's second PostgreSQL, reserved for tests that stop, restart or freeze it."""
    server = PostgresServer(_servers_root / "postgres-disruptable", _LOGGED_POSTGRES)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _mariadb_disruptable_session(_servers_root: Path) -> Iterator[MariaDBServer]:
    """The session's second MariaDB, reserved for tests that stop, restart or freeze it."""
    server = _logged_mariadb(_servers_root / "mariadb-disruptable")
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


# -- Tryton: a real ERP (see tryton.py) ----------------------------------------------------------------

import shutil as _shutil  # noqa: E402 - appended section, kept apart from the servers' fixtures above
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402

import tryton as _tryton  # noqa: E402

TRYTON_DATABASE = "tryton_test"


def _pristine(database_file: Path) -> Path:
    """Where the untouched copy of the session's SQLite Tryton database is kept."""
    return database_file.parent / f".{database_file.name}.pristine"


class _TrytonBuilds:
    """The session's two seeded Tryton databases, built in two threads at the same time (on a cold cache
    trytond-admin takes ~20 s on SQLite and ~60 s on PostgreSQL; a cache hit takes under 1 s).

    Only the databases the collected tests ask for are built; the first fixture that needs one waits
    for both, so that no build runs in the background of unrelated, timing-sensitive tests.
    """

    def __init__(self, install: _tryton.TrytonInstall, root: Path) -> None:
        self.install = install
        self.root = root
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tryton-build")
        self.sqlite_future: Future[Path] | None = None
        self.postgres_future: Future[str] | None = None

    def _build_sqlite(self) -> Path:
        path = _tryton.create_sqlite_database(
            self.install, self.root / "tryton-sqlite", TRYTON_DATABASE, seed=_tryton.FIXTURE_SEED
        )
        # before any server touches it: the source of ``tryton_sqlite_scratch`` copies
        _shutil.copyfile(path, _pristine(path))
        return path

    def start_sqlite(self) -> None:
        if self.sqlite_future is None:
            self.sqlite_future = self.executor.submit(self._build_sqlite)

    def wait_all(self) -> None:
        """Wait for every started build (without raising): no build keeps a core busy in the background
        while unrelated, timing-sensitive tests run."""
        for future in (self.sqlite_future, self.postgres_future):
            if future is not None:
                future.exception()

    def start_postgres(self, server: PostgresServer) -> None:
        if self.postgres_future is None:
            self.postgres_future = self.executor.submit(
                _tryton.create_postgres_database,
                self.install,
                server,
                TRYTON_DATABASE,
                seed=_tryton.FIXTURE_SEED,
                workdir=self.root / "tryton-postgres",
            )


@pytest.fixture(scope="session")
def tryton_install() -> _tryton.TrytonInstall:
    """The Tryton virtualenv ``<repo>/.venv-tryton``; the test fails (not skips) when it is missing."""
    try:
        return _tryton.TrytonInstall()
    except _tryton.TrytonError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def _tryton_builds(
    request: pytest.FixtureRequest, tryton_install: _tryton.TrytonInstall, _servers_root: Path
) -> Iterator[_TrytonBuilds]:
    """Start building every Tryton database this session's tests need, in parallel, on first use."""
    builds = _TrytonBuilds(tryton_install, _servers_root)
    wanted = {name for item in request.session.items for name in getattr(item, "fixturenames", ())}
    try:
        if "tryton_sqlite_db" in wanted or "tryton_postgres_db" not in wanted:
            builds.start_sqlite()
        if "tryton_postgres_db" in wanted:
            builds.start_postgres(request.getfixturevalue("postgres"))
        yield builds
    finally:
        builds.executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def tryton_sqlite_db(_tryton_builds: _TrytonBuilds) -> Path:
    """A seeded SQLite Tryton database for this session (``<dir>/tryton_test.sqlite``).

    Seeded by ``deploy/tryton/seed.py``: company "Acme Demo Ltd" (EUR, chart of accounts, fiscal year),
    users alice, bob, carol, dave, erin (password ``Demo-Passw0rd-2024``; ``admin`` has
    ``tryton.ADMIN_PASSWORD``), 7 parties, 4 goods, 3 sales and 2 purchases. Its trytond.conf is
    ``tryton.sqlite_config_path(path)``. Shared by the whole session and served by ``tryton_server``:
    count relative to a baseline, or clean up with ``tryton.clear_sessions(path)``; tests that need a
    pristine or private database use ``tryton_sqlite_scratch``.
    """
    _tryton_builds.start_sqlite()
    _tryton_builds.wait_all()
    assert _tryton_builds.sqlite_future is not None
    return _tryton_builds.sqlite_future.result()


@pytest.fixture(scope="session")
def tryton_postgres_db(_tryton_builds: _TrytonBuilds, postgres: PostgresServer) -> str:
    """The name of the same seeded Tryton database on the session ``postgres`` server.

    Owned by the superuser; the ``exporter`` role may connect and SELECT every table (nothing more). Its
    trytond.conf (superuser over TCP) is ``<_servers_root>/tryton-postgres/trytond.conf``.
    """
    _tryton_builds.start_postgres(postgres)
    _tryton_builds.wait_all()
    assert _tryton_builds.postgres_future is not None
    name = _tryton_builds.postgres_future.result()
    _tryton.grant_read_only(postgres, name, "exporter")
    return name


@pytest.fixture(scope="session")
def tryton_server(
    tryton_install: _tryton.TrytonInstall, tryton_sqlite_db: Path
) -> Iterator[_tryton.TrytonServer]:
    """A running trytond on ``tryton_sqlite_db`` (``.url``, ``.port``, ``.log_file``), for the whole session.

    Never restarted: sessions, login attempts and cron logs accumulate. Do not stop it.
    """
    server = _tryton.TrytonServer(
        tryton_install, _tryton.sqlite_config_path(tryton_sqlite_db), tryton_sqlite_db.stem
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tryton_rpc(tryton_server: _tryton.TrytonServer) -> Iterator[_tryton.TrytonRPC]:
    """A JSON-RPC client for ``tryton_server``'s database."""
    with _tryton.TrytonRPC(tryton_server.url, tryton_server.database) as client:
        yield client


@pytest.fixture
def tryton_sqlite_scratch(tryton_sqlite_db: Path, tmp_path: Path) -> Path:
    """A private copy of the freshly seeded SQLite database (with its trytond.conf) for one test.

    Copied from an untouched copy of the build, not from the session file the server writes to.
    """
    directory = tmp_path / "tryton"
    directory.mkdir()
    target = directory / tryton_sqlite_db.name
    _shutil.copyfile(_pristine(tryton_sqlite_db), target)
    _tryton.write_config(directory / "trytond.conf", "sqlite://", sqlite_dir=directory)
    return target
