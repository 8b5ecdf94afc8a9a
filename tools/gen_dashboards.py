#!/usr/bin/env python3
"""Generate the Grafana dashboards in grafana_dashboards/ from code and alert_rules/thresholds.yml.

    .venv/bin/python tools/gen_dashboards.py            # rewrite grafana_dashboards/*.json
    .venv/bin/python tools/gen_dashboards.py --check    # exit 1 if the committed files are out of date

Library: grafana-foundation-sdk (Grafana Labs), pinned in pyproject.toml's dev extras to the Grafana 11.6 build
``1769699379!11.6.0``. Why this one and not grafanalib: the SDK's builders are generated from Grafana's own
schemas (typed DataSourceRef, fieldConfig, variables and annotations; schemaVersion 41), it had releases in
2026, while grafanalib's last release is 0.7.1 (January 2024, 52 commits unreleased, its owner wound down)
and writes schemaVersion 12 with legacy target fields. The pin matters: PEP 440 epochs are build
timestamps, and a plain ``pip install grafana-foundation-sdk`` resolves to the older Grafana 10.1 build
(uploaded last, so with the highest epoch).

What every board shares (tests/test_dashboards.py checks all of it, and runs every query against a real
Prometheus that scraped the real exporter):
  - variables ``datasource`` (Prometheus), ``environment``, ``target`` (label_values of erp_up) and
    ``instance`` (the exporter: host, backup, log and self metrics carry no target label);
  - every panel has a unit and the ``${datasource}`` data source, a stable id; every board a stable uid;
  - thresholds equal the alert rules': read here from alert_rules/thresholds.yml, the same file
    tools/gen_alert_rules.py reads. A threshold step means "at or above this": ``> N`` on a count is a
    step at N + 1; a value that alerts when it falls is coloured red below the critical and orange below
    the warning value. Panels without an alert have a single neutral step;
  - queries use the recording rules of alert_rules/recording.rules.yml where one exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The boards live beside this script in tools/boards/ (tools/ is no package: tests load this file by its
# path, as `make dashboards` runs it).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from boards.capacity import capacity
from boards.database import database
from boards.governance import governance
from boards.kit import OUT_DIR, REPO, Limits, load_limits
from boards.month_end import month_end
from boards.overview import overview
from boards.self_monitoring import exporter_health
from generated_files import duration_seconds, write_files, write_or_check

__all__ = ["BOARDS", "Limits", "duration_seconds", "generate", "load_limits", "main", "overview"]


BOARDS: dict[str, Callable[[Limits], dict[str, Any]]] = {
    "erp-overview.json": overview,
    "erp-month-end.json": month_end,
    "erp-database.json": database,
    "erp-governance.json": governance,
    "erp-capacity.json": capacity,
    "erp-exporter.json": exporter_health,
}


def generate(limits: Limits) -> dict[str, str]:
    """File name -> JSON text of every board."""
    return {name: json.dumps(make(limits), indent=2, sort_keys=True) + "\n" for name, make in BOARDS.items()}


def write(out_dir: Path, limits: Limits) -> list[Path]:
    """Write the generated files into `out_dir`."""
    return write_files(out_dir, generate(limits))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are out of date")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    expected = {args.out / name: text for name, text in generate(load_limits()).items()}
    return write_or_check(expected, args.check, "tools/gen_dashboards.py", _shown)


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path

if __name__ == "__main__":
    sys.exit(main())
