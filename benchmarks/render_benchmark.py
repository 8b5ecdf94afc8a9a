"""CPU of the background re-render when one small check lands next to a big one (the exporter's idle cost).

    .venv/bin/python benchmarks/render_benchmark.py [--series 10000] [--small-checks 20] [--rounds 30]

A store holds one check with --series series and --small-checks checks of 5 series each. Each round records
a new result of one small check and renders the page (plain + gzip), as a scrape after each landing would
(without scrapes the exporter no longer compresses at all). Printed: CPU ms per render with the exporter's
formatter (each check's text formatted once, when it lands) and with the previous path (every family
converted to prometheus_client metrics and formatted by generate_latest on every render), and the ratio.
CPU time of this process, so a loaded host shifts both alike.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.exposition import Exposition, families_for, to_client_metrics
from exporter.metrics import MetricFamily, gauge
from exporter.store import CheckKey, CheckMeta, Outcome, ResultStore


class Families(Collector):
    """prometheus_client's view of our families: the formatter the exporter used before its own."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


ROW = gauge("erp_bench_rows", "A row of the big query.", "id", "kind")
SMALL = gauge("erp_bench_small", "A small check's value.", "item")


def big_result(series: int) -> list[MetricFamily]:
    family = ROW.family()
    for index in range(series):
        family.add(float(index), id=str(index), kind=f"kind{index % 7}")
    return [family]


def small_result(round_number: int) -> list[MetricFamily]:
    family = SMALL.family()
    for item in range(5):
        family.add(float(round_number + item), item=str(item))
    return [family]


def build(series: int, small_checks: int) -> tuple[ResultStore, list[CheckKey]]:
    store = ResultStore()
    meta = CheckMeta("sql", 15.0, 10.0, 1_000_000, {"target": "erp"})
    big = CheckKey("erp", "big")
    smalls = [CheckKey("erp", f"small{index}") for index in range(small_checks)]
    store.configure({key: meta for key in [big, *smalls]})
    store.record(big, Outcome(True, 0.1, big_result(series)))
    for key in smalls:
        store.record(key, Outcome(True, 0.01, small_result(0)))
    return store, smalls


def cpu_ms(action: object, rounds: int, store: ResultStore, smalls: list[CheckKey]) -> list[float]:
    timings = []
    for round_number in range(1, rounds + 1):
        store.record(smalls[round_number % len(smalls)], Outcome(True, 0.01, small_result(round_number)))
        start = time.process_time()
        action()  # type: ignore[operator]
        timings.append((time.process_time() - start) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--small-checks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    store, smalls = build(args.series, args.small_checks)
    exposition = Exposition(store, lambda: [], include_process_metrics=False)
    exposition.get()  # the first rendering formats everything once

    def client_library() -> None:
        _, states = store.snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(Families(to_client_metrics(families_for(states, time.monotonic()))))
        body = generate_latest(registry)
        gzip.compress(body, compresslevel=6)

    def exporter_formatter() -> None:
        exposition.get().gzipped  # noqa: B018 - as a scrape that accepts gzip would ask for it

    ours = cpu_ms(exporter_formatter, args.rounds, store, smalls)
    before = cpu_ms(client_library, args.rounds, store, smalls)
    size = len(exposition.get().plain)
    print(f"{args.series} series + {args.small_checks} small checks, page {size / 1024:.0f} KiB, {args.rounds} rounds")
    print(f"  exporter formatter : median {statistics.median(ours):7.2f} ms CPU per re-render")
    print(f"  prometheus_client  : median {statistics.median(before):7.2f} ms CPU per re-render")
    print(f"  ratio              : {statistics.median(before) / statistics.median(ours):.1f}x less CPU")


if __name__ == "__main__":
    main()
