"""The capacity board: host resources, connections and growth, with forecasts."""

from __future__ import annotations

from typing import Any

from generated_files import duration_seconds

from boards import kit
from boards.kit import Board, Limits, Query, T, sel
from exporter.signals.capacity import CPU_BUSY, DISK_BUSY, FILESYSTEM_AVAILABLE, MEMORY_AVAILABLE
from exporter.signals.database import CONNECTIONS_USED
from exporter.signals.month_end import USERS_PEAK_1H


def capacity(limits: Limits) -> dict[str, Any]:
    board = Board("erp-capacity", "ERP capacity planning",
                  "Months of history and linear forecasts to the limits: disk, database size, connections, users, "
                  "CPU and memory. Closing periods are shaded. Prometheus needs the retention (or a long-term "
                  "store) for the range you pick.", "now-90d", "", ["capacity"], min_interval="5m")
    fs = limits.selectors["filesystem"]
    db_mounts = f'mountpoint=~"{limits.selectors["database_mountpoints"]}"'
    filling = "ErpFilesystemFillingUp"
    disk_low = FILESYSTEM_AVAILABLE.alert
    growth = "ErpDatabaseGrowthFillsDisk"
    saturated = CONNECTIONS_USED.alert
    cpu = "ErpHostCpuHigh"
    memory = "ErpHostMemoryPressure"
    fill_hours = limits.value(filling, "warning")["hours"]
    growth_days = limits.value(growth, "warning")

    board.row("Disk")
    board.timeseries("Filesystem free share", f"Available / size of each filesystem ({disk_low}).", "percentunit",
                     [Query(f"min_over_time({sel(FILESYSTEM_AVAILABLE.record, kit.INST, fs)}[$__interval])",
                            "{{instance}} {{mountpoint}}")],
                     kit.below(limits.value(disk_low, "warning"), limits.value(disk_low, "critical")), minimum=0)
    board.timeseries("Filesystem free space forecast", f"Free space now and where the 6-hour trend puts it in "
                     f"{fill_hours} hours ({filling}: below 0 means full).", "bytes",
                     [Query(sel("erp_host_filesystem_avail_bytes", kit.INST, fs), "{{instance}} {{mountpoint}} now"),
                      Query(f"predict_linear({sel('erp_host_filesystem_avail_bytes', kit.INST, fs)}[6h], "
                            f"{fill_hours} * 3600)", f"{{{{instance}}}} {{{{mountpoint}}}} in {fill_hours}h")],
                     kit.Steps(kit.RED, ((0, kit.GREEN),)))
    board.row("Database")
    board.timeseries("Database size and forecast", f"Size now and in {growth_days} days on the 6-hour trend.",
                     "bytes", [Query(sel("erp_database_size_bytes", T), "{{target}} now"),
                               Query(f"predict_linear({sel('erp_database_size_bytes', T)}[6h], {growth_days} * 86400)",
                                     f"{{{{target}}}} in {growth_days} days")])
    board.timeseries("Database growth against free disk", f"Growth expected within {growth_days} days, and the free "
                     f"space on the database host's data filesystems ({growth}: growth above free space).", "bytes",
                     [Query(f"predict_linear({sel('erp_database_size_bytes', T)}[6h], {growth_days} * 86400)\n- "
                            f"{sel('erp_database_size_bytes', T)}", f"{{{{target}}}} growth in {growth_days} days"),
                      Query(f"min by (instance) ({sel('erp_host_filesystem_avail_bytes', kit.INST, fs, db_mounts)})",
                            "{{instance}} free on the data disk")])
    board.timeseries("Connections used: peaks and forecast", f"Highest share of the connection limit per interval, "
                     f"and where the trend of the last {limits.month_end['trend_window']} is in "
                     f"{limits.month_end['horizon']} ({saturated}).", "percentunit",
                     [Query(f"max_over_time({sel(CONNECTIONS_USED.record, T)}[$__interval])",
                            "{{target}} peak"),
                      Query(f"predict_linear({sel('erp_database_connections', T)}[{limits.month_end['trend_window']}], "
                            f"{duration_seconds(limits.month_end['horizon'])})\n/\n"
                            f"{sel('erp_database_max_connections', T)}",
                            f"{{{{target}}}} in {limits.month_end['horizon']}")],
                     kit.above(limits.value(saturated, "warning"), limits.value(saturated, "critical")), minimum=0)
    board.timeseries("Database statements per second", "Load the exporter itself puts on each database.", "ops",
                     [Query(f"sum by (target) (rate({sel('erp_database_statements_total', T)}[$__rate_interval]))",
                            "{{target}}")])
    board.row("Users")
    users = "ErpMonthEndUsersTrend"
    surge = "ErpUsersSurging"
    board.timeseries("Logged-in users: hourly peaks and 30-day forecast", f"Peak users per hour (recording rule "
                     f"erp:users_logged_in:max_over_1h) and the 7-day trend 30 days ahead, against the capacity the "
                     f"system is sized for ({users}).", "short",
                     [Query(f"max by (target) ({sel(USERS_PEAK_1H.record, T)})", "{{target}} peak"),
                      Query(f"max by (target) (predict_linear({sel(USERS_PEAK_1H.record, T)}[7d], "
                            "30 * 86400))", "{{target}} in 30 days")],
                     kit.above(limits.value(users, "warning")))
    board.timeseries("Users against the previous week's peak", f"Users now divided by the peak of the 7 days before "
                     f"the last hour ({surge}: above {limits.value(surge, 'warning')}x with at least "
                     f"{limits.value(surge, 'min_users')} users).", kit.FACTOR,
                     [Query(f"{sel('erp_users_logged_in', T)}\n/\n"
                            f"max_over_time({sel('erp_users_logged_in', T)}[7d] offset 1h)", "{{target}}")],
                     kit.above(limits.value(surge, "warning")))
    board.row("Host")
    board.timeseries("CPU busy", f"Busy share of all CPUs over 5 minutes ({cpu}).", "percentunit",
                     [Query(f"max_over_time({sel(CPU_BUSY.record, kit.INST)}[$__interval])",
                            "{{instance}}")],
                     kit.above(limits.value(cpu, "warning"), limits.value(cpu, "critical")), width=8, minimum=0)
    board.timeseries("Memory available", f"Available / total memory ({memory}: fires below).", "percentunit",
                     [Query(f"min_over_time({sel(MEMORY_AVAILABLE.record, kit.INST)}[$__interval])",
                            "{{instance}}")],
                     kit.below(limits.value(memory, "warning"), limits.value(memory, "critical")), width=8, minimum=0)
    board.timeseries("Disk busy", "Share of time each disk had I/O in flight over 5 minutes (ErpHostDiskBusy).",
                     "percentunit",
                     [Query(f"max_over_time({sel(DISK_BUSY.record, kit.INST)}[$__interval])",
                            "{{instance}} {{device}}")],
                     kit.above(limits.value("ErpHostDiskBusy", "warning")), width=8, minimum=0)
    board.timeseries("ERP process memory", "Resident memory of each ERP process group.", "bytes",
                     [Query(sel("erp_process_group_resident_memory_bytes", kit.INST), "{{group}} on {{instance}}")])
    board.timeseries("ERP process CPU", "CPU seconds per second (cores) each ERP process group uses.", "short",
                     [Query(f"sum by (instance, group) (rate({sel('erp_process_group_cpu_seconds_total', kit.INST)}"
                            "[$__rate_interval]))", "{{group}} on {{instance}}")])
    return board.build(kit.variables(limits), [kit.closing_period_annotation(limits)])
