"""Scrape latency, memory, idle CPU, and database statements per scrape.

    .venv/bin/python benchmarks/scrape_benchmark.py [--scrapes 2000] [--idle-seconds 60] [--work-dir DIR]

Part 1, the demo as `make demo` runs it (deploy/demo/tryton_demo.py: a real Tryton on SQLite, the exporter
with examples/demo.yml: Tryton pack, audits, SQL and JSON-RPC transactions, host, processes, calendar), on
loopback ports; the demo's Tryton database is built in --work-dir on the first run (about 30 s) and reused:
  - /metrics latency over N sequential keep-alive scrapes, plain and gzip (p50, p95, p99, max);
  - the exporter's RSS after the scrapes;
  - its CPU use while idle (no scrapes) over --idle-seconds, as a share of one core.
Part 2, database statements per scrape, counted by the database itself: a private PostgreSQL with
log_statement=all and the exporter as application 'erp-exporter'. After the first round (checks with
a 1 h interval so none is due), N scrapes are made and the statements the server logged from the
exporter in that window are counted. The exporter's own erp_database_statements_total is shown too.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import PostgresServer, free_port  # noqa: E402

EXPORTER = Path(sys.executable).with_name("erp-exporter")


def start_exporter(config: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [str(EXPORTER), f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/-/ready")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit("exporter did not become ready")


def scrape_latencies(port: int, count: int, gzip: bool) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        assert response.status == 200
    connection.close()
    return latencies


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"{name:14s} n={len(ms)} p50={statistics.median(ms):.3f} ms p95={percentile(ms, 0.95):.3f} ms "
            f"p99={percentile(ms, 0.99):.3f} ms max={max(ms):.3f} ms")


def metric_value(port: int, name: str) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    for line in connection.getresponse().read().decode().splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise KeyError(name)


def start_demo(work: Path, port: int, extra: list[str] | None = None) -> tuple[subprocess.Popen[bytes], psutil.Process]:
    """The demo script (trytond + exporter, `extra` arguments for it); returns it and the exporter's process
    once /-/ready answers."""
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy/demo/tryton_demo.py"), "--work-dir", str(work),
         "--tryton-port", str(free_port()), "--listen", f"127.0.0.1:{port}", *(extra or [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            raise SystemExit(f"the demo exited with {demo.returncode}; see {work}/build.log and trytond.log")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/-/ready")
            if connection.getresponse().status == 200:
                exporters = [p for p in psutil.Process(demo.pid).children() if "erp-exporter" in " ".join(p.cmdline())]
                return demo, exporters[0]
        except OSError:
            pass
        time.sleep(0.2)
    demo.kill()
    raise SystemExit("the demo's exporter did not become ready")


def demo_benchmark(scrapes: int, idle_seconds: float, demo_dir: Path) -> None:
    port = free_port()
    demo, exporter = start_demo(demo_dir, port)
    try:
        series = sum(1 for line in scrape_body(port).splitlines() if line and not line.startswith("#"))
        print(f"the demo exposes {series} series")
        print(describe("/metrics plain", scrape_latencies(port, scrapes, gzip=False)))
        print(describe("/metrics gzip", scrape_latencies(port, scrapes, gzip=True)))
        renders = metric_value(port, "erp_exporter_renders_total")
        print(f"renders during {2 * scrapes} scrapes: {renders:.0f} in total since start "
              "(rendering happens when results change, not per scrape)")
        print(f"RSS after scrapes: {exporter.memory_info().rss / 2**20:.1f} MiB")
        before = exporter.cpu_times()
        time.sleep(idle_seconds)
        after = exporter.cpu_times()
        used = (after.user - before.user) + (after.system - before.system)
        print(f"idle CPU over {idle_seconds:.0f} s: {used:.3f} CPU-s = {100 * used / idle_seconds:.2f}% of one core "
              "(its 26 checks keep running on their intervals meanwhile)")
    finally:
        demo.terminate()
        demo.wait(30)


def scrape_body(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    return connection.getresponse().read().decode()


def statements_per_scrape(scrapes: int, work: Path) -> None:
    server = PostgresServer(work / "pg")
    server.start()
    try:
        server.psql("ALTER SYSTEM SET log_statement = 'all'; ALTER SYSTEM SET log_line_prefix = '%m [%p] app=%a ';",
                    database="postgres")
        server.psql("SELECT pg_reload_conf()", database="postgres")
        config = work / "pg.yml"
        config.write_text(f"""
host: {{enabled: false}}
targets:
  - name: pg
    driver: PostgreSQL Unicode
    connection: {{server: 127.0.0.1, port: {server.port}, database: appdb}}
    username: exporter
    password: exporterpw
    checks:
      - {{kind: db_response, interval: 1h, timeout: 10s}}
      - {{kind: privileges, interval: 1h, timeout: 10s}}
""")
        port = free_port()
        process = start_exporter(config, port, {})
        try:
            time.sleep(1.5)  # let the first round's statements reach the log
            sent_before = metric_value(port, "erp_database_statements_total")
            logged_before = server.log_file.read_text().count("app=erp-exporter LOG:  statement:")
            scrape_latencies(port, scrapes, gzip=False)
            time.sleep(1.5)
            logged_after = server.log_file.read_text().count("app=erp-exporter LOG:  statement:")
            sent_after = metric_value(port, "erp_database_statements_total")
        finally:
            process.terminate()
            process.wait(10)
        print(f"PostgreSQL log: {logged_before} exporter statements in the first round, "
              f"{logged_after - logged_before} during {scrapes} scrapes "
              f"= {(logged_after - logged_before) / scrapes:.3f} per scrape")
        print(f"exporter's own count: erp_database_statements_total {sent_before:.0f} -> {sent_after:.0f}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scrapes", type=int, default=2000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--work-dir", type=Path, default=ROOT / "var" / "benchmark" / "tryton",
                        help="where the demo's Tryton database is built once and reused")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="erp-bench-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o711)  # noqa: S103 - the postgres OS user must traverse it
        demo_benchmark(args.scrapes, args.idle_seconds, args.work_dir)
        statements_per_scrape(args.scrapes, work)


if __name__ == "__main__":
    main()
