"""Two network namespaces joined by a veth pair, to cut the network between an exporter and its database.

Loopback addresses only: each namespace keeps 127.0.0.1/32 on its own lo, and the pair carries 127.1.0.1
(the exporter's side) and 127.1.0.2 (the database's), with route_localnet on so the kernel routes them
over the pair. Nothing leaves the machine; the host's own network is never touched.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

CLIENT_ADDRESS = "127.1.0.1"
SERVER_ADDRESS = "127.1.0.2"
_CLONE_NEWNET = 0x40000000


class NetnsError(RuntimeError):
    """A namespace or link could not be set up."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Link:
    """The client namespace and the server namespace, and the veth pair between them."""

    def __init__(self, tag: str) -> None:
        self.client = f"erpx-c-{tag}"
        self.server = f"erpx-s-{tag}"
        self._client_end, self._server_end = f"erpc{tag}"[:15], f"erps{tag}"[:15]
        self._scraper: ThreadPoolExecutor | None = None

    def __enter__(self) -> Link:
        self.up()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def up(self) -> None:
        """Create both namespaces and the pair; raise NetnsError (with the tool's message) if the kernel refuses."""
        _ip("netns", "add", self.client)
        _ip("netns", "add", self.server)
        _ip("link", "add", self._client_end, "type", "veth", "peer", "name", self._server_end)
        for namespace, end, address in ((self.client, self._client_end, CLIENT_ADDRESS),
                                        (self.server, self._server_end, SERVER_ADDRESS)):
            _ip("link", "set", end, "netns", namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            # 127.0.0.0/8 on lo would claim the pair's addresses as local: keep only 127.0.0.1 itself
            _ip("-n", namespace, "addr", "del", "127.0.0.1/8", "dev", "lo")
            _ip("-n", namespace, "addr", "add", "127.0.0.1/32", "dev", "lo")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", end)
            for scope in ("all", end):
                subprocess.run(["ip", "netns", "exec", namespace, "sysctl", "-qw",
                                f"net.ipv4.conf.{scope}.route_localnet=1"], check=True, timeout=30)
            _ip("-n", namespace, "link", "set", end, "up")

    def partition(self) -> None:
        """Cut the pair: packets in flight and new ones vanish, as on a broken network path."""
        _ip("-n", self.server, "link", "set", self._server_end, "down")

    def heal(self) -> None:
        _ip("-n", self.server, "link", "set", self._server_end, "up")

    def get(self, port: int, path: str) -> tuple[int, str]:
        """GET http://127.0.0.1:port/path inside the client namespace (from a thread that entered it)."""
        if self._scraper is None:
            self._scraper = ThreadPoolExecutor(max_workers=1, initializer=self._enter_client)

        def fetch() -> tuple[int, str]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                return response.status, response.read().decode()
            finally:
                connection.close()

        return self._scraper.submit(fetch).result(timeout=30)

    def _enter_client(self) -> None:
        # setns changes the namespace of the calling thread only: the rest of the test process stays put.
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        descriptor = os.open(f"/run/netns/{self.client}", os.O_RDONLY)
        try:
            if libc.setns(descriptor, _CLONE_NEWNET) != 0:
                raise NetnsError(f"setns: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(descriptor)

    def close(self) -> None:
        """Delete both namespaces (the pair goes with them)."""
        if self._scraper is not None:
            self._scraper.shutdown(wait=True)
        for namespace in (self.client, self.server):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=30, check=False)
