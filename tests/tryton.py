"""A real Tryton ERP for the test suite: databases (SQLite and PostgreSQL), a server and a JSON-RPC client.

Plain classes and functions, no pytest: the fixtures in ``conftest.py`` wrap them.

* Building a database (the Tryton virtualenv, trytond-admin, seed.py, the cache) is
  ``deploy/tryton/tryton_build.py``, the same recipe ``make demo`` and ``make stack`` use; its names are
  re-exported here. :func:`create_postgres_database` builds the PostgreSQL variant with its pieces.
* :class:`TrytonServer`: ``trytond`` on a free loopback port.
* :class:`TrytonRPC`: a JSON-RPC client (login, call, logout) with ``requests``.
* SQLite helpers (:func:`sqlite_rows`, :func:`clear_sessions`, ...) that work on the database file directly.

Every subprocess has a timeout and every failure raises :class:`TrytonError` with the tail of the tool's
output. See /work/shared/facts/tryton.md for the traps these functions avoid.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from servers import HOST, PostgresServer, _clean_env, _file_tail, free_port

# The database build is shared with the demo: deploy/tryton/tryton_build.py (deploy/ is no package).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy" / "tryton"))

from tryton_build import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    FIXTURE_SEED,
    MODULES,
    REPO_ROOT,
    SEED_LOGINS,
    SEED_PASSWORD,
    TRYTON_VENV,
    SeedOptions,
    TrytonCache,
    TrytonError,
    TrytonInstall,
    create_sqlite_database,
    create_users,
    run_admin,
    run_logged,
    run_seed,
    seed_material,
    sqlite_config_path,
    write_config,
)

__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "FIXTURE_SEED",
    "MODULES",
    "REPO_ROOT",
    "SEED_LOGINS",
    "SEED_PASSWORD",
    "TRYTON_VENV",
    "SeedOptions",
    "TrytonCache",
    "TrytonError",
    "TrytonInstall",
    "create_sqlite_database",
    "create_users",
    "run_seed",
    "sqlite_config_path",
    "write_config",
]

log = logging.getLogger(__name__)

_TAIL_CHARS = 4000

#: the six tables the Tryton pack monitors
MONITORING_TABLES: tuple[str, ...] = (
    "ir_session",
    "ir_queue",
    "ir_cron",
    "ir_cron_log",
    "ir_error",
    "res_user_login_attempt",
)


def postgres_uri(server: PostgresServer) -> str:
    """The trytond database URI for ``server``'s superuser over TCP (trytond-admin needs to create tables)."""
    return f"postgresql://{server.superuser}:{server.superuser_password}@{server.host}:{server.port}/"


def _pg_client(server: PostgresServer, tool: str, *args: str | os.PathLike[str]) -> list[str]:
    """A PostgreSQL client command (pg_dump, pg_restore) as the superuser over ``server``'s unix socket."""
    return [
        str(server.bin_dir / tool),
        "-h",
        str(server.socket_dir),
        "-p",
        str(server.port),
        "-U",
        server.superuser,
        *(os.fspath(arg) for arg in args),
    ]


def create_postgres_database(
    install: TrytonInstall,
    server: PostgresServer,
    name: str,
    modules: Sequence[str] = MODULES,
    admin_password: str = ADMIN_PASSWORD,
    email: str = ADMIN_EMAIL,
    *,
    seed: SeedOptions | None = None,
    cache: TrytonCache | None = None,
    workdir: Path | None = None,
) -> str:
    """Create the database ``name`` on ``server`` (initialised, then seeded if ``seed``); return ``name``.

    The database is created by ``CREATE DATABASE ... TEMPLATE template0 ENCODING 'UTF8'`` (what trytond
    itself does) and owned by the superuser. On a cache hit it is filled by ``pg_restore`` from the cached
    ``pg_dump -Fc`` archive; otherwise trytond-admin (connecting as the superuser over TCP) and seed.py run
    and the archive is stored in the cache. ``workdir`` (default ``<server base_dir>/../tryton-<name>``)
    receives ``trytond.conf`` (see :func:`postgres_database_config`) and the build log.
    """
    cache = cache if cache is not None else TrytonCache()
    workdir = Path(workdir) if workdir is not None else server.base_dir.parent / f"tryton-{name}"
    config = postgres_database_config(server, workdir)
    log_file = workdir / f"{name}-build.log"
    key = TrytonCache.key(
        install,
        backend="postgresql",
        postgres=str(server.bin_dir),
        name=name,
        modules=sorted(modules),
        admin_password=admin_password,
        email=email,
        seed=seed_material(seed),
    )
    started = time.monotonic()
    server.psql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8';\n", database="postgres")
    env = _clean_env(["PG"])
    cached = cache.get(key, ".pgdump")
    if cached is not None:
        run_logged(
            _pg_client(server, "pg_restore", "--exit-on-error", "--jobs=2", "-d", name, cached),
            log_file=log_file,
            what=f"pg_restore into {name}",
            timeout=600,
            env=env,
        )
        log.info("PostgreSQL %s from the cache in %.2f s", name, time.monotonic() - started)
        return name
    run_admin(install, config, name, modules, admin_password, email, log_file)
    if seed is not None:
        run_seed(install, config, name, seed, log_file=log_file)
    if cache.enabled:
        dump = workdir / f"{name}.pgdump"
        run_logged(
            _pg_client(server, "pg_dump", "-Fc", "-f", dump, name),
            log_file=log_file,
            what=f"pg_dump of {name}",
            timeout=600,
            env=env,
        )
        cache.put(dump, key, ".pgdump")
        dump.unlink()
    log.info("PostgreSQL %s built in %.1f s", name, time.monotonic() - started)
    return name


def postgres_database_config(server: PostgresServer, workdir: Path) -> Path:
    """Write (or rewrite) ``workdir/trytond.conf`` pointing trytond at ``server``; return its path."""
    return write_config(Path(workdir) / "trytond.conf", postgres_uri(server))


def grant_read_only(server: PostgresServer, database: str, role: str) -> None:
    """Let ``role`` connect to ``database`` and SELECT every table of schema public (and nothing more)."""
    server.psql(f'GRANT CONNECT ON DATABASE "{database}" TO {role};\n', database="postgres")
    server.psql(
        f"GRANT USAGE ON SCHEMA public TO {role};\nGRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};\n",
        database=database,
    )


# -- SQLite helpers ----------------------------------------------------------------------------------


def sqlite_rows(database_file: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run a query on a Tryton SQLite file (read-only connection) and return all rows."""
    uri = f"file:{database_file}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=30)) as connection:
        rows: list[tuple[Any, ...]] = connection.execute(sql, params).fetchall()
    return rows


def sqlite_execute(database_file: Path, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one writing statement on a Tryton SQLite file and commit; return the number of rows changed.

    Safe while a :class:`TrytonServer` uses the file (WAL mode; a busy writer is waited for up to 30 s).
    """
    with closing(sqlite3.connect(database_file, timeout=30)) as connection:
        cursor = connection.execute(sql, params)
        connection.commit()
        return cursor.rowcount


def count_rows(database_file: Path, table: str) -> int:
    """``SELECT count(*)`` of one table of a Tryton SQLite file."""
    if not table.replace("_", "").replace("-", "").isalnum():  # Tryton names some tables "a-b"
        raise ValueError(f"not a table name: {table!r}")
    (count,) = sqlite_rows(database_file, f'SELECT count(*) FROM "{table}"')[0]
    return int(count)


def clear_sessions(database_file: Path) -> int:
    """Delete every ir_session row (logs everyone out); return how many there were."""
    return sqlite_execute(database_file, "DELETE FROM ir_session")


def clear_login_attempts(database_file: Path) -> int:
    """Delete every res_user_login_attempt row (resets the failed-login rate limit); return the count."""
    return sqlite_execute(database_file, "DELETE FROM res_user_login_attempt")


# -- the server --------------------------------------------------------------------------------------


class TrytonServer:
    """``trytond`` serving ``database`` with ``config`` on 127.0.0.1 at a free port (chosen at construction).

    The port is set by a second config file (``[web] listen``) given after ``config``. The server runs in
    its own session with INFO logging into :attr:`log_file`. Usable as a context manager.
    """

    def __init__(
        self, install: TrytonInstall, config: Path, database: str, base_dir: Path | None = None
    ) -> None:
        """Prepare (not start) a server; ``base_dir`` (default: the config's directory) gets the logs."""
        self.install: TrytonInstall = install
        self.config: Path = Path(config)
        self.database: str = database
        self.host: str = HOST
        self.port: int = free_port()
        self.base_dir: Path = Path(base_dir) if base_dir is not None else self.config.parent
        self.log_file: Path = self.base_dir / f"trytond-{self.port}.log"
        self.web_config: Path = self.base_dir / f"trytond-web-{self.port}.conf"
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"TrytonServer(database={self.database!r}, port={self.port})"

    @property
    def url(self) -> str:
        """The base URL without a trailing slash (``POST {url}/{database}/rpc/`` is the JSON-RPC endpoint)."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The trytond process id while it runs, else None."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def is_running(self) -> bool:
        """True if the process started by :meth:`start` has not exited."""
        return self.pid is not None

    def _answers(self) -> bool:
        try:
            response = requests.post(
                f"{self.url}/rpc/",
                json={"id": 0, "method": "common.server.version", "params": []},
                timeout=2,
            )
        except requests.RequestException:
            return False
        return response.status_code == 200 and "result" in response.json()

    def start(self, timeout: float = 60) -> float:
        """Start trytond and wait until ``common.server.version`` answers; return the seconds it took.

        A no-op (returning 0) if it is already running. Raises :class:`TrytonError` with the log tail if
        the process exits or does not answer within ``timeout``.
        """
        if self.is_running():
            return 0.0
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # a second config file that only sets [web] listen (trytond merges the files given to -c)
        self.web_config.write_text(f"[web]\nlisten = {self.host}:{self.port}\n")
        argv = [
            str(self.install.trytond),
            "-c",
            str(self.config),
            str(self.web_config),
            "-d",
            self.database,
            "-v",
        ]
        started = time.monotonic()
        with self.log_file.open("ab") as out:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal must not reach it
                env=self.install.env(),
                cwd=self.base_dir,
            )
        deadline = started + timeout
        while not self._answers():
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise TrytonError(
                    f"trytond exited with code {code} during start\n"
                    f"{self.log_file} tail:\n{_file_tail(self.log_file, _TAIL_CHARS)}"
                )
            if time.monotonic() > deadline:
                self._kill()
                raise TrytonError(
                    f"trytond did not answer within {timeout} s\n"
                    f"{self.log_file} tail:\n{_file_tail(self.log_file, _TAIL_CHARS)}"
                )
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        log.info("trytond on port %d answered after %.2f s", self.port, elapsed)
        return elapsed

    def _kill(self) -> None:
        """SIGKILL the whole process group and reap the server."""
        if self._proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait(timeout=30)
        self._proc = None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait; SIGKILL (and raise :class:`TrytonError`) if it has not exited within ``timeout``.

        Also kills anything left in the server's process group. A no-op if it is not running.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                self._kill()
                raise TrytonError(
                    f"trytond did not stop within {timeout} s after SIGTERM; it was killed\n"
                    f"{self.log_file} tail:\n{_file_tail(self.log_file, _TAIL_CHARS)}"
                ) from exc
        # leftovers in its process group (it has none today, but a worker option would fork)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        self._proc = None

    def __enter__(self) -> TrytonServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- JSON-RPC ----------------------------------------------------------------------------------------


class TrytonHTTPError(TrytonError):
    """The server answered with an HTTP error (401 bad credentials, 404 unknown database, 429 too many)."""

    def __init__(self, method: str, status_code: int, body: str) -> None:
        super().__init__(f"{method}: HTTP {status_code}: {body[:500]}")
        self.method = method
        self.status_code = status_code
        self.body = body


class TrytonRPCError(TrytonError):
    """The server answered HTTP 200 with a JSON-RPC ``error`` (e.g. ``["LoginException", [...]]``)."""

    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"{method}: JSON-RPC error: {error!r}"[:2000])
        self.method = method
        self.error = error


@dataclass(frozen=True)
class Session:
    """A logged-in Tryton session: the login, the user id and the session key (a row of ir_session)."""

    login: str
    user_id: int
    key: str = field(repr=False)

    def authorization(self) -> str:
        """The ``Authorization`` header value: ``Session base64("<login>:<user_id>:<key>")``."""
        token = base64.b64encode(f"{self.login}:{self.user_id}:{self.key}".encode()).decode("ascii")
        return f"Session {token}"


class TrytonRPC:
    """A JSON-RPC client for one database of a trytond server (``POST {base_url}/{database}/rpc/``)."""

    def __init__(self, base_url: str, database: str, timeout: float = 30) -> None:
        """``base_url`` like ``http://127.0.0.1:8000`` (a trailing slash is ignored)."""
        self.base_url: str = base_url.rstrip("/")
        self.database: str = database
        self.timeout: float = timeout
        self._http = requests.Session()
        self._ids = 0

    def __repr__(self) -> str:
        return f"TrytonRPC(base_url={self.base_url!r}, database={self.database!r})"

    def _post(self, path: str, method: str, params: Sequence[Any], session: Session | None = None) -> Any:
        self._ids += 1
        headers = {"Content-Type": "application/json"}
        if session is not None:
            headers["Authorization"] = session.authorization()
        try:
            response = self._http.post(
                f"{self.base_url}{path}",
                data=json.dumps({"id": self._ids, "method": method, "params": list(params)}),
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TrytonError(f"{method}: request to {self.base_url}{path} failed: {exc}") from exc
        if response.status_code != 200:
            raise TrytonHTTPError(method, response.status_code, response.text)
        try:
            payload = response.json()
        except ValueError as exc:
            raise TrytonError(f"{method}: the answer is not JSON: {response.text[:500]}") from exc
        if payload.get("error") is not None:
            raise TrytonRPCError(method, payload["error"])
        return payload.get("result")

    def server_version(self) -> str:
        """``common.server.version`` (no database, no session), e.g. ``"8.0"``."""
        return str(self._post("/rpc/", "common.server.version", []))

    def login(self, login: str, password: str, language: str = "en") -> Session:
        """``common.db.login``: a new ir_session row. Bad credentials raise :class:`TrytonHTTPError` (401)."""
        result = self._post(
            f"/{self.database}/rpc/", "common.db.login", [login, {"password": password}, language]
        )
        user_id, key = result[0], result[1]
        return Session(login=login, user_id=int(user_id), key=str(key))

    def call(self, session: Session, method: str, params: Sequence[Any]) -> Any:
        """An authenticated call, e.g. ``call(s, "model.res.user.search_count", [[], {}])``.

        The last parameter of model methods is the context (a dict).
        """
        return self._post(f"/{self.database}/rpc/", method, params, session=session)

    def logout(self, session: Session) -> None:
        """``common.db.logout``: deletes the session's ir_session row."""
        self._post(f"/{self.database}/rpc/", "common.db.logout", [], session=session)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> TrytonRPC:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def run_cron_once(install: TrytonInstall, config: Path, database: str, log_file: Path | None = None) -> float:
    """``trytond-cron --once`` (runs every due ir_cron task, writing ir_cron_log rows); return the seconds."""
    return run_logged(
        [install.trytond_cron, "-c", config, "-d", database, "--once", "-v"],
        log_file=log_file or config.parent / f"cron-{database}.log",
        what=f"trytond-cron --once on {database}",
        timeout=300,
        env=install.env(),
    )
