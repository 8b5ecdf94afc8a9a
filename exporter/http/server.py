"""The HTTP endpoints: /metrics, /probe, /-/healthy, /-/ready, /-/reload and the status page.

Nothing here runs a check or touches a database: every answer comes from the results store.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import re
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from exporter.app import App
from exporter.checks.audits import audit_reports
from exporter.exposition import CONTENT_TYPE, Rendered
from exporter.http.status_page import StatusView, render_status_page
from exporter.http.web_config import BasicAuth, WebConfig, client_san_allowed, ssl_context

log = logging.getLogger(__name__)

_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PORT = re.compile(r"^[0-9]{1,5}$")  # ASCII digits only: str.isdigit() also accepts '²' and '٣'
MAX_ECHOED_TARGET = 200  # an unknown target name longer than this is not echoed back in the answer
_QUERY = re.compile(r"\?[^\s\"]*")

# A request body up to this size is read and dropped; a bigger one closes the connection after the answer.
MAX_DISCARDED_BODY = 1 << 20
# Seconds a connection may sit idle (or stall its TLS handshake) before it is closed.
IDLE_TIMEOUT = 120.0
# Seconds from the first byte of a request until its last header line: a client that trickles its headers
# (slowloris) is cut off then, however often it sends a byte.
REQUEST_HEADER_TIMEOUT = 10.0
# Connections served at once, each by its own thread; the next one is answered 503 and closed at once, so
# neither threads nor memory grow with the number of clients that connect and wait.
MAX_CONNECTIONS = 256
_BUSY_BODY = b"too many connections; try again later\n"
_BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)

_GET_PATHS = frozenset({"/metrics", "/probe", "/-/healthy", "/-/ready", "/"})
_POST_PATHS = frozenset({"/-/reload"})


def parse_listen_address(address: str) -> tuple[str, int]:
    """':9861' -> ('', 9861); '127.0.0.1:9861' -> ('127.0.0.1', 9861); '[::1]:9861' -> ('::1', 9861).

    An IPv6 address must be in brackets (as in Go's net.Listen): '::1:9861' is ambiguous and refused.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not _PORT.match(port) or int(port) > 65535:
        raise ValueError(f"invalid listen address {address!r}: expected host:port, :port or [ipv6]:port")
    if host.startswith("["):
        if not host.endswith("]") or ":" not in host or any(c in host[1:-1] for c in "[] "):
            raise ValueError(f"invalid listen address {address!r}: bad [ipv6] host")
        host = host[1:-1]
    elif any(c in host for c in ":[] /"):
        raise ValueError(
            f"invalid listen address {address!r}: put an IPv6 address in brackets, e.g. [::1]:9861"
        )
    return host, int(port)


class ExporterHTTPServer(ThreadingHTTPServer):
    """The exporter's HTTP(S) server.

    An empty host listens on every interface, IPv4 and IPv6 where the system has both (the Go exporters'
    behaviour for ':9861'), falling back to IPv4 only.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog: bursts of connecting scrapers wait in the kernel

    def __init__(
        self,
        address: tuple[str, int],
        app: App,
        web: WebConfig,
        web_base: Path,
        max_connections: int = MAX_CONNECTIONS,
        request_header_timeout: float = REQUEST_HEADER_TIMEOUT,
    ) -> None:
        self.app = app
        self.web = web
        self.auth = BasicAuth(web.basic_auth_users)
        self.max_connections = max_connections
        self.request_header_timeout = request_header_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._deadlines: dict[socket.socket, float] = {}  # connections reading headers -> when to cut them
        self._deadlines_lock = threading.Lock()
        self._reaper_stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="erp-http-deadlines", daemon=True)
        host, port = address
        self._dual_stack = False
        if ":" in host:
            self.address_family = socket.AF_INET6
        elif host == "" and socket.has_dualstack_ipv6():
            self.address_family = socket.AF_INET6
            self._dual_stack = True
            address = ("::", port)
        try:
            super().__init__(address, _Handler)
        except OSError as exc:
            if not self._dual_stack or exc.errno not in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                raise
            self.address_family = socket.AF_INET  # IPv6 is compiled in but disabled on this host
            self._dual_stack = False
            super().__init__(("", port), _Handler)
        if web.tls_server_config is not None:
            try:
                context: ssl.SSLContext = ssl_context(web.tls_server_config, web_base)
            except BaseException:
                self.server_close()
                raise
            # The handshake happens in the connection's own thread (on its first read), never in the
            # accept loop, so a client that stalls its handshake cannot block other clients.
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def server_bind(self) -> None:
        if self._dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # Not HTTPServer.server_bind: its socket.getfqdn() can block on DNS for seconds, for a name
        # that only CGI would use.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr, bypassing the log format and the secret mask.
        exc = sys.exc_info()[1]
        client = client_address[0] if isinstance(client_address, tuple) else str(client_address)
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            log.debug(
                "http connection error", extra={"client": client, "err": f"{type(exc).__name__}: {exc}"}
            )
        else:
            log.error("http request failed", exc_info=True, extra={"client": client})

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="erp-http", daemon=True)
        thread.start()
        return thread

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        if not self._reaper.is_alive():
            self._reaper.start()
        try:
            super().serve_forever(poll_interval)
        finally:
            self._reaper_stop.set()

    # --- bounded connections ------------------------------------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # Answered from the accept loop without a thread: the short answer fits the socket buffer, and a
            # client that does not read it is not waited for.
            with contextlib.suppress(OSError):
                request.setblocking(False)
                if not isinstance(request, ssl.SSLSocket):  # no handshake here: a TLS client is just closed
                    request.send(_BUSY_ANSWER)
            log.debug("http connection refused: too many connections", extra={"limit": self.max_connections})
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.watch_headers(request, None)
            self._slots.release()

    def watch_headers(self, connection: Any, seconds: float | None) -> None:
        """Cut `connection` off unless its request headers are complete within `seconds` (None: done)."""
        with self._deadlines_lock:
            if seconds is None:
                self._deadlines.pop(connection, None)
            else:
                self._deadlines[connection] = time.monotonic() + seconds

    def _reap(self) -> None:
        # One thread for every connection's header deadline, rather than a timer thread per connection.
        while not self._reaper_stop.wait(min(1.0, self.request_header_timeout / 4)):
            now = time.monotonic()
            with self._deadlines_lock:
                late = [connection for connection, deadline in self._deadlines.items() if deadline < now]
                for connection in late:
                    del self._deadlines[connection]
            for connection in late:
                log.debug("http request headers too slow; connection closed")
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns at once


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "erp-exporter"
    timeout = IDLE_TIMEOUT
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's delayed ACK
    # of the headers (about 40 ms on Linux) on every keep-alive scrape.
    disable_nagle_algorithm = True

    def handle_one_request(self) -> None:
        # Waiting for a request is idle time (IDLE_TIMEOUT); from its first byte, the request line and headers
        # must be complete within the server's header timeout.
        try:
            first = cast(io.BufferedReader, self.rfile).peek(1)  # StreamRequestHandler's buffered reader
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not first:
            self.close_connection = True
            return
        self.server.watch_headers(self.connection, self.server.request_header_timeout)
        super().handle_one_request()

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        self.server.watch_headers(self.connection, None)  # headers complete (or refused): no more deadline
        return parsed

    # --- routing ------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if not self._begin():
            return
        url = urlsplit(self.path)
        routes: dict[str, Callable[[str], None]] = {
            "/metrics": self._metrics,
            "/probe": self._probe,
            "/-/healthy": lambda _: self._text(HTTPStatus.OK, "Healthy\n"),
            "/-/ready": self._ready,
            "/": self._status_page,
        }
        handler = routes.get(url.path)
        if handler is None:
            self._not_allowed_or_found(url.path)
        else:
            self._guarded(lambda: handler(url.query))

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        if not self._begin():
            return
        path = urlsplit(self.path).path
        if path not in _POST_PATHS:
            self._not_allowed_or_found(path)
            return
        self._guarded(self._reload)

    def _other_method(self) -> None:
        if self._begin():
            self._not_allowed_or_found(urlsplit(self.path).path)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other_method  # noqa: N815

    # --- endpoints ------------------------------------------------------------------------------------

    def _metrics(self, _query: str) -> None:
        self._exposition(self.server.app.exposition.get())

    def _probe(self, query: str) -> None:
        params = parse_qs(query, keep_blank_values=True)
        names = params.get("target", [])
        if len(names) != 1 or not names[0]:
            self._text(
                HTTPStatus.BAD_REQUEST,
                "exactly one 'target' parameter (a configured target name) is required\n",
            )
            return
        name = names[0]
        if not _TARGET_NAME.match(name):
            # Never echo it: it may be a connection string with a password in it.
            self._text(
                HTTPStatus.BAD_REQUEST,
                "'target' must be the name of a configured target; connection strings are never accepted\n",
            )
            return
        if name not in self.server.app.target_names():
            shown = f"'{name}'" if len(name) <= MAX_ECHOED_TARGET else f"of {len(name)} characters"
            self._text(HTTPStatus.BAD_REQUEST, f"unknown target {shown}: not in the configuration\n")
            return
        self._exposition(self.server.app.exposition.get(target=name))

    def _ready(self, _query: str) -> None:
        if self.server.app.ready():
            self._text(HTTPStatus.OK, "Ready\n")
        else:
            self._text(
                HTTPStatus.SERVICE_UNAVAILABLE, "Not ready: the first round of checks is still running\n"
            )

    def _status_page(self, _query: str) -> None:
        app = self.server.app
        runtime = app.runtime
        _, states = app.store.snapshot()
        ok, _, error = app.reload_status()
        view = StatusView(
            states=states,
            databases=runtime.databases if runtime else {},
            reload_ok=ok,
            reload_error=error,
            config_file=str(app.config_path),
            now_monotonic=time.monotonic(),
            labels={t.name: dict(t.labels) for t in runtime.loaded.config.targets} if runtime else {},
            audits=audit_reports(states, runtime.loaded) if runtime else [],
        )
        body = render_status_page(view, app.mask.apply).encode("utf-8")
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", body)

    def _reload(self) -> None:
        app = self.server.app
        try:
            ok = app.reload()  # serialized by the app itself: requests and SIGHUPs that arrive together take turns
        except Exception as exc:  # a bug below must not leave the client without an answer
            log.exception("config reload crashed; keeping the running config")
            error = app.mask.apply(f"{type(exc).__name__}: {exc}")
            self._text(HTTPStatus.INTERNAL_SERVER_ERROR, f"reload failed, old config kept:\n{error}\n")
            return
        if ok:
            self._text(HTTPStatus.OK, "reloaded\n")
        else:
            _, _, error = app.reload_status()
            error = app.mask.apply(error)
            self._text(HTTPStatus.INTERNAL_SERVER_ERROR, f"reload failed, old config kept:\n{error}\n")

    # --- plumbing ------------------------------------------------------------------------------------

    def _begin(self) -> bool:
        """Common start of every request: drop any request body, then check the client."""
        self._responded = False
        if not self._discard_body():
            return False
        return self._client_certificate_allowed() and self._authorized()

    def _client_certificate_allowed(self) -> bool:
        tls = self.server.web.tls_server_config
        if tls is None or not tls.client_allowed_sans:
            return True
        connection = self.connection
        peer = connection.getpeercert() if isinstance(connection, ssl.SSLSocket) else None
        if client_san_allowed(tls.client_allowed_sans, peer):
            return True
        self.close_connection = True
        self._text(HTTPStatus.FORBIDDEN, "client certificate not allowed\n")
        return False

    def _discard_body(self) -> bool:
        """Read and drop a request body, so it is not parsed as the next request on a kept-alive
        connection. Bodies we cannot skip cheaply close the connection after the answer instead."""
        if self.headers.get("Transfer-Encoding", "identity").lower() != "identity":
            self.close_connection = True
            return True
        length = self.headers.get("Content-Length")
        if length is None:
            return True
        if not length.isascii() or not length.strip().isdigit():
            self.close_connection = True
            self._text(HTTPStatus.BAD_REQUEST, "invalid Content-Length\n")
            return False
        remaining = int(length)
        if remaining > MAX_DISCARDED_BODY:
            self.close_connection = True
            return True
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 65536))
            if not chunk:
                self.close_connection = True
                break
            remaining -= len(chunk)
        return True

    def _authorized(self) -> bool:
        if self.server.auth.allows(self.headers.get("Authorization")):
            return True
        self._send(
            HTTPStatus.UNAUTHORIZED,
            "text/plain; charset=utf-8",
            b"Unauthorized\n",
            extra_headers={"WWW-Authenticate": 'Basic realm="erp-exporter", charset="UTF-8"'},
        )
        return False

    def _not_allowed_or_found(self, path: str) -> None:
        if path in _GET_PATHS:
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                f"{self.command} is not allowed on {path}; use GET\n".encode(),
                extra_headers={"Allow": "GET, HEAD"},
            )
        elif path in _POST_PATHS:
            self._send(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                f"{self.command} is not allowed on {path}; use POST\n".encode(),
                extra_headers={"Allow": "POST"},
            )
        else:
            self._text(HTTPStatus.NOT_FOUND, "not found\n")

    def _guarded(self, endpoint: Callable[[], None]) -> None:
        """Run an endpoint; an unexpected error is logged and answered with 500, not a dropped connection."""
        try:
            endpoint()
        except (ConnectionError, TimeoutError, ssl.SSLError):
            raise
        except Exception:
            log.exception("http endpoint failed", extra={"path": urlsplit(self.path).path})
            if self._responded:
                self.close_connection = True
            else:
                self._text(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; see the exporter's log\n")

    def _exposition(self, rendered: Rendered) -> None:
        if _accepts_gzip(self.headers.get("Accept-Encoding") or ""):
            self._send(HTTPStatus.OK, CONTENT_TYPE, rendered.gzipped, encoding="gzip", vary=True)
        else:
            self._send(HTTPStatus.OK, CONTENT_TYPE, rendered.plain, vary=True)

    def _text(self, status: HTTPStatus, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8"))

    def _send(
        self,
        status: HTTPStatus,
        content_type: str,
        body: bytes,
        *,
        encoding: str | None = None,
        vary: bool = False,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self._responded = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if vary:
            self.send_header("Vary", "Accept-Encoding")
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        for name, value in self.server.web.http_server_config.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        url = urlsplit(self.path)
        extra: dict[str, object] = {
            "client": self.client_address[0],
            "method": self.command,
            "path": url.path,
            "code": int(code) if isinstance(code, HTTPStatus) else code,
        }
        names = parse_qs(url.query).get("target", [])
        if url.path == "/probe" and len(names) == 1 and _TARGET_NAME.match(names[0]):
            extra["target"] = names[0]
        log.debug("http request", extra=extra)

    def log_message(self, format: str, *args: object) -> None:
        # Errors about malformed requests quote the request line: drop its query, which may hold a
        # connection string somebody pasted into a scrape config.
        message = _QUERY.sub("?<query>", format % args)
        log.debug("http request problem", extra={"client": self.client_address[0], "problem": message})


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header allows gzip: an explicit gzip entry decides by its q-value
    (q=0 forbids it), else a '*' entry does."""
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[coding] = quality
    for coding in ("gzip", "x-gzip", "*"):
        if coding in qualities:
            return qualities[coding] > 0
    return False
