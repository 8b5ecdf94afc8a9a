"""Synthetic HTTP transactions: a named scenario of requests against the ERP's application API, timed.

Two protocols:

* `tryton`: JSON-RPC as Tryton speaks it (`POST <base_url>/<database>/rpc/`). The exporter logs in first
  (step `login`, `common.db.login`), makes the configured calls with the session
  (`Authorization: Session base64(login:user_id:key)`), and logs out at the end (step `logout`,
  `common.db.logout`, which deletes the ERP session row). When a step fails after the login, the logout is
  still attempted (best effort, not timed), so failed runs do not leave sessions behind. Only reading
  methods may be called (see `tryton_method_refusal`).
* `http`: plain requests, each with an expected status and optionally a regular expression the body must
  contain or a JSON path that must exist; credentials, if any, are sent as basic auth.

Each run uses a new `requests.Session` (so every run pays its own connect and TLS handshake, as a user
would), without proxies or .netrc from the environment. The scenario has a timeout for the whole run and
one per request; the check stops a little before the scheduler's timeout so that it reports the timeout
itself. Bodies are read in chunks against the deadline and may be at most MAX_BODY_BYTES.

For https base URLs the server's certificate is read at the start of every run with a separate TLS
handshake that does not verify (so an expired or unknown certificate still shows its expiry time), and its
notAfter is published as `erp_tls_certificate_expiry_timestamp_seconds{transaction}`.

Failure reasons (`erp_transaction_failures_total{reason}`): connect (refused, unreachable, TLS handshake or
certificate verification failed, connection dropped), timeout, status (an HTTP status other than expected),
content (not JSON, a JSON-RPC error answer, the regex or JSON path not found, a body too large), auth
(the login refused: HTTP 401/403/429 or a JSON-RPC error on login; HTTP 401/403 on a later call), other.
The check's own error reason (erp_check_errors_total) is the nearest of its fixed set: status and content
count as `query` (the ERP answered, wrongly).

Credentials never appear in labels, logs or error messages; error messages never contain response
bodies. Only successful scenarios are observed in the histogram (see transaction_recorder).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.checks.transaction_recorder import RunRecord, TransactionError, TransactionRecorder
from exporter.checks.transactions_metrics import DEFAULT_BUCKETS, DURATION, FAILURES, LAST_SUCCESS
from exporter.config.loader import LoadedConfig
from exporter.config.model import HttpTransactionConfig, TrytonTransactionConfig
from exporter.config.schedule import check_schedule
from exporter.metrics import MetricFamily, MetricSpec, gauge

if TYPE_CHECKING:  # requests (6 MiB) is imported when the first transaction runs, not with the exporter
    import requests
    from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

# verify: false is the user's explicit choice for this transaction; urllib3 would warn on every request
# (matched by its text, so that urllib3 need not be imported for the filter).
warnings.filterwarnings("ignore", message="Unverified HTTPS request")

SOURCE = "http"
REASONS: tuple[str, ...] = ("connect", "timeout", "status", "content", "auth", "other")
MAX_BODY_BYTES = 10 * 1024 * 1024
LOGOUT_AFTER_FAILURE_TIMEOUT = 2.0

TLS_EXPIRY = gauge(
    "erp_tls_certificate_expiry_timestamp_seconds",
    "When the certificate of the transaction's https endpoint expires (its notAfter), in seconds since the Unix epoch.",
    "transaction",
)

# The check's error reason (erp_check_errors_total) for each transaction failure reason.
_CHECK_REASONS: dict[str, ErrorReason] = {
    "connect": ErrorReason.CONNECT,
    "timeout": ErrorReason.TIMEOUT,
    "auth": ErrorReason.AUTH,
    "status": ErrorReason.QUERY,
    "content": ErrorReason.QUERY,
    "other": ErrorReason.OTHER,
}
_TRANSACTION_REASONS: dict[ErrorReason, str] = {
    ErrorReason.CONNECT: "connect",
    ErrorReason.TIMEOUT: "timeout",
    ErrorReason.AUTH: "auth",
}

_TRYTON_AUTH_ERRORS = frozenset({"LoginException", "AccessError", "RateLimitException"})


# --- the scenario: plain data built from the config ------------------------------------------------


@dataclass(frozen=True)
class TlsSettings:
    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class TrytonCall:
    name: str
    method: str
    params: Sequence[Any] = ()


@dataclass(frozen=True)
class HttpRequest:
    name: str
    method: str = "GET"
    path: str = "/"
    body: str | None = None
    json_body: Any = None
    expect_status: int = 200
    expect_regex: str | None = None
    expect_json_path: str | None = None


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class HttpScenario:
    transaction: str
    base_url: str
    protocol: Literal["tryton", "http"]
    timeout: float
    step_timeout: float
    steps: Sequence[TrytonCall | HttpRequest] = ()
    database: str | None = None  # tryton
    credentials: Credentials | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    buckets: Sequence[float] = DEFAULT_BUCKETS


class _StepError(Exception):
    """A step failed for a transaction failure reason; the message names the step, never a secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    encoding: str | None
    seconds: float

    def text(self) -> str:
        return self.body.decode(self.encoding or "utf-8", errors="replace")


# --- the check -------------------------------------------------------------------------------------


class HttpTransactionCheck(BaseCheck):
    kind: ClassVar[str] = "http_transaction"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (DURATION, FAILURES, LAST_SUCCESS, TLS_EXPIRY)

    def __init__(self, name: str, scenario: HttpScenario) -> None:
        super().__init__(name)
        if scenario.protocol == "tryton" and (scenario.database is None or scenario.credentials is None):
            raise ValueError(f"http transaction {scenario.transaction!r}: tryton needs database and credentials")
        self.scenario = scenario
        self.recorder = TransactionRecorder(scenario.transaction, SOURCE, REASONS, scenario.buckets)
        self._secrets = [s for s in (scenario.credentials.password if scenario.credentials else "",) if s]

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        record = self.recorder.begin()
        scenario = self.scenario
        # Stop a little before the scheduler would, so the timeout is reported by the check itself.
        budget = min(scenario.timeout, ctx.timeout)
        deadline = time.monotonic() + budget - min(0.5, 0.1 * budget)
        runner = _Runner(scenario, deadline, self._secrets)
        unregister = ctx.cancel.on_cancel(runner.close)
        try:
            if urlsplit(scenario.base_url).scheme == "https":
                record.tls_expiry = runner.certificate_expiry()
            timings, total = runner.run()
        except _StepError as failure:
            message = runner.mask(failure.message)
            self.recorder.fail(record, failure.reason)
            raise TransactionError(_CHECK_REASONS[failure.reason], failure.reason, message) from None
        finally:
            unregister()
            runner.close()
        self.recorder.succeed(record, timings, total)
        return self._families(record)

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        if not isinstance(error, TransactionError):
            # The scheduler gave up on the run (its timeout) or the run crashed: count it here, once.
            self.recorder.fail_current(_TRANSACTION_REASONS.get(error.reason, "other"))
        return self._families(self.recorder.current())

    def _families(self, record: RunRecord | None) -> list[MetricFamily]:
        families = self.recorder.families()
        if record is not None and record.tls_expiry is not None:
            families.append(TLS_EXPIRY.family().add(record.tls_expiry, transaction=self.scenario.transaction))
        return families


# --- one run ---------------------------------------------------------------------------------------


@cache
def _server_name_adapter_class() -> Callable[[str], HTTPAdapter]:
    """The adapter class, defined on first use so that requests loads only when a transaction runs."""
    from requests.adapters import HTTPAdapter  # noqa: PLC0415 - loaded on first use

    class ServerNameAdapter(HTTPAdapter):
        """Sends `server_name` as SNI and verifies the certificate for it instead of the URL's host."""

        def __init__(self, server_name: str) -> None:
            self._server_name = server_name
            super().__init__()

        def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                             **pool_kwargs: Any) -> None:
            pool_kwargs["server_hostname"] = self._server_name
            pool_kwargs["assert_hostname"] = self._server_name
            super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    return ServerNameAdapter


class _Runner:
    """The state of one scenario run: its HTTP session, deadline and request ids."""

    def __init__(self, scenario: HttpScenario, deadline: float, secrets: Sequence[str]) -> None:
        self.scenario = scenario
        self.deadline = deadline
        self._secrets = list(secrets)
        self._ids = 0
        self._closed = threading.Event()
        import requests  # noqa: PLC0415 - loaded on first use

        http = requests.Session()
        http.trust_env = False  # no proxies, no .netrc credentials from the environment
        tls = scenario.tls
        http.verify = (tls.ca_file or True) if tls.verify else False
        if tls.cert_file is not None:
            http.cert = (tls.cert_file, tls.key_file) if tls.key_file is not None else tls.cert_file
        if tls.server_name is not None:
            http.mount("https://", _server_name_adapter_class()(tls.server_name))
        if scenario.protocol == "http" and scenario.credentials is not None:
            http.auth = (scenario.credentials.username, scenario.credentials.password)
        self.http = http

    def close(self) -> None:
        """End the run: close its connections; later steps fail at once (the scheduler's cancel calls this)."""
        self._closed.set()
        self.http.close()

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<secret>")
        return text

    def run(self) -> tuple[list[tuple[str, float]], float]:
        started = time.monotonic()
        if self.scenario.protocol == "tryton":
            timings = self._tryton()
        else:
            timings = [
                (step.name, self._http_step(step)) for step in self.scenario.steps if isinstance(step, HttpRequest)
            ]
        return timings, time.monotonic() - started

    # --- TLS certificate ---------------------------------------------------------------------------

    def certificate_expiry(self) -> float | None:
        """The notAfter of the server's certificate, read without verifying it; None if it cannot be parsed."""
        url = urlsplit(self.scenario.base_url)
        host = url.hostname or ""
        port = url.port or 443
        tls = self.scenario.tls
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            if tls.cert_file is not None:
                context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise _StepError("other", f"cannot load the client certificate: {_describe_os_error(exc)}") from None
        timeout = self._time_left("tls certificate", self.scenario.step_timeout)
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except TimeoutError:
            raise _StepError("connect", f"no connection to {host}:{port} within {timeout:.3g}s") from None
        except OSError as exc:
            raise _StepError("connect", f"cannot connect to {host}:{port}: {_describe_os_error(exc)}") from None
        try:
            with sock, context.wrap_socket(sock, server_hostname=tls.server_name or host) as tls_sock:
                der = tls_sock.getpeercert(binary_form=True)
        except TimeoutError:
            raise _StepError("timeout", f"TLS handshake with {host}:{port} took longer than {timeout:.3g}s") from None
        except OSError as exc:  # ssl.SSLError included; the peer closing during the handshake too
            raise _StepError("connect", f"TLS handshake with {host}:{port} failed: {_describe_os_error(exc)}") from None
        if der is None:
            return None
        try:
            return certificate_not_after(der)
        except ValueError as exc:
            log.debug(
                "cannot read the certificate's notAfter",
                extra={"transaction": self.scenario.transaction, "err": str(exc)},
            )
            return None

    # --- Tryton JSON-RPC ---------------------------------------------------------------------------

    def _tryton(self) -> list[tuple[str, float]]:
        scenario = self.scenario
        assert scenario.database is not None and scenario.credentials is not None
        url = f"{scenario.base_url}/{quote(scenario.database, safe='')}/rpc/"
        credentials = scenario.credentials
        timings: list[tuple[str, float]] = []
        result, seconds = self._rpc(
            url, "login", "common.db.login", [credentials.username, {"password": credentials.password}], None
        )
        if not (isinstance(result, list) and len(result) >= 2 and isinstance(result[1], str)):
            raise _StepError("content", "step 'login': the answer is not [user_id, session key, ...]")
        user_id, key = result[0], result[1]
        self._secrets.append(key)
        token = base64.b64encode(f"{credentials.username}:{user_id}:{key}".encode()).decode("ascii")
        authorization = f"Session {token}"
        timings.append(("login", seconds))
        try:
            for step in scenario.steps:
                if isinstance(step, TrytonCall):
                    _, seconds = self._rpc(url, step.name, step.method, list(step.params), authorization)
                    timings.append((step.name, seconds))
        except _StepError:
            self._logout_quietly(url, authorization)
            raise
        _, seconds = self._rpc(url, "logout", "common.db.logout", [], authorization)
        timings.append(("logout", seconds))
        return timings

    def _rpc(
        self,
        url: str,
        step: str,
        method: str,
        params: list[Any],
        authorization: str | None,
        timeout: float | None = None,
    ) -> tuple[Any, float]:
        self._ids += 1
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        payload = json.dumps({"id": self._ids, "method": method, "params": params}).encode()
        answer = self._request(step, "POST", url, headers=headers, data=payload, timeout=timeout)
        login = method == "common.db.login"
        if answer.status in (401, 403) or (login and answer.status == 429):
            what = "the login was refused" if login else "the session was refused"
            raise _StepError("auth", f"step {step!r}: {what} (HTTP {answer.status})")
        if answer.status != 200:
            raise _StepError("status", f"step {step!r}: HTTP {answer.status}, expected 200")
        document = _json(step, answer)
        if not isinstance(document, dict):
            raise _StepError("content", f"step {step!r}: the answer is not a JSON-RPC object")
        error = document.get("error")
        if error is not None:
            name = _rpc_error_name(error)
            reason = "auth" if login or name in _TRYTON_AUTH_ERRORS else "content"
            raise _StepError(reason, f"step {step!r}: JSON-RPC error {name}")
        if "result" not in document:
            raise _StepError("content", f"step {step!r}: the answer has neither result nor error")
        return document["result"], answer.seconds

    def _logout_quietly(self, url: str, authorization: str) -> None:
        try:
            self._rpc(url, "logout", "common.db.logout", [], authorization, timeout=LOGOUT_AFTER_FAILURE_TIMEOUT)
        except _StepError as failure:
            log.debug(
                "logout after a failed step failed",
                extra={"transaction": self.scenario.transaction, "err": self.mask(failure.message)},
            )

    # --- plain HTTP --------------------------------------------------------------------------------

    def _http_step(self, step: HttpRequest) -> float:
        path = step.path if step.path.startswith("/") else f"/{step.path}"
        url = f"{self.scenario.base_url}{path}"
        headers: dict[str, str] = {}
        data: bytes | None = None
        if step.json_body is not None:
            data = json.dumps(step.json_body).encode()
            headers["Content-Type"] = "application/json"
        elif step.body is not None:
            data = step.body.encode()
        answer = self._request(step.name, step.method, url, headers=headers, data=data)
        if answer.status != step.expect_status:
            reason = "auth" if answer.status in (401, 403) else "status"
            raise _StepError(reason, f"step {step.name!r}: HTTP {answer.status}, expected {step.expect_status}")
        if step.expect_regex is not None and re.search(step.expect_regex, answer.text()) is None:
            raise _StepError("content", f"step {step.name!r}: the answer does not match expect_regex")
        if step.expect_json_path is not None:
            document = _json(step.name, answer)
            if _json_path(document, step.expect_json_path) is None:
                raise _StepError("content", f"step {step.name!r}: no value at {step.expect_json_path!r} in the answer")
        return answer.seconds

    # --- one request -------------------------------------------------------------------------------

    def _time_left(self, step: str, limit: float) -> float:
        remaining = self.deadline - time.monotonic()
        if self._closed.is_set():
            raise _StepError("timeout", f"step {step!r}: cancelled")
        if remaining <= 0:
            raise _StepError("timeout", f"step {step!r}: the scenario's {self.scenario.timeout:g}s timeout ran out")
        return min(limit, remaining)

    def _request(
        self,
        step: str,
        method: str,
        url: str,
        headers: Mapping[str, str],
        data: bytes | None,
        timeout: float | None = None,
    ) -> _Answer:
        import requests  # noqa: PLC0415 - loaded on first use

        limit = timeout if timeout is not None else self._time_left(step, self.scenario.step_timeout)
        started = time.monotonic()
        step_deadline = started + limit
        try:
            with self.http.request(
                method, url, headers=dict(headers), data=data, timeout=(limit, limit), stream=True
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_content(chunk_size=65536):
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise _StepError("content", f"step {step!r}: the answer is larger than {MAX_BODY_BYTES} bytes")
                    chunks.append(chunk)
                    if time.monotonic() > step_deadline:
                        raise _StepError("timeout", f"step {step!r}: no complete answer within {_seconds(limit)}")
                return _Answer(response.status_code, b"".join(chunks), response.encoding, time.monotonic() - started)
        except requests.RequestException as exc:
            reason, detail = _classify(exc, limit)
            raise _StepError(reason, f"step {step!r}: {detail}") from None


# --- helpers ---------------------------------------------------------------------------------------


def _seconds(limit: float) -> str:
    """A time limit for a message, to a tenth of a second: the time left is a few ms under the setting."""
    return f"{round(limit, 1):g}s"


def _classify(exc: requests.RequestException, limit: float) -> tuple[str, str]:
    """The failure reason and a short, secret-free description of a requests exception."""
    import requests  # noqa: PLC0415 - loaded on first use
    import urllib3  # noqa: PLC0415

    cause = _root_cause(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return "connect", f"TLS failed: {_describe_os_error(cause)}"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connect", f"no connection within {_seconds(limit)}"
    if isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(
        cause, TimeoutError | urllib3.exceptions.ReadTimeoutError
    ):
        return "timeout", f"no answer within {_seconds(limit)}"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connect", f"connection failed: {_describe_os_error(cause)}"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "content", "the answer could not be decoded"
    return "other", f"request failed: {type(exc).__name__}"


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost exception behind requests' and urllib3's wrappers (e.g. ConnectionRefusedError)."""
    current = exc
    seen: set[int] = set()
    while id(current) not in seen:
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        arg = current.args[0] if current.args else None
        following = (
            reason
            if isinstance(reason, BaseException)
            else arg
            if isinstance(arg, BaseException)
            else current.__cause__ or current.__context__
        )
        if following is None:
            break
        current = following
    return current


def _describe_os_error(exc: BaseException) -> str:
    """A short description without URLs: 'connection refused', 'certificate verify failed: ...'."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or type(exc).__name__).lower().replace("_", " ")
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


def _json(step: str, answer: _Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError:
        raise _StepError("content", f"step {step!r}: the answer is not JSON") from None


def _rpc_error_name(error: Any) -> str:
    """Tryton answers errors as [name, args]; the name only (args may hold data)."""
    if isinstance(error, list) and error and isinstance(error[0], str):
        return error[0][:80]
    if isinstance(error, str):
        return error.split(":", 1)[0][:80]
    return type(error).__name__


def _json_path(document: Any, path: str) -> Any:
    """The value at a dotted path of keys and list indexes (`data.0.id`); None if any part is missing."""
    node = document
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and re.fullmatch(r"-?\d+", part) and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return None
        if node is None:
            return None
    return node


# --- X.509: the certificate's notAfter from DER, without a crypto library --------------------------


def certificate_not_after(der: bytes) -> float:
    """The notAfter of a DER X.509 certificate, in seconds since the epoch; ValueError if malformed.

    Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
    issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }
    """
    tag, start, _ = _der_element(der, 0)
    _expect(tag, 0x30, "certificate")
    tag, tbs, tbs_end = _der_element(der, start)
    _expect(tag, 0x30, "tbsCertificate")
    tag, content, end = _der_element(der, tbs)
    offset = end if tag == 0xA0 else tbs  # skip the explicit version
    for what in ("serialNumber", "signature", "issuer"):
        _, _, offset = _der_element(der, offset)
        if offset > tbs_end:
            raise ValueError(f"truncated before {what}")
    tag, validity, _ = _der_element(der, offset)
    _expect(tag, 0x30, "validity")
    _, _, not_after_at = _der_element(der, validity)  # skip notBefore
    tag, content, end = _der_element(der, not_after_at)
    text = der[content:end].decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ: years 50-99 are 19xx
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError(f"notAfter has ASN.1 tag {tag:#x}, expected a time")
    if not re.fullmatch(r"\d{14}Z", text):
        raise ValueError(f"unsupported notAfter format {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC).timestamp()


def _der_element(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at offset."""
    if offset + 2 > len(data):
        raise ValueError("truncated DER")
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, start, end


def _expect(tag: int, wanted: int, what: str) -> None:
    if tag != wanted:
        raise ValueError(f"{what}: ASN.1 tag {tag:#x}, expected {wanted:#x}")


def http_transaction_check(
    transaction: HttpTransactionConfig, loaded: LoadedConfig, timeout: float
) -> HttpTransactionCheck:
    """The check of one `http_transactions` entry, its files resolved and its password filled in."""
    tls = transaction.tls

    def path(name: str | None) -> str | None:
        return None if name is None else loaded.path(name)

    steps: list[TrytonCall | HttpRequest] = []
    credentials = None
    database = None
    if transaction.credentials is not None:
        password = loaded.http_passwords.get(transaction.name, "")
        credentials = Credentials(transaction.credentials.username, password)
    if isinstance(transaction, TrytonTransactionConfig):
        database = transaction.database
        steps = [TrytonCall(step.name, step.method, tuple(step.params)) for step in transaction.steps]
    else:
        steps = [
            HttpRequest(
                name=step.name,
                method=step.method,
                path=step.path,
                body=step.body,
                json_body=step.json_body,
                expect_status=step.expect_status,
                expect_regex=step.expect_regex,
                expect_json_path=step.expect_json_path,
            )
            for step in transaction.steps
        ]
    scenario = HttpScenario(
        transaction=transaction.name,
        base_url=transaction.base_url,
        protocol=transaction.protocol,
        timeout=timeout,
        step_timeout=min(transaction.step_timeout or timeout, timeout),
        steps=steps,
        database=database,
        credentials=credentials,
        tls=TlsSettings(
            verify=tls.verify,
            ca_file=path(tls.ca_file),
            cert_file=path(tls.cert_file),
            key_file=path(tls.key_file),
            server_name=tls.server_name,
        ),
        buckets=tuple(transaction.buckets or DEFAULT_BUCKETS),
    )
    return HttpTransactionCheck(f"http_transaction:{transaction.name}", scenario)


def build_http_transaction_checks(loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per HTTP transaction (`http_transaction:<name>`), with the transaction's own labels."""
    settings = loaded.config.global_
    checks: list[ScheduledCheck] = []
    for transaction in loaded.config.http_transactions:
        schedule = check_schedule(
            transaction.interval,
            transaction.timeout,
            default_interval=settings.interval,
            default_timeout=settings.timeout,
        )
        check = http_transaction_check(transaction, loaded, schedule.timeout)
        checks.append(
            ScheduledCheck(check.name, check, schedule.interval, schedule.timeout, labels=dict(transaction.labels))
        )
    return checks


def check_kind() -> CheckKind:
    """`http_transaction`: one check per entry of `http_transactions`."""
    return CheckKind("http_transaction", HttpTransactionCheck.metrics, build_for_exporter=build_http_transaction_checks)
