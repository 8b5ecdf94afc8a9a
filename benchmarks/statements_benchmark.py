"""Statements per minute the database receives from the exporter, against what its schedule sends, idle and
under 16 scrapers.

    .venv/bin/python -u benchmarks/statements_benchmark.py [--seconds 60]

A private PostgreSQL logs every statement with its user. The exporter watches it with db_response (15 s, a
fresh login each run), db_sessions (30 s), db_size (60 s) and privileges (10 min). After a warm-up of 20 s,
two windows of --seconds each: no scraper, then 16 threads scraping /metrics back to back. For each window:
the statements the server logged from the exporter's login per minute, the exporter's own count
(erp_database_statements_total: the statements it sends itself, session setup included) per minute, and the
difference: what the ODBC driver adds (psqlODBC's own statements on every new connection).
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from servers import EXPORTER_PASSWORD, EXPORTER_USER, PostgresServer, free_port  # noqa: E402

EXPORTER = Path(sys.executable).with_name("erp-exporter")


def scrape(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    return connection.getresponse().read().decode()


def sent(port: int) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in scrape(port).splitlines()
               if line.startswith("erp_database_statements_total"))


def logged(server: PostgresServer) -> int:
    return server.log_file.read_text(errors="replace").count(f"user={EXPORTER_USER} LOG:  statement:")


def window(server: PostgresServer, port: int, seconds: float, scrapers: int) -> tuple[float, float, int]:
    """(logged per minute, sent per minute, scrapes made) over one window."""
    stop = threading.Event()
    scrapes = [0] * scrapers

    def hammer(index: int) -> None:
        while not stop.is_set():
            scrape(port)
            scrapes[index] += 1

    threads = [threading.Thread(target=hammer, args=(index,), daemon=True) for index in range(scrapers)]
    logged_before, sent_before = logged(server), sent(port)
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(15)
    time.sleep(0.5)  # the last statements reach the log
    per_minute = 60.0 / seconds
    return ((logged(server) - logged_before) * per_minute, (sent(port) - sent_before) * per_minute, sum(scrapes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        work.chmod(0o755)  # the server runs as the postgres OS user
        server = PostgresServer(work / "pg", {"log_statement": "all", "log_line_prefix": "user=%u "})
        server.start()
        try:
            config = work / "pg.yml"
            config.write_text(f"""
host: {{enabled: false}}
targets:
  - name: pg
    driver: PostgreSQL Unicode
    connection: {{server: {server.host}, port: {server.port}, database: postgres}}
    username: {EXPORTER_USER}
    password: {EXPORTER_PASSWORD}
    checks:
      - {{kind: db_response, interval: 15s, timeout: 5s}}
      - {{kind: db_sessions, interval: 30s, timeout: 5s}}
      - {{kind: db_size, interval: 60s, timeout: 10s}}
      - {{kind: privileges, interval: 10m, timeout: 10s}}
""")
            port = free_port()
            process = subprocess.Popen([str(EXPORTER), f"--config.file={config}",
                                        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"])
            try:
                time.sleep(20)
                for scrapers in (0, 16):
                    server_count, own_count, scrapes = window(server, port, args.seconds, scrapers)
                    print(f"{scrapers:2d} scrapers ({scrapes} scrapes): the server logged {server_count:.1f} "
                          f"statements/min from the exporter's login; the exporter sent {own_count:.1f}/min "
                          f"itself; the driver added {server_count - own_count:.1f}/min")
            finally:
                process.terminate()
                process.wait(10)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
