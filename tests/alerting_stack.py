"""Real Prometheus, Alertmanager and exporter processes and a webhook receiver for the alerting tests.

Every process is started by this module as a child and stopped by its own handle (SIGTERM, then SIGKILL),
never by name. Logs go to files in the test's directory and are shown when a process does not get ready.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from alerting_rules import ALERTMANAGER_CONFIG, binary
from servers import free_port

HOST = "127.0.0.1"


def http_get_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback test servers
        return json.load(response)


def http_post(url: str, body: Any = None, timeout: float = 5) -> int:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(  # noqa: S310 - loopback test servers
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback test servers
        status: int = response.status
        return status


def wait_for(probe: Callable[[], Any], timeout: float, message: str, interval: float = 0.05) -> Any:
    """Poll until probe() returns something truthy (exceptions count as not yet); fail after timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except (OSError, ValueError, KeyError) as exc:  # not listening yet, half-written answer
            last_error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} (within {timeout}s; last error: {last_error})")
        time.sleep(interval)


# -- processes --------------------------------------------------------------------------------------------------


class ManagedProcess:
    """A child process with a log file and an HTTP readiness URL."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, ready_url: str, env: dict[str, str] | None = None):
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.ready_url = ready_url
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env)
        try:
            wait_for(self._ready, timeout, f"{self.name} did not get ready")
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}\n--- {self.log.name} ---\n{self.log_tail()}") from None

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n{self.log_tail()}")
        with urllib.request.urlopen(self.ready_url, timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def start_alertmanager(config: Path, workdir: Path) -> Alertmanager:
    port = free_port()
    process = ManagedProcess(
        "alertmanager",
        [binary("prometheus-alertmanager"), f"--config.file={config}", f"--storage.path={workdir / 'am-data'}",
         f"--web.listen-address={HOST}:{port}", "--cluster.listen-address=", "--log.level=debug"],
        workdir / "alertmanager.log",
        f"http://{HOST}:{port}/-/ready",
    )
    process.start()
    return Alertmanager(process, f"http://{HOST}:{port}", config)


def start_prometheus(config: Path, workdir: Path, extra: Sequence[str] = ()) -> Prometheus:
    """Debian's Prometheus on a free loopback port, its data in `workdir`/prom-data; `extra` flags appended."""
    port = free_port()
    process = ManagedProcess(
        "prometheus",
        [binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'prom-data'}",
         f"--web.listen-address={HOST}:{port}",
         # Send firing alerts to Alertmanager again every second, not every minute (toolchain.md: with the
         # default the first alert is dropped while Alertmanager is still being discovered).
         "--rules.alert.resend-delay=1s", *extra],
        workdir / "prometheus.log",
        f"http://{HOST}:{port}/-/ready",
    )
    process.start()
    return Prometheus(process, f"http://{HOST}:{port}")


def start_exporter(config: Path, workdir: Path) -> Exporter:
    port = free_port()
    executable = Path(sys.executable).parent / "erp-exporter"
    process = ManagedProcess(
        "erp-exporter",
        [str(executable), f"--config.file={config}", f"--web.listen-address={HOST}:{port}"],
        workdir / "exporter.log",
        f"http://{HOST}:{port}/metrics",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    process.start()
    return Exporter(process, f"{HOST}:{port}")


@dataclass
class Alertmanager:
    process: ManagedProcess
    url: str
    config: Path

    def alerts(self, alertname: str) -> list[dict[str, Any]]:
        query = urllib.parse.quote(f'alertname="{alertname}"')
        found: list[dict[str, Any]] = http_get_json(f"{self.url}/api/v2/alerts?filter={query}")
        return found

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        assert http_post(f"{self.url}/api/v2/alerts", alerts) == 200

    def reload(self, config_text: str) -> None:
        self.config.write_text(config_text)
        assert http_post(f"{self.url}/-/reload") == 200


@dataclass
class Prometheus:
    process: ManagedProcess
    url: str

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = http_get_json(f"{self.url}/api/v1/query?query={urllib.parse.quote(expr)}")
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        alerts = http_get_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


@dataclass
class Exporter:
    process: ManagedProcess
    address: str


# -- webhook receiver -------------------------------------------------------------------------------------------


@dataclass
class Notification:
    """One webhook POST from Alertmanager (payload version 4) and when it arrived (time.monotonic)."""

    path: str
    payload: dict[str, Any]
    received: float

    @property
    def receiver(self) -> str:
        return str(self.payload["receiver"])

    @property
    def status(self) -> str:
        return str(self.payload["status"])

    @property
    def alertnames(self) -> set[str]:
        return {alert["labels"]["alertname"] for alert in self.payload["alerts"]}


@dataclass
class WebhookReceiver:
    """An HTTP server that records every POST; Alertmanager's receivers point at /<receiver name>."""

    port: int = field(default_factory=free_port)
    notifications: list[Notification] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                notification = Notification(self.path, json.loads(body), time.monotonic())
                with receiver._lock:
                    receiver.notifications.append(notification)
                    receiver._lock.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def received(self, predicate: Callable[[Notification], bool], after: float = 0.0) -> list[Notification]:
        with self._lock:
            return [n for n in self.notifications if n.received >= after and predicate(n)]

    def wait(self, predicate: Callable[[Notification], bool], timeout: float, after: float = 0.0) -> Notification:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for notification in self.notifications:
                    if notification.received >= after and predicate(notification):
                        return notification
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(n.receiver, n.status, sorted(n.alertnames)) for n in self.notifications]
                    raise AssertionError(f"no matching notification within {timeout}s; received: {seen}")
                self._lock.wait(left)


# -- Alertmanager configuration for tests -----------------------------------------------------------------------


def walk_routes(route: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield route
    for child in route.get("routes", []) or []:
        yield from walk_routes(child)


def alertmanager_test_config(webhook: WebhookReceiver, *, maintenance_now: bool = False) -> str:
    """The shipped alertmanager.yml, changed only where a test must: receivers post to the local webhook
    (path /<receiver>), group_wait and group_interval are 1s (the heartbeat repeats every 2s), and with
    maintenance_now the planned-maintenance window covers the whole of today and tomorrow (UTC)."""
    config: dict[str, Any] = copy.deepcopy(yaml.safe_load(ALERTMANAGER_CONFIG.read_text()))
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook.url}/{receiver['name']}"
    for route in walk_routes(config["route"]):
        if route is config["route"] or "group_wait" in route:
            route["group_wait"] = "1s"
        if route is config["route"] or "group_interval" in route:
            route["group_interval"] = "1s"
        if route.get("receiver") == "heartbeat":
            route["repeat_interval"] = "2s"
    if maintenance_now:
        today = time.gmtime()
        days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        window = [days[today.tm_wday], days[(today.tm_wday + 1) % 7]]
        for interval in config["time_intervals"]:
            if interval["name"] == "planned-maintenance":
                interval["time_intervals"] = [{"weekdays": window}]
    text: str = yaml.safe_dump(config, sort_keys=False)
    return text
