"""Replication: is the target a replica, and how far behind are the replicas.

* PostgreSQL, one statement. `erp_database_is_replica` is `pg_is_in_recovery()`.
  - A server with streaming replicas (a primary, or a standby with cascading replicas) publishes one
    `erp_database_replication_lag_seconds{replica}` per row of `pg_stat_replication`: its `replay_lag`.
    PostgreSQL shows NULL there once a replica has caught up and no WAL is flowing; when it has replayed
    everything sent, the lag is 0, otherwise the value is NULL (counted as skipped). `replica` is the
    replica's `application_name`, or `application_name@client_addr` when that name is empty or shared
    by several replicas (the default name of every standby is `walreceiver`: set `application_name` in
    the standbys' primary_conninfo, or `cluster_name`, to get stable labels).
  - A standby also publishes its own lag with `replica=""` (the target itself): 0 when it has replayed
    all WAL it received, otherwise the time since the last replayed transaction committed on the primary.
  - The login needs `pg_monitor` (or `pg_read_all_stats`) to read the positions of the replicas.
* MariaDB: `SHOW ALL SLAVES STATUS` (every replication connection), MySQL: `SHOW REPLICA STATUS`. A server
  that replicates from a primary is a replica; it publishes `Seconds_Behind_Master` (`_Source`) per
  connection, `replica` being the connection (channel) name ("" for the default one). NULL when the
  replication SQL thread is not running: counted as skipped. A MariaDB primary does not know its
  replicas' lag, so nothing is published for them there. The login needs `REPLICA MONITOR` (MariaDB
  10.5+; older: `REPLICATION CLIENT`), MySQL `REPLICATION CLIENT`.
* SQLite has no replication: the check publishes nothing there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from exporter.checks.base import BaseCheck, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings
from exporter.db.dialect import Dialect
from exporter.db.target import Session, TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, gauge, to_float

REPLICATION_LAG = gauge(
    "erp_database_replication_lag_seconds",
    'How far a replica is behind its primary (replica="": this target, a replica itself).',
    "replica",
)
IS_REPLICA = gauge("erp_database_is_replica", "1 when the target is a replica (standby), 0 when it is a primary.")

PG_REPLICATION_SQL = """
    SELECT r.in_recovery, r.own_lag, s.application_name, host(s.client_addr) AS client_addr,
      CASE WHEN s.replay_lag IS NOT NULL THEN extract(epoch FROM s.replay_lag)
        WHEN s.replay_lsn = s.sent_lsn THEN 0 END AS replica_lag,
      s.pid
    FROM (
      SELECT pg_is_in_recovery() AS in_recovery,
        CASE WHEN NOT pg_is_in_recovery() THEN NULL
          WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
          ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()) END AS own_lag
    ) r
    LEFT JOIN pg_stat_replication s ON true
    ORDER BY s.application_name, client_addr, s.pid
"""
MARIADB_REPLICATION_SQL = "SHOW ALL SLAVES STATUS"
MYSQL_REPLICATION_SQL = "SHOW REPLICA STATUS"


@dataclass(frozen=True)
class ReplicaLag:
    replica: str
    lag_seconds: object  # raw: None is NULL (skipped)


@dataclass(frozen=True)
class Replication:
    is_replica: bool
    lags: tuple[ReplicaLag, ...]


def replication_to_families(replication: Replication) -> list[MetricFamily]:
    """Pure conversion, the part unit tests call."""
    lag = REPLICATION_LAG.family()
    for replica in replication.lags:
        lag.add_raw(replica.lag_seconds, replica=replica.replica)
    return [IS_REPLICA.family().add(1.0 if replication.is_replica else 0.0), lag]


def replica_labels(replicas: list[tuple[str | None, str | None]]) -> list[str]:
    """`replica` label values for (application_name, client_addr) pairs, in the same order: the name,
    or name@address when the name is empty or not unique; a replica over a Unix socket is 'local'."""
    names = Counter(name or "" for name, _ in replicas)
    labels = []
    for raw_name, address in replicas:
        name = raw_name or ""
        labels.append(name if name and names[name] == 1 else f"{name}@{address or 'local'}")
    # Two replicas with the same name on the same host: number them, so no two series collide.
    seen: Counter[str] = Counter()
    unique = []
    for label in labels:
        seen[label] += 1
        unique.append(label if labels.count(label) == 1 else f"{label}#{seen[label]}")
    return unique


def fetch_replication(session: Session) -> Replication | None:
    dialect = session.dialect
    if dialect is Dialect.POSTGRESQL:
        rows = session.query(PG_REPLICATION_SQL, max_rows=1000).rows
        if not rows:
            return None
        in_recovery = (to_float(rows[0][0]) or 0.0) > 0
        streaming = [row for row in rows if row[5] is not None]
        labels = replica_labels([(row[2], row[3]) for row in streaming])
        lags = [ReplicaLag(label, row[4]) for label, row in zip(labels, streaming, strict=True)]
        if in_recovery:
            lags.insert(0, ReplicaLag("", rows[0][1]))
        return Replication(in_recovery, tuple(lags))
    if dialect is Dialect.MYSQL:
        mariadb = session.connection.dbms_name.lower().startswith("mariadb")
        result = session.query(MARIADB_REPLICATION_SQL if mariadb else MYSQL_REPLICATION_SQL, max_rows=1000)
        lags = []
        for row in result.dicts():
            name = row.get("connection_name", row.get("channel_name")) or ""
            lag = row.get("seconds_behind_master", row.get("seconds_behind_source"))
            lags.append(ReplicaLag(str(name), lag))
        return Replication(bool(lags), tuple(lags))
    return None


class ReplicationCheck(BaseCheck):
    kind: ClassVar[str] = "replication"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (REPLICATION_LAG, IS_REPLICA)

    def __init__(self, name: str, database: TargetDatabase) -> None:
        super().__init__(name)
        self._database = database

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._database.session(ctx) as session:
            replication = fetch_replication(session)
        return [] if replication is None else replication_to_families(replication)


def _build(settings: CheckSettings, database: TargetDatabase) -> ReplicationCheck:
    return ReplicationCheck(settings.effective_name, database)


def check_kind() -> CheckKind:
    """`replication`: one check per entry of a target."""
    return CheckKind("replication", ReplicationCheck.metrics, build_for_target=one_check_per_entry(_build))
