"""The exporter's host: CPU, memory, filesystems and disks."""

from __future__ import annotations

from exporter.signals.signal import Signal

# iowait is idle time spent waiting for a disk: the CPU could have run something else.
CPU_BUSY = Signal(
    "erp:host_cpu_busy:ratio_rate5m",
    '1 - sum without (mode) (rate(erp_host_cpu_seconds_total{mode=~"idle|iowait"}[5m])) / erp_host_cpus\n',
    alert="ErpHostCpuHigh",
)
MEMORY_AVAILABLE = Signal(
    "erp:host_memory_available:ratio",
    "erp_host_memory_available_bytes / erp_host_memory_total_bytes",
    alert="ErpHostMemoryPressure",
)
FILESYSTEM_AVAILABLE = Signal(
    "erp:host_filesystem_avail:ratio",
    "erp_host_filesystem_avail_bytes / erp_host_filesystem_size_bytes",
    alert="ErpHostDiskSpaceLow",
)
DISK_BUSY = Signal(
    "erp:host_disk_io_time:ratio_rate5m", "rate(erp_host_disk_io_time_seconds_total[5m])", alert="ErpHostDiskBusy"
)
