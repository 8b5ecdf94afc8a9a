"""A network partition between a running exporter and its PostgreSQL, each in its own network namespace:
the exporter reports a timeout (packets vanish, nothing refuses them), recovers by itself within the backoff
bound once the network heals, and leaks no threads, descriptors or database connections.

Real parts: the `erp-exporter` command runs in the client namespace, a private PostgreSQL in the server
namespace, and the partition is the veth link between them going down (tests/netns.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import sample_value, wait_until
from netns import SERVER_ADDRESS, Link
from servers import EXPORTER_PASSWORD, EXPORTER_USER, PostgresServer, free_port

EXPORTER = str(Path(sys.executable).parent / "erp-exporter")
INTERVAL, TIMEOUT, CONNECT_TIMEOUT, BACKOFF_MAX = 1.0, 1.0, 2.0, 1.0
# Detected within one interval plus the timeout (plus scheduling slack on a loaded 2-core machine); recovered
# within the longest backoff, one interval, a connect and a probe after the network is back.
DETECT_WITHIN = INTERVAL + TIMEOUT + 3.0
RECOVER_WITHIN = BACKOFF_MAX + INTERVAL + CONNECT_TIMEOUT + TIMEOUT + 3.0
PARTITION_INTERVALS = 5


@pytest.fixture
def link() -> Iterator[Link]:
    with Link(uuid.uuid4().hex[:6]) as joined:
        yield joined


@pytest.fixture
def partitioned_postgres(link: Link) -> Iterator[PostgresServer]:
    """A private PostgreSQL in the link's server namespace (the session servers stay on the host's lo)."""
    base = Path(f"/tmp/exporter-partition-{uuid.uuid4().hex[:8]}")  # pytest's tmp is not traversable by postgres
    base.mkdir(mode=0o711)
    server = PostgresServer(base / "pg", netns=link.server, host=SERVER_ADDRESS)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(base)], check=False, timeout=60)


def process_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for {pid}")


def process_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def backends(server: PostgresServer) -> int:
    return int(server.psql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{EXPORTER_USER}'"))


def test_a_partition_is_a_timeout_recovers_within_the_backoff_bound_and_leaks_nothing(
    link: Link, partitioned_postgres: PostgresServer, tmp_path: Path
) -> None:
    server = partitioned_postgres
    config = tmp_path / "erp-exporter.yml"
    config.write_text(f"""
global: {{interval: {INTERVAL:g}s, timeout: {TIMEOUT:g}s, cancel_grace: 1s, jitter: 0}}
host: {{enabled: false}}
targets:
  - name: pg
    driver: PostgreSQL Unicode
    connection: {{server: {SERVER_ADDRESS}, port: {server.port}, database: appdb}}
    username: {EXPORTER_USER}
    password: {EXPORTER_PASSWORD}
    connect_timeout: {CONNECT_TIMEOUT:g}s
    backoff: {{initial: 200ms, max: {BACKOFF_MAX:g}s}}
    checks:
      - {{kind: db_response, interval: {INTERVAL:g}s, timeout: {TIMEOUT:g}s, fresh_connection: false}}
""")
    port = free_port()
    process = subprocess.Popen(
        ["ip", "netns", "exec", link.client, EXPORTER, f"--config.file={config}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def metrics() -> str | None:
        try:
            return link.get(port, "/metrics")[1]
        except OSError:
            return None

    def value(name: str, **labels: str) -> float | None:
        text = metrics()
        return sample_value(text, name, **labels) if text else None

    def errors(reason: str) -> float:
        return value("erp_check_errors_total", target="pg", check="db_response", reason=reason) or 0.0

    try:
        wait_until(lambda: value("erp_up", target="pg") == 1, 60, "the exporter never reached the database")
        time.sleep(3 * INTERVAL)  # a few pooled runs: the baseline is the steady state
        threads, descriptors = process_threads(process.pid), process_descriptors(process.pid)
        connections = backends(server)
        timeouts_before = errors("timeout")

        link.partition()
        cut = time.monotonic()
        wait_until(lambda: value("erp_up", target="pg") == 0, DETECT_WITHIN, "the partition was not reported")
        detected = time.monotonic() - cut
        wait_until(lambda: errors("timeout") > timeouts_before, DETECT_WITHIN, "the partition was not a timeout")
        time.sleep(PARTITION_INTERVALS * INTERVAL)
        assert value("erp_up", target="pg") == 0
        assert errors("connect") == 0, "a partition refuses nothing: it is not a connect failure"

        link.heal()
        healed = time.monotonic()
        wait_until(lambda: value("erp_up", target="pg") == 1, RECOVER_WITHIN, "no recovery within the backoff bound")
        recovered = time.monotonic() - healed
        print(f"\npartition: detected after {detected:.1f} s, recovered {recovered:.1f} s after the heal")

        wait_until(lambda: process_threads(process.pid) <= threads, 60,
                   f"threads leaked: {process_threads(process.pid)} > {threads}")
        wait_until(lambda: process_descriptors(process.pid) <= descriptors, 60,
                   f"descriptors leaked: {process_descriptors(process.pid)} > {descriptors}")
        wait_until(lambda: backends(server) <= connections, 60,
                   f"database connections leaked: {backends(server)} > {connections}")
        print(f"threads {threads} -> {process_threads(process.pid)}, descriptors {descriptors} -> "
              f"{process_descriptors(process.pid)}, database connections {connections} -> {backends(server)}")
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0
    wait_until(lambda: backends(server) == 0, 30, "connections stayed open after the exporter stopped")
