"""Idle CPU and memory of the exporter with many series and no scraper.

    .venv/bin/python benchmarks/idle_benchmark.py [--series 10000] [--small-queries 20] [--seconds 60]

One SQLite target and a pack of its own: one query of --series rows (one series each, a recursive CTE) and
--small-queries queries of one row, all every 15 s, as in issue 14's measurement (21 queries, 10k series).
The exporter runs as a subprocess; after a warm-up of 20 s (every check has run), its CPU time over --seconds
with no scrape is printed as a share of one core, with its RSS. CPU time, so the figure is the exporter's own
work; a loaded host still slows it down, so compare runs made one after the other.
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


def config(database: Path, pack_file: Path, series: int) -> str:
    return f"""global:
  series_limit: {series + 100}
targets:
  - name: bench
    driver: SQLite3
    connection:
      database: {database}
    checks:
      - kind: pack
        pack: {pack_file}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--small-queries", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        database = work / "bench.db"
        sqlite3.connect(database).close()
        (work / "bench-pack.yml").write_text(pack(args.series, args.small_queries))
        (work / "config.yml").write_text(config(database, work / "bench-pack.yml", args.series))
        port = free_port()
        process = subprocess.Popen([str(EXPORTER), f"--config.file={work / 'config.yml'}",
                                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"])
        try:
            time.sleep(20)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
                page = answer.read().decode()
            rows = page.count("erp_bench_row_value{")
            me = psutil.Process(process.pid)
            cpu_before = sum(me.cpu_times()[:2])
            time.sleep(args.seconds)
            cpu = sum(me.cpu_times()[:2]) - cpu_before
            rss = me.memory_info().rss / 2**20
            load = psutil.getloadavg()[0]
        finally:
            process.terminate()
            process.wait(10)
    print(f"{rows} series from the big query + {args.small_queries} small queries, every 15 s; load {load:.2f}")
    print(f"  idle CPU : {cpu / args.seconds * 100:.2f} % of a core over {args.seconds:g} s without a scrape")
    print(f"  RSS      : {rss:.1f} MiB")


if __name__ == "__main__":
    main()
