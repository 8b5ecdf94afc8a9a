"""Index health and, on PostgreSQL, vacuum, analyze and transaction-ID age: the periodic "equipment
maintenance" of the ERP database.

What each dialect can tell (a metric a dialect cannot provide is not published for it):

* erp_database_invalid_indexes: PostgreSQL `pg_index.indisvalid = false` (what a failed CREATE INDEX
  CONCURRENTLY leaves behind). MariaDB and MySQL have no such state.
* erp_database_unused_indexes: PostgreSQL `pg_stat_user_indexes.idx_scan = 0`. MariaDB with `userstat`
  on (`information_schema.INDEX_STATISTICS`) or with `performance_schema` on
  (`table_io_waits_summary_by_index_usage`, what `sys.schema_unused_indexes` reads); MySQL with
  `performance_schema` on. MariaDB ships both off: then the metric is not published.
* erp_database_duplicate_indexes: PostgreSQL: same table, access method, columns or expressions,
  operator classes, collations, sort options and predicate. MariaDB/MySQL (`information_schema.STATISTICS`):
  same table, index type and columns (with prefix lengths and sort order).
* erp_database_oldest_vacuum_age_seconds, erp_database_oldest_analyze_age_seconds (`pg_stat_user_tables`)
  and erp_database_transaction_id_age (`age(pg_database.datfrozenxid)`): PostgreSQL only.
* SQLite: nothing (no statistics of index use, no vacuum age); the check publishes nothing there.

* Unused indexes leave out unique and primary-key indexes (they enforce a rule, used or not), exclusion
  constraints and invalid indexes (counted as invalid). "Unused" means: not scanned since the statistics
  were last reset (PostgreSQL `pg_stat_reset`, a crash) or collected (MariaDB: since `userstat` was
  switched on or `FLUSH INDEX_STATISTICS`; with `performance_schema`: since the server started). Where
  neither MariaDB source is on, the metric is not published (MariaDB ships both off).
* A duplicate is an index that repeats another on the same table: a pair counts 1, three alike count 2
  (the indexes that could be dropped). Only valid indexes are compared.
* The vacuum and analyze ages are those of the user table vacuumed (analyzed) longest ago; a table never
  vacuumed (analyzed) since the statistics reset is left out. When no table ever was, the value is NULL
  and counted as a skipped value.
* The login needs no extra grant on PostgreSQL for these; on MariaDB it sees the indexes of the tables
  it has privileges on (and needs SELECT on performance_schema for that source).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from exporter.checks.base import BaseCheck, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings
from exporter.db.dialect import Dialect
from exporter.db.target import Session, TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, gauge

INVALID_INDEXES = gauge(
    "erp_database_invalid_indexes", "Indexes left invalid (a failed CREATE INDEX CONCURRENTLY): unused, still written."
)
UNUSED_INDEXES = gauge(
    "erp_database_unused_indexes",
    "Non-unique indexes never scanned since the statistics were reset: candidates to drop.",
)
DUPLICATE_INDEXES = gauge(
    "erp_database_duplicate_indexes", "Indexes that repeat another index of the same table (could be dropped)."
)
OLDEST_VACUUM_AGE = gauge(
    "erp_database_oldest_vacuum_age_seconds", "Time since the user table vacuumed longest ago was vacuumed."
)
OLDEST_ANALYZE_AGE = gauge(
    "erp_database_oldest_analyze_age_seconds", "Time since the user table analyzed longest ago was analyzed."
)
TRANSACTION_ID_AGE = gauge(
    "erp_database_transaction_id_age",
    "Transactions since the database's oldest unfrozen transaction ID (wraparound is at about 2 billion).",
)

_PG_USER_INDEX = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"

PG_MAINTENANCE_SQL = f"""
    SELECT
      (SELECT count(*) FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT i.indisvalid AND {_PG_USER_INDEX}) AS invalid_indexes,
      (SELECT count(*) FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
        WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisexclusion AND i.indisvalid
      ) AS unused_indexes,
      (SELECT coalesce(sum(g.same - 1), 0) FROM (
        SELECT count(*) AS same FROM pg_index i
          JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE i.indisvalid AND {_PG_USER_INDEX}
          GROUP BY i.indrelid, c.relam, i.indkey::text, i.indclass::text, i.indcollation::text,
            i.indoption::text, coalesce(pg_get_expr(i.indexprs, i.indrelid), ''),
            coalesce(pg_get_expr(i.indpred, i.indrelid), '')
          HAVING count(*) > 1) g) AS duplicate_indexes,
      (SELECT max(extract(epoch FROM clock_timestamp() - greatest(last_vacuum, last_autovacuum)))
        FROM pg_stat_user_tables) AS oldest_vacuum_age,
      (SELECT max(extract(epoch FROM clock_timestamp() - greatest(last_analyze, last_autoanalyze)))
        FROM pg_stat_user_tables) AS oldest_analyze_age,
      (SELECT age(datfrozenxid) FROM pg_database WHERE datname = current_database()) AS transaction_id_age
"""

# Indexes of the connection's database, one row each, with their columns in order as one string.
_MYSQL_INDEXES = """
    SELECT TABLE_NAME, INDEX_NAME, INDEX_TYPE,
      GROUP_CONCAT(COLUMN_NAME, '(', COALESCE(SUB_PART, ''), ')', COALESCE(COLLATION, '')
        ORDER BY SEQ_IN_INDEX SEPARATOR ',') AS index_columns
    FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()
    GROUP BY TABLE_NAME, INDEX_NAME, INDEX_TYPE"""
_MYSQL_DUPLICATES = f"""
    (SELECT COALESCE(SUM(g.same - 1), 0) FROM (
      SELECT COUNT(*) AS same FROM ({_MYSQL_INDEXES}) x
      GROUP BY x.TABLE_NAME, x.INDEX_TYPE, x.index_columns HAVING COUNT(*) > 1) g) AS duplicate_indexes"""

# First statement: duplicates and which source of index usage is switched on.
MARIADB_MAINTENANCE_SQL = f"SELECT {_MYSQL_DUPLICATES}, @@performance_schema, @@userstat"
MYSQL_MAINTENANCE_SQL = f"SELECT {_MYSQL_DUPLICATES}, @@performance_schema, 0"

_MYSQL_NON_UNIQUE = """
    SELECT DISTINCT s.TABLE_SCHEMA, s.TABLE_NAME, s.INDEX_NAME FROM information_schema.STATISTICS s
    WHERE s.TABLE_SCHEMA = DATABASE() AND s.NON_UNIQUE = 1"""
MYSQL_UNUSED_PERFORMANCE_SCHEMA_SQL = f"""
    SELECT COUNT(*) FROM ({_MYSQL_NON_UNIQUE}) s
    JOIN performance_schema.table_io_waits_summary_by_index_usage w
      ON w.OBJECT_SCHEMA = s.TABLE_SCHEMA AND w.OBJECT_NAME = s.TABLE_NAME AND w.INDEX_NAME = s.INDEX_NAME
    WHERE w.COUNT_STAR = 0
"""
MARIADB_UNUSED_USERSTAT_SQL = f"""
    SELECT COUNT(*) FROM ({_MYSQL_NON_UNIQUE}) s
    WHERE NOT EXISTS (SELECT 1 FROM information_schema.INDEX_STATISTICS u
      WHERE u.TABLE_SCHEMA = s.TABLE_SCHEMA AND u.TABLE_NAME = s.TABLE_NAME AND u.INDEX_NAME = s.INDEX_NAME)
"""

_MISSING = object()  # a metric the dialect cannot provide: not published (unlike None: NULL, skipped)


@dataclass(frozen=True)
class Maintenance:
    """One reading. A value is a raw database value (None for NULL), or _MISSING where not available."""

    invalid_indexes: object = _MISSING
    unused_indexes: object = _MISSING
    duplicate_indexes: object = _MISSING
    oldest_vacuum_age: object = _MISSING
    oldest_analyze_age: object = _MISSING
    transaction_id_age: object = _MISSING


_SPECS = (
    ("invalid_indexes", INVALID_INDEXES),
    ("unused_indexes", UNUSED_INDEXES),
    ("duplicate_indexes", DUPLICATE_INDEXES),
    ("oldest_vacuum_age", OLDEST_VACUUM_AGE),
    ("oldest_analyze_age", OLDEST_ANALYZE_AGE),
    ("transaction_id_age", TRANSACTION_ID_AGE),
)


def maintenance_to_families(maintenance: Maintenance) -> list[MetricFamily]:
    """Pure conversion, the part unit tests call."""
    families = []
    for field_name, spec in _SPECS:
        value = getattr(maintenance, field_name)
        if value is not _MISSING:
            families.append(spec.family().add_raw(value))
    return families


def fetch_maintenance(session: Session) -> Maintenance | None:
    dialect = session.dialect
    if dialect is Dialect.POSTGRESQL:
        row = session.query(PG_MAINTENANCE_SQL, max_rows=1).rows[0]
        return Maintenance(*row[:6])
    if dialect is not Dialect.MYSQL:
        return None
    mariadb = session.connection.dbms_name.lower().startswith("mariadb")
    first = session.query(MARIADB_MAINTENANCE_SQL if mariadb else MYSQL_MAINTENANCE_SQL, max_rows=1).rows[0]
    duplicates, performance_schema, userstat = first[:3]
    unused: object = _MISSING
    if _on(performance_schema):
        unused = session.query(MYSQL_UNUSED_PERFORMANCE_SCHEMA_SQL, max_rows=1).scalar()
    elif _on(userstat):
        unused = session.query(MARIADB_UNUSED_USERSTAT_SQL, max_rows=1).scalar()
    return Maintenance(unused_indexes=unused, duplicate_indexes=duplicates)


def _on(value: object) -> bool:
    return str(value).strip().lower() in {"1", "on", "true"}


class DbMaintenanceCheck(BaseCheck):
    kind: ClassVar[str] = "db_maintenance"
    metrics: ClassVar[tuple[MetricSpec, ...]] = tuple(spec for _, spec in _SPECS)

    def __init__(self, name: str, database: TargetDatabase) -> None:
        super().__init__(name)
        self._database = database

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._database.session(ctx) as session:
            maintenance = fetch_maintenance(session)
        return [] if maintenance is None else maintenance_to_families(maintenance)


def _build(settings: CheckSettings, database: TargetDatabase) -> DbMaintenanceCheck:
    return DbMaintenanceCheck(settings.effective_name, database)


def check_kind() -> CheckKind:
    """`db_maintenance`: one check per entry of a target."""
    return CheckKind("db_maintenance", DbMaintenanceCheck.metrics, build_for_target=one_check_per_entry(_build))
