"""Side by side: erp-exporter and its peers on the same PostgreSQL queries, all running at once.

    make peers                                        # once: the peers, unpacked under var/peers
    .venv/bin/python -u benchmarks/peers_benchmark.py [--series 10000] [--rounds 3] [--compare before=DIR]
    .venv/bin/python -u benchmarks/peers_benchmark.py --smoke     # 30 s, small sizes (run by make test)

Every exporter (see benchmarks/peers.py) exports one query of --series rows and --small-queries one-row
queries from a private PostgreSQL, every 15 s where it has an interval. All are started together and stay up,
so each is measured while the others do their background work. Per round:
  - idle: the CPU each process uses over --idle-seconds with no scrape, as a share of one core;
  - then, one exporter after the other: --scrapes sequential scrapes (1 scraper) and 16 threads making
    --scrapes-per-thread each, every scrape sending Prometheus' own Accept and Accept-Encoding headers on a
    keep-alive connection: latency p50/p99, CPU milliseconds per scrape, RSS after.
The table gives the medians over --rounds and each exporter's p50 against sql_exporter's. Figures are CPU
time and latency on this host: compare the ratios of one run, not absolute values across machines.
--compare LABEL=DIR adds the erp-exporter code of another tree (a `git worktree` of an older commit).
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from peers import Database, Launch, Peer, Work, clean_environment, peers
from servers import EXPORTER_PASSWORD, EXPORTER_USER, PostgresServer, free_port

ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
CONCURRENT_SCRAPERS = 16


@dataclass
class Running:
    """A started exporter and what was measured of it, one list entry per round."""

    peer: Peer
    launch: Launch
    port: int
    process: subprocess.Popen[bytes]
    series_seen: int = 0
    idle_cpu_percent: list[float] = field(default_factory=list)
    p50_one: list[float] = field(default_factory=list)
    p99_one: list[float] = field(default_factory=list)
    p50_many: list[float] = field(default_factory=list)
    p99_many: list[float] = field(default_factory=list)
    cpu_ms_per_scrape: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system


class Scraper:
    """One keep-alive connection that scrapes like Prometheus and times each scrape."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def scrape(self) -> float:
        """Seconds one scrape took, the whole body read (left compressed: Prometheus' own decoding is
        not the exporter's cost, and the benchmark's client shares the exporters' CPUs)."""
        started = time.perf_counter()
        try:
            self._get()
        except (http.client.HTTPException, OSError):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self._get()
        return time.perf_counter() - started

    def page(self) -> str:
        """The page's text."""
        body, encoding = self._get()
        return (gzip.decompress(body) if encoding == "gzip" else body).decode(errors="replace")

    def _get(self) -> tuple[bytes, str]:
        self.connection.request("GET", "/metrics", headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})
        answer = self.connection.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"scrape answered {answer.status}: {body[:200]!r}")
        return body, answer.getheader("Content-Encoding", "")

    def close(self) -> None:
        self.connection.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def start(peer: Peer, work_dir: Path, database: Database, work: Work) -> Running:
    port = free_port()
    peer_dir = work_dir / peer.name.replace(" ", "-")
    peer_dir.mkdir()
    launch = peer.launch(peer_dir, port, database, work)
    log = (peer_dir / "output.log").open("wb")
    process = subprocess.Popen(launch.command, env={**clean_environment(), **launch.environment},
                               stdout=log, stderr=subprocess.STDOUT, cwd=peer_dir)
    return Running(peer, launch, port, process)


def wait_for_series(running: Running, series: int, timeout: float) -> None:
    """Until the exporter's page holds every row of the big query (its first round has run)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise SystemExit(f"{running.peer.name} exited with {running.process.returncode}; see its output.log")
        try:
            scraper = Scraper(running.port)
            page = scraper.page()
            scraper.close()
            seen = page.count(running.launch.row_metric)
            if seen >= series:
                running.series_seen = seen
                return
        except (OSError, RuntimeError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{running.peer.name} showed {seen} of {series} series after {timeout:g} s")


def measure_idle(exporters: list[Running], seconds: float) -> None:
    before = [running.cpu_seconds() for running in exporters]
    time.sleep(seconds)
    for running, cpu in zip(exporters, before, strict=True):
        running.idle_cpu_percent.append((running.cpu_seconds() - cpu) / seconds * 100)


def measure_scrapes(running: Running, scrapes: int, per_thread: int) -> None:
    scraper = Scraper(running.port)
    cpu_before = running.cpu_seconds()
    one = [scraper.scrape() for _ in range(scrapes)]
    running.cpu_ms_per_scrape.append((running.cpu_seconds() - cpu_before) / scrapes * 1000)
    scraper.close()
    many: list[float] = []
    lock = threading.Lock()

    def hammer() -> None:
        own = Scraper(running.port)
        timings = [own.scrape() for _ in range(per_thread)]
        own.close()
        with lock:
            many.extend(timings)

    threads = [threading.Thread(target=hammer) for _ in range(CONCURRENT_SCRAPERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    running.p50_one.append(statistics.median(one) * 1000)
    running.p99_one.append(percentile(one, 0.99) * 1000)
    running.p50_many.append(statistics.median(many) * 1000)
    running.p99_many.append(percentile(many, 0.99) * 1000)
    running.rss_mib.append(psutil.Process(running.process.pid).memory_info().rss / 2**20)


def table(exporters: list[Running]) -> str:
    """The results as a Markdown table, medians over the rounds, p50 ratios against sql_exporter."""
    reference = next((running for running in exporters if running.peer.name == "sql_exporter"), None)

    def median(values: list[float]) -> float:
        return statistics.median(values)

    def ratio(mine: list[float], theirs: list[float] | None) -> str:
        return f"{median(theirs) / median(mine):,.1f}" if theirs else "-"

    lines = ["| exporter | version | series | p50 ms, 1 scraper | p99 ms, 1 | p50 ms, 16 scrapers | p99 ms, 16 "
             "| CPU ms/scrape | RSS MiB | idle CPU % of a core | sql_exporter's p50 / this p50 (1 / 16 scrapers) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for running in exporters:
        lines.append(
            f"| {running.peer.name} | {running.peer.version} | {running.series_seen} "
            f"| {median(running.p50_one):.2f} | {median(running.p99_one):.2f} "
            f"| {median(running.p50_many):.2f} | {median(running.p99_many):.2f} "
            f"| {median(running.cpu_ms_per_scrape):.2f} | {median(running.rss_mib):.1f} "
            f"| {median(running.idle_cpu_percent):.2f} "
            f"| {ratio(running.p50_one, reference.p50_one if reference else None)} / "
            f"{ratio(running.p50_many, reference.p50_many if reference else None)} |")
    return "\n".join(lines)


def parse_compare(values: list[str]) -> dict[str, Path]:
    compare = {}
    for value in values:
        label, _, directory = value.partition("=")
        if not directory:
            raise SystemExit(f"--compare wants LABEL=DIR, got {value!r}")
        compare[label] = Path(directory).resolve()
    return compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--small-queries", type=int, default=20)
    parser.add_argument("--scrapes", type=int, default=100, help="sequential scrapes per exporter and round")
    parser.add_argument("--scrapes-per-thread", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warm-up", type=float, default=20.0, help="seconds after every exporter shows its series")
    parser.add_argument("--compare", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="measure only these exporters (repeat; default: all)")
    parser.add_argument("--work-dir", type=Path, help="keep the configs and each exporter's output.log here")
    parser.add_argument("--smoke", action="store_true", help="small sizes, one round: about 30 s")
    args = parser.parse_args()
    if args.smoke:
        args.series, args.small_queries, args.scrapes, args.scrapes_per_thread = 1000, 2, 10, 2
        args.idle_seconds, args.rounds, args.warm_up = 3.0, 1, 1.0
    chosen = [peer for peer in peers(parse_compare(args.compare)) if not args.only or peer.name in args.only]
    missing = [peer.name for peer in chosen if not peer.installed()]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)}; run `make peers` first")
    work = Work(args.series, args.small_queries)
    with tempfile.TemporaryDirectory(prefix="peers-benchmark-") as temporary:
        work_dir = args.work_dir or Path(temporary)
        work_dir.mkdir(parents=True, exist_ok=True)
        work_dir.chmod(0o755)  # the server runs as the postgres OS user
        server = PostgresServer(work_dir / "pg")
        server.start()
        exporters: list[Running] = []
        try:
            database = Database(server.host, server.port, EXPORTER_USER, EXPORTER_PASSWORD, "appdb")
            exporters = [start(peer, work_dir, database, work) for peer in chosen]
            for running in exporters:
                wait_for_series(running, args.series, timeout=90)
            time.sleep(args.warm_up)
            for round_number in range(1, args.rounds + 1):
                print(f"round {round_number}/{args.rounds}: idle {args.idle_seconds:g} s", flush=True)
                measure_idle(exporters, args.idle_seconds)
                for running in exporters:
                    measure_scrapes(running, args.scrapes, args.scrapes_per_thread)
            load = psutil.getloadavg()
        finally:
            for running in exporters:
                running.process.terminate()
            for running in exporters:
                try:
                    running.process.wait(10)
                except subprocess.TimeoutExpired:
                    running.process.kill()
            server.stop()
    cpu = psutil.cpu_count()
    print(f"\n{args.series} series + {args.small_queries} one-row queries every 15 s; {args.rounds} round(s); "
          f"{cpu} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}\n")
    print(table(exporters))


if __name__ == "__main__":
    main()
