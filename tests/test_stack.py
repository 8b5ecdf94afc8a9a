"""`make stack` (deploy/stack/run_stack.py) started for real: Tryton on a copy of the session's seeded SQLite
database, the exporter, Debian's Prometheus and Alertmanager, on free loopback ports and a temporary var
directory; then stopped with SIGTERM, as Ctrl-C would.

The stack is started once for the module (about 20 to 40 s, mostly trytond and `trytond-cron --once`);
the last test stops it and checks that every process it started is gone and every port is closed.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests
import yaml
from harness import wait_until
from servers import free_port

REPO = Path(__file__).resolve().parents[1]
RUN_STACK = REPO / "deploy" / "stack" / "run_stack.py"
RULE_FILES = sorted((REPO / "alert_rules").glob("*.rules.yml"))
STARTUP_TIMEOUT = 75.0


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    var: Path
    output: Path
    descendants: list[psutil.Process]

    def url(self, part: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[part]}{path}"

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-4000:]


def _free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def _exporter_target(stack: Stack) -> dict[str, Any] | None:
    try:
        answer = requests.get(stack.url("prometheus", "/api/v1/targets"), timeout=2).json()
    except (requests.RequestException, ValueError):
        return None
    for target in answer["data"]["activeTargets"]:
        if target["labels"]["job"] == "erp-exporter" and target["health"] == "up":
            return dict(target)
    return None


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def stack(tryton_sqlite_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    # A private, consistent copy of the session's seeded database (the backup API copies it safely even
    # while another test's trytond serves the original).
    database = root / "db" / tryton_sqlite_db.name
    database.parent.mkdir()
    source, target = sqlite3.connect(tryton_sqlite_db), sqlite3.connect(database)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    prometheus, alertmanager, exporter, tryton = _free_ports(4)
    ports = {"prometheus": prometheus, "alertmanager": alertmanager, "exporter": exporter, "tryton": tryton}
    output = root / "stack.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(RUN_STACK), f"--prometheus-port={prometheus}", f"--alertmanager-port={alertmanager}",
             f"--exporter-port={exporter}", f"--tryton-port={tryton}", f"--var-dir={root / 'var'}",
             f"--database={database}", "--scrape-interval=1s", f"--startup-timeout={STARTUP_TIMEOUT}"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    stack = Stack(process, ports, root / "var", output, [])
    try:
        wait_until(lambda: process.poll() is not None or "stack: everything is up" in stack.log(),
                   STARTUP_TIMEOUT, "the stack did not come up")  # fmt: skip
        assert process.poll() is None, f"run_stack.py exited with {process.returncode}:\n{stack.log()}"
        stack.descendants = psutil.Process(process.pid).children(recursive=True)
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for child in stack.descendants:  # nothing may outlive a failed test either
            if child.is_running():
                child.kill()


def test_stack_refuses_to_start_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        others = _free_ports(3)
        result = subprocess.run(
            [sys.executable, str(RUN_STACK), f"--prometheus-port={port}", f"--alertmanager-port={others[0]}",
             f"--exporter-port={others[1]}", f"--tryton-port={others[2]}", f"--var-dir={tmp_path / 'var'}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"port already in use on 127.0.0.1: prometheus {port}" in result.stderr
    assert not (tmp_path / "var").exists()


def test_stack_runs_trytond_exporter_prometheus_and_alertmanager(stack: Stack) -> None:
    names = {" ".join(p.cmdline()[:2]) for p in stack.descendants if p.is_running()}
    executables = {Path(p.cmdline()[0]).name for p in stack.descendants if p.is_running()}
    assert {"prometheus", "prometheus-alertmanager"} <= executables
    assert any("trytond" in name for name in names), names
    assert any("erp-exporter" in name for name in names), names
    for part in ("prometheus", "alertmanager", "exporter", "tryton"):
        assert _listens(stack.ports[part]), part


def test_prometheus_finds_the_exporter_up(stack: Stack) -> None:
    target = wait_until(lambda: _exporter_target(stack), 30, f"exporter not up in Prometheus:\n{stack.log()}",
                        interval=0.5)  # fmt: skip
    assert target["scrapeUrl"] == stack.url("exporter", "/metrics")
    assert target["lastError"] == ""


def test_prometheus_evaluates_the_shipped_rule_groups(stack: Stack) -> None:
    expected = [group["name"] for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]
    groups = requests.get(stack.url("prometheus", "/api/v1/rules"), timeout=5).json()["data"]["groups"]
    assert sorted(group["name"] for group in groups) == sorted(expected)
    assert {group["file"] for group in groups} == {str(path) for path in RULE_FILES}


def test_alertmanager_runs_the_shipped_routes(stack: Stack) -> None:
    status = requests.get(stack.url("alertmanager", "/api/v2/status"), timeout=5).json()
    running = yaml.safe_load(status["config"]["original"])
    shipped = yaml.safe_load((REPO / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    assert running["route"]["receiver"] == shipped["route"]["receiver"]
    assert [r.get("receiver") for r in running["route"]["routes"]] == [
        r.get("receiver") for r in shipped["route"]["routes"]
    ]
    assert status["cluster"]["status"] == "disabled"


def test_sigterm_stops_every_child_and_frees_the_ports(stack: Stack) -> None:
    assert len(stack.descendants) >= 5  # demo script, trytond, exporter, prometheus, alertmanager
    started = time.monotonic()
    stack.process.send_signal(signal.SIGTERM)
    assert stack.process.wait(timeout=40) == 0, stack.log()
    _gone, alive = psutil.wait_procs(stack.descendants, timeout=5)
    assert alive == [], [p.pid for p in alive]
    assert time.monotonic() - started < 30
    for part, port in stack.ports.items():
        assert not _listens(port), f"{part} port {port} still open"
    assert "stack: stopped" in stack.log()
