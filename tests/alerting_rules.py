"""Helpers for the alerting tests: where the rule files, unit tests, runbooks and Alertmanager config live,
the rule generator (tools/gen_alert_rules.py, loaded by path), and the Debian binaries.

Plain functions, no pytest fixtures: tests/test_alert_rules.py, test_alertmanager.py and
test_alerting_e2e.py use them.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
RULES_DIR = REPO / "alert_rules"
UNIT_TESTS_DIR = RULES_DIR / "tests"
THRESHOLDS = RULES_DIR / "thresholds.yml"
RUNBOOKS_DIR = REPO / "docs" / "runbooks"
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
GENERATOR = REPO / "tools" / "gen_alert_rules.py"


@cache
def generator() -> ModuleType:
    """tools/gen_alert_rules.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_alert_rules", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def binary(name: str) -> str:
    """The path of a Debian tool (promtool, amtool, prometheus, prometheus-alertmanager); fail, never skip."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make test` installs the prometheus and prometheus-alertmanager "
                    "Debian packages", pytrace=False)
    return path


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.rules.yml"))


def unit_test_files() -> list[Path]:
    return sorted(UNIT_TESTS_DIR.glob("*_test.yml"))


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule as it is in a committed file."""

    name: str
    file: str
    group: str
    expr: str
    for_: str
    labels: dict[str, str]
    annotations: dict[str, str]

    @property
    def escalated(self) -> bool:
        return self.labels.get("escalated") == "true"


def alert_rules() -> list[AlertRule]:
    found = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append(AlertRule(
                        name=rule["alert"], file=path.name, group=group["name"], expr=rule["expr"],
                        for_=rule.get("for", "0s"), labels=rule.get("labels", {}),
                        annotations=rule.get("annotations", {}),
                    ))
    return found


def recording_rules() -> list[str]:
    names = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            names += [rule["record"] for rule in group["rules"] if "record" in rule]
    return names


def alert_names() -> list[str]:
    return list(dict.fromkeys(rule.name for rule in alert_rules()))


@dataclass(frozen=True)
class UnitCase:
    """One alert_rule_test entry of a promtool unit test file."""

    file: str
    test: str
    alertname: str
    eval_time: str
    exp_alerts: list[dict[str, Any]]


def unit_cases() -> Iterator[UnitCase]:
    for path in unit_test_files():
        document = yaml.safe_load(path.read_text())
        for test in document.get("tests", []):
            for case in test.get("alert_rule_test", []) or []:
                yield UnitCase(path.name, test.get("name", ""), case["alertname"], str(case["eval_time"]),
                               case.get("exp_alerts") or [])


def unit_expressions() -> Iterator[str]:
    for path in unit_test_files():
        for test in yaml.safe_load(path.read_text()).get("tests", []):
            for case in test.get("promql_expr_test", []) or []:
                yield case["expr"]


def load_thresholds() -> dict[str, Any]:
    thresholds: dict[str, Any] = generator().load_thresholds(THRESHOLDS)
    return thresholds


def write_rules(out_dir: Path, thresholds: dict[str, Any]) -> list[Path]:
    """Generate the rule files from (possibly changed) thresholds into out_dir."""
    paths: list[Path] = generator().write(out_dir, thresholds)
    return paths
