"""Config reloads over HTTP (POST /-/reload) and by SIGHUP, and stopping by SIGTERM/SIGINT.

A reload builds the new config completely before it replaces the running one: a broken file is
reported (file:line: key: message) and the old checks keep running and being served.
"""

from __future__ import annotations

import http.client
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from exporter.app import App
from exporter.checks.builtin import default_registry
from exporter.http.server import ExporterHTTPServer
from exporter.http.web_config import WebConfig
from exporter.logs import SecretMask
from exporter.store import CheckKey

T = TypeVar("T")

EXPORTER = str(Path(sys.executable).parent / "erp-exporter")


def wait_until(probe: Callable[[], T | None], timeout: float, message: str, interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(interval)


@dataclass
class Response:
    status: int
    text: str


def request(port: int, path: str, method: str = "GET") -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, body=b"" if method == "POST" else None)
        response = connection.getresponse()
        return Response(response.status, response.read().decode("utf-8"))
    finally:
        connection.close()


def sample_value(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def make_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY)")
    return path


def base_config(db: Path, extra_groups: str = "") -> str:
    """A SQLite target that stays quiet (10m) and a process group that runs every second, so a test can
    see that checks keep running. `extra_groups` adds process groups."""
    return f"""\
global:
  interval: 10m
  timeout: 5s
  jitter: 0
host:
  enabled: false
targets:
  - name: demo
    driver: SQLite3
    connection: {{database: {db}}}
process_groups:
  - name: ticker
    cmdline: "pytest|erp-exporter"
    interval: 1s
{extra_groups}"""


ADDED_GROUP = """\
  - name: added
    process_name: "python.*"
"""

# Line 3 holds the broken key; the test asserts the error names it exactly.
BROKEN_CONFIG = """\
global:
  interval: 10m
  timeout: 5x
targets: []
"""
BROKEN_LINE = 3


def runs_of(metrics: str, check: str) -> float:
    return sample_value(metrics, "erp_check_runs_total", check=check) or 0.0


# --- in process: POST /-/reload -----------------------------------------------------------------------


@dataclass
class Running:
    app: App
    server: ExporterHTTPServer
    config: Path

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def metrics(self) -> str:
        return request(self.port, "/metrics").text

    def reload(self) -> Response:
        return request(self.port, "/-/reload", method="POST")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(base_config(make_sqlite(tmp_path / "demo.db")))
    app = App(config, default_registry(), SecretMask())
    app.start()
    server = ExporterHTTPServer(("127.0.0.1", 0), app, WebConfig(), tmp_path)
    server.serve_in_thread()
    try:
        wait_until(app.ready, 30, "the first round of checks did not finish")
        yield Running(app, server, config)
    finally:
        server.shutdown()
        server.server_close()
        app.stop()


def test_post_reload_with_a_new_process_group_serves_its_check(running: Running, tmp_path: Path) -> None:
    assert 'check="process_group:added"' not in running.metrics()
    running.config.write_text(base_config(tmp_path / "demo.db", ADDED_GROUP))

    response = running.reload()

    assert (response.status, response.text) == (200, "reloaded\n")
    wait_until(
        lambda: runs_of(running.metrics(), "process_group:added") >= 1,
        30,
        "the added process group never ran",
    )
    metrics = running.metrics()
    assert sample_value(metrics, "erp_check_success", check="process_group:added") == 1.0
    assert sample_value(metrics, "erp_exporter_config_last_reload_successful") == 1.0
    assert sample_value(metrics, "erp_up", target="demo") == 1.0


def test_a_broken_config_answers_500_with_the_error_and_keeps_the_old_checks(running: Running) -> None:
    running.config.write_text(BROKEN_CONFIG)

    response = running.reload()

    assert response.status == 500
    assert "old config kept" in response.text
    where = rf"{re.escape(str(running.config))}:{BROKEN_LINE}: global\.timeout: \S"
    assert re.search(where, response.text), response.text
    metrics = running.metrics()
    assert sample_value(metrics, "erp_exporter_config_last_reload_successful") == 0.0
    assert sample_value(metrics, "erp_up", target="demo") == 1.0, "the old target is no longer served"
    ticks = runs_of(metrics, "process_group:ticker")
    wait_until(
        lambda: runs_of(running.metrics(), "process_group:ticker") > ticks,
        30,
        "the old checks stopped running after a failed reload",
    )
    state = running.app.store.get(CheckKey("", "process_group:ticker"))
    assert state is not None and state.success

    page = request(running.port, "/").text
    assert "FAILED, running the previous config" in page
    assert f"{running.config}:{BROKEN_LINE}: global.timeout" in page


def test_fixing_the_file_and_reloading_again_succeeds(running: Running, tmp_path: Path) -> None:
    running.config.write_text(BROKEN_CONFIG)
    assert running.reload().status == 500
    assert sample_value(running.metrics(), "erp_exporter_config_last_reload_successful") == 0.0

    running.config.write_text(base_config(tmp_path / "demo.db", ADDED_GROUP))
    response = running.reload()

    assert response.status == 200
    metrics = running.metrics()
    assert sample_value(metrics, "erp_exporter_config_last_reload_successful") == 1.0
    assert 'check="process_group:added"' in metrics
    assert 'last reload: <span class="ok">ok</span>' in request(running.port, "/").text


def test_a_reload_that_removes_a_check_stops_serving_it(running: Running, tmp_path: Path) -> None:
    running.config.write_text(base_config(tmp_path / "demo.db", ADDED_GROUP))
    assert running.reload().status == 200
    assert 'check="process_group:added"' in running.metrics()

    running.config.write_text(base_config(tmp_path / "demo.db"))
    assert running.reload().status == 200
    assert 'check="process_group:added"' not in running.metrics()
    assert 'check="process_group:ticker"' in running.metrics()


def test_a_crash_inside_reload_answers_500_and_keeps_serving(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash() -> bool:
        raise RuntimeError("boom while building")

    monkeypatch.setattr(running.app, "reload", crash)
    response = running.reload()
    assert response.status == 500
    assert "RuntimeError: boom while building" in response.text
    assert request(running.port, "/-/healthy").status == 200


# --- a real `erp-exporter` process: SIGHUP, SIGTERM, SIGINT ------------------------------------------


class ExporterProcess:
    """`erp-exporter` on 127.0.0.1:<ephemeral>, its log in a file; always stopped by `stop()`."""

    def __init__(self, config: Path, log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                [EXPORTER, f"--config.file={config}", "--web.listen-address=127.0.0.1:0"],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        self.port = wait_until(self._listening_port, 30, f"the exporter did not listen: {self.log()}")

    def _listening_port(self) -> int | None:
        if self.process.poll() is not None:
            raise AssertionError(f"the exporter exited with {self.process.returncode}: {self.log()}")
        match = re.search(r"msg=listening .*metrics=http://[^ ]*:(\d+)/metrics", self.log())
        return int(match.group(1)) if match else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        return request(self.port, "/metrics").text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@pytest.fixture
def exporter_process(tmp_path: Path) -> Iterator[Callable[[Path], ExporterProcess]]:
    processes: list[ExporterProcess] = []

    def start(config: Path) -> ExporterProcess:
        process = ExporterProcess(config, tmp_path / f"exporter-{len(processes)}.log")
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


def test_sighup_reloads_a_running_exporter(
    tmp_path: Path, exporter_process: Callable[[Path], ExporterProcess]
) -> None:
    db = make_sqlite(tmp_path / "demo.db")
    config = tmp_path / "erp-exporter.yml"
    config.write_text(base_config(db))
    exporter = exporter_process(config)
    wait_until(lambda: request(exporter.port, "/-/ready").status == 200, 30, "never ready")
    assert 'check="process_group:added"' not in exporter.metrics()

    # A valid change: the new check appears.
    config.write_text(base_config(db, ADDED_GROUP))
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: runs_of(exporter.metrics(), "process_group:added") >= 1,
        30,
        "SIGHUP did not load the new process group",
    )
    assert sample_value(exporter.metrics(), "erp_exporter_config_last_reload_successful") == 1.0

    # A broken file: reported, the old checks keep running.
    config.write_text(BROKEN_CONFIG)
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: sample_value(exporter.metrics(), "erp_exporter_config_last_reload_successful") == 0.0,
        30,
        "a broken config did not set last_reload_successful to 0",
    )
    ticks = runs_of(exporter.metrics(), "process_group:ticker")
    wait_until(
        lambda: runs_of(exporter.metrics(), "process_group:ticker") > ticks,
        30,
        "the running checks stopped after a failed SIGHUP reload",
    )
    assert sample_value(exporter.metrics(), "erp_up", target="demo") == 1.0
    assert f"{config}:{BROKEN_LINE}: global.timeout" in exporter.log()
    assert exporter.process.poll() is None, "a broken config killed the exporter"

    # Fixed again: 1.
    config.write_text(base_config(db))
    exporter.process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: sample_value(exporter.metrics(), "erp_exporter_config_last_reload_successful") == 1.0,
        30,
        "reloading the fixed file did not succeed",
    )
    wait_until(
        lambda: 'check="process_group:added"' not in exporter.metrics(),
        30,
        "the removed process group is still served",
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_exits_0_promptly_and_closes_the_port(
    tmp_path: Path, exporter_process: Callable[[Path], ExporterProcess], signum: signal.Signals
) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text(base_config(make_sqlite(tmp_path / "demo.db")))
    exporter = exporter_process(config)
    wait_until(lambda: request(exporter.port, "/-/ready").status == 200, 30, "never ready")

    exporter.process.send_signal(signum)

    assert exporter.process.wait(timeout=15) == 0, exporter.log()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", exporter.port), timeout=5).close()
    assert "shutting down" in exporter.log()
    assert "Traceback" not in exporter.log()


def test_concurrent_reload_requests_take_turns_and_leave_one_running_config(
    running: Running, tmp_path: Path
) -> None:
    running.config.write_text(base_config(tmp_path / "demo.db", ADDED_GROUP))
    statuses: list[int] = []

    def post() -> None:
        statuses.append(running.reload().status)

    for _ in range(5):
        threads = [threading.Thread(target=post) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert statuses == [200] * 30, f"some concurrent reloads failed: {statuses}"
    runtime = running.app.runtime
    assert runtime is not None
    assert {state.key for state in running.app.store.snapshot()[1]} == set(runtime.metas)
    ticks = runs_of(running.metrics(), "process_group:ticker")
    wait_until(
        lambda: runs_of(running.metrics(), "process_group:ticker") > ticks,
        30,
        "no check runs any more after concurrent reloads",
    )
    wait_until(
        lambda: [t.name for t in threading.enumerate()].count("erp-scheduler") == 1,
        30,
        "more or less than one scheduler thread after concurrent reloads",
    )


def test_concurrent_app_reloads_without_the_http_lock_leave_one_running_config(
    running: Running, tmp_path: Path
) -> None:
    # SIGHUP handlers call App.reload() from their own threads, not through the HTTP server's lock.
    running.config.write_text(base_config(tmp_path / "demo.db", ADDED_GROUP))
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(running.app.reload())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [True] * 8
    runtime = running.app.runtime
    assert runtime is not None
    assert {state.key for state in running.app.store.snapshot()[1]} == set(runtime.metas)
    wait_until(
        lambda: [t.name for t in threading.enumerate()].count("erp-scheduler") == 1,
        30,
        "more or less than one scheduler thread after concurrent reloads",
    )


def test_an_exception_while_building_the_new_runtime_keeps_the_old_one_and_reports_it(
    running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import exporter.app

    before = running.app.runtime

    def broken_build(*args: object, **kwargs: object) -> None:
        raise RuntimeError("driver manager exploded")

    monkeypatch.setattr(exporter.app, "build_runtime", broken_build)
    running.config.write_text(base_config(tmp_path / "demo.db", ADDED_GROUP))
    assert running.app.reload() is False
    ok, _, error = running.app.reload_status()
    assert ok is False
    assert error == "RuntimeError: driver manager exploded"
    assert running.app.runtime is before
    assert sample_value(running.metrics(), "erp_exporter_config_last_reload_successful") == 0.0
