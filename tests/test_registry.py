"""Every kind of check is built the same way: its registered builder yields scheduled checks, and the
runtime wires whatever the registry holds without naming a kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.app import build_runtime
from exporter.checks.base import BaseCheck, RunContext
from exporter.checks.builtin import default_registry
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.connection import read_timeout
from exporter.config.loader import LoadedConfig, load_config
from exporter.metrics import MetricFamily
from exporter.store import CheckKey, ResultStore

CONFIG = """\
global:
  timeout: 10s
  cancel_grace: 2s
targets:
  - name: erp
    driver: SQLite3
    connection:
      database: {database}
    checks:
      - kind: audits
        audits:
          - name: slow_audit
            description: an audit allowed two minutes
            owner: finance
            category: completeness
            support_line: 2
            severity: warning
            warning: 1
            critical: 10
            timeout: 2m
            interval: 1h
            sql: SELECT 1 AS key WHERE 1 = 0
"""


class _Probe(BaseCheck):
    kind = "probe"

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        return []


def _loaded(tmp_path: Path) -> LoadedConfig:
    path = tmp_path / "erp-exporter.yml"
    path.write_text(CONFIG.format(database=tmp_path / "erp.sqlite"), encoding="utf-8")
    return load_config(path)


def test_a_kind_registered_with_its_own_builder_is_scheduled_without_touching_the_app(tmp_path: Path) -> None:
    registry = default_registry()
    probe = _Probe("probe:disk")
    registry.register(
        CheckKind("probe", (), build_for_exporter=lambda loaded: [ScheduledCheck("probe:disk", probe, 45.0, 3.0)])
    )
    runtime = build_runtime(_loaded(tmp_path), registry, ResultStore())
    try:
        key = CheckKey("", "probe:disk")
        job = next(job for job in runtime.jobs if job.key == key)
        assert (job.check, job.interval, job.timeout) == (probe, 45.0, 3.0)
        assert runtime.metas[key].kind == "probe"
    finally:
        runtime.stop()


def test_a_kind_is_built_either_from_target_entries_or_from_its_own_section() -> None:
    registry = default_registry()
    both = CheckKind("both", (), build_for_target=lambda s, d, c: [], build_for_exporter=lambda c: [])
    with pytest.raises(ValueError, match="either"):
        registry.register(both)


def test_every_target_gets_the_default_kinds_its_list_does_not_name(tmp_path: Path) -> None:
    runtime = build_runtime(_loaded(tmp_path), default_registry(), ResultStore())
    try:
        kinds = {meta.kind for key, meta in runtime.metas.items() if key.target == "erp"}
        assert kinds == {"db_response", "privileges", "db_sessions", "audits"}
    finally:
        runtime.stop()


def test_the_connection_read_timeout_outlasts_the_longest_check_built_for_the_target(tmp_path: Path) -> None:
    runtime = build_runtime(_loaded(tmp_path), default_registry(), ResultStore())
    try:
        assert runtime.metas[CheckKey("erp", "audit:slow_audit")].timeout == 120.0
        assert runtime.databases["erp"].spec.read_timeout == read_timeout(120.0, 2.0)
    finally:
        runtime.stop()
