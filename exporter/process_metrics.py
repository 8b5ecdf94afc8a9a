"""The standard process_* metrics of this process, read from /proc (Linux), as every Prometheus client writes them.

The same names, help and values as prometheus_client's ProcessCollector, without loading the client library
(about 10 MiB of the exporter's memory) for six numbers.
"""

from __future__ import annotations

import os
from pathlib import Path

from exporter.metrics import MetricFamily, counter, gauge

VIRTUAL_MEMORY = gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.")
RESIDENT_MEMORY = gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
START_TIME = gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.")
CPU = counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
OPEN_FDS = gauge("process_open_fds", "Number of open file descriptors.")
MAX_FDS = gauge("process_max_fds", "Maximum number of open file descriptors.")


def _boot_time(proc: Path) -> float | None:
    try:
        for line in (proc / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        return None
    return None


class ProcessMetrics:
    """Reads /proc/self on each call; empty where /proc is not there."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc
        self._boot = _boot_time(proc)
        self._ticks = float(os.sysconf("SC_CLK_TCK"))
        self._page = float(os.sysconf("SC_PAGESIZE"))

    def families(self) -> list[MetricFamily]:
        """The process_* families, in prometheus_client's order."""
        if self._boot is None:
            return []
        me = self._proc / "self"
        found: list[MetricFamily] = []
        try:
            parts = (me / "stat").read_bytes().split(b")")[-1].split()
            found += [
                VIRTUAL_MEMORY.family().add(float(parts[20])),
                RESIDENT_MEMORY.family().add(float(parts[21]) * self._page),
                START_TIME.family().add(float(parts[19]) / self._ticks + self._boot),
                CPU.family().add((float(parts[11]) + float(parts[12])) / self._ticks),
            ]
        except (OSError, IndexError, ValueError):
            pass
        try:
            limit = next(line for line in (me / "limits").read_text().splitlines()
                         if line.startswith("Max open file"))
            found += [OPEN_FDS.family().add(float(len(os.listdir(me / "fd")))),
                      MAX_FDS.family().add(float(limit.split()[3]))]
        except (OSError, StopIteration, IndexError, ValueError):
            pass
        return found
