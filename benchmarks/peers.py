"""The exporters the side-by-side benchmark runs, each configured for the same work.

The work: one PostgreSQL query of N rows (one series each: a label `id` and a value) and S one-row queries,
all every 15 s where the exporter has an interval (postgres_exporter has none: it queries on every scrape).
The peers come from `make peers`: Debian's packages unpacked with `dpkg -x` (no service starts) and
query-exporter in a virtualenv of its own, all under var/peers.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "var" / "peers"
ERP_EXPORTER = Path(sys.executable).with_name("erp-exporter")


@dataclass(frozen=True)
class Database:
    """Where the benchmark's PostgreSQL listens and the login the exporters use."""

    host: str
    port: int
    user: str
    password: str
    name: str

    def url(self, scheme: str = "postgresql") -> str:
        """A URL for drivers that take one (Go's lib/pq wants `postgres`, SQLAlchemy `postgresql`)."""
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"


@dataclass(frozen=True)
class Work:
    """What every exporter is asked to export."""

    series: int
    small_queries: int

    @property
    def big_sql(self) -> str:
        return f"SELECT id::text AS id, id * 1.5 AS value FROM generate_series(1, {self.series}) AS id"

    def small_sql(self, index: int) -> str:
        return f"SELECT {index} AS value"


@dataclass(frozen=True)
class Launch:
    """One exporter process to start: its command line, extra environment and the series name to count."""

    command: list[str]
    row_metric: str
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Peer:
    """An exporter of the comparison: its name, version and how to configure it in a work directory."""

    name: str
    version: str
    launch: Callable[[Path, int, Database, Work], Launch]
    binary: Path

    def installed(self) -> bool:
        return self.binary.exists()


def _erp_exporter(code: Path | None) -> Callable[[Path, int, Database, Work], Launch]:
    def launch(work_dir: Path, port: int, database: Database, work: Work) -> Launch:
        smalls = "".join(f"""  - name: small{index}
    interval: 15s
    columns: [value]
    sql:
      postgresql: {work.small_sql(index)}
    metrics:
      - name: erp_bench_small{index}
        help: A one-row benchmark query.
        value: value
""" for index in range(work.small_queries))
        pack = work_dir / "bench-pack.yml"
        pack.write_text(f"""name: bench
description: Benchmark pack.
erp: bench
queries:
  - name: rows
    interval: 15s
    columns: [id, value]
    sql:
      postgresql: {work.big_sql}
    metrics:
      - name: erp_bench_row_value
        help: One row of the big benchmark query.
        value: value
        labels: [id]
{smalls}""")
        config = work_dir / "erp-exporter.yml"
        config.write_text(f"""global:
  series_limit: {work.series + 1000}
host: {{enabled: false}}
targets:
  - name: bench
    driver: PostgreSQL Unicode
    connection: {{server: {database.host}, port: {database.port}, database: {database.name}}}
    username: {database.user}
    password: {database.password}
    checks:
      - kind: pack
        pack: {pack}
""")
        environment = {"PYTHONPATH": str(code)} if code else {}
        return Launch([str(ERP_EXPORTER), f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                       "--log.level=warn"], "erp_bench_row_value{", environment)
    return launch


def _sql_exporter(work_dir: Path, port: int, database: Database, work: Work) -> Launch:
    smalls = "".join(f"""      - name: small{index}
        help: A one-row benchmark query.
        values: [value]
        query: {work.small_sql(index)}
""" for index in range(work.small_queries))
    config = work_dir / "sql-exporter.yml"
    config.write_text(f"""jobs:
  - name: bench
    interval: 15s
    connections: ["{database.url('postgres')}?sslmode=disable"]
    queries:
      - name: bench_row_value
        help: One row of the big benchmark query.
        labels: [id]
        values: [value]
        query: {work.big_sql}
{smalls}""")
    return Launch([str(PEERS / "debian/usr/bin/prometheus-sql-exporter"), f"-config.file={config}",
                   f"-web.listen-address=127.0.0.1:{port}"], "sql_bench_row_value{",
                  {"LOGLEVEL": "warn"})


def _query_exporter(work_dir: Path, port: int, database: Database, work: Work) -> Launch:
    metrics = "".join(f"""  small{index}:
    type: gauge
    description: A one-row benchmark query.
""" for index in range(work.small_queries))
    queries = "".join(f"""  small{index}:
    interval: 15
    databases: [pg]
    metrics: [small{index}]
    sql: SELECT {index} AS small{index}
""" for index in range(work.small_queries))
    config = work_dir / "query-exporter.yml"
    config.write_text(f"""databases:
  pg:
    dsn: {database.url()}
metrics:
  bench_row_value:
    type: gauge
    description: One row of the big benchmark query.
    labels: [id]
{metrics}queries:
  rows:
    interval: 15
    databases: [pg]
    metrics: [bench_row_value]
    sql: SELECT id::text AS id, id * 1.5 AS bench_row_value FROM generate_series(1, {work.series}) AS id
{queries}""")
    return Launch([str(PEERS / "query-exporter/bin/query-exporter"), f"--config={config}", "--host=127.0.0.1",
                   f"--port={port}", "--log-level=warning"], "bench_row_value{")


def _postgres_exporter(work_dir: Path, port: int, database: Database, work: Work) -> Launch:
    smalls = "".join(f"""small{index}:
  query: "{work.small_sql(index)}"
  metrics:
    - value: {{usage: GAUGE, description: A one-row benchmark query.}}
""" for index in range(work.small_queries))
    queries = work_dir / "postgres-exporter-queries.yml"
    queries.write_text(f"""bench:
  query: "{work.big_sql}"
  metrics:
    - id: {{usage: LABEL, description: Row number.}}
    - value: {{usage: GAUGE, description: One row of the big benchmark query.}}
{smalls}""")
    return Launch([str(PEERS / "debian/usr/bin/prometheus-postgres-exporter"), f"--extend.query-path={queries}",
                   "--disable-default-metrics", "--disable-settings-metrics",
                   f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], "bench_value{",
                  {"DATA_SOURCE_NAME": f"{database.url('postgres')}?sslmode=disable"})


def peers(compare: dict[str, Path] | None = None) -> list[Peer]:
    """erp-exporter (the checkout, and any other code trees to compare, by label) and the three peers."""
    others = [Peer(f"erp-exporter {label}", str(code), _erp_exporter(code), ERP_EXPORTER)
              for label, code in (compare or {}).items()]
    return [
        Peer("erp-exporter", "this checkout", _erp_exporter(None), ERP_EXPORTER),
        *others,
        Peer("sql_exporter", "0.4.5 (Debian)", _sql_exporter, PEERS / "debian/usr/bin/prometheus-sql-exporter"),
        Peer("query-exporter", "5.0.2 (PyPI)", _query_exporter, PEERS / "query-exporter/bin/query-exporter"),
        Peer("postgres_exporter", "0.11.1 (Debian, custom queries)", _postgres_exporter,
             PEERS / "debian/usr/bin/prometheus-postgres-exporter"),
    ]


def clean_environment() -> dict[str, str]:
    """The benchmark's own environment without PG* variables that would redirect a peer's connection."""
    return {name: value for name, value in os.environ.items() if not name.startswith("PG")}
