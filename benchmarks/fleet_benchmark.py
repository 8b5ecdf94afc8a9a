"""Capacity of the fleet topology for planners: one site's agent pair scraping 1, 5 and 20 landscapes.

    .venv/bin/python -u benchmarks/fleet_benchmark.py [--sizes 1 5 20] [--interval 5s] [--seconds 40]
                                                      [--append benchmarks/RESULTS.md]

For each size a fresh fleet (deploy/fleet/fleet.py) of one site with that many landscapes (exporters on their
SQLite demo databases, host metrics on) runs for a warm-up of three intervals, then a window of --seconds.
Measured, from the parts themselves:

  series per exporter      scrape_samples_scraped of each exporter, as the central received it
  samples/s per site       the exporters' samples the pair writes: 2 x series x landscapes / interval
  remote_write samples/s   the agents' prometheus_remote_storage_samples_total over the window, per agent
                           (the exporters' samples and the agent's own metrics)
  remote_write bytes/s     the agents' prometheus_remote_storage_bytes_total over the window, per agent
  agent RSS                the agents' resident memory at the end of the window (psutil), mean of the pair
  central RSS, head series the central Prometheus at the end of the window

The interval is shorter than the shipped 15s to keep a run at a few minutes; samples and bytes per second
scale with 1 / interval (docs/scaling.md does the arithmetic for 15s and 500 landscapes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy" / "fleet"))
sys.path.insert(0, str(ROOT / "tools"))

from fleet import Fleet, FleetSpec  # noqa: E402
from fleet_configs import Intervals  # noqa: E402
from generated_files import duration_seconds  # noqa: E402

# Nothing is routed anywhere: the benchmark measures the write path, not notifications.
ALERTMANAGER_CONFIG = "route: {receiver: nowhere}\nreceivers: [{name: nowhere}]\n"


@dataclass
class Figures:
    landscapes: int
    series_per_exporter: float
    samples_per_second: float
    sent_samples_per_second_per_agent: float
    bytes_per_second_per_agent: float
    agent_rss_mib: float
    central_rss_mib: float
    head_series: float
    refused: float

    def row(self) -> str:
        return (f"| {self.landscapes} | {self.series_per_exporter:.0f} | {self.samples_per_second:,.0f} | "
                f"{self.sent_samples_per_second_per_agent:,.0f} | "
                f"{self.bytes_per_second_per_agent / 1024:,.1f} KiB/s | {self.agent_rss_mib:.1f} MiB | "
                f"{self.central_rss_mib:.1f} MiB | {self.head_series:,.0f} | {self.refused:.0f} |")


def query(fleet: Fleet, expr: str) -> list[dict[str, Any]]:
    url = f"{fleet.central_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        result: list[dict[str, Any]] = json.load(response)["data"]["result"]
    return result


def scalar(fleet: Fleet, expr: str) -> float:
    result = query(fleet, expr)
    return float(result[0]["value"][1]) if result else float("nan")


def agent_metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))  # fmt: skip


def rss_mib(fleet: Fleet, name: str) -> float:
    pid = fleet.part(name).pid
    return psutil.Process(pid).memory_info().rss / 2**20 if pid else float("nan")


def measure(landscapes: int, interval: str, seconds: float) -> Figures:
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        spec = FleetSpec(var=Path(tmp), sites=1, landscapes_per_site=landscapes,
                         intervals=Intervals(scrape=interval, evaluation=interval, check=interval))  # fmt: skip
        fleet = Fleet(spec, ALERTMANAGER_CONFIG)
        fleet.start(timeout=120)
        try:
            step = duration_seconds(interval)
            # warm-up: every exporter scraped a few times and its first check results in
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(query(fleet, 'scrape_samples_scraped{job="erp-exporter"}')) \
                    < landscapes:
                time.sleep(1)
            time.sleep(6 * step)  # every check has run: audits, transactions and sizes included
            agents = [agent.port for agent in fleet.agents]
            sent_0 = [agent_metric(port, "prometheus_remote_storage_samples_total") for port in agents]
            bytes_0 = [agent_metric(port, "prometheus_remote_storage_bytes_total") for port in agents]
            started = time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            sent_1 = [agent_metric(port, "prometheus_remote_storage_samples_total") for port in agents]
            bytes_1 = [agent_metric(port, "prometheus_remote_storage_bytes_total") for port in agents]
            series = [float(s["value"][1]) for s in query(fleet, 'scrape_samples_scraped{job="erp-exporter"}')]
            return Figures(
                landscapes=landscapes,
                series_per_exporter=sum(series) / len(series),
                samples_per_second=2 * sum(series) / step,
                sent_samples_per_second_per_agent=sum(b - a for a, b in zip(sent_0, sent_1, strict=True))
                / elapsed / len(agents),
                bytes_per_second_per_agent=sum(b1 - b0 for b0, b1 in zip(bytes_0, bytes_1, strict=True))
                / elapsed / len(agents),
                agent_rss_mib=sum(rss_mib(fleet, agent.name) for agent in fleet.agents) / len(fleet.agents),
                central_rss_mib=rss_mib(fleet, "central"),
                head_series=scalar(fleet, "prometheus_tsdb_head_series"),
                refused=sum(agent_metric(port, "prometheus_remote_storage_samples_failed_total") for port in agents),
            )
        finally:
            fleet.stop()


HEADER = ("| landscapes | series per exporter | exporter samples/s per site (pair) | remote_write samples/s per agent "
          "| remote_write bytes/s per agent | agent RSS | central RSS | central head series | samples refused |\n"
          "|---|---|---|---|---|---|---|---|---|")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--interval", default="5s", help="scrape, evaluation and check interval (default: 5s)")
    parser.add_argument("--seconds", type=float, default=40.0, help="the measured window per size (default: 40)")
    parser.add_argument("--append", type=Path, default=None, help="append the table to this Markdown file")
    args = parser.parse_args()
    load = os.getloadavg()
    rows = []
    for size in args.sizes:
        figures = measure(size, args.interval, args.seconds)
        print(figures.row(), flush=True)
        rows.append(figures.row())
    machine = (f"{psutil.cpu_count()} CPUs, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Linux {platform.release()}")  # fmt: skip
    text = "\n".join([
        "", "## Fleet capacity "
        f"(`benchmarks/fleet_benchmark.py --interval {args.interval} --seconds {args.seconds:g}`)",
        "", f"{time.strftime('%Y-%m-%d', time.gmtime())}; {machine}; load average before the run "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (2 cores shared with other test runs). One site: an agent pair "
        f"scraping N landscapes every {args.interval}; host metrics on.", "", HEADER, *rows, "",
    ])  # fmt: skip
    print(text)
    if args.append:
        with args.append.open("a") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
