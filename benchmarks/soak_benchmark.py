"""Soak: the demo under 16 concurrent scrapers for --minutes, with one target flapping every minute; does
anything grow?

    .venv/bin/python -u benchmarks/soak_benchmark.py [--minutes 30] [--pause 0.1] [--work-dir var/benchmark/tryton]

The demo as `make demo` runs it (a real Tryton on SQLite, examples/demo.yml) plus one more target, a private
PostgreSQL watched by db_response, db_sessions and db_size, which is stopped and started again every minute.
16 threads scrape /metrics on keep-alive connections, each pausing --pause seconds between scrapes. Each
minute, just before the flap: the exporter's RSS, threads and open file descriptors, the connections the
PostgreSQL has from the exporter's login (when it is up), the scrapes made and failed and their p99. At the
end, the least-squares slope of each per minute, over all minutes and over the second half (after warm-up).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from scrape_benchmark import percentile, start_demo  # noqa: E402
from servers import EXPORTER_PASSWORD, EXPORTER_USER, PostgresServer, free_port  # noqa: E402

SCRAPERS = 16


@dataclass
class Minute:
    """What one minute's sample saw."""

    minute: int
    rss_mib: float
    threads: int
    descriptors: int
    database_connections: int | None  # None while the flapping server is down
    scrapes: int
    failed: int
    p99_ms: float


class Scrapers:
    """16 threads scraping back to back (with a pause); counts and timings per minute."""

    def __init__(self, port: int, pause: float) -> None:
        self.port = port
        self.pause = pause
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.timings: list[float] = []
        self.failed = 0
        self.threads = [threading.Thread(target=self._scrape, daemon=True) for _ in range(SCRAPERS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def take(self) -> tuple[list[float], int]:
        """The timings and failures since the last call."""
        with self.lock:
            timings, failed = self.timings, self.failed
            self.timings, self.failed = [], 0
        return timings, failed

    def _scrape(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
                answer = connection.getresponse()
                answer.read()
                ok = answer.status == 200
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                ok = False
            elapsed = time.perf_counter() - started
            with self.lock:
                if ok:
                    self.timings.append(elapsed)
                else:
                    self.failed += 1
            self.stop.wait(self.pause)
        connection.close()


def soak_config(server: PostgresServer, work: Path) -> Path:
    """examples/demo.yml with the flapping PostgreSQL as a second target."""
    config = yaml.safe_load((ROOT / "examples" / "demo.yml").read_text())
    config["targets"].append({
        "name": "flapping",
        "driver": "PostgreSQL Unicode",
        "connection": {"server": server.host, "port": server.port, "database": "appdb"},
        "username": EXPORTER_USER,
        "password": EXPORTER_PASSWORD,
        "checks": [
            {"kind": "db_response", "interval": "15s", "timeout": "5s"},
            {"kind": "db_sessions", "interval": "15s", "timeout": "5s"},
            {"kind": "db_size", "interval": "30s", "timeout": "10s"},
        ],
    })
    path = work / "soak.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def database_connections(server: PostgresServer) -> int | None:
    if not server.is_running():
        return None
    return int(server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{EXPORTER_USER}'",
                           database="postgres").strip())


def slope(values: list[float]) -> float:
    """Least-squares slope per minute (0 for fewer than 2 values)."""
    if len(values) < 2:
        return 0.0
    return statistics.linear_regression(range(len(values)), values).slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--pause", type=float, default=0.1, help="seconds each scraper waits between scrapes")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "var" / "benchmark" / "tryton",
                        help="where the demo's Tryton database is built once and reused")
    args = parser.parse_args()
    minutes: list[Minute] = []
    with tempfile.TemporaryDirectory(prefix="erp-soak-") as temporary:
        work = Path(temporary)
        work.chmod(0o755)  # the server runs as the postgres OS user
        server = PostgresServer(work / "pg")
        server.start()
        port = free_port()
        demo, exporter = start_demo(args.work_dir, port, ["--config", str(soak_config(server, work))])
        scrapers = Scrapers(port, args.pause)
        try:
            scrapers.start()
            for minute in range(1, args.minutes + 1):
                time.sleep(60)
                timings, failed = scrapers.take()
                sample = Minute(minute, exporter.memory_info().rss / 2**20, exporter.num_threads(),
                                exporter.num_fds(), database_connections(server), len(timings), failed,
                                percentile(timings, 0.99) * 1000 if timings else float("nan"))
                minutes.append(sample)
                print(f"minute {minute:3d}: RSS {sample.rss_mib:6.1f} MiB, {sample.threads} threads, "
                      f"{sample.descriptors} fds, db connections {sample.database_connections}, "
                      f"{sample.scrapes} scrapes ({sample.failed} failed), p99 {sample.p99_ms:.2f} ms", flush=True)
                if server.is_running():
                    server.stop()
                else:
                    server.start()
        finally:
            scrapers.stop.set()
            demo.terminate()
            demo.wait(30)
            server.stop()
    report(minutes)


def report(minutes: list[Minute]) -> None:
    half = minutes[len(minutes) // 2:]
    print(f"\n| per minute | all {len(minutes)} minutes | second half ({len(half)}) | first | last |")
    print("|---|---|---|---|---|")
    columns: list[tuple[str, list[float], list[float]]] = [
        ("RSS MiB", [m.rss_mib for m in minutes], [m.rss_mib for m in half]),
        ("threads", [float(m.threads) for m in minutes], [float(m.threads) for m in half]),
        ("file descriptors", [float(m.descriptors) for m in minutes], [float(m.descriptors) for m in half]),
    ]
    up = [m for m in minutes if m.database_connections is not None]
    up_half = [m for m in half if m.database_connections is not None]
    columns.append(("db connections (server up)", [float(m.database_connections or 0) for m in up],
                    [float(m.database_connections or 0) for m in up_half]))
    for name, values, second in columns:
        if values:
            print(f"| {name} | {slope(values):+.3f} | {slope(second):+.3f} | {values[0]:.1f} | {values[-1]:.1f} |")
    scrapes = sum(m.scrapes for m in minutes)
    failed = sum(m.failed for m in minutes)
    print(f"\n{scrapes} scrapes, {failed} failed; p99 per minute {min(m.p99_ms for m in minutes):.2f} to "
          f"{max(m.p99_ms for m in minutes):.2f} ms")


if __name__ == "__main__":
    main()
