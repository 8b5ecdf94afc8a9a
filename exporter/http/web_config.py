"""TLS and basic auth from a web config file in the Prometheus exporter-toolkit format.

The same file works for `promtool check web-config` and for Go exporters, so operators manage one
format across their fleet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import threading
from pathlib import Path
from typing import Literal

import bcrypt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exporter.config.yaml_source import SourceError, load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Strict):
    cert_file: str
    key_file: str
    client_auth_type: Literal[
        "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    client_ca_file: str | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None
    # Accepted for compatibility with exporter-toolkit files; Python's ssl picks sensible defaults.
    cipher_suites: list[str] | None = None
    curve_preferences: list[str] | None = None
    prefer_server_cipher_suites: bool | None = None
    client_allowed_sans: list[str] | None = None


class HttpServerConfig(_Strict):
    headers: dict[str, str] = Field(default_factory=dict)
    http2: bool | None = None


class WebConfig(_Strict):
    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = Field(default_factory=HttpServerConfig)
    basic_auth_users: dict[str, str] = Field(default_factory=dict)


_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


def load_web_config(path: Path) -> WebConfig:
    """Read and validate a web config file; raise SourceError naming file, line and key."""
    document = load_yaml(path, expand_env=False)
    try:
        config = WebConfig.model_validate(document.data or {})
    except ValidationError as exc:
        raise SourceError(
            [document.issue(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        ) from None
    base = path.parent
    issues = []
    for user, hashed in config.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            path_key = ("basic_auth_users", user)
            issues.append(document.issue(path_key, "must be a bcrypt hash ($2b$...), never a clear password"))
    if config.tls_server_config is not None:
        for key in ("cert_file", "key_file", "client_ca_file"):
            value = getattr(config.tls_server_config, key)
            if value is not None and not (base / value).is_file():
                issues.append(document.issue(("tls_server_config", key), f"file not found: {value}"))
    if issues:
        raise SourceError(issues)
    return config


def ssl_context(config: TlsServerConfig, base: Path) -> ssl.SSLContext:
    """A server-side SSL context from the TLS settings (paths relative to the web config file)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[config.min_version]
    if config.max_version is not None:
        context.maximum_version = _TLS_VERSIONS[config.max_version]
    context.load_cert_chain(str(base / config.cert_file), str(base / config.key_file))
    if config.client_ca_file is not None:
        context.load_verify_locations(str(base / config.client_ca_file))
    if config.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
        context.verify_mode = ssl.CERT_REQUIRED
    elif config.client_auth_type in ("RequestClientCert", "VerifyClientCertIfGiven"):
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class BasicAuth:
    """Checks Authorization headers against bcrypt hashes.

    bcrypt is slow on purpose (tens of milliseconds); a scrape every few seconds must not pay that
    each time, so successful checks are remembered by a keyed hash of the credentials, as the Go
    exporter-toolkit does.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self._users = users
        self._lock = threading.Lock()
        self._key = hashlib.sha256(repr(sorted(users.items())).encode()).digest()
        self._verified: set[bytes] = set()

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def allows(self, header: str | None) -> bool:
        if not self._users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self._users.get(user)
        if hashed is None:
            return False
        fingerprint = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if fingerprint in self._verified:
                return True
        if not bcrypt.checkpw(password.encode(), hashed.encode()):
            return False
        with self._lock:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified.add(fingerprint)
        return True
