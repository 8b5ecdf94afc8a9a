"""Smoke runs of the benchmarks: each still runs end to end on a small size and prints its figures (no time
is asserted here; the figures belong in benchmarks/RESULTS.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_render_benchmark_runs_and_reports_both_formatters() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "render_benchmark.py"), "--series", "2000",
                           "--small-checks", "5", "--rounds", "5"], capture_output=True, text=True, timeout=120,
                          check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert re.search(r"exporter formatter : median +[0-9.]+ ms", done.stdout)
    assert re.search(r"prometheus_client  : median +[0-9.]+ ms", done.stdout)
    assert re.search(r"ratio +: [0-9.]+x", done.stdout)


def test_peers_benchmark_smoke_run_measures_every_exporter_on_the_same_series() -> None:
    done = subprocess.run([sys.executable, "-u", str(ROOT / "benchmarks" / "peers_benchmark.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| exporter")}
    assert set(rows) == {"erp-exporter", "sql_exporter", "query-exporter", "postgres_exporter"}
    for name, cells in rows.items():
        assert cells[1] == "1000", f"{name} exported {cells[1]} of the 1000 series"
        assert all(re.fullmatch(r"[0-9.,]+", cell) for cell in cells[2:9]), f"{name}: {cells}"
    assert rows["sql_exporter"][9] == "1.0 / 1.0"


def test_fleet_benchmark_runs_one_landscape_and_reports_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fleet_benchmark.py"), "--sizes", "1",
                           "--interval", "1s", "--seconds", "3"], capture_output=True, text=True, timeout=180,
                          check=False, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = r"^\| 1 \| \d+ \| [\d,]+ \| [\d,]+ \| [\d.,]+ KiB/s \| [\d.]+ MiB \| [\d.]+ MiB \| [\d,]+ \| 0 \|$"
    assert re.search(row, done.stdout, re.MULTILINE), done.stdout
