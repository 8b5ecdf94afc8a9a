"""TLS and basic auth from a web config file in the Prometheus exporter-toolkit format.

The same file works for `promtool check web-config` and for Go exporters, so operators manage one
format across their fleet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import ssl
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import bcrypt
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from exporter.source.yaml_source import SourceError, load_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsServerConfig(_Strict):
    cert_file: str
    key_file: str
    client_auth_type: Literal[
        "NoClientCert",
        "RequestClientCert",
        "RequireAnyClientCert",
        "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    client_ca_file: str | None = None
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] | None = None
    # Accepted for compatibility with exporter-toolkit files; Python's ssl picks sensible defaults.
    cipher_suites: list[str] | None = None
    curve_preferences: list[str] | None = None
    prefer_server_cipher_suites: bool | None = None
    # Enforced per connection by the HTTP server (see client_san_allowed).
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

# The response headers exporter-toolkit lets a web config set, with the values it allows (None: any).
# Header names are matched exactly, as the Go code does.
ALLOWED_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}

# A complete modular-crypt bcrypt hash: $2a$/$2b$/$2y$, a two-digit cost, 22 salt + 31 hash characters.
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")


def _pydantic_message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    message = error["msg"]
    return message[0].lower() + message[1:] if message else error["type"]


def load_web_config(path: Path) -> WebConfig:
    """Read and validate a web config file; raise SourceError naming file, line and key.

    What `promtool check web-config` refuses is refused here too, including a certificate and key
    that do not load, so a bad file stops the exporter at start and not at the first connection.
    """
    document = load_yaml(path, expand_env=False)
    try:
        config = WebConfig.model_validate(document.data if document.data is not None else {})
    except ValidationError as exc:
        raise SourceError(
            [document.issue(tuple(e["loc"]), _pydantic_message(e)) for e in exc.errors(include_url=False)]
        ) from None
    base = path.parent
    issues = []
    for user, hashed in config.basic_auth_users.items():
        match = _BCRYPT_HASH.match(hashed)
        if match is None:
            issues.append(
                document.issue(
                    ("basic_auth_users", user),
                    "must be a complete bcrypt hash ($2b$...), never a clear password",
                )
            )
        elif not 4 <= int(match.group(1)) <= 31:
            issues.append(document.issue(("basic_auth_users", user), "bcrypt cost must be between 04 and 31"))
    for name, value in config.http_server_config.headers.items():
        header_key = ("http_server_config", "headers", name)
        if name not in ALLOWED_HEADERS:
            allowed = ", ".join(ALLOWED_HEADERS)
            issues.append(document.issue(header_key, f"header cannot be configured (allowed: {allowed})"))
        elif (values := ALLOWED_HEADERS[name]) is not None and value not in values:
            expected = ", ".join(values)
            issues.append(document.issue(header_key, f"invalid value {value!r}; expected one of: {expected}"))
        elif any(c in value for c in "\r\n\0"):
            issues.append(document.issue(header_key, "line breaks are not allowed in a header value"))
    tls = config.tls_server_config
    if tls is not None:
        before = len(issues)
        for key in ("cert_file", "key_file", "client_ca_file"):
            value = getattr(tls, key)
            if value is not None and not (base / value).is_file():
                issues.append(document.issue(("tls_server_config", key), f"file not found: {value}"))
        if tls.client_ca_file is not None and tls.client_auth_type == "NoClientCert":
            issues.append(
                document.issue(
                    ("tls_server_config", "client_ca_file"),
                    "client CAs are configured without a client_auth_type that asks for client certificates",
                )
            )
        if tls.client_allowed_sans and tls.client_auth_type != "RequireAndVerifyClientCert":
            issues.append(
                document.issue(
                    ("tls_server_config", "client_allowed_sans"),
                    "needs client_auth_type: RequireAndVerifyClientCert "
                    "(only a verified certificate has SANs worth trusting)",
                )
            )
        if tls.max_version is not None and _TLS_VERSIONS[tls.max_version] < _TLS_VERSIONS[tls.min_version]:
            issues.append(document.issue(("tls_server_config", "max_version"), "is lower than min_version"))
        if len(issues) == before:  # the files exist and the settings agree: do they load?
            try:
                ssl_context(tls, base)
            except (ssl.SSLError, OSError, ValueError) as exc:
                issues.append(
                    document.issue(
                        ("tls_server_config", "cert_file"),
                        f"cannot load {tls.cert_file} with {tls.key_file}: not a PEM certificate with its "
                        f"matching private key ({exc})",
                    )
                )
    if issues:
        raise SourceError(issues)
    return config


def ssl_context(config: TlsServerConfig, base: Path) -> ssl.SSLContext:
    """A server-side SSL context from the TLS settings (paths relative to the web config file).

    Python's ssl verifies every client certificate it accepts, so 'RequireAnyClientCert' and
    'RequestClientCert' verify too (Go accepts any certificate there); without client_ca_file the
    system CAs are used, as Go does.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[config.min_version]
    if config.max_version is not None:
        context.maximum_version = _TLS_VERSIONS[config.max_version]
    context.load_cert_chain(str(base / config.cert_file), str(base / config.key_file))
    if config.client_auth_type == "NoClientCert":
        return context
    if config.client_ca_file is not None:
        context.load_verify_locations(str(base / config.client_ca_file))
    else:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if config.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
        context.verify_mode = ssl.CERT_REQUIRED
    else:
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_san_allowed(allowed: list[str], peer_certificate: dict[str, Any] | None) -> bool:
    """Whether a verified client certificate names one of the allowed SANs (DNS, IP, email or URI)."""
    if not peer_certificate:
        return False
    names = {str(value) for _, value in peer_certificate.get("subjectAltName", ())}
    return any(name in names for name in allowed)


class BasicAuth:
    """Checks Authorization headers against bcrypt hashes, as exporter-toolkit does.

    bcrypt is slow on purpose (tens of milliseconds); a scrape every few seconds must not pay that
    each time, so outcomes (good and bad) are remembered by a keyed hash of user, stored hash and
    password, in a bounded LRU. An unknown user costs a bcrypt check too, so response times do not
    tell which users exist; and bcrypt checks run one at a time, so a flood of wrong passwords uses
    one core at most while remembered credentials are answered at once.
    """

    CACHE_SIZE = 1024

    def __init__(self, users: dict[str, str]) -> None:
        self._users = dict(users)
        self._lock = threading.Lock()
        self._bcrypt_lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        # Compared against for unknown users: a real configured hash, so the cost is the same.
        self._dummy_hash = next(iter(self._users.values()), "")

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def allows(self, header: str | None) -> bool:
        if not self._users:
            return True
        if not header:
            return False
        scheme, _, encoded = header.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        if not sep:
            return False
        known = user in self._users
        hashed = self._users[user] if known else self._dummy_hash
        fingerprint = hmac.new(
            self._key, b"\0".join(part.encode() for part in (user, hashed, password)), hashlib.sha256
        ).digest()
        with self._lock:
            cached = self._cache.get(fingerprint)
            if cached is not None:
                self._cache.move_to_end(fingerprint)
                return cached
        with self._bcrypt_lock:
            try:
                matches = bcrypt.checkpw(password.encode(), hashed.encode())
            except ValueError:  # a malformed hash (load_web_config refuses those)
                matches = False
        allowed = known and matches
        with self._lock:
            self._cache[fingerprint] = allowed
            while len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return allowed
