"""The README's metric list is what the exporter really exposes, and the live output is lint-clean."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path

from harness import running_app, wait_until

from exporter.catalog import catalog_markdown, metric_catalog
from exporter.checks.builtin import default_registry
from exporter.metrics import MetricType

ROOT = Path(__file__).resolve().parent.parent


def readme_metric_table() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- metrics:start -->\n(.*?)<!-- metrics:end -->", text, re.S)
    assert match, "README.md lacks the <!-- metrics:start --> ... <!-- metrics:end --> block"
    return match.group(1)


def test_readme_metric_table_is_the_generated_catalog() -> None:
    assert readme_metric_table() == catalog_markdown(default_registry()), (
        "README metric table is out of date: regenerate it from `erp-exporter metrics`"
    )


def test_catalog_names_follow_the_naming_guide() -> None:
    for entry in metric_catalog(default_registry()):
        spec = entry.spec
        assert spec.name.startswith("erp_"), spec.name
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name), spec.name
        assert (spec.type is MetricType.COUNTER) == spec.name.endswith("_total"), spec.name
        assert not re.search(r"_(ms|milliseconds|kb|mb|percent)(_|$)", spec.name), spec.name
        assert spec.help.endswith("."), f"{spec.name}: help text should be a sentence"


def test_live_exposition_contains_only_cataloged_metrics_and_passes_promtool(tmp_path: Path) -> None:
    db = tmp_path / "erp.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE t (a INTEGER)")
    config = f"""
targets:
  - name: lite
    driver: SQLite3
    connection: {{database: {db}}}
    labels: {{environment: test}}
process_groups:
  - name: pytest
    cmdline: pytest
"""
    with running_app(tmp_path, config) as running:
        wait_until(running.app.ready, 20, "the first round did not finish")
        text = running.metrics()
    lint = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert lint.returncode == 0 and lint.stdout == "" and lint.stderr == "", lint.stdout + lint.stderr

    exposed = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            exposed.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    documented = {name for entry in metric_catalog(default_registry()) for name in entry.spec.exposed_names()}
    undocumented = {name for name in exposed if name.startswith("erp_")} - documented
    assert not undocumented, f"exposed but not in the catalog: {sorted(undocumented)}"
    # The catalog is not aspirational: the core metrics are all really there.
    for name in ("erp_up", "erp_database_login_can_write", "erp_host_cpu_seconds_total",
                 "erp_process_group_processes", "erp_check_success", "erp_exporter_build_info"):
        assert name in exposed, name


def test_every_catalog_metric_passes_promtool_lint() -> None:
    # The live-output test below only sees the metrics its small config produces; this one gives
    # promtool every metric any check can emit, with one sample each, so a badly named metric of a check
    # that the test config does not run is caught too (promtool knows more rules than the test above).
    lines: list[str] = []
    for entry in metric_catalog(default_registry()):
        spec = entry.spec
        labels = ",".join(f'{label}="x"' for label in spec.labels)
        lines += [f"# HELP {spec.name} {spec.help}", f"# TYPE {spec.name} {spec.type.value}"]
        if spec.type is MetricType.HISTOGRAM:
            bucket_labels = f"{labels}," if labels else ""
            lines += [
                f'{spec.name}_bucket{{{bucket_labels}le="+Inf"}} 1',
                f"{spec.name}_sum{{{labels}}} 1",
                f"{spec.name}_count{{{labels}}} 1",
            ]
        else:
            lines.append(f"{spec.name}{{{labels}}} 1")
    lint = subprocess.run(
        ["promtool", "check", "metrics"], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0 and lint.stdout == "" and lint.stderr == "", lint.stdout + lint.stderr
