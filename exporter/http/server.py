"""The HTTP endpoints: /metrics, /probe, /-/healthy, /-/ready, /-/reload and the status page.

Nothing here runs a check or touches a database: every answer comes from the results store.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from exporter.app import App
from exporter.exposition import CONTENT_TYPE, Rendered
from exporter.http.status_page import StatusView, render_status_page
from exporter.http.web_config import BasicAuth, WebConfig, ssl_context

log = logging.getLogger(__name__)

_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def parse_listen_address(address: str) -> tuple[str, int]:
    """':9861' -> ('', 9861); '127.0.0.1:9861' -> ('127.0.0.1', 9861); '[::1]:9861' -> ('::1', 9861)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {address!r}: expected host:port or :port")
    return host.strip("[]"), int(port)


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App, web: WebConfig, web_base: Path) -> None:
        self.app = app
        self.web = web
        self.auth = BasicAuth(web.basic_auth_users)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        if web.tls_server_config is not None:
            context: ssl.SSLContext = ssl_context(web.tls_server_config, web_base)
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="erp-http", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "erp-exporter"

    # --- routing ------------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches on
        if not self._authorized():
            return
        url = urlsplit(self.path)
        routes = {
            "/metrics": self._metrics,
            "/probe": self._probe,
            "/-/healthy": lambda _: self._text(HTTPStatus.OK, "Healthy\n"),
            "/-/ready": self._ready,
            "/": self._status_page,
        }
        handler = routes.get(url.path)
        if handler is None:
            self._text(HTTPStatus.NOT_FOUND, "not found\n")
        else:
            handler(url.query)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        if urlsplit(self.path).path != "/-/reload":
            self._text(HTTPStatus.METHOD_NOT_ALLOWED, "only POST /-/reload\n")
            return
        ok = self.server.app.reload()
        if ok:
            self._text(HTTPStatus.OK, "reloaded\n")
        else:
            _, _, error = self.server.app.reload_status()
            self._text(HTTPStatus.INTERNAL_SERVER_ERROR, f"reload failed, old config kept:\n{error}\n")

    # --- endpoints ------------------------------------------------------------------------------------

    def _metrics(self, _query: str) -> None:
        self._exposition(self.server.app.exposition.get())

    def _probe(self, query: str) -> None:
        params = parse_qs(query, keep_blank_values=True)
        names = params.get("target", [])
        if len(names) != 1 or not names[0]:
            self._text(HTTPStatus.BAD_REQUEST, "exactly one 'target' parameter (a configured target name) is required\n")
            return
        name = names[0]
        if not _TARGET_NAME.match(name):
            # Never echo it: it may be a connection string with a password in it.
            self._text(HTTPStatus.BAD_REQUEST, "'target' must be the name of a configured target; "
                       "connection strings are never accepted\n")
            return
        if name not in self.server.app.target_names():
            self._text(HTTPStatus.BAD_REQUEST, f"unknown target '{name}': not in the configuration\n")
            return
        self._exposition(self.server.app.exposition.get(target=name))

    def _ready(self, _query: str) -> None:
        if self.server.app.ready():
            self._text(HTTPStatus.OK, "Ready\n")
        else:
            self._text(HTTPStatus.SERVICE_UNAVAILABLE, "Not ready: the first round of checks is still running\n")

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
        )
        body = render_status_page(view, app.mask.apply).encode("utf-8")
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", body)

    # --- plumbing ------------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        if self.server.auth.allows(self.headers.get("Authorization")):
            return True
        self.send_response(HTTPStatus.UNAUTHORIZED)
        self.send_header("WWW-Authenticate", 'Basic realm="erp-exporter"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def _exposition(self, rendered: Rendered) -> None:
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            self._send(HTTPStatus.OK, CONTENT_TYPE, rendered.gzipped, encoding="gzip")
        else:
            self._send(HTTPStatus.OK, CONTENT_TYPE, rendered.plain)

    def _text(self, status: HTTPStatus, text: str) -> None:
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8"))

    def _send(self, status: HTTPStatus, content_type: str, body: bytes, encoding: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        for name, value in self.server.web.http_server_config.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        log.debug("http request", extra={"client": self.client_address[0], "request": format % args})
