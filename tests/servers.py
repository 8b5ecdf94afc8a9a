"""Real, throwaway database servers (and fake ones) for the test suite.

Plain classes, no pytest: the fixtures in ``conftest.py`` wrap them.

* :class:`PostgresServer`: a private PostgreSQL cluster (initdb + a postgres child process), run as the
  ``postgres`` OS user when we are root, because PostgreSQL refuses to run as root.
* :class:`MariaDBServer`: a private ``mariadbd`` (mariadb-install-db + a detached server process).
* :class:`BlackholeServer`: a TCP listener that accepts connections, reads and never answers, to test
  login timeouts.
* :func:`free_port` / :func:`closed_port`: TCP ports on 127.0.0.1.

Every subprocess call has a timeout, and every failure raises :class:`ServerError` with the tail of the
tool's stderr (or of the server log). The only passwords are the throwaway test passwords below.
"""

from __future__ import annotations

import os
import pwd
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
EXPORTER_USER = "exporter"
EXPORTER_PASSWORD = "exporterpw"
APP_DATABASE = "appdb"
POSTGRES_SUPERUSER = "postgres"
POSTGRES_SUPERUSER_PASSWORD = "superpw"

_TAIL_CHARS = 3000


class ServerError(RuntimeError):
    """A test server could not be set up, started, stopped or queried."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def closed_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on: connecting to it is refused at once."""
    return free_port()


def _tail(text: str | bytes | None, limit: int = _TAIL_CHARS) -> str:
    """The last ``limit`` characters of a tool's output, decoded leniently."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _file_tail(path: Path, limit: int = _TAIL_CHARS) -> str:
    """The last ``limit`` characters of a log file, or a note that it does not exist."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return _tail(data[-4 * limit :], limit)


def _clean_env(prefixes: Sequence[str]) -> dict[str, str]:
    """The current environment without variables (PGHOST, MYSQL_PWD, ...) that would redirect a client."""
    return {key: value for key, value in os.environ.items() if not key.startswith(tuple(prefixes))}


def _run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    what: str,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    user: str | None = None,
) -> str:
    """Run ``cmd`` with a timeout and return its stdout; raise :class:`ServerError` with stderr on failure.

    ``log`` is a server log whose tail is added to the error message (useful when a start fails);
    ``user`` is an OS user to run the command as (we must be root then).
    """
    argv = [os.fspath(part) for part in cmd]
    try:
        proc: subprocess.CompletedProcess[str] = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            check=False,
            cwd="/" if user is not None else None,  # our cwd may not be readable by ``user``
            **_as_user(user),
        )
    except subprocess.TimeoutExpired as exc:
        message = f"{what}: timed out after {timeout} s: {shlex.join(argv)}\nstderr: {_tail(exc.stderr)}"
        if log is not None:
            message += f"\n{log.name} tail:\n{_file_tail(log)}"
        raise ServerError(message) from exc
    except OSError as exc:
        raise ServerError(f"{what}: cannot run {shlex.join(argv)}: {exc}") from exc
    if proc.returncode != 0:
        message = (
            f"{what}: exit code {proc.returncode}: {shlex.join(argv)}\n"
            f"stderr: {_tail(proc.stderr)}\nstdout: {_tail(proc.stdout, 500)}"
        )
        if log is not None:
            message += f"\n{log.name} tail:\n{_file_tail(log)}"
        raise ServerError(message)
    return proc.stdout


def _as_user(user: str | None) -> dict[str, Any]:
    """``subprocess`` keyword arguments that run the child as ``user`` (uid, gid, no extra groups).

    ``extra_groups=[]`` matters: without it the child keeps root's supplementary groups.
    """
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (a stopped process counts as alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # the state is the first field after "(comm)"; comm may contain spaces and parentheses
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X", "")


def _process_state(pid: int) -> str:
    """The one-letter /proc state of ``pid`` ("R", "S", "T", ...), or "" if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2 :][:1]


def _children(parent: int) -> list[int]:
    """PIDs whose parent is ``parent``, found by scanning /proc."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(parent):
            found.append(int(entry.name))
    return found


def _signal(pid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to ``pid``; return False if the process no longer exists."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_state(pid: int, states: str, timeout: float) -> bool:
    """Poll until ``pid`` is in one of the /proc ``states`` or gone; True on success, False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _process_state(pid)
        if not state or state in states:
            return True
        time.sleep(0.005)
    return False


def _newest_postgres_bin_dir(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The ``bin`` directory of the newest PostgreSQL installed under /usr/lib/postgresql/<version>."""

    def version_key(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.name))

    candidates = [
        path.parent
        for path in root.glob("*/bin/postgres")
        if re.fullmatch(r"\d+(\.\d+)*", path.parent.parent.name)
    ]
    if not candidates:
        raise ServerError(f"no PostgreSQL server binaries found under {root}/<version>/bin")
    return max(candidates, key=lambda bin_dir: version_key(bin_dir.parent))


def _find_binary(name: str, extra_dirs: Sequence[str] = ("/usr/sbin", "/usr/bin")) -> str:
    """Locate an executable on PATH or in ``extra_dirs`` (sbin is often missing from PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ServerError(f"executable {name!r} not found on PATH or in {', '.join(extra_dirs)}")


class PostgresServer:
    """A private PostgreSQL cluster under ``base_dir``, listening on 127.0.0.1 at a free port.

    Layout: ``base_dir/data`` (the cluster), ``base_dir/server.log``, ``base_dir/pwfile`` and the unix
    socket ``base_dir/.s.PGSQL.<port>``. The first :meth:`start` runs initdb (trust for the local socket,
    scram-sha-256 over TCP), then creates the login role ``exporter``/``exporterpw`` and the database
    ``appdb`` owned by ``postgres``. The port is chosen once, in the constructor, and kept across restarts.

    The postmaster is started directly (not through pg_ctl) as a child of this process, so that this
    process reaps it: with pg_ctl it would be orphaned, and PID 1 on the test machines reaps orphans only
    lazily. When running as root, initdb and the postmaster run as the ``postgres`` OS user (PostgreSQL
    refuses root), so ``base_dir`` is chowned to it and all its parent directories must be traversable by it.
    """

    os_user = "postgres"

    def __init__(
        self,
        base_dir: Path,
        settings: dict[str, str] | None = None,
        netns: str | None = None,
        host: str = HOST,
    ) -> None:
        """Prepare (but do not start) a server in ``base_dir``, which is created if missing; ``settings``
        are extra server options (``-c name=value``), such as ``shared_preload_libraries``; ``netns`` is a
        network namespace to run it in, listening on ``host`` there (its unix socket is reachable from
        everywhere: psql still works)."""
        self.base_dir: Path = Path(base_dir).resolve()
        self.settings: dict[str, str] = dict(settings or {})
        self.netns = netns
        self.bin_dir: Path = _newest_postgres_bin_dir()
        self.host: str = host
        self.port: int = free_port()
        self.data_dir: Path = self.base_dir / "data"
        self.socket_dir: Path = self.base_dir
        self.log_file: Path = self.base_dir / "server.log"
        self.superuser: str = POSTGRES_SUPERUSER
        self.superuser_password: str = POSTGRES_SUPERUSER_PASSWORD
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen: list[int] = []

    def __repr__(self) -> str:
        return f"PostgresServer(base_dir={str(self.base_dir)!r}, port={self.port})"

    # -- helpers -------------------------------------------------------------------------------------

    def _server_user(self) -> str | None:
        """The OS user to run initdb and postgres as: ``postgres`` when we are root, else ourselves."""
        return self.os_user if os.geteuid() == 0 else None

    def _bin(self, name: str) -> Path:
        return self.bin_dir / name

    def _prepare_base_dir(self) -> None:
        """Create ``base_dir`` owned by the postgres OS user and check that it can reach it."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        user = self._server_user()
        if user is None:
            return
        entry = pwd.getpwnam(user)
        os.chown(self.base_dir, entry.pw_uid, entry.pw_gid)
        self.base_dir.chmod(0o700)
        try:
            _run(["test", "-w", self.base_dir], timeout=30, what="access check", user=user)
        except ServerError as exc:
            raise ServerError(
                f"the {user!r} OS user cannot write to {self.base_dir}: a parent directory is probably "
                "not traversable by it (pytest's own tmp dirs are mode 0700)"
            ) from exc

    def _initdb(self) -> None:
        """Create the cluster (first start only)."""
        self._prepare_base_dir()
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        user = self._server_user()
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        _run(
            [
                self._bin("initdb"),
                "-D",
                self.data_dir,
                "-U",
                self.superuser,
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            timeout=180,
            what="initdb",
            env=_clean_env(["PG"]),
            user=user,
        )

    def _bootstrap(self) -> None:
        """Create the role and database the tests use (first start only)."""
        if self.netns is not None:  # clients come over a veth pair from other loopback addresses
            with (self.data_dir / "pg_hba.conf").open("a") as hba:
                hba.write("host all all 127.0.0.0/8 scram-sha-256\n")
            self.psql("SELECT pg_reload_conf()", database="postgres")
        self.psql(
            f"CREATE ROLE {EXPORTER_USER} LOGIN PASSWORD '{EXPORTER_PASSWORD}';\n"
            f"CREATE DATABASE {APP_DATABASE} OWNER {self.superuser};\n",
            database="postgres",
        )

    def _is_ready(self, pid: int) -> bool:
        """True once ``postmaster.pid`` names ``pid`` and says "ready" (what ``pg_ctl -w`` waits for)."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        # line 1: PID, line 8: postmaster status ("starting", "ready", "stopping", "standby")
        return len(lines) >= 8 and lines[0].strip() == str(pid) and lines[7].strip() == "ready"

    # -- lifecycle -----------------------------------------------------------------------------------

    def postmaster_pid(self) -> int | None:
        """The PID of the running postmaster, or None if it is not running."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def is_running(self) -> bool:
        """True if the postmaster started by :meth:`start` has not exited (also when it is frozen)."""
        return self.postmaster_pid() is not None

    def start(self, timeout: float = 60) -> None:
        """Start the server (running initdb and creating the test role/database the first time).

        A no-op if it is already running. Returns once it accepts connections; raises
        :class:`ServerError` with the server log tail if the postmaster exits or is not ready in time.
        """
        if self.is_running():
            return
        first_start = not (self.data_dir / "PG_VERSION").exists()
        if first_start:
            self._initdb()
        argv = [
            str(self._bin("postgres")),
            "-D",
            str(self.data_dir),
            "-c",
            f"listen_addresses={self.host}",
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            "fsync=off",
            *(option for name, value in self.settings.items() for option in ("-c", f"{name}={value}")),
        ]
        user = self._server_user()
        if self.netns is not None:
            # `ip netns exec` needs root, so the switch to the postgres user comes after it (both exec: the
            # postmaster keeps the PID of this child)
            switch = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"] if user else []
            argv = ["ip", "netns", "exec", self.netns, *switch, *argv]
            user = None
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal must not reach it
                cwd=self.base_dir,
                env=_clean_env(["PG"]),
                **_as_user(user),
            )
        deadline = time.monotonic() + timeout
        while not self._is_ready(self._proc.pid):
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise ServerError(
                    f"postgres exited with code {code} during start\n"
                    f"server.log tail:\n{_file_tail(self.log_file)}"
                )
            if time.monotonic() > deadline:
                self._kill()
                raise ServerError(
                    f"postgres not ready after {timeout} s\nserver.log tail:\n{_file_tail(self.log_file)}"
                )
            time.sleep(0.01)
        if first_start:
            self._bootstrap()

    def _kill(self) -> None:
        """SIGKILL the postmaster and reap it (last resort; its backends exit when they notice)."""
        if self._proc is None:
            return
        _signal(self._proc.pid, signal.SIGCONT)
        self._proc.kill()
        self._proc.wait(timeout=30)
        self._proc = None
        self._frozen.clear()

    def stop(self, timeout: float = 60) -> None:
        """Fast shutdown (SIGINT: disconnects clients) and wait for the postmaster to exit.

        A no-op if it is not running. Thaws a frozen server first. If it does not exit within
        ``timeout``, it is killed and :class:`ServerError` is raised.
        """
        if self._proc is None or not self.is_running():
            self._proc = None
            self._frozen.clear()
            return
        self.thaw()
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self._kill()
            raise ServerError(
                f"postgres did not stop within {timeout} s after SIGINT; it was killed\n"
                f"server.log tail:\n{_file_tail(self.log_file)}"
            ) from exc
        self._proc = None

    def restart(self) -> None:
        """Stop (if running) and start again, on the same port."""
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP the postmaster and all its children, so the server really hangs.

        Queries on existing connections block (their backends are stopped), and new connections block too
        (the kernel completes the TCP handshake, but the stopped postmaster never answers).
        """
        pid = self.postmaster_pid()
        if pid is None:
            raise ServerError(f"{self!r} is not running, cannot freeze it")
        # the postmaster first, so that it cannot fork new backends while we stop the existing ones
        if _signal(pid, signal.SIGSTOP):
            self._frozen.append(pid)
            _wait_state(pid, "Tt", timeout=5)
        for child in _children(pid):
            if _signal(child, signal.SIGSTOP):
                self._frozen.append(child)
        for child in self._frozen[1:]:
            _wait_state(child, "Tt", timeout=5)

    def thaw(self) -> None:
        """SIGCONT everything :meth:`freeze` stopped (and the postmaster's current children).

        Safe to call when nothing is frozen or the server is not running.
        """
        pids = list(self._frozen)
        postmaster = self.postmaster_pid()
        if postmaster is not None:
            pids += [postmaster, *_children(postmaster)]
        for pid in dict.fromkeys(pids):
            _signal(pid, signal.SIGCONT)
        self._frozen.clear()

    # -- clients -------------------------------------------------------------------------------------

    def psql(self, sql: str, database: str = APP_DATABASE, timeout: float = 60) -> str:
        """Run ``sql`` as the superuser through the psql binary over the unix socket; return stdout.

        psql runs with ``-X -q -A -t`` (no psqlrc, quiet, unaligned, tuples only), so
        ``psql("SELECT count(*) FROM t")`` returns e.g. ``"3\\n"``; statements are read from stdin one by
        one (so CREATE DATABASE may follow other statements) and ON_ERROR_STOP stops at the first error,
        which raises :class:`ServerError` with psql's stderr.
        """
        return _run(
            [
                self._bin("psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.socket_dir,
                "-p",
                str(self.port),
                "-U",
                self.superuser,
                "-d",
                database,
                "-f",
                "-",
            ],
            input_text=sql,
            timeout=timeout,
            what="psql",
            env=_clean_env(["PG"]),
        )

    def connection_string(
        self, user: str = EXPORTER_USER, password: str = EXPORTER_PASSWORD, database: str = APP_DATABASE
    ) -> str:
        """An ODBC connection string for psqlODBC (Unicode) over TCP to this server."""
        return (
            f"DRIVER={{PostgreSQL Unicode}};SERVER={self.host};PORT={self.port};"
            f"DATABASE={database};UID={user};PWD={password}"
        )


class MariaDBServer:
    """A private MariaDB server under ``base_dir``, listening on 127.0.0.1 at a free port.

    Layout: ``base_dir/data``, ``base_dir/mysqld.sock``, ``base_dir/mariadbd.pid``, ``base_dir/error.log``
    and ``base_dir/stdout.log``. The first :meth:`start` runs mariadb-install-db (root@localhost without a
    password over the socket), then creates ``exporter``@``127.0.0.1`` and ``exporter``@``localhost``
    (password ``exporterpw``), the database ``appdb`` and ``GRANT ALL ON appdb.*`` to both. The port is
    chosen once, in the constructor, and kept across restarts. mariadbd is a child of this process, started
    in its own session, so that Ctrl-C in the terminal does not reach it.
    """

    def __init__(self, base_dir: Path, options: Sequence[str] = ()) -> None:
        """Prepare (but do not start) a server in ``base_dir``, which is created if missing; ``options``
        are extra mariadbd options (``--general-log=1``, ...)."""
        self.base_dir: Path = Path(base_dir).resolve()
        self.options: list[str] = list(options)
        self.host: str = HOST
        self.port: int = free_port()
        self.data_dir: Path = self.base_dir / "data"
        self.socket_path: Path = self.base_dir / "mysqld.sock"
        self.pid_file: Path = self.base_dir / "mariadbd.pid"
        self.log_file: Path = self.base_dir / "error.log"
        self.stdout_file: Path = self.base_dir / "stdout.log"
        self.mariadbd: str = _find_binary("mariadbd")
        self.client: str = _find_binary("mariadb")
        self.admin: str = _find_binary("mariadb-admin")
        self.install_db: str = _find_binary("mariadb-install-db")
        self._proc: subprocess.Popen[bytes] | None = None
        self._frozen = False

    def __repr__(self) -> str:
        return f"MariaDBServer(base_dir={str(self.base_dir)!r}, port={self.port})"

    def _user_option(self) -> list[str]:
        # mariadbd aborts when run as root unless told so explicitly
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install_db(self) -> None:
        """Create the system tables (first start only)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        _run(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={self.data_dir}",
                *self._user_option(),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            timeout=180,
            what="mariadb-install-db",
            env=_clean_env(["MYSQL", "MARIADB"]),
        )

    def _bootstrap(self) -> None:
        """Create the user and database the tests use (first start only)."""
        statements = [f"CREATE DATABASE {APP_DATABASE};"]
        for host in ("127.0.0.1", "localhost"):
            account = f"'{EXPORTER_USER}'@'{host}'"
            statements += [
                f"CREATE USER {account} IDENTIFIED BY '{EXPORTER_PASSWORD}';",
                f"GRANT ALL ON {APP_DATABASE}.* TO {account};",
            ]
        self.sql("\n".join(statements))

    def _ping(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                self.admin,
                "--no-defaults",
                f"--socket={self.socket_path}",
                "-uroot",
                "--connect-timeout=2",
                "ping",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            stdin=subprocess.DEVNULL,
            env=_clean_env(["MYSQL", "MARIADB"]),
            check=False,
        )

    # -- lifecycle -----------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The mariadbd PID while this object's server process exists, else None."""
        return self._proc.pid if self.is_running() and self._proc is not None else None

    def is_running(self) -> bool:
        """True if the mariadbd started by :meth:`start` has not exited (also when it is frozen)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60) -> None:
        """Start mariadbd (running mariadb-install-db and creating the test user/database the first time).

        A no-op if it is already running. Returns once ``mariadb-admin ping`` succeeds; raises
        :class:`ServerError` with the error log tail if mariadbd exits or is not ready within ``timeout``.
        """
        if self.is_running():
            return
        first_start = not (self.data_dir / "mysql").is_dir()
        if first_start:
            self._install_db()
        self.socket_path.unlink(missing_ok=True)
        argv = [
            self.mariadbd,
            "--no-defaults",  # must come first: keeps /etc/mysql/*.cnf out
            *self._user_option(),
            f"--datadir={self.data_dir}",
            f"--socket={self.socket_path}",
            f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.log_file}",
            "--skip-name-resolve",
            *self.options,
        ]
        with self.stdout_file.open("ab") as out:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_clean_env(["MYSQL", "MARIADB"]),
            )
        started = time.monotonic()
        last_error = ""
        while True:
            code = self._proc.poll()
            if code is not None:
                self._proc = None
                raise ServerError(
                    f"mariadbd exited with code {code} during start\n"
                    f"error.log tail:\n{_file_tail(self.log_file)}\n"
                    f"stdout tail:\n{_file_tail(self.stdout_file)}"
                )
            try:
                ping = self._ping()
            except subprocess.TimeoutExpired:
                last_error = "mariadb-admin ping timed out"
            else:
                if ping.returncode == 0:
                    break
                last_error = _tail(ping.stderr, 500)
            if time.monotonic() - started > timeout:
                self._kill()
                raise ServerError(
                    f"mariadbd not ready after {timeout} s (last ping error: {last_error})\n"
                    f"error.log tail:\n{_file_tail(self.log_file)}"
                )
            time.sleep(0.05)
        if first_start:
            self._bootstrap()

    def _kill(self) -> None:
        """SIGKILL mariadbd and reap it (last resort)."""
        if self._proc is None:
            return
        _signal(self._proc.pid, signal.SIGCONT)
        self._proc.kill()
        self._proc.wait(timeout=30)
        self._proc = None
        self._frozen = False

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM (clean shutdown) and wait; SIGKILL after ``timeout``. A no-op if it is not running."""
        if not self.is_running():
            self._proc = None
            self._frozen = False
            return
        assert self._proc is not None
        self.thaw()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self._kill()
            raise ServerError(
                f"mariadbd did not stop within {timeout} s after SIGTERM; it was killed\n"
                f"error.log tail:\n{_file_tail(self.log_file)}"
            ) from exc
        self._proc = None

    def restart(self) -> None:
        """Stop (if running) and start again, on the same port."""
        self.stop()
        self.start()

    def freeze(self) -> None:
        """SIGSTOP mariadbd: every query and every new connection hangs until :meth:`thaw`."""
        if self._proc is None or not self.is_running():
            raise ServerError(f"{self!r} is not running, cannot freeze it")
        _signal(self._proc.pid, signal.SIGSTOP)
        self._frozen = True
        _wait_state(self._proc.pid, "Tt", timeout=5)

    def thaw(self) -> None:
        """SIGCONT mariadbd. Safe to call when it is not frozen or not running."""
        if self._proc is not None and self.is_running():
            _signal(self._proc.pid, signal.SIGCONT)
        self._frozen = False

    # -- clients -------------------------------------------------------------------------------------

    def sql(self, sql: str, timeout: float = 60) -> str:
        """Run ``sql`` as root through the mariadb client over the unix socket; return stdout.

        Batch mode without column names (tab-separated rows); statements are read from stdin and the
        first error stops the script and raises :class:`ServerError` with the client's stderr.
        """
        return _run(
            [
                self.client,
                "--no-defaults",
                f"--socket={self.socket_path}",
                "-uroot",
                "--batch",
                "--skip-column-names",
                "--connect-timeout=10",
            ],
            input_text=sql,
            timeout=timeout,
            what="mariadb",
            env=_clean_env(["MYSQL", "MARIADB"]),
        )

    def connection_string(
        self, user: str = EXPORTER_USER, password: str = EXPORTER_PASSWORD, database: str = APP_DATABASE
    ) -> str:
        """An ODBC connection string for MariaDB Connector/ODBC over TCP to this server."""
        return (
            f"DRIVER={{MariaDB Unicode}};SERVER={self.host};PORT={self.port};"
            f"DATABASE={database};UID={user};PWD={password}"
        )


class BlackholeServer:
    """A TCP server on 127.0.0.1 that accepts connections, reads everything and never writes.

    A client waiting for a server greeting or a reply hangs until its own timeout fires, which is what
    login-timeout tests need. The port is bound in the constructor (so it is known and reserved at once);
    :meth:`start` begins listening and accepting in a daemon thread. Usable as a context manager.
    """

    def __init__(self) -> None:
        """Bind a listening socket to a free port on 127.0.0.1 (not yet accepting)."""
        self.host: str = HOST
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((self.host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._accepted = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"BlackholeServer(port={self.port}, connections_accepted={self.connections_accepted})"

    @property
    def connections_accepted(self) -> int:
        """How many connections have been accepted so far."""
        with self._lock:
            return self._accepted

    def start(self) -> None:
        """Start listening and accepting. A no-op if already started."""
        if self._thread is not None:
            return
        self._listener.listen(64)
        self._listener.setblocking(False)
        self._thread = threading.Thread(target=self._serve, name=f"blackhole-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Accept and drain connections until :meth:`stop`; this thread owns (and closes) every socket."""
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        clients: set[socket.socket] = set()
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        try:
                            conn, _addr = self._listener.accept()
                        except (BlockingIOError, InterruptedError):
                            continue
                        conn.setblocking(False)
                        clients.add(conn)
                        selector.register(conn, selectors.EVENT_READ)
                        with self._lock:
                            self._accepted += 1
                        continue
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:  # the client gave up
                        selector.unregister(sock)
                        clients.discard(sock)
                        sock.close()
        finally:
            for conn in clients:
                conn.close()
            selector.close()
            self._listener.close()

    def stop(self) -> None:
        """Close every accepted connection and the listener; wait for the thread. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        else:
            self._listener.close()

    def __enter__(self) -> BlackholeServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
