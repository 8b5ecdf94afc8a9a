"""Capacity: host CPU, memory, disks and filesystems, connections, database growth."""

from __future__ import annotations

from exporter.signals.capacity import CPU_BUSY, DISK_BUSY, FILESYSTEM_AVAILABLE, MEMORY_AVAILABLE
from exporter.signals.signal import FLEET_LABELS
from ruleset import month_end
from ruleset.builder import Alert, Group, RuleBuilder, fill, num, promql


def groups(b: RuleBuilder) -> list[Group]:
    rules = b.pair(
        "ErpDatabaseConnectionsSaturated", "database", "2",
        "erp_database_connections_used_ratio > @threshold@",
        "Database {{ $labels.target }} is running out of connections",
        "{{ $value | humanizePercentage }} of the connection limit of {{ $labels.target }} has been in "
        "use for @for@ (above @shown@). New ERP sessions will be refused at 100%.",
        fmt="ratio",
    )
    for severity in ("warning", "critical"):
        spec = b.a("ErpFilesystemFillingUp")[severity]
        hours, free = int(spec["hours"]), float(spec["free_ratio"])
        rules += b.rule(Alert(
            name="ErpFilesystemFillingUp", severity=severity, support_line="2", component="host",
            expr=fill(promql("""
                @fs_free@{@fs@} < @free@
                and
                predict_linear(erp_host_filesystem_avail_bytes{@fs@}[6h], @hours@ * 3600) < 0
            """), fs_free=FILESYSTEM_AVAILABLE.record, fs=b.fs, free=num(free), hours=hours),
            for_=b.for_("ErpFilesystemFillingUp"),
            summary="Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} fills up",
            description=(
                "Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} has "
                "{{ $value | humanizePercentage }} free and, at the rate of the last 6 hours, will be full "
                f"within {hours}h."
            ),
        ))
    for severity in ("warning", "critical"):
        days = int(b.a("ErpDatabaseGrowthFillsDisk")[severity])
        rules += b.rule(Alert(
            name="ErpDatabaseGrowthFillsDisk", severity=severity, support_line="2", component="database",
            expr=fill(promql("""
                (predict_linear(erp_database_size_bytes[6h], @days@ * 86400) - erp_database_size_bytes)
                > on (@fleet@, job, instance) group_left ()
                min by (@fleet@, job, instance) (erp_host_filesystem_avail_bytes{@fs@,mountpoint=~"@mounts@"})
            """), fleet=FLEET_LABELS, fs=b.fs, mounts=b.db_mounts, days=days),
            for_=b.for_("ErpDatabaseGrowthFillsDisk"),
            summary="Database {{ $labels.target }} will outgrow its disk",
            description=(
                "Database {{ $labels.target }} grows by {{ $value | humanize1024 }}B within "
                f"{days} day{'s' if days != 1 else ''} at the rate of the last 6 hours, more than the free "
                "space on the filesystem that holds it."
            ),
        ))
    rules += b.pair(
        "ErpHostCpuHigh", "host", "2",
        f"{CPU_BUSY.record} > @threshold@",
        "CPU of {{ $labels.instance }} is saturated",
        "The CPUs of {{ $labels.instance }} have been {{ $value | humanizePercentage }} busy for @for@ "
        "(above @shown@).",
        fmt="ratio",
    )
    rules += b.pair(
        "ErpHostMemoryPressure", "host", "2",
        f"{MEMORY_AVAILABLE.record} < @threshold@",
        "Memory of {{ $labels.instance }} is running out",
        "Only {{ $value | humanizePercentage }} of the memory of {{ $labels.instance }} has been "
        "available for @for@ (below @shown@).",
        fmt="ratio",
    )
    rules += b.pair(
        "ErpHostDiskSpaceLow", "host", "2",
        f"{FILESYSTEM_AVAILABLE.selected(b.fs)} < @threshold@",
        "Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} is almost full",
        "Only {{ $value | humanizePercentage }} of filesystem {{ $labels.mountpoint }} on "
        "{{ $labels.instance }} is free (below @shown@).",
        fmt="ratio",
    )
    rules += b.pair(
        "ErpHostDiskBusy", "host", "2",
        f"{DISK_BUSY.record} > @threshold@",
        "Disk {{ $labels.device }} of {{ $labels.instance }} is saturated",
        "Disk {{ $labels.device }} of {{ $labels.instance }} has had I/O in flight "
        "{{ $value | humanizePercentage }} of the time for @for@ (above @shown@).",
        fmt="ratio",
    )
    surge = b.a("ErpUsersSurging")
    rules += b.pair(
        "ErpUsersSurging", "capacity", "2",
        promql("""
            erp_users_logged_in > @threshold@ * max_over_time(erp_users_logged_in[7d] offset 1h)
            and
            erp_users_logged_in >= @min_users@
        """),
        "ERP users surge on {{ $labels.target }}",
        "{{ $value | humanize }} users are logged in to {{ $labels.target }}, @shown@ times the peak of "
        "the previous 7 days or more, for @for@.",
        min_users=int(surge["min_users"]),
    )
    return [Group("erp-capacity", rules), Group("erp-month-end", month_end.month_end_rules(b))]
