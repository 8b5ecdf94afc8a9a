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


def test_fleet_benchmark_runs_one_landscape_and_reports_its_figures() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fleet_benchmark.py"), "--sizes", "1",
                           "--interval", "1s", "--seconds", "3"], capture_output=True, text=True, timeout=180,
                          check=False, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    row = r"^\| 1 \| \d+ \| [\d,]+ \| [\d,]+ \| [\d.,]+ KiB/s \| [\d.]+ MiB \| [\d.]+ MiB \| [\d,]+ \| 0 \|$"
    assert re.search(row, done.stdout, re.MULTILINE), done.stdout
