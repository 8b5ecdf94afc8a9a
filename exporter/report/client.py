"""A small, read-only client of Prometheus' HTTP API: instant and range queries (GET /api/v1/query and
/api/v1/query_range) and nothing else.

Every failure becomes a :class:`PrometheusError` with a one-line message fit for a terminal: which server
(its URL without credentials), what went wrong, never a traceback and never a secret.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # requests loads when a report runs, not with every erp-exporter command
    import requests


class PrometheusError(Exception):
    """Prometheus could not be asked, or did not answer a query: the message is one line for the user."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels (without __name__) and its value (NaN and ±Inf kept)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels (without __name__) and its (Unix seconds, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Auth:
    """How to authenticate to Prometheus (or the proxy in front of it): basic auth or a bearer token."""

    username: str = ""
    password: str = field(default="", repr=False)
    bearer_token: str = field(default="", repr=False)

    def secrets(self) -> list[str]:
        return [secret for secret in (self.password, self.bearer_token) if secret]


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a Prometheus base URL, or None when it can (http or https with a host)."""
    try:
        parts = urllib.parse.urlsplit(url) if "://" in url else None
        port = parts.port if parts is not None else None  # raises ValueError on a port that is not a number
    except ValueError:
        return f"{safe_url(url)!r} is not a valid URL (e.g. http://localhost:9090)"
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{safe_url(url)!r} is not an http:// or https:// URL (e.g. http://localhost:9090)"
    if port == 0:
        return f"{safe_url(url)!r} has port 0"
    return None


def safe_url(url: str) -> str:
    """The URL without user info (``http://user:pass@host`` -> ``http://host``), for messages and output."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"\)\]]+)")


def _reason(exc: BaseException) -> str:
    """The useful part of a requests/urllib3 exception ('Connection refused'), not its nested repr."""
    text = str(exc)
    match = _ERRNO.search(text)
    if match:
        return match.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    if "certificate verify failed" in text.lower():
        return "TLS certificate verify failed"
    return type(exc).__name__


def parse_value(text: str) -> float:
    """A sample value as Prometheus writes it in JSON: a string, including 'NaN', '+Inf' and '-Inf'."""
    return float(text)  # float() reads 'NaN', '+Inf', '-Inf' too


class PrometheusClient:
    """Instant queries against one Prometheus. Reads only: it never sends anything but GET /api/v1/query."""

    def __init__(
        self,
        url: str,
        timeout: float = 30.0,
        auth: Auth | None = None,
        ca_file: str | None = None,
        session: requests.Session | None = None,
    ) -> None:
        problem = url_problem(url)
        if problem:
            raise PrometheusError(f"--prometheus.url {problem}")
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.display_url = safe_url(self.url)
        self.timeout = timeout
        self.auth = auth or Auth()
        self.verify: bool | str = ca_file or True
        if session is None:
            import requests  # noqa: PLC0415 - loaded on first use

            session = requests.Session()
        self._session = session
        if self.auth.bearer_token:
            self._session.headers["Authorization"] = f"Bearer {self.auth.bearer_token}"
        elif self.auth.username:
            self._session.auth = (self.auth.username, self.auth.password)
        elif parts.username:  # credentials in the URL itself are sent as basic auth by requests
            self.auth = Auth(urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))

    def close(self) -> None:
        self._session.close()

    def _mask(self, text: str) -> str:
        for secret in sorted(self.auth.secrets(), key=len, reverse=True):
            text = text.replace(secret, "<secret>")
        return text

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """Evaluate ``expr`` at ``at`` (Unix seconds; Prometheus' now when None); the instant vector's samples.

        A scalar result comes back as one sample without labels; a string result is refused.
        """
        params: dict[str, str] = {"query": expr, "timeout": f"{max(self.timeout - 1, 1):g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        response = self._get("query", params)
        return self._instant(self._data(response, expr))

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """Evaluate ``expr`` from ``start`` to ``end`` every ``step`` seconds: the matrix's series."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{max(step, 1):g}",
                  "timeout": f"{max(self.timeout - 1, 1):g}s"}
        data = self._data(self._get("query_range", params), expr, "query_range")
        result = data.get("result")
        if data.get("resultType") != "matrix" or not isinstance(result, list):
            raise PrometheusError(f"{self._where} answered a {data.get('resultType')} for a range query")
        try:
            return [
                Series({k: str(v) for k, v in item["metric"].items() if k != "__name__"},
                       tuple((float(t), parse_value(v)) for t, v in item["values"]))
                for item in result
            ]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise PrometheusError(f"{self._where} answered a malformed matrix") from None

    @property
    def _where(self) -> str:
        return f"Prometheus at {self.display_url}"

    def _get(self, api: str, params: dict[str, str]) -> requests.Response:
        import requests  # noqa: PLC0415 - loaded on first use

        endpoint = f"{self.url}/api/v1/{api}"
        where = self._where
        try:
            return self._session.get(endpoint, params=params, timeout=self.timeout, verify=self.verify)
        except requests.Timeout:
            raise PrometheusError(f"{where} did not answer within {self.timeout:g}s") from None
        except requests.exceptions.SSLError as exc:
            raise PrometheusError(self._mask(f"cannot reach {where}: {_reason(exc)}")) from None
        except requests.ConnectionError as exc:
            raise PrometheusError(self._mask(f"cannot reach {where}: {_reason(exc)}")) from None
        except requests.RequestException as exc:
            raise PrometheusError(self._mask(f"cannot ask {where}: {_reason(exc)}")) from None

    def _data(self, response: requests.Response, expr: str, api: str = "query") -> dict[str, Any]:
        """The ``data`` of a successful answer; PrometheusError with one line for anything else."""
        where = self._where
        status = response.status_code
        if status in (401, 403):
            raise PrometheusError(f"{where} refused the credentials (HTTP {status})")
        try:
            answer: Any = response.json()
        except ValueError:
            raise PrometheusError(
                f"{where} does not answer like a Prometheus HTTP API (HTTP {status} on /api/v1/{api}, not JSON)"
            ) from None
        if not isinstance(answer, dict) or "status" not in answer:
            raise PrometheusError(f"{where} does not answer like a Prometheus HTTP API (HTTP {status})")
        if answer["status"] != "success":
            error = " ".join(str(answer.get("error", "unknown error")).split())
            kind = answer.get("errorType", "error")
            one_line = " ".join(expr.split())
            raise PrometheusError(self._mask(f"{where} answered {kind} (HTTP {status}): {error}; query: {one_line}"))
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    def _instant(self, data: dict[str, Any]) -> list[Sample]:
        where = self._where
        kind = data.get("resultType")
        result = data.get("result")
        try:
            if kind == "vector" and isinstance(result, list):
                return [
                    Sample({k: str(v) for k, v in item["metric"].items() if k != "__name__"},
                           parse_value(item["value"][1]))
                    for item in result
                ]
            if kind == "scalar" and isinstance(result, list):
                return [Sample({}, parse_value(result[1]))]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise PrometheusError(f"{where} answered a malformed {kind}") from None
        raise PrometheusError(f"{where} answered a {kind} for an instant query that should give a vector")


def finite(value: float) -> float | None:
    """The value when it is a finite number, else None (JSON has no NaN or infinity)."""
    return value if math.isfinite(value) else None
