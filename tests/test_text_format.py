"""The exporter's own text formatter writes what prometheus_client writes, byte for byte, and promtool accepts it."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from alerting_rules import binary
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from exporter.exposition import assemble, format_families, to_client_metrics
from exporter.metrics import HistogramValue, MetricFamily, counter, gauge, histogram
from exporter.process_metrics import ProcessMetrics
from exporter.text_format import format_float


class Families(Collector):
    """prometheus_client's view of our families: the formatter the exporter used before its own."""

    def __init__(self, metrics: list[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self._metrics)


AWKWARD_VALUES = [0.0, -0.0, 1.0, -1.5, 1e6, 1234567.0, 12345678.9, 1e21, 1e-7, 0.1 + 0.2, math.inf, -math.inf,
                  math.nan, 2.0**53, 123456.0]
AWKWARD_LABELS = ["plain", 'with "quotes"', "back\\slash", "new\nline", "", "ünïcödé ✓", "trailing\\", "{}=,"]


def families() -> list[MetricFamily]:
    size = gauge("erp_test_size_bytes", "Size with a \\ backslash and a\nnewline in the help.", "db")
    runs = counter("erp_test_runs_total", "Runs.", "outcome")
    latency = histogram("erp_test_latency_seconds", "Latency.", "step")
    one = size.family()
    for index, value in enumerate(AWKWARD_VALUES):
        one.add(value, db=f"db{index}", target="erp")
    for text in AWKWARD_LABELS:
        one.add(1.0, db=text, target="erp")
    one.add(2.0, **{"bad-name": "x", "9lives": "y", "target": "erp"})
    two = runs.family().add(3.0, outcome="ok", target="erp").add(1e10, outcome="error", target="erp")
    three = latency.family().add(HistogramValue(((0.005, 1.0), (0.1, 4.0), (math.inf, 5.0)), 0.75, 5.0), step="a")
    three.add(HistogramValue(((1e-5, 0.0), (2.5, 2.0)), 1.25, 3.0), step="b")
    empty = gauge("erp_test_empty", "No samples.").family()
    again = size.family().add(7.0, db="second check", target="erp2")  # the same family from another check
    return [one, two, three, empty, again]


def client_text(found: list[MetricFamily]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(to_client_metrics(found)))
    return generate_latest(registry).decode()


def test_text_equals_the_client_librarys_byte_for_byte() -> None:
    found = families()
    ours = assemble([format_families(found[:3]), format_families(found[3:])])
    assert ours == client_text(found)


def test_families_of_one_name_from_two_checks_share_one_header() -> None:
    text = assemble([format_families(families())])
    assert text.count("# TYPE erp_test_size_bytes gauge") == 1
    lines = text.splitlines()
    sizes = [index for index, line in enumerate(lines) if line.startswith("erp_test_size_bytes")]
    assert sizes == list(range(sizes[0], sizes[0] + len(sizes)))  # one contiguous group


def test_promtool_accepts_the_text() -> None:
    text = assemble([format_families(families())])
    done = subprocess.run([binary("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_floats_are_written_as_go_writes_them() -> None:
    assert [format_float(v) for v in (1e6, 1234567.0, 0.5, math.inf, -math.inf, math.nan, 1e-7)] == [
        "1e+06", "1.234567e+06", "0.5", "+Inf", "-Inf", "NaN", "1e-07"]


def test_process_metrics_are_the_client_librarys_names_and_types() -> None:
    from prometheus_client import ProcessCollector

    ours = {(family.spec.name, family.spec.type.value) for family in ProcessMetrics().families()}
    theirs = {(metric.name + ("_total" if metric.type == "counter" else ""), metric.type)
              for metric in ProcessCollector(registry=None).collect()}
    assert ours == theirs
    assert len(ours) == 6


def test_process_resident_memory_is_this_process_rss() -> None:
    (rss,) = [family for family in ProcessMetrics().families() if family.spec.name == "process_resident_memory_bytes"]
    status = Path("/proc/self/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    assert rss.samples[0].value == pytest.approx(kib * 1024, rel=0.2)


def test_an_undecodable_byte_in_a_label_value_becomes_a_replacement_character() -> None:
    """Found by tests/test_fuzz_exposition.py: a driver's surrogateescape'd byte made every scrape fail."""
    family = gauge("erp_test_rows", "Rows.", "row").family().add(1.0, row="caf\udce9", target="erp")
    text = assemble([format_families([family])])
    assert 'row="caf\ufffd"' in text
    text.encode("utf-8")
