"""Synthetic HTTP transactions against a real Tryton (JSON-RPC over HTTP) and small local HTTP(S) servers.

The local servers (``StubServer``) only stand in for what a real ERP does not do on demand: answer 500,
answer slowly, answer garbage, or serve TLS with a certificate made here with ``openssl``. Histogram counts
after k runs are read from the check's own families (exact values); the app tests run the real exporter
(config file, scheduler, exposition) next to a db_response check on a real SQLite database through ODBC,
which must keep succeeding whatever the transaction does.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import RunningApp, running_app
from prometheus_client.parser import text_string_to_metric_families
from servers import BlackholeServer
from tryton import SEED_PASSWORD, TrytonServer, sqlite_execute, sqlite_rows

from exporter.checks.base import CheckError, ErrorReason, RunContext
from exporter.checks.http_transaction import (
    REASONS,
    Credentials,
    HttpRequest,
    HttpScenario,
    HttpTransactionCheck,
    TlsSettings,
    TrytonCall,
    certificate_not_after,
)
from exporter.config.loader import ConfigError, load_config
from exporter.metrics import HistogramValue, MetricFamily

NO_FAILURES = dict.fromkeys(REASONS, 0.0)
PARTIES = TrytonCall("parties", "model.party.party.search_read", ([], 0, 5, None, ["name"], {}))


# --- helpers -------------------------------------------------------------------------------------


class StubServer(ThreadingHTTPServer):
    """A local HTTP(S) server that answers every request with one canned answer, optionally late."""

    daemon_threads = True

    def __init__(
        self,
        status: int = 200,
        body: bytes = b'{"status": "ok", "data": [{"id": 7}]}',
        content_type: str = "application/json",
        delay: float = 0.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.status, self.body, self.content_type, self.delay = status, body, content_type, delay
        self.paths: list[str] = []
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


class _StubHandler(BaseHTTPRequestHandler):
    server: StubServer

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.paths.append(self.path)
        time.sleep(self.server.delay)
        self.send_response(self.server.status)
        self.send_header("Content-Type", self.server.content_type)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def stub_server(**kwargs: object) -> Iterator[StubServer]:
    server = StubServer(**kwargs)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def make_certificate(directory: Path, name: str = "erp.example") -> tuple[Path, Path]:
    """A self-signed certificate (valid 2 days) for `name` and 127.0.0.1, made with openssl."""
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return cert, key


def openssl_not_after(cert: Path) -> float:
    out = subprocess.run(
        ["openssl", "x509", "-enddate", "-noout", "-in", str(cert)], check=True, capture_output=True, text=True
    ).stdout  # notAfter=Nov 27 10:11:12 2026 GMT
    return float(ssl.cert_time_to_seconds(out.strip().removeprefix("notAfter=")))


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def tryton_scenario(server: TrytonServer, *steps: TrytonCall, password: str = SEED_PASSWORD) -> HttpScenario:
    return HttpScenario(
        transaction="sales_lookup",
        base_url=server.url,
        protocol="tryton",
        timeout=20,
        step_timeout=10,
        steps=steps,
        database=server.database,
        credentials=Credentials("alice", password),
    )


def histogram_counts(families: list[MetricFamily]) -> dict[str | None, float]:
    """erp_transaction_duration_seconds _count per step (None: the whole transaction)."""
    family = next(f for f in families if f.name == "erp_transaction_duration_seconds")
    counts: dict[str | None, float] = {}
    for sample in family.samples:
        assert isinstance(sample.value, HistogramValue)
        counts[sample.labels.get("step")] = sample.value.count
    return counts


def failures(families: list[MetricFamily]) -> dict[str, float]:
    family = next(f for f in families if f.name == "erp_transaction_failures_total")
    return {sample.labels["reason"]: float(sample.value) for sample in family.samples}  # type: ignore[arg-type]


def tls_expiry(families: list[MetricFamily]) -> list[tuple[dict[str, str], float]]:
    family = next((f for f in families if f.name == "erp_tls_certificate_expiry_timestamp_seconds"), None)
    return [] if family is None else [(dict(s.labels), float(s.value)) for s in family.samples]  # type: ignore[arg-type]


def run_failing(check: HttpTransactionCheck) -> CheckError:
    with pytest.raises(CheckError) as raised:
        check.run(RunContext(timeout=check.scenario.timeout))
    return raised.value


def exposed(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name` in an exposition, keyed by its exact sorted label set."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def sessions_after(database_file: Path, baseline: int) -> int:
    return int(sqlite_rows(database_file, "SELECT count(*) FROM ir_session WHERE id > ?", (baseline,))[0][0])


def last_session_id(database_file: Path) -> int:
    return int(sqlite_rows(database_file, "SELECT coalesce(max(id), 0) FROM ir_session")[0][0])


def app_config(tmp_path: Path, transactions: str) -> str:
    """A config with a db_response check on a real SQLite database and the given http_transactions."""
    database = tmp_path / "erp.db"
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER)")
    return f"""
targets:
  - name: erp
    driver: SQLite3
    connection: {{database: {database}}}
    checks:
      - {{kind: db_response, interval: 1s, timeout: 1s}}
host: {{enabled: false}}
http_transactions:
{transactions}
"""


def assert_fails_alone(running: RunningApp, name: str, reason: str, check_reason: ErrorReason) -> str:
    """The transaction's first run failed for `reason`, counted once; db_response still succeeds."""
    state = running.wait_for_run("", f"http_transaction:{name}", 0, 20)
    assert (state.success, state.error_reason) == (False, check_reason), state.error_message
    counts = {r: running.value("erp_transaction_failures_total", transaction=name, reason=r) for r in REASONS}
    assert counts == {**NO_FAILURES, reason: 1.0}
    assert running.value("erp_transaction_duration_seconds_count", transaction=name) is None
    probe = running.wait_for_run("erp", "db_response", running.state("erp", "db_response").runs_total, 10)
    assert probe.success is True
    return state.error_message


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [record for record in caplog.records if record.exc_info]
    assert "Traceback" not in caplog.text


# --- Tryton JSON-RPC -----------------------------------------------------------------------------


def test_tryton_login_call_logout_observes_each_step_and_the_total_once_per_run(
    tryton_server: TrytonServer, tryton_sqlite_db: Path
) -> None:
    baseline = last_session_id(tryton_sqlite_db)
    check = HttpTransactionCheck("http_transaction:sales_lookup", tryton_scenario(tryton_server, PARTIES))
    for _ in range(3):
        families = check.run(RunContext(timeout=20))
    assert histogram_counts(families) == {"login": 3.0, "parties": 3.0, "logout": 3.0, None: 3.0}
    duration = next(f for f in families if f.name == "erp_transaction_duration_seconds")
    assert [dict(s.labels) for s in duration.samples] == [
        {"transaction": "sales_lookup", "step": "login", "source": "http"},
        {"transaction": "sales_lookup", "step": "parties", "source": "http"},
        {"transaction": "sales_lookup", "step": "logout", "source": "http"},
        {"transaction": "sales_lookup", "source": "http"},
    ]
    assert failures(families) == NO_FAILURES
    assert tls_expiry(families) == []  # plain http
    # three logins, each logged out again: the ERP keeps no session of the monitor
    assert sessions_after(tryton_sqlite_db, baseline) == 0


def test_tryton_scenario_in_the_app_exposes_step_and_total_series(
    tryton_server: TrytonServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    transactions = f"""
  - name: sales_lookup
    protocol: tryton
    base_url: {tryton_server.url}
    database: {tryton_server.database}
    credentials: {{username: bob, password: {SEED_PASSWORD}}}
    labels: {{environment: test}}
    interval: 60s
    timeout: 20s
    steps:
      - {{name: parties, method: model.party.party.search_read, params: [[], 0, 5, null, [name], {{}}]}}
      - {{name: users, method: model.res.user.search_count, params: [[], {{}}]}}
"""
    with running_app(tmp_path, app_config(tmp_path, transactions)) as running:
        state = running.wait_for_run("", "http_transaction:sales_lookup", 0, 30)
        assert state.success is True, state.error_message
        counts = exposed(running.metrics(), "erp_transaction_duration_seconds_count")
    base = (("environment", "test"), ("source", "http"), ("transaction", "sales_lookup"))
    assert {key: value for key, value in counts.items() if ("transaction", "sales_lookup") in key} == {
        tuple(sorted((*base, ("step", "login")))): 1.0,
        tuple(sorted((*base, ("step", "parties")))): 1.0,
        tuple(sorted((*base, ("step", "users")))): 1.0,
        tuple(sorted((*base, ("step", "logout")))): 1.0,
        base: 1.0,
    }
    assert_no_traceback(caplog)


def test_tryton_json_rpc_error_on_a_call_is_content_and_the_session_is_still_logged_out(
    tryton_server: TrytonServer, tryton_sqlite_db: Path
) -> None:
    baseline = last_session_id(tryton_sqlite_db)
    bad_call = TrytonCall("bad_domain", "model.party.party.search_count", ([["no_such_field", "=", 1]], {}))
    check = HttpTransactionCheck("t", tryton_scenario(tryton_server, PARTIES, bad_call))
    error = run_failing(check)
    assert error.reason is ErrorReason.QUERY
    assert error.message.startswith("step 'bad_domain': JSON-RPC error ")
    families = check.failure_families(error)
    assert failures(families) == {**NO_FAILURES, "content": 1.0}
    assert histogram_counts(families) == {}  # only successful scenarios are observed
    assert sessions_after(tryton_sqlite_db, baseline) == 0


def test_tryton_wrong_password_is_an_auth_failure_without_the_password_anywhere(
    tryton_server: TrytonServer, tryton_sqlite_db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-Secret-Passw0rd-4711"
    monkeypatch.setenv("ERP_HTTP_PASSWORD", wrong)
    transactions = f"""
  - name: dave_login
    protocol: tryton
    base_url: {tryton_server.url}
    database: {tryton_server.database}
    credentials: {{username: dave, password: "${{ERP_HTTP_PASSWORD}}"}}
    interval: 60s
    timeout: 20s
"""
    try:
        with running_app(tmp_path, app_config(tmp_path, transactions)) as running:
            message = assert_fails_alone(running, "dave_login", "auth", ErrorReason.AUTH)
            metrics = running.metrics()
        assert message == "step 'login': the login was refused (HTTP 401)"
        assert wrong not in metrics
        assert wrong not in caplog.text
        assert_no_traceback(caplog)
    finally:  # too many attempts would rate-limit (HTTP 429) later logins of dave
        sqlite_execute(tryton_sqlite_db, "DELETE FROM res_user_login_attempt WHERE login = 'dave'")


def test_tryton_answering_garbage_is_a_content_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with stub_server(body=b"<html>Service temporarily unavailable</html>", content_type="text/html") as server:
        transactions = f"""
  - name: garbage
    protocol: tryton
    base_url: {server.url}
    database: erp
    credentials: {{username: alice, password: x}}
    interval: 60s
    timeout: 5s
"""
        with running_app(tmp_path, app_config(tmp_path, transactions)) as running:
            message = assert_fails_alone(running, "garbage", "content", ErrorReason.QUERY)
        assert server.paths == ["/erp/rpc/"]
    assert message == "step 'login': the answer is not JSON"
    assert_no_traceback(caplog)


def test_erp_api_down_is_a_connect_failure(closed_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    transactions = f"""
  - name: api_down
    protocol: tryton
    base_url: http://127.0.0.1:{closed_port}
    database: erp
    credentials: {{username: alice, password: x}}
    interval: 60s
    timeout: 5s
"""
    with running_app(tmp_path, app_config(tmp_path, transactions)) as running:
        message = assert_fails_alone(running, "api_down", "connect", ErrorReason.CONNECT)
    assert message == "step 'login': connection failed: connection refused"
    assert_no_traceback(caplog)


def test_answering_500_is_a_status_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with stub_server(status=500, body=b"Internal Server Error", content_type="text/plain") as server:
        transactions = f"""
  - name: health
    protocol: http
    base_url: {server.url}
    interval: 60s
    timeout: 5s
    steps:
      - {{name: health, path: /api/health}}
"""
        with running_app(tmp_path, app_config(tmp_path, transactions)) as running:
            message = assert_fails_alone(running, "health", "status", ErrorReason.QUERY)
    assert message == "step 'health': HTTP 500, expected 200"
    assert_no_traceback(caplog)


def test_answering_after_the_timeout_is_a_timeout_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with stub_server(delay=4.0) as server:
        transactions = f"""
  - name: slow
    protocol: http
    base_url: {server.url}
    interval: 60s
    timeout: 1s
    steps:
      - {{name: report, method: POST, path: /api/report, json: {{period: 2026-11}}}}
"""
        with running_app(tmp_path, app_config(tmp_path, transactions)) as running:
            started = time.monotonic()
            message = assert_fails_alone(running, "slow", "timeout", ErrorReason.TIMEOUT)
            assert time.monotonic() - started < 4.0  # not waiting for the answer
    assert message == "step 'report': no answer within 0.9s"
    assert_no_traceback(caplog)


# --- plain HTTP ----------------------------------------------------------------------------------


def test_plain_http_scenario_checks_status_regex_and_json_path(tryton_server: TrytonServer) -> None:
    version = HttpRequest(
        "version",
        method="POST",
        path="/rpc/",
        json_body={"id": 1, "method": "common.server.version", "params": []},
        expect_regex=r'"result": ?"8\.0"',
        expect_json_path="result",
    )
    databases = HttpRequest(
        "databases",
        method="POST",
        path="/rpc/",
        json_body={"id": 2, "method": "common.db.list", "params": []},
        expect_json_path="result.0",
    )
    steps = [version, databases]
    scenario = HttpScenario("erp_api", tryton_server.url, "http", timeout=10, step_timeout=5, steps=steps)
    check = HttpTransactionCheck("http_transaction:erp_api", scenario)
    for _ in range(2):
        families = check.run(RunContext(timeout=10))
    assert histogram_counts(families) == {"version": 2.0, "databases": 2.0, None: 2.0}
    assert failures(families) == NO_FAILURES


def test_plain_http_body_without_the_expected_text_or_json_path_is_a_content_failure() -> None:
    with stub_server() as server:
        regex = HttpRequest("regex", path="/a", expect_regex=r'"status": "ready"')
        path = HttpRequest("path", path="/b", expect_json_path="data.1.id")
        checks = [
            HttpTransactionCheck("t", HttpScenario("t", server.url, "http", timeout=5, step_timeout=5, steps=[step]))
            for step in (regex, path)
        ]
        errors = [run_failing(check) for check in checks]
    assert [(e.reason, e.message) for e in errors] == [
        (ErrorReason.QUERY, "step 'regex': the answer does not match expect_regex"),
        (ErrorReason.QUERY, "step 'path': no value at 'data.1.id' in the answer"),
    ]
    assert [failures(check.failure_families(e))["content"] for check, e in zip(checks, errors, strict=True)] == [1, 1]


# --- TLS -----------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # pytest resets the filters
def test_https_certificate_expiry_is_the_certificates_not_after(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    with stub_server(tls=server_tls(cert, key)) as server:
        scenario = HttpScenario(
            "portal", server.url, "http", timeout=5, step_timeout=5,
            steps=[HttpRequest("home", expect_json_path="data.0.id")], tls=TlsSettings(verify=False),
        )  # fmt: skip
        families = HttpTransactionCheck("t", scenario).run(RunContext(timeout=5))
    assert histogram_counts(families) == {"home": 1.0, None: 1.0}
    assert tls_expiry(families) == [({"transaction": "portal"}, openssl_not_after(cert))]


def test_https_with_an_unknown_ca_is_a_connect_failure_and_still_shows_the_expiry(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    with stub_server(tls=server_tls(cert, key)) as server:
        scenario = HttpScenario("portal", server.url, "http", timeout=5, step_timeout=5, steps=[HttpRequest("home")])
        check = HttpTransactionCheck("t", scenario)
        error = run_failing(check)
    assert error.reason is ErrorReason.CONNECT
    assert error.message.startswith("step 'home': TLS failed: certificate verify failed: self")
    families = check.failure_families(error)
    assert failures(families) == {**NO_FAILURES, "connect": 1.0}
    assert tls_expiry(families) == [({"transaction": "portal"}, openssl_not_after(cert))]


def test_https_verified_against_ca_file_for_server_name(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, name="erp.example")
    with stub_server(tls=server_tls(cert, key)) as server:
        url = server.url.replace("127.0.0.1", "localhost")  # the certificate does not name localhost

        def check(tls: TlsSettings) -> HttpTransactionCheck:
            scenario = HttpScenario("p", url, "http", timeout=5, step_timeout=5, steps=[HttpRequest("home")], tls=tls)
            return HttpTransactionCheck("t", scenario)

        verified = check(TlsSettings(ca_file=str(cert), server_name="erp.example")).run(RunContext(timeout=5))
        mismatch = run_failing(check(TlsSettings(ca_file=str(cert))))
    assert histogram_counts(verified) == {"home": 1.0, None: 1.0}
    assert mismatch.reason is ErrorReason.CONNECT
    assert "certificate verify failed: Hostname mismatch" in mismatch.message


def test_https_server_that_never_completes_the_handshake_is_a_timeout_failure(blackhole: BlackholeServer) -> None:
    scenario = HttpScenario(
        "portal", f"https://127.0.0.1:{blackhole.port}", "http", timeout=2, step_timeout=1, steps=[HttpRequest("home")]
    )
    check = HttpTransactionCheck("t", scenario)
    started = time.monotonic()
    error = run_failing(check)
    assert time.monotonic() - started < 2
    assert (error.reason, error.message) == (
        ErrorReason.TIMEOUT,
        f"TLS handshake with 127.0.0.1:{blackhole.port} took longer than 1s",
    )
    families = check.failure_families(error)
    assert failures(families) == {**NO_FAILURES, "timeout": 1.0}
    assert tls_expiry(families) == []


def test_certificate_not_after_reads_utc_and_generalized_time(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    assert certificate_not_after(der) == openssl_not_after(cert)
    with pytest.raises(ValueError, match="truncated DER"):
        certificate_not_after(der[:40])


# --- configuration -------------------------------------------------------------------------------


def config_issues(tmp_path: Path, text: str) -> list[tuple[int | None, str, str]]:
    path = tmp_path / "erp-exporter.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return [(issue.line, issue.path, issue.message) for issue in raised.value.issues]


def test_http_transaction_keys_are_validated_with_messages_naming_the_key(tmp_path: Path) -> None:
    text = """http_transactions:
  - name: sales
    protocol: tryton
    base_url: https://monitor:pw@erp.example
    database: erp
    credentials: {username: alice, password: Sales-Passw0rd}
  - name: soap
    protocol: soap
    base_url: http://erp.example
  - name: portal
    protocol: http
    base_url: http://erp.example
    steps:
      - {name: home, method: DELETE, expect_regex: "(unclosed"}
"""
    assert config_issues(tmp_path, text) == [
        (4, "http_transactions[0].base_url", "must not contain credentials: use the transaction's credentials key"),
        (8, "http_transactions[1].protocol", "unknown protocol 'soap'; expected one of: tryton, http"),
        (14, "http_transactions[2].steps[0].expect_regex",
         "not a valid regular expression: missing ), unterminated subpattern at position 0"),
        (14, "http_transactions[2].steps[0].method", "input should be 'GET', 'HEAD' or 'POST', got 'DELETE'"),
    ]  # fmt: skip


def test_tryton_steps_that_write_or_replace_login_and_logout_are_refused(tmp_path: Path) -> None:
    text = """http_transactions:
  - name: writes
    protocol: tryton
    base_url: http://erp.example
    database: erp
    credentials: {username: alice, password: Sales-Passw0rd}
    timeout: 10s
    step_timeout: 20s
    tls: {ca_file: ca.pem}
    steps:
      - {name: login, method: model.party.party.search}
      - {name: rename, method: model.party.party.write, params: [[1], {name: x}]}
      - {name: rename, method: common.db.logout}
"""
    (tmp_path / "ca.pem").write_text("")
    assert config_issues(tmp_path, text) == [
        (8, "http_transactions[0].step_timeout",
         "step_timeout 20s is longer than its timeout (10s), which bounds the whole scenario"),
        (9, "http_transactions[0].tls.ca_file", "only applies to https base URLs"),
        (11, "http_transactions[0].steps[0].name",
         "step name 'login' is taken: the exporter adds the login and logout steps itself"),
        (12, "http_transactions[0].steps[1].method",
         "method 'model.party.party.write' is not a reading method; allowed: model.<model>.<method> with method "
         "one of autocomplete, default_get, export_data, export_data_domain, fields_get, fields_view_get, "
         "get_preferences, history_revisions, read, resources, search, search_count, search_read, "
         "view_toolbar_get, or common.db.list, common.server.version"),
        (13, "http_transactions[0].steps[2].method",
         "login and logout are added by the exporter: list only the calls in between"),
        (13, "http_transactions[0].steps[2].name", "duplicate step name 'rename'"),
    ]  # fmt: skip


def test_http_transaction_password_file_is_read_and_masked(tmp_path: Path) -> None:
    (tmp_path / "erp.pass").write_text("S3cret-From-File\n")
    path = tmp_path / "erp-exporter.yml"
    path.write_text(
        """http_transactions:
  - name: sales
    protocol: tryton
    base_url: http://erp.example:8000
    database: erp
    credentials: {username: alice, password_file: erp.pass}
    labels: {system: S3cret-From-File}
"""
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert [(issue.path, issue.message) for issue in raised.value.issues] == [
        ("http_transactions[0].labels.system", "must not contain a password")
    ]
    path.write_text(path.read_text().replace("    labels: {system: S3cret-From-File}\n", ""))
    loaded = load_config(path)
    assert loaded.http_passwords == {"sales": "S3cret-From-File"}
    assert "S3cret-From-File" in loaded.secrets()
