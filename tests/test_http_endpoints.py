"""The HTTP endpoints over real loopback HTTP: /metrics, /probe, /-/healthy, /-/ready, the status page,
routing and method errors, and the listen-address parser.

The exporter core runs for real (App with SQLite targets through ODBC); the server is the real
ExporterHTTPServer on an ephemeral port, or the real `erp-exporter` command in a subprocess.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import bcrypt
import pytest
from servers import BlackholeServer, PostgresServer

from exporter.app import App
from exporter.checks.builtin import default_registry
from exporter.http.server import ExporterHTTPServer, parse_listen_address
from exporter.http.web_config import WebConfig
from exporter.logs import SecretMask

T = TypeVar("T")

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
EXPORTER = str(Path(sys.executable).parent / "erp-exporter")
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
LABEL_XSS = "<script>alert('x')</script>"
PASSWORD_ENV = "ERP_HTTP_TEST_PASSWORD"


# --- helpers ------------------------------------------------------------------------------------------


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
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def request(
    port: int,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    host: str = "127.0.0.1",
) -> Response:
    """One HTTP request on a fresh connection; the body is returned as sent (never decompressed)."""
    connection = http.client.HTTPConnection(host, port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def make_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total REAL)")
        db.execute("INSERT INTO orders (total) VALUES (12.5)")
    return path


def sample_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def sample_value(text: str, name: str, **labels: str) -> float | None:
    for line in sample_lines(text):
        head, _, value = line.rpartition(" ")
        if head.split("{", 1)[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return None


def config_text(demo_db: Path, other_db: Path, extra: str = "") -> str:
    """Two SQLite targets (the second one so /probe's filtering means something) and the host check;
    every check runs once at start and then only every 10 minutes, so results stay put during a test."""
    return f"""\
global:
  interval: 10m
  timeout: 10s
  jitter: 0
targets:
  - name: demo
    driver: SQLite3
    connection: {{database: {demo_db}}}
    username: monitor
    password: ${{{PASSWORD_ENV}}}
    labels: {{environment: "{LABEL_XSS}"}}
    checks:
      - kind: db_response
        interval: 10m
  - name: other
    driver: SQLite3
    connection: {{database: {other_db}}}
    labels: {{environment: test}}
    checks:
      - kind: db_response
        interval: 10m
{extra}"""


@dataclass
class Running:
    app: App
    server: ExporterHTTPServer
    config_path: Path

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def get(self, path: str, **kwargs: object) -> Response:
        return request(self.port, path, **kwargs)  # type: ignore[arg-type]

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_until(self.app.ready, timeout, f"the first round of checks did not finish within {timeout}s")


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    value = f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv(PASSWORD_ENV, value)
    return value


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start App + ExporterHTTPServer on 127.0.0.1:0 for a config text; everything is stopped afterwards."""
    started: list[Running] = []

    def start(text: str, address: tuple[str, int] = ("127.0.0.1", 0), **server_options: float) -> Running:
        path = tmp_path / f"erp-exporter-{len(started)}.yml"
        path.write_text(text)
        app = App(path, default_registry(), SecretMask())
        app.start()
        try:
            server = ExporterHTTPServer(address, app, WebConfig(), tmp_path, **server_options)  # type: ignore[arg-type]
        except BaseException:
            app.stop()
            raise
        server.serve_in_thread()
        running = Running(app, server, path)
        started.append(running)
        return running

    yield start
    for running in started:
        running.server.shutdown()
        running.server.server_close()
        running.app.stop()


@pytest.fixture
def exporter(tmp_path: Path, password: str, start_exporter: Callable[..., Running]) -> Running:
    running: Running = start_exporter(
        config_text(make_sqlite(tmp_path / "demo.db"), make_sqlite(tmp_path / "other.db"))
    )
    running.wait_ready()
    return running


# --- /metrics -----------------------------------------------------------------------------------------


def test_metrics_serves_the_text_format_with_its_content_type(exporter: Running) -> None:
    response = exporter.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == TEXT_FORMAT
    assert response.headers.get("Content-Encoding") is None
    assert int(response.headers["Content-Length"]) == len(response.body)
    assert sample_value(response.text, "erp_up", target="demo") == 1.0
    assert sample_value(response.text, "erp_up", target="other") == 1.0
    assert sample_value(response.text, "erp_exporter_config_last_reload_successful") == 1.0


def test_metrics_are_gzip_compressed_when_the_client_accepts_gzip(exporter: Running) -> None:
    def consistent() -> tuple[Response, bytes] | None:
        before = exporter.get("/metrics").body
        zipped = exporter.get("/metrics", headers={"Accept-Encoding": "gzip"})
        after = exporter.get("/metrics").body
        return (zipped, before) if before == after else None  # no re-render in between

    zipped, plain = wait_until(consistent, 30, "the exposition kept changing between three scrapes")
    assert zipped.status == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Content-Type"] == TEXT_FORMAT
    assert "Accept-Encoding" in zipped.headers.get("Vary", "")
    assert int(zipped.headers["Content-Length"]) == len(zipped.body)
    assert gzip.decompress(zipped.body) == plain


@pytest.mark.parametrize("accept", ["gzip;q=0", "identity", "br", "gzip;q=0, *;q=1"])
def test_metrics_are_not_compressed_when_gzip_is_not_acceptable(exporter: Running, accept: str) -> None:
    response = exporter.get("/metrics", headers={"Accept-Encoding": accept})
    assert response.status == 200
    assert response.headers.get("Content-Encoding") is None, accept
    assert response.body.startswith(b"# HELP "), accept


@pytest.mark.parametrize("accept", ["gzip", "deflate, gzip", "GZIP;q=0.5", "x-gzip", "*"])
def test_metrics_are_compressed_for_every_spelling_that_accepts_gzip(exporter: Running, accept: str) -> None:
    response = exporter.get("/metrics", headers={"Accept-Encoding": accept})
    assert response.headers.get("Content-Encoding") == "gzip", accept
    assert gzip.decompress(response.body).startswith(b"# HELP "), accept


def test_metrics_pass_promtool_check_metrics(exporter: Running) -> None:
    for path in ("/metrics", "/probe?target=demo"):
        body = exporter.get(path).body
        result = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
        )
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), path


def test_repeated_scrapes_without_result_changes_are_identical_and_not_re_rendered(exporter: Running) -> None:
    app = exporter.app
    # The background render loop re-renders on every store change and could race the scrapes below;
    # stop it (and let it exit) so every render counted here is one a scrape caused.
    app._render_loop.stop()
    app.store.touch()  # wakes the loop so it sees the stop
    app._render_loop._thread.join(30)
    assert not app._render_loop._thread.is_alive()

    def quiet_scrapes() -> tuple[bytes, bytes, int, int] | None:
        app.store.touch()  # out of date now: the next scrape renders, and its rendering is fresh
        version = app.store.version
        exporter.get("/metrics")
        renders = app.exposition.renders
        first = exporter.get("/metrics").body
        second = exporter.get("/metrics").body
        if app.store.version != version:
            return None  # a check result landed in between: try again
        return first, second, renders, app.exposition.renders

    first, second, renders_before, renders_after = wait_until(
        quiet_scrapes, 30, "results kept changing; could not get two scrapes without a change"
    )
    assert first == second
    assert renders_after == renders_before, "a scrape without any result change re-rendered"
    assert sample_value(second.decode(), "erp_exporter_renders_total") == renders_after


def test_head_on_metrics_sends_the_headers_without_a_body(exporter: Running) -> None:
    def consistent() -> tuple[Response, bytes] | None:
        before = exporter.get("/metrics").body
        head = exporter.get("/metrics", method="HEAD")
        return (head, before) if exporter.get("/metrics").body == before else None

    head, body = wait_until(consistent, 30, "the exposition kept changing between three scrapes")
    assert head.status == 200
    assert head.body == b""
    assert head.headers["Content-Type"] == TEXT_FORMAT
    assert int(head.headers["Content-Length"]) == len(body)


# --- /probe -------------------------------------------------------------------------------------------


def test_probe_returns_only_the_series_of_that_target(exporter: Running) -> None:
    everything = exporter.get("/metrics").text
    assert 'target="other"' in everything
    assert "erp_host_" in everything or 'check="host"' in everything  # host series exist in /metrics

    response = exporter.get("/probe?target=demo")
    assert response.status == 200
    assert response.headers["Content-Type"] == TEXT_FORMAT
    lines = sample_lines(response.text)
    assert lines, "the probe returned no series"
    assert sample_value(response.text, "erp_up", target="demo") == 1.0
    without_target = [line for line in lines if 'target="demo"' not in line]
    assert without_target == [], 'series without target="demo" in /probe'
    assert all(re.findall(r'\btarget="([^"]*)"', line) == ["demo"] for line in lines)
    assert 'check="host"' not in response.text
    assert "erp_exporter_" not in response.text
    assert "process_" not in response.text


def test_probe_of_an_unknown_target_is_a_bad_request_naming_it(exporter: Running) -> None:
    response = exporter.get("/probe?target=nope")
    assert response.status == 400
    assert "nope" in response.text
    assert "unknown target" in response.text


@pytest.mark.parametrize("query", ["", "?", "?target=", "?other=demo", "?target=demo&target=other"])
def test_probe_needs_exactly_one_target_parameter(exporter: Running, query: str) -> None:
    response = exporter.get(f"/probe{query}")
    assert response.status == 400, query
    assert "target" in response.text


def test_probe_refuses_a_connection_string_without_echoing_it_or_connecting(
    exporter: Running, blackhole: BlackholeServer, password: str
) -> None:
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    connection_strings = [
        "DRIVER={SQLite3};Database=/tmp/x",
        f"DRIVER={{PostgreSQL Unicode}};SERVER=127.0.0.1;PORT={blackhole.port};UID=sa;PWD={secret}",
        f"Server=127.0.0.1,{blackhole.port};Uid=sa;Pwd={secret}",
    ]
    for connection_string in connection_strings:
        response = exporter.get("/probe?target=" + quote(connection_string, safe=""))
        assert response.status == 400, connection_string
        assert "connection strings are never accepted" in response.text
        fragments = ("DRIVER", "SQLite3", "/tmp/x", "Database", "PostgreSQL", secret, str(blackhole.port))
        for fragment in fragments:
            assert fragment not in response.text, f"the 400 echoes {fragment!r}"
    # The exact URL of the requirement, byte for byte.
    response = exporter.get("/probe?target=DRIVER%3D%7BSQLite3%7D%3BDatabase%3D%2Ftmp%2Fx")
    assert response.status == 400
    assert "/tmp/x" not in response.text and "SQLite3" not in response.text
    assert blackhole.connections_accepted == 0, "a connection string from a URL was connected to"
    assert exporter.app.target_names() == ["demo", "other"]


# --- /-/healthy and /-/ready --------------------------------------------------------------------------


def test_healthy_answers_200(exporter: Running) -> None:
    response = exporter.get("/-/healthy")
    assert (response.status, response.text) == (200, "Healthy\n")


def test_ready_is_503_until_the_first_round_of_checks_ends_then_200(
    tmp_path: Path, start_exporter: Callable[..., Running], blackhole: BlackholeServer
) -> None:
    # A PostgreSQL target on a server that accepts and never answers: its first round ends only when
    # the login timeout fires.
    config = f"""\
global: {{interval: 10m, timeout: 15s, jitter: 0}}
host: {{enabled: false}}
targets:
  - name: fast
    driver: SQLite3
    connection: {{database: {make_sqlite(tmp_path / "fast.db")}}}
  - name: slow
    driver: PostgreSQL Unicode
    connection: {{server: 127.0.0.1, port: {blackhole.port}, database: erp}}
    username: monitor
    connect_timeout: 4s
"""
    running = start_exporter(config)
    response = running.get("/-/ready")
    assert response.status == 503, "ready before the blackholed target's first check could have ended"
    assert "first round" in response.text
    assert running.get("/-/healthy").status == 200  # healthy all along
    wait_until(lambda: blackhole.connections_accepted >= 1, 15, "the slow target was never connected to")
    wait_until(lambda: running.get("/-/ready").status == 200, 30, "/-/ready never turned 200")
    assert running.get("/-/ready").text == "Ready\n"
    metrics = running.get("/metrics").text
    assert sample_value(metrics, "erp_up", target="slow") == 0.0
    assert sample_value(metrics, "erp_up", target="fast") == 1.0


# --- the status page ----------------------------------------------------------------------------------


def test_status_page_lists_targets_and_checks_and_escapes_everything(exporter: Running) -> None:
    response = exporter.get("/")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = response.text
    assert page.startswith("<!DOCTYPE html>")
    for name in ("demo", "other", "db_response", "privileges", "host"):
        assert f"<td>{name}</td>" in page, name
    assert "<script" not in page, "an unescaped label value reached the page"
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "environment=test" in page


def test_status_page_masks_the_password_in_the_connection_string(exporter: Running, password: str) -> None:
    page = exporter.get("/").text
    assert password not in page
    assert "UID=monitor;PWD=&lt;secret&gt;" in page
    assert "DRIVER=SQLite3" in page


def test_the_password_appears_in_no_response(exporter: Running, password: str) -> None:
    for path in ("/", "/metrics", "/probe?target=demo", "/-/ready", "/-/healthy", "/probe?target=nope"):
        for headers in ({}, {"Accept-Encoding": "gzip"}):
            response = exporter.get(path, headers=headers)
            body = response.body
            if response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            assert password.encode() not in body, path
            assert password not in str(response.headers), path


def secrets_config(demo_db: Path, other_db: Path, postgres_port: int, config_secret: str, label: str = "test") -> str:
    """Three ways to give a password: an environment variable, a file, the config itself (the last one is
    wrong for the PostgreSQL login, so every scrape cycle has a failed login), and an audit to run."""
    return f"""\
global: {{interval: 10m, timeout: 10s, jitter: 0}}
host: {{enabled: false}}
targets:
  - name: demo
    driver: SQLite3
    connection: {{database: {demo_db}}}
    username: monitor
    password: ${{{PASSWORD_ENV}}}
    labels: {{environment: "{label}"}}
    checks:
      - kind: db_response
      - kind: audits
        audits:
          - {{name: big_orders, description: Orders above 10., category: data_quality, owner: sales,
              support_line: 1, severity: warning, warning: 0, critical: 10,
              sql: "SELECT CAST(id AS TEXT) AS key FROM orders WHERE total > 10"}}
  - name: other
    driver: SQLite3
    connection: {{database: {other_db}}}
    username: monitor
    password_file: other.pw
    checks:
      - kind: db_response
  - name: pg
    driver: PostgreSQL Unicode
    connection: {{server: 127.0.0.1, port: {postgres_port}, database: appdb}}
    username: exporter
    password: "{config_secret}"
    connect_timeout: 2s
    checks:
      - kind: db_response
"""


def test_the_passwords_appear_nowhere_in_commands_pages_logs_failed_logins_or_reloads(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """serve at debug level, once, audit, check-config, the status page, /metrics, /probe (a pasted
    connection string too), a failed database login, a failed HTTP login and reloads by SIGHUP and by
    /-/reload (one of them refused because a label holds a password): no password in any output."""
    env_secret, file_secret, config_secret = (f"{kind}-{uuid.uuid4().hex}" for kind in ("env", "file", "conf"))
    pasted_secret = f"pasted-{uuid.uuid4().hex}"  # not in the config, so the log mask does not know it
    web_password = f"web-{uuid.uuid4().hex}"
    secrets = (env_secret, file_secret, config_secret, pasted_secret)
    (tmp_path / "other.pw").write_text(file_secret + "\n")
    demo, other = make_sqlite(tmp_path / "demo.db"), make_sqlite(tmp_path / "other.db")
    config = tmp_path / "erp-exporter.yml"
    config.write_text(secrets_config(demo, other, postgres.port, config_secret))
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(web_password.encode(), bcrypt.gensalt(rounds=4)).decode()
    web.write_text(f"basic_auth_users:\n  admin: {hashed}\n")
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{web_password}".encode()).decode()}
    env = {**os.environ, PASSWORD_ENV: env_secret}
    outputs: dict[str, bytes] = {}

    def command(*args: str) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run([EXPORTER, *args, f"--config.file={config}"], cwd=tmp_path, env=env,
                              capture_output=True, timeout=120, check=False)
        outputs[f"{args[0]} stdout"], outputs[f"{args[0]} stderr"] = done.stdout, done.stderr
        return done

    assert command("check-config").returncode == 0
    once = command("once", "--show-metrics", "--log.level=debug")
    assert b"auth" in once.stdout, "the failed database login did not happen: the test would prove nothing"
    assert command("audit", "big_orders", "--log.level=debug").returncode == 0
    assert b"1" in outputs["audit stdout"]

    log_path = tmp_path / "exporter.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [EXPORTER, f"--config.file={config}", f"--web.config.file={web}",
             "--web.listen-address=127.0.0.1:0", "--log.level=debug"],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )
    try:
        port = wait_until(lambda: _listening_port(log_path), 30, "the exporter did not start listening")
        wait_until(lambda: request(port, "/-/ready", headers=auth).status == 200, 30, "the exporter never got ready")
        wait_until(lambda: b"auth" in request(port, "/", headers=auth).body, 30, "no failed login on the page")
        for path in ("/", "/metrics", "/probe?target=pg", "/probe?target=demo"):
            outputs[path] = request(port, path, headers=auth).body
        for pwd in (*secrets, web_password):
            pasted = quote(f"DRIVER={{SQLite3}};Database=/tmp/x;UID=monitor;PWD={pwd}", safe="")
            assert request(port, f"/probe?target={pasted}", headers=auth).status == 400
            assert request(port, f"/nowhere?password={pwd}", headers=auth).status == 404
            assert request(port, f"/metrics?x={pwd}", method="POST", body=b"", headers=auth).status == 405
            wrong = {"Authorization": "Basic " + base64.b64encode(f"admin:{pwd}x".encode()).decode()}
            assert request(port, "/metrics", headers=wrong).status == 401  # a failed HTTP login
        reloads = log_path.read_text().count("msg=\"config reloaded\"")
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: log_path.read_text().count("msg=\"config reloaded\"") > reloads, 30, "SIGHUP did not reload")
        # a reload the exporter refuses: the environment variable's password put in a label
        config.write_text(secrets_config(demo, other, postgres.port, config_secret, label=f"${{{PASSWORD_ENV}}}"))
        refused = request(port, "/-/reload", method="POST", body=b"", headers=auth)
        assert refused.status == 500 and b"must not contain a password" in refused.body
        outputs["refused reload"] = refused.body
        outputs["/ after refused reload"] = request(port, "/", headers=auth).body
        assert b"must not contain a password" in outputs["/ after refused reload"]
        outputs["/metrics gzip"] = gzip.decompress(
            request(port, "/metrics", headers={**auth, "Accept-Encoding": "gzip"}).body
        )
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    outputs["serve log"] = log_path.read_bytes()
    log = outputs["serve log"].decode()
    assert "http request" in log, "the debug log has no request lines: the test would prove nothing"
    assert "/probe" in log
    assert b"PWD=&lt;secret&gt;" in outputs["/"]
    for name, output in outputs.items():
        for secret in (*secrets, web_password):
            assert secret.encode() not in output, f"a password is in: {name}"


def _listening_port(log_path: Path) -> int | None:
    match = re.search(r"msg=listening .*metrics=https?://[^ ]*:(\d+)/metrics", log_path.read_text())
    return int(match.group(1)) if match else None


# --- routing and methods ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/metrics/", "/-/", "/index.html", "/probe/demo", "/metrics.txt"])
def test_an_unknown_path_is_404(exporter: Running, path: str) -> None:
    assert exporter.get(path).status == 404


@pytest.mark.parametrize("path", ["/metrics", "/probe?target=demo", "/-/healthy", "/-/ready", "/"])
def test_post_to_anything_but_reload_is_405_with_allow(exporter: Running, path: str) -> None:
    response = exporter.get(path, method="POST", body=b"")
    assert response.status == 405, path
    assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405(exporter: Running, method: str) -> None:
    response = exporter.get("/metrics", method=method)
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_reload_only_accepts_post(exporter: Running, method: str) -> None:
    response = exporter.get("/-/reload", method=method)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"


def test_post_to_an_unknown_path_is_404(exporter: Running) -> None:
    assert exporter.get("/nope", method="POST", body=b"").status == 404


def test_a_request_body_does_not_poison_the_kept_alive_connection(exporter: Running) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=15)
    try:
        connection.request("POST", "/metrics", body=b"x" * 5000)
        first = connection.getresponse()
        first.read()
        assert first.status == 405
        connection.request("GET", "/-/healthy")
        second = connection.getresponse()
        assert (second.status, second.read()) == (200, b"Healthy\n")
    finally:
        connection.close()


def test_an_endpoint_that_fails_answers_500_and_the_server_keeps_serving(
    exporter: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> list[str]:
        raise RuntimeError("lookup exploded")

    monkeypatch.setattr(exporter.app, "target_names", broken)
    response = exporter.get("/probe?target=demo")
    assert response.status == 500
    assert "exploded" not in response.text
    assert exporter.get("/-/healthy").status == 200


# --- listen addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":9861", ("", 9861)),
        ("127.0.0.1:9861", ("127.0.0.1", 9861)),
        ("[::1]:9861", ("::1", 9861)),
        ("[::]:80", ("::", 80)),
        ("localhost:0", ("localhost", 0)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("erp-host.example.com:9861", ("erp-host.example.com", 9861)),
    ],
)
def test_parse_listen_address_accepts(address: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        "9861",
        "",
        ":",
        "host:",
        ":65536",
        ":99999",
        ":-1",
        ":port",
        ":٣",
        ":9861 ",
        "::1:9861",
        "[::1]",
        "[::1:9861",
        "::1]:9861",
        "[127.0.0.1]:9861",
        "a:b:9861",
        "[]:9861",
        "host name:9861",
    ],
)
def test_parse_listen_address_refuses(address: str) -> None:
    with pytest.raises(ValueError, match="invalid listen address"):
        parse_listen_address(address)


def test_an_empty_host_listens_on_ipv4_and_on_ipv6_where_the_system_has_both(
    tmp_path: Path, password: str, start_exporter: Callable[..., Running]
) -> None:
    config = config_text(make_sqlite(tmp_path / "demo.db"), make_sqlite(tmp_path / "other.db"))
    running = start_exporter(config, address=("", 0))
    assert request(running.port, "/-/healthy", host="127.0.0.1").status == 200
    if socket.has_dualstack_ipv6():
        assert request(running.port, "/-/healthy", host="::1").status == 200


def test_a_bracketed_ipv6_address_is_served(
    tmp_path: Path, password: str, start_exporter: Callable[..., Running]
) -> None:
    config = config_text(make_sqlite(tmp_path / "demo.db"), make_sqlite(tmp_path / "other.db"))
    host, port = parse_listen_address("[::1]:0")
    running = start_exporter(config, address=(host, port))
    assert request(running.port, "/-/healthy", host="::1").status == 200


# --- hostile clients ----------------------------------------------------------------------------------


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection and read the whole answer (until the server closes)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        with contextlib.suppress(OSError):  # a server that refuses early may close before all was sent
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    assert chunks, "no answer at all"
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def process_rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("nope", id="unknown"),
        pytest.param("d" * 5000, id="overlong"),
        pytest.param("../../etc/passwd", id="path"),
        pytest.param("<script>alert(1)</script>", id="markup"),
        pytest.param("demo\r\nX-Injected: 1", id="header-injection"),
        pytest.param("demo\x00", id="nul"),
        pytest.param("demo' OR '1'='1", id="sql"),
        pytest.param("démo", id="non-ascii"),
        pytest.param("%ff%fe", id="invalid-utf8"),
    ],
)
def test_probe_of_an_unknown_or_hostile_target_name_is_a_clear_400_that_echoes_nothing_hostile(
    exporter: Running, name: str
) -> None:
    response = exporter.get(f"/probe?target={quote(name, safe='%') if name != '%ff%fe' else name}")
    assert response.status == 400
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text in (
        "unknown target 'nope': not in the configuration\n",
        "unknown target of 5000 characters: not in the configuration\n",
        "'target' must be the name of a configured target; connection strings are never accepted\n",
    )
    assert "X-Injected" not in response.headers


def test_an_overlong_request_line_is_414_and_oversized_or_too_many_headers_are_431(exporter: Running) -> None:
    assert status_of(raw_exchange(exporter.port, b"GET /probe?target=" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")) == 414
    huge_header = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n"
    assert status_of(raw_exchange(exporter.port, huge_header)) == 431
    many = b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n"
    assert status_of(raw_exchange(exporter.port, many)) == 431
    assert exporter.get("/-/healthy").status == 200


def connection_threads() -> int:
    """Threads serving HTTP connections in this process (the exporter runs in it): counting only these,
    not every thread, keeps check workers and other tests' threads that come and go out of the figure."""
    return sum(1 for thread in threading.enumerate() if "process_request_thread" in thread.name)


def test_a_request_that_trickles_its_headers_is_cut_off_and_its_thread_ends(
    tmp_path: Path, password: str, start_exporter: Callable[..., Running]
) -> None:
    running = start_exporter(config_text(make_sqlite(tmp_path / "demo.db"), make_sqlite(tmp_path / "other.db")),
                             request_header_timeout=1.0)
    running.wait_ready()
    threads_before = connection_threads()
    with socket.create_connection(("127.0.0.1", running.port), timeout=15) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        sent = 0
        closed = False
        while sent < 200 and not closed:  # 200 bytes, one every 0.1 s: far longer than the header timeout
            try:
                sock.sendall(b"X")
                sent += 1
                time.sleep(0.1)
                sock.setblocking(False)
                closed = sock.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            finally:
                sock.setblocking(True)
    assert closed, "the server kept a connection whose headers never ended"
    assert sent < 200
    wait_until(lambda: connection_threads() <= threads_before, 15, "the slow request's thread did not end")
    assert running.get("/-/healthy").status == 200


def test_200_idle_and_slow_connections_leave_threads_and_memory_bounded_and_other_scrapes_served(
    exporter: Running,
) -> None:
    threads_before, rss_before = connection_threads(), process_rss_bytes()
    connections = [socket.create_connection(("127.0.0.1", exporter.port), timeout=15) for _ in range(200)]
    try:
        for index, sock in enumerate(connections):
            if index % 2:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers begun, never ended
        wait_until(lambda: connection_threads() >= threads_before + 150, 15, "the connections were not served")
        scrape = exporter.get("/metrics")  # another client, meanwhile
        assert scrape.status == 200
        assert sample_value(scrape.text, "erp_up", target="demo") == 1.0
        assert connection_threads() <= threads_before + exporter.server.max_connections
        assert process_rss_bytes() - rss_before < 64 * 2**20
    finally:
        for sock in connections:
            sock.close()
    wait_until(lambda: connection_threads() <= threads_before + 1, 30, "connection threads outlived their clients")


def test_connections_beyond_the_limit_get_503_without_a_thread_and_the_limit_frees_up(
    tmp_path: Path, password: str, start_exporter: Callable[..., Running]
) -> None:
    running = start_exporter(config_text(make_sqlite(tmp_path / "demo.db"), make_sqlite(tmp_path / "other.db")),
                             max_connections=20)
    running.wait_ready()
    threads_before = connection_threads()
    idle = [socket.create_connection(("127.0.0.1", running.port), timeout=15) for _ in range(20)]
    try:
        wait_until(lambda: connection_threads() >= threads_before + 20, 15, "the idle connections were not served")
        answers = [raw_exchange(running.port, b"GET /metrics HTTP/1.1\r\n\r\n") for _ in range(30)]
        assert {status_of(answer) for answer in answers} == {503}
        assert answers[0].endswith(b"too many connections; try again later\n")
        assert connection_threads() <= threads_before + 20
    finally:
        for sock in idle:
            sock.close()
    wait_until(lambda: running.get("/metrics").status == 200, 15, "the limit did not free up")
