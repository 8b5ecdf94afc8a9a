"""A real Tryton ERP for the test suite: databases (SQLite and PostgreSQL), a server and a JSON-RPC client.

Plain classes and functions, no pytest: the fixtures in ``conftest.py`` wrap them.

* :class:`TrytonInstall`: the separate Tryton virtualenv ``<repo>/.venv-tryton`` (the monitored ERP is not
  part of the monitor), built by ``make`` from ``deploy/tryton/requirements.txt``.
* :func:`create_sqlite_database` / :func:`create_postgres_database`: ``trytond-admin`` on a new database,
  then optionally ``deploy/tryton/seed.py`` (company, users, parties, products, sales...). Both are
  cached (see :class:`TrytonCache`): a cold build takes 30 to 90 s, a cache hit well under 2 s.
* :class:`TrytonServer`: ``trytond`` on a free loopback port.
* :class:`TrytonRPC`: a JSON-RPC client (login, call, logout) with ``requests``.
* SQLite helpers (:func:`sqlite_rows`, :func:`clear_sessions`, ...) that work on the database file directly.

Every subprocess has a timeout and every failure raises :class:`TrytonError` (a :class:`ServerError`) with
the tail of the tool's output. See /work/shared/facts/tryton.md for the traps these functions avoid.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import logging
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
from servers import HOST, PostgresServer, ServerError, _clean_env, _file_tail, free_port

log = logging.getLogger(__name__)

REPO_ROOT: Path = Path(__file__).resolve().parent.parent
TRYTON_VENV: Path = REPO_ROOT / ".venv-tryton"
REQUIREMENTS: Path = REPO_ROOT / "deploy" / "tryton" / "requirements.txt"
SEED_SCRIPT: Path = REPO_ROOT / "deploy" / "tryton" / "seed.py"

#: the modules the pack is written for (trytond-admin activates their dependencies too)
MODULES: tuple[str, ...] = (
    "company",
    "party",
    "product",
    "stock",
    "account",
    "account_product",
    "account_invoice",
    "sale",
    "purchase",
    "production",
)
ADMIN_PASSWORD = "Admin-Passw0rd-2024"
ADMIN_EMAIL = "admin@acme.example"
SEED_PASSWORD = "Demo-Passw0rd-2024"
#: the logins ``seed.py --users N`` creates, in order
SEED_LOGINS: tuple[str, ...] = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
)
#: the six tables the Tryton pack monitors
MONITORING_TABLES: tuple[str, ...] = (
    "ir_session",
    "ir_queue",
    "ir_cron",
    "ir_cron_log",
    "ir_error",
    "res_user_login_attempt",
)

INSTALL_HINT = "run make test/ make demo to install the Tryton venv"
CACHE_ENV = "ERP_TRYTON_CACHE"
DEFAULT_CACHE_DIR = Path("/tmp/erp-exporter-tryton-cache")
_CACHE_FORMAT = 1  # bump when what a cache entry contains changes
_ADMIN_TIMEOUT = 900.0  # trytond-admin: 17 s on SQLite, up to 60 s on PostgreSQL on an idle machine
_SEED_TIMEOUT = 600.0
_TAIL_CHARS = 4000
_PACKAGING_TOOLS = ("pip-", "setuptools-", "wheel-")  # upgrading them does not change a database


class TrytonError(ServerError):
    """Tryton could not be installed, initialised, seeded, started or stopped."""


def _run_logged(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log_file: Path,
    what: str,
    timeout: float,
    env: dict[str, str] | None = None,
) -> float:
    """Run ``argv`` (stdin /dev/null, stdout+stderr appended to ``log_file``); return the seconds taken.

    Raises :class:`TrytonError` with the tail of the log on a non-zero exit or a timeout.
    """
    command = [os.fspath(part) for part in argv]
    started = time.monotonic()
    with log_file.open("ab") as out:
        out.write(f"\n$ {shlex.join(command)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TrytonError(
                f"{what}: timed out after {timeout} s: {shlex.join(command)}\n"
                f"{log_file} tail:\n{_file_tail(log_file, _TAIL_CHARS)}"
            ) from exc
        except OSError as exc:
            raise TrytonError(f"{what}: cannot run {shlex.join(command)}: {exc}") from exc
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise TrytonError(
            f"{what}: exit code {proc.returncode} after {elapsed:.1f} s: {shlex.join(command)}\n"
            f"{log_file} tail:\n{_file_tail(log_file, _TAIL_CHARS)}"
        )
    log.info("%s: %.1f s", what, elapsed)
    return elapsed


# -- the installation --------------------------------------------------------------------------------


class TrytonInstall:
    """The Tryton virtualenv: paths of its executables, its version, a fingerprint of what it contains."""

    def __init__(self, venv: Path = TRYTON_VENV) -> None:
        """Describe the virtualenv at ``venv``; raise :class:`TrytonError` if it is missing or incomplete."""
        self.venv: Path = Path(venv)
        self.bin_dir: Path = self.venv / "bin"
        self.python: Path = self.bin_dir / "python"
        self.trytond: Path = self.bin_dir / "trytond"
        self.trytond_admin: Path = self.bin_dir / "trytond-admin"
        self.trytond_cron: Path = self.bin_dir / "trytond-cron"
        missing = [
            str(path)
            for path in (self.python, self.trytond, self.trytond_admin, self.trytond_cron)
            if not os.access(path, os.X_OK)
        ]
        if missing:
            raise TrytonError(
                f"the Tryton virtualenv {self.venv} is missing {', '.join(missing)}: {INSTALL_HINT}"
            )
        self._version: str | None = None

    def __repr__(self) -> str:
        return f"TrytonInstall(venv={str(self.venv)!r})"

    def version(self) -> str:
        """The trytond version, e.g. ``"8.0.12"`` (asked once from the venv's Python, then remembered)."""
        if self._version is None:
            proc = subprocess.run(
                [self.python, "-c", "import trytond; print(trytond.__version__)"],
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
                env=self.env(),
                check=False,
            )
            if proc.returncode != 0:
                raise TrytonError(f"cannot import trytond from {self.python}: {proc.stderr[-_TAIL_CHARS:]}")
            self._version = proc.stdout.strip()
        return self._version

    def site_packages(self) -> Path:
        """The venv's site-packages directory."""
        found = sorted(self.venv.glob("lib/python3*/site-packages"))
        if not found:
            raise TrytonError(f"no site-packages under {self.venv}: {INSTALL_HINT}")
        return found[0]

    def fingerprint(self) -> str:
        """The installed distributions with their versions (changes when anything but pip is upgraded)."""
        names = (path.name for path in self.site_packages().glob("*.dist-info"))
        return "\n".join(sorted(name for name in names if not name.startswith(_PACKAGING_TOOLS)))

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for Tryton's tools: ours without TRYTON*/PG* variables (they override the config
        file), plus ``extra``."""
        env = _clean_env(["TRYTON", "PG"])
        env.update(extra)
        return env


# -- configuration -----------------------------------------------------------------------------------


def write_config(path: Path, uri: str, sqlite_dir: Path | None = None, **sections: dict[str, str]) -> Path:
    """Write a trytond.conf at ``path``: ``[database] uri`` (+ ``path`` for SQLite) and extra sections."""
    lines = ["[database]", f"uri = {uri}"]
    if sqlite_dir is not None:
        lines.append(f"path = {sqlite_dir}")
    for section, options in sections.items():
        lines += ["", f"[{section}]", *(f"{key} = {value}" for key, value in options.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def sqlite_config_path(database_file: Path) -> Path:
    """The trytond.conf that :func:`create_sqlite_database` writes beside the database file."""
    return database_file.parent / "trytond.conf"


def postgres_uri(server: PostgresServer) -> str:
    """The trytond database URI for ``server``'s superuser over TCP (trytond-admin needs to create tables)."""
    return f"postgresql://{server.superuser}:{server.superuser_password}@{server.host}:{server.port}/"


def _write_passfile(directory: Path, password: str) -> Path:
    """A TRYTONPASSFILE: exactly one line (trytond reads it with ``password, = f.read().splitlines()``)."""
    if not password or "\n" in password or "\r" in password:
        raise TrytonError("the admin password must be one non-empty line")
    path = directory / "admin.pass"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


# -- seeding -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedOptions:
    """What ``deploy/tryton/seed.py`` should create (the company is always created)."""

    users: int = 0
    logins: tuple[str, ...] = ()
    password: str = SEED_PASSWORD
    master_data: bool = False
    demo_data: bool = False

    def args(self) -> list[str]:
        """The seed.py command-line options."""
        args = ["--users", str(self.users), "--password", self.password]
        for login in self.logins:
            args += ["--login", login]
        if self.master_data:
            args.append("--master-data")
        if self.demo_data:
            args.append("--demo-data")
        return args

    def all_logins(self) -> list[str]:
        """The logins created: the first ``users`` of :data:`SEED_LOGINS` (then userNN), then ``logins``."""
        standard = [SEED_LOGINS[i] if i < len(SEED_LOGINS) else f"user{i + 1:02d}" for i in range(self.users)]
        return list(dict.fromkeys([*standard, *self.logins]))


#: what the test fixtures seed: the company, five users, parties, products, sales and purchases
FIXTURE_SEED = SeedOptions(users=5, password=SEED_PASSWORD, master_data=True, demo_data=True)


def run_seed(
    install: TrytonInstall, config: Path, database: str, options: SeedOptions, log_file: Path | None = None
) -> dict[str, Any]:
    """Run ``seed.py`` on ``database`` (idempotent) and return its JSON summary."""
    log_path = log_file or config.parent / f"seed-{database}.log"
    with tempfile.NamedTemporaryFile(prefix="seed-", suffix=".json", dir=config.parent, delete=False) as out:
        summary_path = Path(out.name)
    try:
        command = [
            str(install.python),
            str(SEED_SCRIPT),
            "--config",
            str(config),
            "--database",
            database,
            *options.args(),
        ]
        started = time.monotonic()
        with summary_path.open("wb") as summary, log_path.open("ab") as err:
            err.write(f"\n$ {shlex.join(command)}\n".encode())
            err.flush()
            try:
                proc = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=summary,
                    stderr=err,
                    timeout=_SEED_TIMEOUT,
                    env=install.env(),
                    cwd=config.parent,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise TrytonError(
                    f"seed.py on {database}: timed out after {_SEED_TIMEOUT} s\n{_file_tail(log_path)}"
                ) from exc
        if proc.returncode != 0:
            raise TrytonError(
                f"seed.py on {database}: exit code {proc.returncode}\n"
                f"{log_path} tail:\n{_file_tail(log_path, _TAIL_CHARS)}"
            )
        log.info("seed.py on %s: %.1f s", database, time.monotonic() - started)
        result: dict[str, Any] = json.loads(summary_path.read_text())
        return result
    finally:
        summary_path.unlink(missing_ok=True)


def create_users(
    install: TrytonInstall,
    config: Path,
    database: str,
    logins: Sequence[str],
    password: str = SEED_PASSWORD,
) -> dict[str, int]:
    """Create users (if missing) with ``password`` (8+ characters) in a seeded database; return login → id.

    Takes 3 to 5 s (seed.py loads the whole trytond pool). The database must not be in use by a writer
    at the same moment on SQLite (a running :class:`TrytonServer` is fine: SQLite serialises writers).
    """
    summary = run_seed(install, config, database, SeedOptions(logins=tuple(logins), password=password))
    return {user["login"]: user["id"] for user in summary["users"]}


# -- the cache ---------------------------------------------------------------------------------------


class TrytonCache:
    """Initialised (and seeded) databases kept between test sessions, keyed by everything that shapes them.

    The directory is ``$ERP_TRYTON_CACHE`` or ``/tmp/erp-exporter-tryton-cache``; ``ERP_TRYTON_CACHE=off``
    disables caching. The key hashes the cache format, the backend (and PostgreSQL's version), the contents
    of requirements.txt, the installed distributions, the database name, the modules, the admin password
    and e-mail, seed.py's contents and options, and today's date (UTC): the records carry their creation
    time and the fiscal year is built around today, so an entry is only reused on the day it was made.
    SQLite entries are copies of the database file; PostgreSQL entries are ``pg_dump -Fc`` archives.
    Entries are written to a temporary name and renamed, so concurrent sessions never see half a file.
    """

    def __init__(self, directory: Path | None = None, enabled: bool = True) -> None:
        """Use ``directory`` (default: from the environment, see above)."""
        configured = os.environ.get(CACHE_ENV, "")
        self.enabled: bool = enabled and configured.lower() not in ("off", "0", "no", "false")
        if directory is None:
            directory = Path(configured) if configured and self.enabled else DEFAULT_CACHE_DIR
        self.directory: Path = Path(directory)

    def __repr__(self) -> str:
        return f"TrytonCache(directory={str(self.directory)!r}, enabled={self.enabled})"

    @classmethod
    def disabled(cls) -> TrytonCache:
        """A cache that never hits and never stores."""
        return cls(enabled=False)

    @staticmethod
    def key(install: TrytonInstall, **parts: Any) -> str:
        """A hex digest of ``parts`` plus the format, requirements.txt, the installed set and today's date."""
        material = {
            "format": _CACHE_FORMAT,
            "requirements": REQUIREMENTS.read_text() if REQUIREMENTS.exists() else "",
            "installed": install.fingerprint(),
            "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
            **parts,
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def path(self, key: str, suffix: str) -> Path:
        """Where the entry ``key`` lives."""
        return self.directory / f"{key}{suffix}"

    def get(self, key: str, suffix: str) -> Path | None:
        """The entry's path if it exists (and caching is on), else None."""
        if not self.enabled:
            return None
        path = self.path(key, suffix)
        return path if path.is_file() else None

    def put(self, source: Path, key: str, suffix: str) -> Path | None:
        """Copy ``source`` into the cache atomically; return the entry (None when caching is off)."""
        if not self.enabled:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.prune()
        target = self.path(key, suffix)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key}-", suffix=suffix, dir=self.directory)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp_name)
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return target

    def prune(self, max_age_days: float = 2) -> None:
        """Delete entries (and stale temporary files) older than ``max_age_days``."""
        limit = time.time() - max_age_days * 86400
        for entry in self.directory.glob("*"):
            try:
                if entry.is_file() and entry.stat().st_mtime < limit:
                    entry.unlink()
            except OSError:
                pass


# -- databases ---------------------------------------------------------------------------------------


def _checkpoint(database_file: Path) -> None:
    """Fold the WAL into the main file, so that a copy of the ``.sqlite`` file alone has every commit."""
    with closing(sqlite3.connect(database_file, timeout=60)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{database_file}{suffix}").unlink(missing_ok=True)


def _run_admin(
    install: TrytonInstall,
    config: Path,
    name: str,
    modules: Sequence[str],
    admin_password: str,
    email: str,
    log_file: Path,
) -> float:
    """``trytond-admin --all --activate-dependencies -u <modules> --email``; return the seconds taken."""
    passfile = _write_passfile(config.parent, admin_password)
    return _run_logged(
        [
            install.trytond_admin,
            "-c",
            config,
            "-d",
            name,
            "--all",
            "--activate-dependencies",
            "-u",
            *modules,
            "--email",
            email,
        ],
        log_file=log_file,
        what=f"trytond-admin on {name}",
        timeout=_ADMIN_TIMEOUT,
        env=install.env(TRYTONPASSFILE=str(passfile)),
    )


def create_sqlite_database(
    install: TrytonInstall,
    directory: Path,
    name: str,
    modules: Sequence[str] = MODULES,
    admin_password: str = ADMIN_PASSWORD,
    email: str = ADMIN_EMAIL,
    *,
    seed: SeedOptions | None = None,
    cache: TrytonCache | None = None,
) -> Path:
    """Create ``directory/<name>.sqlite`` (initialised, seeded if ``seed``) and ``directory/trytond.conf``.

    On a cache hit the cached file is copied (well under a second); otherwise the empty file is created
    first (trytond-admin refuses a missing one), trytond-admin and seed.py run, the WAL is checkpointed
    and the file is stored in the cache. Returns the path of the database file. Logs go to
    ``directory/<name>-build.log``.
    """
    cache = cache if cache is not None else TrytonCache()
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory / "trytond.conf", "sqlite://", sqlite_dir=directory)
    target = directory / f"{name}.sqlite"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    key = TrytonCache.key(
        install,
        backend="sqlite",
        name=name,
        modules=sorted(modules),
        admin_password=admin_password,
        email=email,
        seed=_seed_material(seed),
    )
    started = time.monotonic()
    cached = cache.get(key, ".sqlite")
    if cached is not None:
        shutil.copyfile(cached, target)
        log.info("SQLite %s from the cache in %.2f s", name, time.monotonic() - started)
        return target
    log_file = directory / f"{name}-build.log"
    target.touch()
    _run_admin(install, config, name, modules, admin_password, email, log_file)
    if seed is not None:
        run_seed(install, config, name, seed, log_file=log_file)
    _checkpoint(target)
    cache.put(target, key, ".sqlite")
    log.info("SQLite %s built in %.1f s", name, time.monotonic() - started)
    return target


def _seed_material(seed: SeedOptions | None) -> Any:
    """What the cache key records about the seeding: seed.py's source and the options."""
    if seed is None:
        return None
    return {"script": SEED_SCRIPT.read_text(), "args": seed.args()}


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
        seed=_seed_material(seed),
    )
    started = time.monotonic()
    server.psql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8';\n", database="postgres")
    env = _clean_env(["PG"])
    cached = cache.get(key, ".pgdump")
    if cached is not None:
        _run_logged(
            _pg_client(server, "pg_restore", "--exit-on-error", "--jobs=2", "-d", name, cached),
            log_file=log_file,
            what=f"pg_restore into {name}",
            timeout=600,
            env=env,
        )
        log.info("PostgreSQL %s from the cache in %.2f s", name, time.monotonic() - started)
        return name
    _run_admin(install, config, name, modules, admin_password, email, log_file)
    if seed is not None:
        run_seed(install, config, name, seed, log_file=log_file)
    if cache.enabled:
        dump = workdir / f"{name}.pgdump"
        _run_logged(
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
    return _run_logged(
        [install.trytond_cron, "-c", config, "-d", database, "--once", "-v"],
        log_file=log_file or config.parent / f"cron-{database}.log",
        what=f"trytond-cron --once on {database}",
        timeout=300,
        env=install.env(),
    )
