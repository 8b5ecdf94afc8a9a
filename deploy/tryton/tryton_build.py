"""Build a Tryton ERP database: the one recipe behind `make demo`, `make stack` and the test fixtures.

* :class:`TrytonInstall`: the separate Tryton virtualenv ``<repo>/.venv-tryton`` (the monitored ERP is not
  part of the monitor), built by ``make tryton`` from ``deploy/tryton/requirements.txt``.
* :func:`create_sqlite_database`: ``trytond-admin`` on a new SQLite database, then optionally
  ``deploy/tryton/seed.py`` (company, users, parties, products, sales...), cached by :class:`TrytonCache`
  (a cold build takes about 30 s, a cache hit well under a second). The test suite builds its PostgreSQL
  databases with the same pieces (:func:`run_admin`, :func:`run_seed`) in ``tests/tryton.py``.

Standard library only: it runs under the exporter's Python, and starts Tryton's own tools from its
virtualenv. Every subprocess has a timeout; every failure raises :class:`TrytonError` with the tail of the
tool's output. See docs and /work/shared/facts/tryton.md for the traps these functions avoid.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shlex
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REPO_ROOT: Path = Path(__file__).resolve().parents[2]
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
# Credentials of throwaway local demo and test databases only; the exporter never sees the admin password.
ADMIN_PASSWORD = "Admin-Passw0rd-2024"  # noqa: S105
ADMIN_EMAIL = "admin@acme.example"
SEED_PASSWORD = "Demo-Passw0rd-2024"  # noqa: S105
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
INSTALL_HINT = "run make test/ make demo to install the Tryton venv"
CACHE_ENV = "ERP_TRYTON_CACHE"
DEFAULT_CACHE_DIR = Path("/tmp/erp-exporter-tryton-cache")  # noqa: S108  (shared between sessions on purpose)
_CACHE_FORMAT = 1  # bump when what a cache entry contains changes
_ADMIN_TIMEOUT = 900.0  # trytond-admin: 17 s on SQLite, up to 60 s on PostgreSQL on an idle machine
_SEED_TIMEOUT = 600.0
_TAIL_CHARS = 4000
_PACKAGING_TOOLS = ("pip-", "setuptools-", "wheel-")  # upgrading them does not change a database


def clean_env(prefixes: Sequence[str]) -> dict[str, str]:
    """The current environment without variables (TRYTON*, PG*, ...) that would override a config file."""
    return {key: value for key, value in os.environ.items() if not key.startswith(tuple(prefixes))}


def file_tail(path: Path, limit: int = _TAIL_CHARS) -> str:
    """The last ``limit`` characters of a log file, or a note that it does not exist."""
    try:
        text = path.read_bytes()[-4 * limit :].decode("utf-8", errors="replace").strip()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return text if len(text) <= limit else "..." + text[-limit:]


class TrytonError(RuntimeError):
    """Tryton could not be installed, initialised, seeded, started or stopped."""


def run_logged(
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
                f"{log_file} tail:\n{file_tail(log_file, _TAIL_CHARS)}"
            ) from exc
        except OSError as exc:
            raise TrytonError(f"{what}: cannot run {shlex.join(command)}: {exc}") from exc
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise TrytonError(
            f"{what}: exit code {proc.returncode} after {elapsed:.1f} s: {shlex.join(command)}\n"
            f"{log_file} tail:\n{file_tail(log_file, _TAIL_CHARS)}"
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
        env = clean_env(["TRYTON", "PG"])
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
                    f"seed.py on {database}: timed out after {_SEED_TIMEOUT} s\n{file_tail(log_path)}"
                ) from exc
        if proc.returncode != 0:
            raise TrytonError(
                f"seed.py on {database}: exit code {proc.returncode}\n"
                f"{log_path} tail:\n{file_tail(log_path, _TAIL_CHARS)}"
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


def checkpoint(database_file: Path) -> None:
    """Fold the WAL into the main file, so that a copy of the ``.sqlite`` file alone has every commit."""
    with closing(sqlite3.connect(database_file, timeout=60)) as connection:
        connection.execute("PRAGMA walcheckpoint(TRUNCATE)")
    for suffix in ("-wal", "-shm"):
        Path(f"{database_file}{suffix}").unlink(missing_ok=True)


def run_admin(
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
    return run_logged(
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
        seed=seed_material(seed),
    )
    started = time.monotonic()
    cached = cache.get(key, ".sqlite")
    if cached is not None:
        shutil.copyfile(cached, target)
        log.info("SQLite %s from the cache in %.2f s", name, time.monotonic() - started)
        return target
    log_file = directory / f"{name}-build.log"
    target.touch()
    run_admin(install, config, name, modules, admin_password, email, log_file)
    if seed is not None:
        run_seed(install, config, name, seed, log_file=log_file)
    checkpoint(target)
    cache.put(target, key, ".sqlite")
    log.info("SQLite %s built in %.1f s", name, time.monotonic() - started)
    return target


def seed_material(seed: SeedOptions | None) -> Any:
    """What the cache key records about the seeding: seed.py's source and the options."""
    if seed is None:
        return None
    return {"script": SEED_SCRIPT.read_text(), "args": seed.args()}
