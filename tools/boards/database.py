"""The database board: sessions, activity, size, maintenance, replication."""

from __future__ import annotations

from typing import Any

from boards import kit
from boards.kit import Board, Limits, Query, T, sel
from exporter.signals.database import CONNECTIONS_USED, SIZE_GROWTH


def database(limits: Limits) -> dict[str, Any]:
    board = Board("erp-database", "ERP database health",
                  "Sessions, long queries and locks, size and the largest tables, index health, vacuum and "
                  "transaction-ID age, replication, backups and the database log.", "now-6h", "30s", ["database"])
    saturated = CONNECTIONS_USED.alert
    long_queries = "ErpDatabaseLongRunningQueries"
    blocked = "ErpDatabaseBlockedSessions"
    xid = "ErpDatabaseTransactionIdWraparound"
    lag = "ErpDatabaseReplicationLag"
    stale = "ErpBackupStale"
    log_errors = "ErpLogErrors"
    log_window = limits.value(log_errors, "window")
    error_matches = sel("erp_log_matches_total", kit.INST, f'pattern=~"{limits.selectors["log_error_patterns"]}"')

    board.row("Sessions")
    board.timeseries("Sessions by state", "Database sessions: active, idle, idle in transaction, waiting on a lock.",
                     "short", [Query(f"sum by (target, state) ({sel('erp_database_sessions', T)})",
                                     "{{target}} {{state}}")], stack=True)
    board.timeseries("Connections used", f"Connections / max_connections ({saturated}).", "percentunit",
                     [Query(sel(CONNECTIONS_USED.record, T), "{{target}}")],
                     kit.above(limits.value(saturated, "warning"), limits.value(saturated, "critical")), minimum=0)
    board.row("Queries and locks")
    board.timeseries("Long-running queries", f"Queries running longer than the check's threshold ({long_queries} "
                     "warning on any).", "short",
                     [Query(sel("erp_database_long_running_queries", T), "{{target}}")],
                     kit.above(limits.value(long_queries, "warning"), count=True), width=6)
    board.timeseries("Oldest running query", f"Age of the oldest running query ({long_queries} critical), and the "
                     "threshold above which a query counts as long-running.", "s",
                     [Query(sel("erp_database_oldest_query_age_seconds", T), "{{target}}"),
                      Query(sel("erp_database_long_running_query_threshold_seconds", T),
                            "{{target}} long-running from")],
                     kit.above(critical=limits.value(long_queries, "critical")), width=6)
    board.timeseries("Blocked sessions", f"Sessions waiting for a lock another session holds ({blocked} warning).",
                     "short", [Query(sel("erp_database_blocked_sessions", T), "{{target}}")],
                     kit.above(limits.value(blocked, "warning"), count=True), width=6)
    board.timeseries("Longest lock wait", f"How long the longest current lock wait has lasted ({blocked} critical).",
                     "s", [Query(sel("erp_database_lock_wait_longest_seconds", T), "{{target}}")],
                     kit.above(critical=limits.value(blocked, "critical")), width=6)
    board.row("Size")
    board.timeseries("Database size", "Size of the database on disk.", "bytes",
                     [Query(sel("erp_database_size_bytes", T), "{{target}}")], width=8)
    board.timeseries("Database growth per day", "deriv over 6 hours (recording rule erp:database_size_bytes:deriv6h), "
                     "per day.", "bytes", [Query(f"{sel(SIZE_GROWTH.record, T)} * 86400", "{{target}}")],
                     width=8)
    board.bar_gauge("Largest tables", "The largest tables with their indexes (the check's top N).", "bytes",
                    [Query(f"sort_desc({sel('erp_database_table_size_bytes', T)})", "{{target}}: {{table}}",
                           instant=True)], width=8)
    board.table("Largest tables: size and rows", "Size (indexes included) and estimated rows of the largest tables.",
                "bytes", [Query(sel("erp_database_table_size_bytes", T), table=True),
                          Query(sel("erp_database_table_rows", T), table=True)],
                {"target": "Target", "table": "Table", "Value #A": "Size", "Value #B": "Rows"},
                column_units={"Rows": "short"}, sort_by="Size")
    board.row("Index health and maintenance")
    board.stat("Invalid indexes", "Indexes left invalid by a failed CREATE INDEX CONCURRENTLY "
               "(ErpDatabaseInvalidIndexes).", "none", [Query(sel("erp_database_invalid_indexes", T), "{{target}}")],
               kit.above(limits.value("ErpDatabaseInvalidIndexes", "warning"), count=True))
    board.stat("Unused indexes", "Non-unique indexes never scanned since the statistics were reset.", "none",
               [Query(sel("erp_database_unused_indexes", T), "{{target}}")])
    board.stat("Duplicate indexes", "Indexes that repeat another index of the same table.", "none",
               [Query(sel("erp_database_duplicate_indexes", T), "{{target}}")])
    board.stat("Replication role", "Whether each target is a primary or a replica.", "none",
               [Query(sel("erp_database_is_replica", T), "{{target}}")],
               mappings={0: ("primary", kit.GREEN), 1: ("replica", kit.BLUE)})
    board.timeseries("Oldest vacuum and analyze", "Time since the user table vacuumed (analyzed) longest ago was.",
                     "s", [Query(sel("erp_database_oldest_vacuum_age_seconds", T), "{{target}} vacuum"),
                           Query(sel("erp_database_oldest_analyze_age_seconds", T), "{{target}} analyze")])
    board.timeseries("Transaction ID age", f"PostgreSQL transactions since the oldest unfrozen ID; wraparound stops "
                     f"writes at about 2.1 billion ({xid}).", "short",
                     [Query(sel("erp_database_transaction_id_age", T), "{{target}}")],
                     kit.above(limits.value(xid, "warning"), limits.value(xid, "critical")))
    statements_row(board)
    board.row("Replication")
    board.timeseries("Replication lag", f"How far each replica is behind its primary ({lag}).", "s",
                     [Query(sel("erp_database_replication_lag_seconds", T), "{{target}} {{replica}}")],
                     kit.above(limits.value(lag, "warning"), limits.value(lag, "critical")), width=24)
    board.row("Backups and the database log")
    board.stat("Backup age", f"Time since the newest backup file was written ({stale}).", "s",
               [Query(f"time() - {sel('erp_backup_newest_timestamp_seconds', kit.INST)}", "{{backup}}")],
               kit.above(limits.value(stale, "warning") * 3600, limits.value(stale, "critical") * 3600))
    board.stat("Newest backup intact", "Whether the newest backup passed its integrity checks "
               "(ErpBackupIntegrityFailed).", "none", [Query(sel("erp_backup_integrity_ok", kit.INST), "{{backup}}")],
               kit.BAD_AT_ZERO, mappings={0: ("FAILED", kit.RED), 1: ("OK", kit.GREEN)})
    board.stat("Backup files", "Backup files found (ErpBackupMissing fires on 0).", "none",
               [Query(sel("erp_backup_files", kit.INST), "{{backup}}")], kit.BAD_AT_ZERO)
    board.timeseries("Newest backup size", "Size of the newest backup file: a sudden drop is a truncated dump.",
                     "bytes", [Query(sel("erp_backup_newest_size_bytes", kit.INST), "{{backup}}")], width=6, height=5)
    board.timeseries("Database log matches", "Lines of the followed logs that matched each pattern (errors, fatals, "
                     "deadlocks, tracebacks...).", "short",
                     [Query(f"sum by (instance, log, pattern) (increase({sel('erp_log_matches_total', kit.INST)}"
                            "[$__rate_interval]))", "{{log}}: {{pattern}}")])
    board.timeseries(f"Log error lines in {log_window}", f"Lines of each followed log that matched an error pattern "
                     f"(selectors.log_error_patterns) within {log_window}; {log_errors} warns on any and is critical "
                     f"above {limits.value(log_errors, 'critical')}.", "short",
                     [Query(f"sum by (instance, log, pattern) (increase({error_matches}[{log_window}]))",
                            "{{log}}: {{pattern}}")],
                     kit.above(limits.value(log_errors, "warning"), limits.value(log_errors, "critical"), count=True),
                     minimum=0)
    return board.build(kit.variables(limits))


def statements_row(board: Board) -> None:
    """The statements that cost the database most (the opt-in db_statements check), for the optimization
    workshop: time, calls and mean time over the range, with the normalized text."""
    keys = "on (job, instance, target, queryid) group_left (query)"
    info = sel("erp_database_statement_info", T)

    def with_text(expr: str) -> str:
        return f"{expr}\n* {keys}\n{info}"

    seconds = sel("erp_database_statement_seconds_total", T)
    calls = sel("erp_database_statement_calls_total", T)
    board.row("Costliest statements")
    board.timeseries("Statement time per second", "Database time the top statements take (seconds per second, the "
                     "db_statements check; empty when it is not configured).", "s",
                     [Query(f"topk(10, rate({seconds}[$__rate_interval]))", "{{target}} {{queryid}}")])
    board.table("Top statements over the range", "The statements that took the most database time over the shown "
                "range, with their calls and mean time since the statistics reset.", "none",
                [Query(with_text(f"topk(20, increase({seconds}[$__range]))"), table=True),
                 Query(with_text(f"increase({calls}[$__range])"), table=True),
                 Query(with_text(sel("erp_database_statement_mean_seconds", T)), table=True)],
                {"target": "Target", "queryid": "Query id", "query": "Statement", "Value #A": "Time",
                 "Value #B": "Calls", "Value #C": "Mean"},
                column_units={"Time": "s", "Calls": "short", "Mean": "s"}, sort_by="Time", height=10)
