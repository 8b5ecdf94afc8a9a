"""The web config (exporter-toolkit format): TLS and basic auth with bcrypt hashes.

Certificates and hashes are made at test time in temporary directories (openssl and the bcrypt
module); `promtool check web-config` is the reference for what is valid, and the exporter must agree
with it both ways.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import bcrypt
import pytest
import requests

from exporter.app import App
from exporter.checks.builtin import default_registry
from exporter.http.server import ExporterHTTPServer
from exporter.http.web_config import BasicAuth, WebConfig, load_web_config
from exporter.logs import SecretMask
from exporter.source.yaml_source import SourceError

T = TypeVar("T")

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
EXPORTER = str(Path(sys.executable).parent / "erp-exporter")
USER = "prometheus"
PASSWORD = "correct horse battery staple"


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


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def promtool_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, "check", "web-config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


@dataclass(frozen=True)
class Material:
    """A self-signed certificate for localhost/127.0.0.1 with its key, and a bcrypt hash, in one dir."""

    directory: Path
    cert: Path
    key: Path
    hashed: str


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    directory = tmp_path_factory.mktemp("web")
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6)).decode()
    return Material(directory, cert, key, hashed)


def write_web_config(material: Material, name: str, text: str) -> Path:
    path = material.directory / name
    path.write_text(text)
    return path


def good_web_config(material: Material) -> Path:
    # Relative paths: resolved against the web config's directory, as exporter-toolkit does.
    return write_web_config(
        material,
        "web.yml",
        f"""\
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
http_server_config:
  headers:
    X-Frame-Options: deny
    X-Content-Type-Options: nosniff
basic_auth_users:
  {USER}: '{material.hashed}'
""",
    )


def exporter_config(directory: Path) -> Path:
    db = directory / "demo.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY)")
    config = directory / "erp-exporter.yml"
    config.write_text(f"""\
global: {{interval: 10m, timeout: 5s, jitter: 0}}
host: {{enabled: false}}
targets:
  - name: demo
    driver: SQLite3
    connection: {{database: {db}}}
""")
    return config


# --- promtool and the exporter agree on what is valid -------------------------------------------------


def test_the_web_config_passes_promtool_and_loads(material: Material) -> None:
    path = good_web_config(material)
    result = promtool_check(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
    config = load_web_config(path)
    assert config.tls_server_config is not None
    assert config.basic_auth_users == {USER: material.hashed}


# (name, YAML, line of the offending key, key path, message fragment)
REFUSED = [
    (
        "clear_text_password",
        "basic_auth_users:\n  admin: s3cret\n",
        2,
        "basic_auth_users.admin",
        "bcrypt hash",
    ),
    (
        "truncated_hash",
        "basic_auth_users:\n  admin: '$2b$10$abc'\n",
        2,
        "basic_auth_users.admin",
        "bcrypt hash",
    ),
    (
        "missing_cert_file",
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: tls.key\n",
        2,
        "tls_server_config.cert_file",
        "file not found: missing.crt",
    ),
    (
        "missing_key_file",
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: nowhere.key\n",
        3,
        "tls_server_config.key_file",
        "file not found: nowhere.key",
    ),
    (
        "no_key_file",
        "\ntls_server_config:\n  cert_file: tls.crt\n",
        2,
        "tls_server_config.key_file",
        "required",
    ),
    (
        "swapped_cert_and_key",
        "tls_server_config:\n  cert_file: tls.key\n  key_file: tls.crt\n",
        2,
        "tls_server_config.cert_file",
        "cannot load",
    ),
    ("unknown_key", "basic_auth_users: {}\nbasic_auth_user: {}\n", 2, "basic_auth_user", "unknown key"),
    (
        "unknown_tls_version",
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS14\n",
        4,
        "tls_server_config.min_version",
        "TLS13",
    ),
    (
        "header_not_allowed",
        "http_server_config:\n  headers:\n    X-Powered-By: erp\n",
        3,
        "http_server_config.headers.X-Powered-By",
        "cannot be configured",
    ),
    (
        "bad_header_value",
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        3,
        "http_server_config.headers.X-Frame-Options",
        "deny",
    ),
    (
        "client_ca_without_client_auth",
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_ca_file: tls.crt\n",
        4,
        "tls_server_config.client_ca_file",
        "client_auth_type",
    ),
]


@pytest.mark.parametrize(("name", "text", "line", "key", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_bad_web_config_is_refused_by_promtool_and_by_the_exporter(
    material: Material, name: str, text: str, line: int, key: str, message: str
) -> None:
    path = write_web_config(material, f"{name}.yml", text)
    expected = re.compile(rf"^{re.escape(str(path))}:{line}: {re.escape(key)}: .*{re.escape(message)}", re.M)

    result = promtool_check(path)
    assert result.returncode != 0, f"promtool accepted {name}: {result.stdout}{result.stderr}"

    with pytest.raises(SourceError) as refused:
        load_web_config(path)
    assert expected.search(str(refused.value)), str(refused.value)


@pytest.mark.parametrize("name", ["clear_text_password", "missing_cert_file"])
def test_the_exporter_command_exits_2_on_a_refused_web_config(material: Material, name: str) -> None:
    text, line, key = next((r[1], r[2], r[3]) for r in REFUSED if r[0] == name)
    path = write_web_config(material, f"cli_{name}.yml", text)
    config = exporter_config(material.directory)
    for args in (
        [f"--config.file={config}", f"--web.config.file={path}", "--web.listen-address=127.0.0.1:0"],
        ["check-config", f"--config.file={config}", f"--web.config.file={path}"],
    ):
        result = subprocess.run([EXPORTER, *args], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert f"{path}:{line}: {key}: " in result.stderr, result.stderr
    assert promtool_check(path).returncode != 0


def test_a_client_ca_with_client_auth_is_accepted_by_both(material: Material) -> None:
    path = write_web_config(
        material,
        "mtls.yml",
        """\
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: tls.crt
""",
    )
    assert promtool_check(path).returncode == 0
    load_web_config(path)


# --- the real exporter over HTTPS with basic auth -----------------------------------------------------


@dataclass
class HttpsExporter:
    port: int
    material: Material
    log_path: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def get(self, path: str, auth: tuple[str, str] | None = None) -> requests.Response:
        return requests.get(self.base + path, auth=auth, verify=str(self.material.cert), timeout=15)


@pytest.fixture(scope="module")
def https_exporter(material: Material) -> Iterator[HttpsExporter]:
    """`erp-exporter --web.config.file=web.yml` on an ephemeral port; stopped by SIGTERM afterwards."""
    web = good_web_config(material)
    config = exporter_config(material.directory)
    log_path = material.directory / "https-exporter.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                EXPORTER,
                f"--config.file={config}",
                f"--web.config.file={web}",
                "--web.listen-address=127.0.0.1:0",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )

    def port() -> int | None:
        if process.poll() is not None:
            raise AssertionError(f"the exporter exited with {process.returncode}: {log_path.read_text()}")
        match = re.search(r"msg=listening .*metrics=https://[^ ]*:(\d+)/metrics", log_path.read_text())
        return int(match.group(1)) if match else None

    try:
        yield HttpsExporter(wait_until(port, 30, "the exporter did not listen"), material, log_path)
    finally:
        process.terminate()
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def test_https_with_the_right_credentials_serves_metrics(https_exporter: HttpsExporter) -> None:
    response = https_exporter.get("/metrics", auth=(USER, PASSWORD))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "erp_exporter_build_info" in response.text
    assert response.headers["X-Frame-Options"] == "deny"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_served_certificate_is_the_configured_one(https_exporter: HttpsExporter) -> None:
    context = ssl.create_default_context(cafile=str(https_exporter.material.cert))
    with (
        socket.create_connection(("127.0.0.1", https_exporter.port), timeout=15) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        served = tls.getpeercert(binary_form=True)
    configured = ssl.PEM_cert_to_DER_cert(https_exporter.material.cert.read_text())
    assert served == configured


@pytest.mark.parametrize(
    "auth",
    [None, (USER, "wrong password"), ("someone", PASSWORD), (USER, ""), (USER.upper(), PASSWORD)],
    ids=["none", "wrong_password", "unknown_user", "empty_password", "wrong_case_user"],
)
@pytest.mark.parametrize("path", ["/metrics", "/", "/-/healthy", "/probe?target=demo"])
def test_https_without_valid_credentials_is_401_with_a_challenge(
    https_exporter: HttpsExporter, auth: tuple[str, str] | None, path: str
) -> None:
    response = https_exporter.get(path, auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert "erp_" not in response.text


def test_reload_needs_credentials_too(https_exporter: HttpsExporter) -> None:
    response = requests.post(
        https_exporter.base + "/-/reload", verify=str(https_exporter.material.cert), timeout=15
    )
    assert response.status_code == 401


def test_plain_http_on_the_https_port_gets_no_metrics_and_the_server_survives(
    https_exporter: HttpsExporter,
) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"http://127.0.0.1:{https_exporter.port}/metrics", auth=(USER, PASSWORD), timeout=15)
    assert https_exporter.get("/-/healthy", auth=(USER, PASSWORD)).status_code == 200
    assert "Traceback" not in https_exporter.log_path.read_text()


def test_a_client_that_does_not_trust_the_certificate_is_refused(https_exporter: HttpsExporter) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https_exporter.base + "/metrics", auth=(USER, PASSWORD), timeout=15)  # system CAs only


# --- in process: TLS details --------------------------------------------------------------------------


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[[Path], int]]:
    """ExporterHTTPServer on 127.0.0.1:0 with a loaded web config; returns the port."""
    started: list[tuple[App, ExporterHTTPServer]] = []

    def start(web_path: Path) -> int:
        web = load_web_config(web_path)
        app = App(exporter_config(tmp_path), default_registry(), SecretMask())
        app.start()
        server = ExporterHTTPServer(("127.0.0.1", 0), app, web, web_path.parent)
        server.serve_in_thread()
        started.append((app, server))
        return int(server.server_address[1])

    yield start
    for app, server in started:
        server.shutdown()
        server.server_close()
        app.stop()


def test_a_stalled_tls_handshake_does_not_block_other_clients(
    material: Material, start_server: Callable[[Path], int]
) -> None:
    port = start_server(good_web_config(material))
    with socket.create_connection(("127.0.0.1", port), timeout=15):  # connects, never says hello
        response = requests.get(
            f"https://127.0.0.1:{port}/-/healthy",
            auth=(USER, PASSWORD),
            verify=str(material.cert),
            timeout=15,
        )
        assert response.status_code == 200


def test_required_client_certificates_are_enforced(
    material: Material, start_server: Callable[[Path], int]
) -> None:
    web = write_web_config(
        material,
        "mtls-server.yml",
        """\
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: tls.crt
""",
    )
    port = start_server(web)
    url = f"https://127.0.0.1:{port}/-/healthy"
    response = requests.get(
        url, verify=str(material.cert), cert=(str(material.cert), str(material.key)), timeout=15
    )
    assert response.status_code == 200
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, verify=str(material.cert), timeout=15)


def test_the_401_carries_the_configured_headers_too(
    material: Material, start_server: Callable[[Path], int]
) -> None:
    port = start_server(good_web_config(material))
    response = requests.get(f"https://127.0.0.1:{port}/metrics", verify=str(material.cert), timeout=15)
    assert response.status_code == 401
    assert response.headers["X-Frame-Options"] == "deny"


def test_an_unauthorized_post_body_does_not_poison_the_connection(
    material: Material, start_server: Callable[[Path], int]
) -> None:
    port = start_server(good_web_config(material))
    context = ssl.create_default_context(cafile=str(material.cert))
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=15)
    try:
        connection.request("POST", "/-/reload", body=b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        first = connection.getresponse()
        first.read()
        assert first.status == 401
        connection.request("GET", "/-/healthy", headers={"Authorization": basic(USER, PASSWORD)})
        second = connection.getresponse()
        assert (second.status, second.read()) == (200, b"Healthy\n")
    finally:
        connection.close()


# --- BasicAuth: verification and its cache ------------------------------------------------------------


@pytest.fixture
def checkpw_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Count bcrypt.checkpw calls (the expensive part) while keeping its real behaviour."""
    calls: list[tuple[bytes, bytes]] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append((password, hashed))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {
        "alice": bcrypt.hashpw(b"alice-pw", bcrypt.gensalt(rounds=4)).decode(),
        "bob": bcrypt.hashpw(b"bob-pw", bcrypt.gensalt(rounds=4)).decode(),
    }


def test_a_repeated_authorized_request_is_answered_from_the_cache(
    hashes: dict[str, str], checkpw_calls: list[tuple[bytes, bytes]]
) -> None:
    auth = BasicAuth(hashes)
    assert auth.allows(basic("alice", "alice-pw"))
    assert len(checkpw_calls) == 1
    for _ in range(50):
        assert auth.allows(basic("alice", "alice-pw"))
    assert len(checkpw_calls) == 1, "an identical request ran bcrypt again"
    assert auth.allows(basic("bob", "bob-pw"))
    assert len(checkpw_calls) == 2


def test_a_cached_success_does_not_let_another_password_in(
    hashes: dict[str, str], checkpw_calls: list[tuple[bytes, bytes]]
) -> None:
    auth = BasicAuth(hashes)
    assert auth.allows(basic("alice", "alice-pw"))
    assert not auth.allows(basic("alice", "alice-pw "))
    assert not auth.allows(basic("alice", "bob-pw"))
    assert not auth.allows(basic("bob", "alice-pw"))
    assert len(checkpw_calls) == 4


def test_a_repeated_wrong_password_is_refused_from_the_cache(
    hashes: dict[str, str], checkpw_calls: list[tuple[bytes, bytes]]
) -> None:
    auth = BasicAuth(hashes)
    for _ in range(20):
        assert not auth.allows(basic("alice", "guess"))
    assert len(checkpw_calls) == 1


def test_an_unknown_user_costs_a_bcrypt_check_like_a_known_one(
    hashes: dict[str, str], checkpw_calls: list[tuple[bytes, bytes]]
) -> None:
    auth = BasicAuth(hashes)
    assert not auth.allows(basic("mallory", "alice-pw"))  # even with a password that matches a user's hash
    assert len(checkpw_calls) == 1, "an unknown user answered faster than a known one (user enumeration)"


def test_the_cache_is_bounded(
    hashes: dict[str, str], checkpw_calls: list[tuple[bytes, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BasicAuth, "CACHE_SIZE", 3)
    auth = BasicAuth(hashes)
    assert auth.allows(basic("alice", "alice-pw"))
    for guess in ("a", "b", "c"):
        assert not auth.allows(basic("alice", guess))
    assert len(checkpw_calls) == 4
    assert auth.allows(basic("alice", "alice-pw"))  # evicted as the oldest: verified again
    assert len(checkpw_calls) == 5


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic ",
        "Bearer abc",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"alice").decode(),  # no colon
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),  # not UTF-8
        "Digest username=alice",
    ],
)
def test_malformed_authorization_headers_are_refused_without_bcrypt(
    hashes: dict[str, str], checkpw_calls: list[tuple[bytes, bytes]], header: str | None
) -> None:
    assert not BasicAuth(hashes).allows(header)
    assert checkpw_calls == []


def test_the_scheme_is_case_insensitive(hashes: dict[str, str]) -> None:
    token = base64.b64encode(b"alice:alice-pw").decode()
    auth = BasicAuth(hashes)
    assert auth.allows(f"basic {token}")
    assert auth.allows(f"BASIC {token}")


def test_a_password_with_a_colon_works(checkpw_calls: list[tuple[bytes, bytes]]) -> None:
    auth = BasicAuth({"carol": bcrypt.hashpw(b"a:b:c", bcrypt.gensalt(rounds=4)).decode()})
    assert auth.allows(basic("carol", "a:b:c"))
    assert not auth.allows(basic("carol", "a"))


def test_without_users_everything_is_allowed(checkpw_calls: list[tuple[bytes, bytes]]) -> None:
    auth = BasicAuth({})
    assert not auth.enabled
    assert auth.allows(None)
    assert auth.allows(basic("anyone", "anything"))
    assert checkpw_calls == []


def test_a_malformed_hash_refuses_instead_of_crashing() -> None:
    auth = BasicAuth({"dave": "$2b$10$tooshort"})
    assert not auth.allows(basic("dave", "whatever"))


def test_web_config_defaults_are_plain_http_without_auth() -> None:
    web = WebConfig()
    assert web.tls_server_config is None
    assert web.basic_auth_users == {}
    assert web.http_server_config.headers == {}


MTLS_WITH_SANS = """\
tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: tls.crt
  client_allowed_sans: [{sans}]
"""


@pytest.mark.parametrize(("sans", "status"), [("localhost", 200), ("127.0.0.1", 200), ("other.example", 403)])
def test_client_allowed_sans_are_enforced(
    material: Material, start_server: Callable[[Path], int], sans: str, status: int
) -> None:
    web = write_web_config(material, f"sans-{sans}.yml", MTLS_WITH_SANS.format(sans=sans))
    port = start_server(web)
    response = requests.get(
        f"https://127.0.0.1:{port}/-/healthy",
        verify=str(material.cert),
        cert=(str(material.cert), str(material.key)),  # the client certificate names localhost, 127.0.0.1
        timeout=15,
    )
    assert response.status_code == status


def test_client_allowed_sans_without_verified_client_certificates_are_refused(material: Material) -> None:
    path = write_web_config(
        material,
        "sans-unverified.yml",
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  client_allowed_sans: [localhost]\n",
    )
    with pytest.raises(
        SourceError, match=r":4: tls_server_config\.client_allowed_sans: needs client_auth_type"
    ):
        load_web_config(path)
