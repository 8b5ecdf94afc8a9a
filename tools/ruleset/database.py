"""Database health and logs: locks, long queries, maintenance, replication, backups, log errors."""

from __future__ import annotations

from typing import Any

from ruleset.builder import Group, RuleBuilder


def groups(b: RuleBuilder) -> list[Group]:
    rules: list[dict[str, Any]] = []
    rules += b.split_pair(
        "ErpDatabaseLongRunningQueries", "database", "2",
        warning=("erp_database_long_running_queries > @threshold@",
                 "Queries running longer than the check's threshold on {{ $labels.target }}: "
                 "{{ $value | humanize }}, for @for@."),
        critical=("erp_database_oldest_query_age_seconds > @threshold@",
                  "The oldest query on {{ $labels.target }} has run for {{ $value | humanizeDuration }} "
                  "(above @shown@)."),
        summary="Long-running queries on {{ $labels.target }}",
        critical_fmt="seconds",
    )
    rules += b.split_pair(
        "ErpDatabaseBlockedSessions", "database", "2",
        warning=("erp_database_blocked_sessions > @threshold@",
                 "Sessions waiting on locks on {{ $labels.target }}: {{ $value | humanize }}, for @for@."),
        critical=("erp_database_lock_wait_longest_seconds > @threshold@",
                  "A session on {{ $labels.target }} has waited on a lock for {{ $value | humanizeDuration }} "
                  "(above @shown@): ERP users are stuck behind it."),
        summary="Sessions blocked by locks on {{ $labels.target }}",
        critical_fmt="seconds",
    )
    rules += b.pair(
        "ErpDatabaseHungConnections", "database", "2",
        "erp_database_pool_hung_connections > @threshold@",
        "Exporter connections to {{ $labels.target }} hang",
        "Exporter connections to {{ $labels.target }} held by queries that did not return even after "
        "cancel: {{ $value | humanize }}, for @for@. The database server may be hung.",
    )
    rules += b.pair(
        "ErpDatabaseReplicationLag", "database", "2",
        "erp_database_replication_lag_seconds > @threshold@",
        "Replica {{ $labels.replica }} of {{ $labels.target }} lags behind",
        "Replica {{ $labels.replica }} of {{ $labels.target }} is {{ $value | humanizeDuration }} behind "
        "(above @shown@).",
        fmt="seconds",
    )
    rules += b.pair(
        "ErpDatabaseTransactionIdWraparound", "database", "2",
        "erp_database_transaction_id_age > @threshold@",
        "Database {{ $labels.target }} approaches transaction ID wraparound",
        "The oldest transaction ID of {{ $labels.target }} is {{ $value | humanize }} transactions old "
        "(above @shown@; PostgreSQL stops accepting writes near 2.1 billion).",
    )
    rules += b.pair(
        "ErpDatabaseInvalidIndexes", "database", "2",
        "erp_database_invalid_indexes > @threshold@",
        "Invalid indexes in {{ $labels.target }}",
        "Invalid indexes in {{ $labels.target }} (left by a failed concurrent build; queries do not use "
        "them): {{ $value | humanize }}.",
    )
    rules += b.pair(
        "ErpBackupStale", "backup", "2",
        "time() - erp_backup_newest_timestamp_seconds > @threshold@ * 3600",
        "Backup {{ $labels.backup }} of {{ $labels.target }} is stale",
        "The newest file of backup {{ $labels.backup }} of {{ $labels.target }} is "
        "{{ $value | humanizeDuration }} old (above @shown@).",
        fmt="hours",
    )
    rules += b.single(
        "ErpBackupIntegrityFailed", "critical", "backup", "2",
        "erp_backup_integrity_ok == 0",
        "Backup {{ $labels.backup }} of {{ $labels.target }} is corrupt",
        "The newest file of backup {{ $labels.backup }} of {{ $labels.target }} failed its integrity check "
        "(integrity ok = {{ $value }}): it could not be restored.",
    )
    rules += b.single(
        "ErpBackupMissing", "critical", "backup", "2",
        "erp_backup_files == 0",
        "No backup files for {{ $labels.backup }} of {{ $labels.target }}",
        "Backup {{ $labels.backup }} of {{ $labels.target }} has had {{ $value }} files for @for@.",
    )
    return [Group("erp-database-health", rules), Group("erp-logs", log_rules(b))]


def log_rules(b: RuleBuilder) -> list[dict[str, Any]]:
    """Lines of a followed log that matched an error pattern (pattern names: selectors.log_error_patterns).
    One alert per log and pattern; the series carry job and instance, no target."""
    name = "ErpLogErrors"
    return b.pair(
        name, "host", "2",
        'increase(erp_log_matches_total{pattern=~"@patterns@"}[@window@]) > @threshold@',
        "Errors in log {{ $labels.log }} on {{ $labels.instance }}",
        "About {{ $value | humanize }} lines of log {{ $labels.log }} on {{ $labels.instance }} matched "
        "pattern {{ $labels.pattern }} in the last @window@ (above @shown@).",
        patterns=b.log_patterns, window=str(b.a(name)["window"]),
    )
