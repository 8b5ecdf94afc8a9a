"""Database size and the largest tables. Growth is a rate Prometheus computes from these gauges
(`deriv(erp_database_size_bytes[6h])`), not something the exporter keeps.

The tables are the top N by size only (`top_tables`, at most 100), so the number of series stays bounded
however many tables the ERP has (Tryton has hundreds). Built-in SQL per dialect:

* PostgreSQL: `pg_database_size(current_database())`; tables (and materialized views) outside the
  system schemas by `pg_total_relation_size` (heap, TOAST and indexes), labelled `schema.table`; rows
  are the planner's estimate `pg_class.reltuples` (set by VACUUM/ANALYZE; before the first one,
  `pg_stat_user_tables.n_live_tup`).
* MariaDB/MySQL: `information_schema.TABLES` of the connection's database, `DATA_LENGTH + INDEX_LENGTH`
  for the database and each base table (labelled with the table name); rows are `TABLE_ROWS` (an
  estimate for InnoDB). The sizes are InnoDB's statistics, refreshed by ANALYZE TABLE and automatically
  after enough changes, so they lag behind recent writes.
* SQLite: `page_count * page_size` (the size of the main database file); tables by the pages they and
  their indexes use in the `dbstat` virtual table, when the SQLite library was built with it
  (SQLITE_ENABLE_DBSTAT_VTAB, as Debian's is); otherwise only the database size. SQLite keeps no
  row estimate short of counting, so `erp_database_table_rows` is not published for SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from exporter.checks.base import BaseCheck, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings, DbSizeCheckConfig
from exporter.db.dialect import Dialect
from exporter.db.target import Session, TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, gauge

DATABASE_SIZE = gauge("erp_database_size_bytes", "Size of the database on disk.")
TABLE_SIZE = gauge(
    "erp_database_table_size_bytes", "Size of one of the largest tables, its indexes included (top N).", "table"
)
TABLE_ROWS = gauge("erp_database_table_rows", "Estimated rows of one of the largest tables (top N).", "table")

DEFAULT_TOP_TABLES = 10
MAX_TOP_TABLES = 100


def pg_size_sql(top_tables: int) -> str:
    # One row even without tables (LEFT JOIN ON true): the database size always comes back.
    return f"""
    SELECT d.size_bytes, t.table_name, t.table_bytes, t.table_rows
    FROM (SELECT pg_database_size(current_database()) AS size_bytes) d
    LEFT JOIN (
      SELECT n.nspname || '.' || c.relname AS table_name, pg_total_relation_size(c.oid) AS table_bytes,
        CASE WHEN c.reltuples >= 0 THEN c.reltuples ELSE s.n_live_tup END AS table_rows
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
      WHERE c.relkind IN ('r', 'm') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 3 DESC, 1
      LIMIT {int(top_tables)}
    ) t ON true
    ORDER BY t.table_bytes DESC, t.table_name
    """


def mysql_size_sql(top_tables: int) -> str:
    return f"""
    SELECT d.size_bytes, t.TABLE_NAME, t.table_bytes, t.TABLE_ROWS
    FROM (
      SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS size_bytes
      FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()
    ) d
    LEFT JOIN (
      SELECT TABLE_NAME, DATA_LENGTH + INDEX_LENGTH AS table_bytes, TABLE_ROWS
      FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
      ORDER BY DATA_LENGTH + INDEX_LENGTH DESC, TABLE_NAME
      LIMIT {int(top_tables)}
    ) t ON 1 = 1
    ORDER BY t.table_bytes DESC, t.TABLE_NAME
    """


SQLITE_SIZE_SQL = """
    SELECT c.page_count * s.page_size,
      (SELECT count(*) FROM pragma_compile_options WHERE compile_options = 'ENABLE_DBSTAT_VTAB')
    FROM pragma_page_count() c, pragma_page_size() s
"""


def sqlite_tables_sql(top_tables: int) -> str:
    # dbstat's aggregate form ('main', 1): one row per table or index, not per page.
    return f"""
    SELECT m.tbl_name, sum(d.pgsize) AS table_bytes, NULL
    FROM dbstat('main', 1) d JOIN sqlite_master m ON m.name = d.name
    GROUP BY m.tbl_name
    ORDER BY 2 DESC, 1
    LIMIT {int(top_tables)}
    """


@dataclass(frozen=True)
class TableSize:
    table: str
    size_bytes: object
    rows: object  # None where the dialect has no estimate: then no rows series at all


@dataclass(frozen=True)
class DatabaseSize:
    size_bytes: object
    tables: tuple[TableSize, ...]
    has_row_estimates: bool


def size_to_families(size: DatabaseSize) -> list[MetricFamily]:
    """Pure conversion, the part unit tests call."""
    families = [DATABASE_SIZE.family().add_raw(size.size_bytes)]
    table_sizes = TABLE_SIZE.family()
    table_rows = TABLE_ROWS.family()
    for table in size.tables:
        table_sizes.add_raw(table.size_bytes, table=table.table)
        if size.has_row_estimates:
            table_rows.add_raw(table.rows, table=table.table)
    families.append(table_sizes)
    if size.has_row_estimates:
        families.append(table_rows)
    return families


def fetch_size(session: Session, top_tables: int) -> DatabaseSize | None:
    dialect = session.dialect
    if dialect is Dialect.SQLITE:
        row = session.query(SQLITE_SIZE_SQL, max_rows=1).rows[0]
        tables: tuple[TableSize, ...] = ()
        if top_tables > 0 and row[1]:
            rows = session.query(sqlite_tables_sql(top_tables), max_rows=top_tables).rows
            tables = tuple(TableSize(str(name), size, None) for name, size, _ in rows)
        return DatabaseSize(row[0], tables, has_row_estimates=False)
    if dialect is Dialect.POSTGRESQL:
        sql = pg_size_sql(top_tables)
    elif dialect is Dialect.MYSQL:
        sql = mysql_size_sql(top_tables)
    else:
        return None
    rows = session.query(sql, max_rows=top_tables + 1).rows
    if not rows:
        return None
    tables = tuple(TableSize(str(name), size, estimate) for _, name, size, estimate in rows if name is not None)
    return DatabaseSize(rows[0][0], tables, has_row_estimates=True)


class DbSizeCheck(BaseCheck):
    kind: ClassVar[str] = "db_size"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (DATABASE_SIZE, TABLE_SIZE, TABLE_ROWS)

    def __init__(self, name: str, database: TargetDatabase, top_tables: int = DEFAULT_TOP_TABLES) -> None:
        super().__init__(name)
        if not 0 <= top_tables <= MAX_TOP_TABLES:
            raise ValueError(f"top_tables must be between 0 and {MAX_TOP_TABLES}")
        self._database = database
        self._top_tables = top_tables

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._database.session(ctx) as session:
            size = fetch_size(session, self._top_tables)
        return [] if size is None else size_to_families(size)


def _build(settings: CheckSettings, database: TargetDatabase) -> DbSizeCheck:
    assert isinstance(settings, DbSizeCheckConfig)
    return DbSizeCheck(settings.effective_name, database, top_tables=settings.top_tables)


def check_kind() -> CheckKind:
    """`db_size`: one check per entry of a target."""
    return CheckKind("db_size", DbSizeCheck.metrics, build_for_target=one_check_per_entry(_build))
