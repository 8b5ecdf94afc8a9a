"""The embedded demo (`make demo`): a real Tryton ERP on SQLite, a few logged-in users, and the exporter on it.

Steps, each skipped when its result is already there:

1. the Tryton database `var/demo/tryton/erp_demo.sqlite`: `trytond-admin` activates the modules, then
   `deploy/tryton/seed.py` adds a company, users, customers, suppliers, goods, sales and purchases
   (about 30 s on the first run, reused afterwards);
2. `trytond` on 127.0.0.1 (port 8000 unless --tryton-port), and logins of the demo users over JSON-RPC,
   so the ERP has sessions to count, and one `trytond-cron --once` so it has scheduler history (the
   scheduler then keeps running as `trytond-cron`, so jobs finish while the exporter watches);
3. the exporter with `examples/demo.yml` on --listen, in the foreground.

Ctrl-C (or SIGTERM) stops the exporter and trytond. Run it with the exporter's Python; the Tryton tools come
from the Tryton virtualenv (`.venv-tryton`, built by `make tryton`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import closing, suppress
from pathlib import Path
from types import FrameType

import requests

REPO = Path(__file__).resolve().parents[2]
# The database is built by the recipe the test fixtures use too (deploy/ is no package).
sys.path.insert(0, str(REPO / "deploy" / "tryton"))

from tryton_build import (  # noqa: E402
    REQUIREMENTS,
    SEED_LOGINS,
    SEED_PASSWORD,
    SEED_SCRIPT,
    TRYTON_VENV,
    SeedOptions,
    TrytonCache,
    TrytonError,
    TrytonInstall,
    clean_env,
    create_sqlite_database,
)

DATABASE = "erp_demo"
USERS = SEED_LOGINS[:5]
USER_PASSWORD = SEED_PASSWORD
DEMO_SEED = SeedOptions(users=len(USERS), password=USER_PASSWORD, demo_data=True)


def tryton_env() -> dict[str, str]:
    """Our environment without TRYTON*/PG* variables: they would override the config file."""
    return clean_env(["TRYTON", "PG"])


def run(argv: Sequence[str | Path], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    with log.open("ab") as out:
        result = subprocess.run([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, timeout=900, check=False)
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"demo: {what} failed (exit {result.returncode}); the end of {log}:\n{tail}")


def build_database(work: Path) -> Path:
    """Create and seed the demo database once; rebuild it when the Tryton requirements or the seed change."""
    database_file = work / f"{DATABASE}.sqlite"
    stamp = work / f"{DATABASE}.stamp"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes() + SEED_SCRIPT.read_bytes()).hexdigest()
    if database_file.exists() and stamp.exists() and stamp.read_text() == wanted:
        print(f"demo: reusing the Tryton database {database_file}")
        return database_file
    started = time.monotonic()
    print("demo: creating the Tryton database (trytond-admin + seed, about 30 s the first time)...", flush=True)
    try:
        # the demo keeps its database between runs itself (users' sessions, jobs run): no day-keyed cache
        create_sqlite_database(TrytonInstall(), work, DATABASE, seed=DEMO_SEED, cache=TrytonCache.disabled())
    except TrytonError as exc:
        sys.exit(f"demo: {exc}")
    age_demo_data(database_file)
    stamp.write_text(wanted)
    print(f"demo: database ready in {time.monotonic() - started:.0f} s")
    return database_file


def age_demo_data(database_file: Path) -> None:
    """Move the seeded documents back in time, so the data-governance audits have findings to show:
    quotations and drafts from 40 days ago (stale) and confirmed sales from 10 days ago (not shipped)."""
    with closing(sqlite3.connect(database_file)) as db, db:
        db.execute("UPDATE sale_sale SET quotation_date = date('now', '-40 days') WHERE state = 'quotation'")
        db.execute("UPDATE sale_sale SET create_date = datetime('now', '-40 days') WHERE state = 'draft'")
        db.execute(
            "UPDATE sale_sale SET sale_date = date('now', '-10 days') WHERE state IN ('confirmed', 'processing')"
        )


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"demo: trytond exited with {process.returncode}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"demo: trytond did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def log_users_in(port: int, database: str = DATABASE) -> None:
    """A JSON-RPC login per demo user: each leaves an ir_session row, as a real client would."""
    url = f"http://127.0.0.1:{port}/{database}/rpc/"
    for number, login in enumerate(USERS):
        body = {"id": number, "method": "common.db.login", "params": [login, {"password": USER_PASSWORD}, "en"]}
        response = requests.post(url, json=body, timeout=30)
        if response.status_code != 200 or response.json().get("error"):
            sys.exit(f"demo: login of {login} failed: HTTP {response.status_code} {response.text[:300]}")
    print(f"demo: logged in {len(USERS)} users ({', '.join(USERS)})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default=":9861", help="the exporter's listen address")
    parser.add_argument("--tryton-port", type=int, default=8000)
    parser.add_argument("--work-dir", type=Path, default=REPO / "var" / "demo" / "tryton")
    parser.add_argument("--config", type=Path, default=REPO / "examples" / "demo.yml")
    parser.add_argument("--database", type=Path, default=None,
                        help="an existing seeded Tryton SQLite database file to serve instead of building the "
                             "demo one (its name is the file name without .sqlite; users as seed.py makes them)")
    args = parser.parse_args(argv)

    work: Path = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    database_file = args.database.resolve() if args.database else build_database(work)
    (work / "trytond.conf").write_text(  # after the build, which writes its own (without [web])
        f"[database]\nuri = sqlite://\npath = {database_file.parent}\n\n[web]\nlisten = 127.0.0.1:{args.tryton_port}\n"
    )
    database = database_file.stem

    server_log = work / "trytond.log"
    processes: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started with SIGINT ignored (from a script, in the background)
    try:
        with server_log.open("ab") as out:
            trytond = subprocess.Popen(
                [str(TRYTON_VENV / "bin" / "trytond"), "-c", str(work / "trytond.conf"), "-d", database],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=tryton_env(),
                start_new_session=True,
            )
        processes.append(trytond)
        wait_for_port(args.tryton_port, trytond)
        print(f"demo: Tryton answers on http://127.0.0.1:{args.tryton_port}/ (log: {server_log})")
        log_users_in(args.tryton_port, database)
        run([TRYTON_VENV / "bin" / "trytond-cron", "-c", work / "trytond.conf", "-d", database, "--once"],
            work / "cron.log", "trytond-cron --once", env=tryton_env())
        print("demo: ran the Tryton scheduler once (trytond-cron --once)")

        port = args.listen.rsplit(":", 1)[1]
        print()
        print(f"erp-exporter is starting on {args.listen} (Ctrl-C stops it and Tryton)")
        print(f"  metrics:      http://localhost:{port}/metrics")
        print(f"  status page:  http://localhost:{port}/")
        print(f"  one target:   http://localhost:{port}/probe?target=erp-demo")
        print(flush=True)
        env = {
            **os.environ,
            "ERP_DEMO_DB": str(database_file),
            "ERP_DEMO_TRYTON_URL": f"http://127.0.0.1:{args.tryton_port}",
            "ERP_DEMO_TRYTON_DATABASE": database,
            "ERP_DEMO_TRYTON_PASSWORD": USER_PASSWORD,
        }
        exporter = subprocess.Popen(
            [str(Path(sys.executable).parent / "erp-exporter"), f"--config.file={args.config}",
             f"--web.listen-address={args.listen}"],
            env=env,
            start_new_session=True,  # Ctrl-C reaches this script, which stops every child in order
        )
        processes.append(exporter)
        # The Tryton scheduler as it runs in production (a daemon that wakes every minute), so the
        # exporter sees jobs finish (ir_cron_log) while the demo runs.
        with (work / "cron.log").open("ab") as out:
            processes.append(subprocess.Popen(
                [str(TRYTON_VENV / "bin" / "trytond-cron"), "-c", str(work / "trytond.conf"), "-d", database],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=tryton_env(),
                start_new_session=True,
            ))
        return exporter.wait()
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
        return 0
    finally:
        for process in reversed(processes):
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a child and every process it started (trytond-cron runs its jobs in worker processes that would
    outlive their parent): each child leads its own process group, which gets SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            time.sleep(0.2)  # workers that got SIGTERM with their parent need a moment to exit
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is still there
        return


if __name__ == "__main__":
    sys.exit(main())
