"""Idle CPU, memory and scheduling lag of the exporter with many series (and targets) and no scraper.

    .venv/bin/python benchmarks/idle_benchmark.py [--series 10000] [--targets 1] [--small-queries 20] [--seconds 60]

--targets SQLite files, each a target with a pack of its own: one query of --series / --targets rows (one
series each, a recursive CTE) and --small-queries queries of one row, all every 15 s (the defaults are issue
14's measurement: 21 queries, 10k series). The exporter runs as a subprocess; after a warm-up of 20 s (every
check has run), its CPU time over --seconds with no scrape is printed as a share of one core, with its RSS;
then one scrape reads erp_check_start_delay_seconds: the latest start of any check against its 15 s interval.
CPU time, so the figure is the exporter's own work; a loaded host still slows it down, so compare runs made
one after the other.
"""

from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import free_port  # noqa: E402

EXPORTER = Path(sys.executable).with_name("erp-exporter")


def pack(series: int, small: int) -> str:
    big = f"""  - name: rows
    interval: 15s
    columns: [id, value]
    sql:
      sqlite: |
        WITH RECURSIVE n(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM n WHERE id < {series})
        SELECT CAST(id AS TEXT) AS id, id * 1.5 AS value FROM n
    metrics:
      - name: erp_bench_row_value
        help: One row of the big benchmark query.
        value: value
        labels: [id]
"""
    smalls = "".join(f"""  - name: small{index}
    interval: 15s
    columns: [value]
    sql:
      sqlite: SELECT {index} AS value
    metrics:
      - name: erp_bench_small{index}
        help: A one-row benchmark query.
        value: value
""" for index in range(small))
    return f"name: bench\ndescription: Benchmark pack.\nerp: bench\nqueries:\n{big}{smalls}"


def config(databases: list[Path], pack_file: Path, series: int) -> str:
    targets = "".join(f"""  - name: bench{index}
    driver: SQLite3
    connection:
      database: {database}
    checks:
      - kind: pack
        pack: {pack_file}
""" for index, database in enumerate(databases))
    return f"global:\n  series_limit: {series + 100}\ntargets:\n{targets}"


def start_delays(page: str) -> list[float]:
    return [float(line.rsplit(" ", 1)[1]) for line in page.splitlines()
            if line.startswith("erp_check_start_delay_seconds{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--small-queries", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        databases = [work / f"bench{index}.db" for index in range(args.targets)]
        for database in databases:
            sqlite3.connect(database).close()
        per_target = args.series // args.targets
        (work / "bench-pack.yml").write_text(pack(per_target, args.small_queries))
        (work / "config.yml").write_text(config(databases, work / "bench-pack.yml", per_target))
        port = free_port()
        process = subprocess.Popen([str(EXPORTER), f"--config.file={work / 'config.yml'}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"])
        try:
            time.sleep(20)
            me = psutil.Process(process.pid)
            cpu_before = sum(me.cpu_times()[:2])
            time.sleep(args.seconds)
            cpu = sum(me.cpu_times()[:2]) - cpu_before
            rss = me.memory_info().rss / 2**20
            load = psutil.getloadavg()[0]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
                page = answer.read().decode()
            rows = page.count("erp_bench_row_value{")
            delays = start_delays(page)
        finally:
            process.terminate()
            process.wait(10)
    checks = len(delays)
    print(f"{args.targets} target(s), {rows} series from the big queries, {checks} checks every 15 s; "
          f"load {load:.2f}")
    print(f"  idle CPU : {cpu / args.seconds * 100:.2f} % of a core over {args.seconds:g} s without a scrape "
          f"({cpu / args.seconds * 100 / max(rows / 10_000, 1e-9):.2f} % per 10k series)")
    print(f"  RSS      : {rss:.1f} MiB")
    if delays:
        print(f"  start delay of the last runs: max {max(delays) * 1000:.0f} ms = {max(delays) / 15 * 100:.1f} % "
              f"of the interval, median {sorted(delays)[len(delays) // 2] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
