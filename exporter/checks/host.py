"""The host check: CPU, memory, swap, filesystems, disk and network I/O, load average and boot time.

Reading is apart from parsing (the node_exporter principle): the `read_*()` functions are thin wrappers
around psutil and the operating system, `HostCheck.run()` puts their results into a plain `HostSnapshot`,
and the pure `host_to_families()` turns a snapshot into metric families. Tests build snapshots by hand.

Hosts are often Windows. Every platform-specific reading is guarded so that something the platform
cannot provide (load average, iowait, disk busy time, a working disk counter driver) is simply not
emitted. The core readings (CPU times, memory, boot time) failing fails the check.

What is left out on purpose:

* `cpu_times()` fields that are already part of another mode are not published as a mode of their own,
  so that the modes of `erp_host_cpu_seconds_total` add up to the elapsed CPU time: Linux counts
  `guest` and `guest_nice` inside `user` and `nice`, Windows counts `interrupt` and `dpc` inside
  `system` (kernel time).
* The load average comes from `os.getloadavg()`, which exists on Unix only. psutil emulates a load
  average on Windows from the processor queue length with a background thread; that is not the same
  quantity, so it is not published under the same name.
* Filesystems whose stat fails (a stale NFS handle, permission denied, a drive without media) are
  skipped. A stat that does not return at all (a hard NFS mount whose server is gone) costs one
  timeout; the mountpoint is then skipped until that stat returns (node_exporter's "stuck mounts").
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import psutil

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.host_defaults import DEFAULT_EXCLUDED_FSTYPES, DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX
from exporter.config.loader import LoadedConfig
from exporter.config.schedule import check_schedule
from exporter.metrics import MetricFamily, MetricSpec, counter, gauge

logger = logging.getLogger(__name__)

# cpu_times() fields already counted in another mode (see the module docstring).
_CPU_MODES_COUNTED_ELSEWHERE = frozenset({"guest", "guest_nice", "interrupt", "dpc"})

_FS_LABELS = ("device", "mountpoint", "fstype")

CPU_SECONDS = counter(
    "erp_host_cpu_seconds_total",
    "Seconds the CPUs spent in each mode, summed over all logical CPUs.",
    "mode",
)
CPUS = gauge("erp_host_cpus", "Number of logical CPUs of the host.")
MEMORY_TOTAL = gauge("erp_host_memory_total_bytes", "Total physical memory of the host in bytes.")
MEMORY_AVAILABLE = gauge(
    "erp_host_memory_available_bytes",
    "Memory in bytes that can be given to processes without swapping, as estimated by the operating system.",
)
MEMORY_USED = gauge(
    "erp_host_memory_used_bytes",
    "Memory in bytes in use by processes and the kernel: the total minus the available memory.",
)
SWAP_TOTAL = gauge("erp_host_swap_total_bytes", "Total swap space (page file on Windows) in bytes.")
SWAP_USED = gauge("erp_host_swap_used_bytes", "Swap space (page file on Windows) in use in bytes.")
FILESYSTEM_SIZE = gauge("erp_host_filesystem_size_bytes", "Size of the filesystem in bytes.", *_FS_LABELS)
FILESYSTEM_FREE = gauge(
    "erp_host_filesystem_free_bytes",
    "Free space on the filesystem in bytes, including the blocks reserved for the superuser.",
    *_FS_LABELS,
)
FILESYSTEM_AVAIL = gauge(
    "erp_host_filesystem_avail_bytes",
    "Free space on the filesystem in bytes that unprivileged users can still write to.",
    *_FS_LABELS,
)
DISK_READ_BYTES = counter("erp_host_disk_read_bytes_total", "Bytes read from the disk.", "device")
DISK_WRITTEN_BYTES = counter("erp_host_disk_written_bytes_total", "Bytes written to the disk.", "device")
DISK_READS_COMPLETED = counter(
    "erp_host_disk_reads_completed_total", "Read operations the disk completed.", "device"
)
DISK_WRITES_COMPLETED = counter(
    "erp_host_disk_writes_completed_total", "Write operations the disk completed.", "device"
)
DISK_IO_TIME = counter(
    "erp_host_disk_io_time_seconds_total",
    "Seconds the disk spent with at least one I/O operation in progress.",
    "device",
)
NETWORK_RECEIVE_BYTES = counter(
    "erp_host_network_receive_bytes_total", "Bytes received on the network interface.", "device"
)
NETWORK_TRANSMIT_BYTES = counter(
    "erp_host_network_transmit_bytes_total", "Bytes sent on the network interface.", "device"
)
NETWORK_RECEIVE_ERRORS = counter(
    "erp_host_network_receive_errors_total", "Errors while receiving on the network interface.", "device"
)
NETWORK_TRANSMIT_ERRORS = counter(
    "erp_host_network_transmit_errors_total", "Errors while sending on the network interface.", "device"
)
NETWORK_RECEIVE_DROP = counter(
    "erp_host_network_receive_drop_total",
    "Incoming packets the network interface dropped.",
    "device",
)
NETWORK_TRANSMIT_DROP = counter(
    "erp_host_network_transmit_drop_total",
    "Outgoing packets the network interface dropped.",
    "device",
)
LOAD1 = gauge("erp_host_load1", "Load average of the host over the last minute.")
LOAD5 = gauge("erp_host_load5", "Load average of the host over the last 5 minutes.")
LOAD15 = gauge("erp_host_load15", "Load average of the host over the last 15 minutes.")
BOOT_TIME = gauge("erp_host_boot_time_seconds", "When the host booted, in seconds since the Unix epoch.")


# --- snapshot: plain data, no psutil types ---------------------------------------------------------


@dataclass(frozen=True)
class MemorySnapshot:
    total_bytes: int
    available_bytes: int
    used_bytes: int


@dataclass(frozen=True)
class SwapSnapshot:
    total_bytes: int
    used_bytes: int


@dataclass(frozen=True)
class Partition:
    """One mounted filesystem, as the mount table lists it."""

    device: str
    mountpoint: str
    fstype: str


@dataclass(frozen=True)
class FilesystemUsage:
    size_bytes: int
    free_bytes: int
    avail_bytes: int


@dataclass(frozen=True)
class FilesystemSnapshot:
    """A selected filesystem; `usage` is None when reading it failed, and then it is not published."""

    partition: Partition
    usage: FilesystemUsage | None


@dataclass(frozen=True)
class DiskSnapshot:
    device: str
    read_bytes: int
    written_bytes: int
    reads_completed: int
    writes_completed: int
    io_time_seconds: float | None  # None where the platform has no busy time


@dataclass(frozen=True)
class NetworkSnapshot:
    device: str
    receive_bytes: int
    transmit_bytes: int
    receive_errors: int
    transmit_errors: int
    receive_drop: int
    transmit_drop: int


@dataclass(frozen=True)
class HostSnapshot:
    """Everything one host check run read. None or empty means "not available here": not emitted."""

    cpu_seconds: Mapping[str, float] = field(default_factory=dict)  # mode -> seconds
    cpus: int | None = None
    memory: MemorySnapshot | None = None
    swap: SwapSnapshot | None = None
    filesystems: Sequence[FilesystemSnapshot] = ()
    disks: Sequence[DiskSnapshot] = ()
    networks: Sequence[NetworkSnapshot] = ()
    load: tuple[float, float, float] | None = None
    boot_time_seconds: float | None = None


# --- parsing: snapshot -> families -----------------------------------------------------------------


def host_to_families(snapshot: HostSnapshot) -> list[MetricFamily]:
    """Turn a snapshot into metric families; families without samples are left out."""
    cpu = CPU_SECONDS.family()
    for mode, seconds in snapshot.cpu_seconds.items():
        cpu.add(seconds, mode=mode)
    families = [cpu]

    if snapshot.cpus is not None:
        families.append(CPUS.family().add(snapshot.cpus))
    if snapshot.memory is not None:
        families += [
            MEMORY_TOTAL.family().add(snapshot.memory.total_bytes),
            MEMORY_AVAILABLE.family().add(snapshot.memory.available_bytes),
            MEMORY_USED.family().add(snapshot.memory.used_bytes),
        ]
    if snapshot.swap is not None:
        families += [
            SWAP_TOTAL.family().add(snapshot.swap.total_bytes),
            SWAP_USED.family().add(snapshot.swap.used_bytes),
        ]

    size, free, avail = FILESYSTEM_SIZE.family(), FILESYSTEM_FREE.family(), FILESYSTEM_AVAIL.family()
    for fs in snapshot.filesystems:
        if fs.usage is None:
            continue
        labels = {
            "device": fs.partition.device,
            "mountpoint": fs.partition.mountpoint,
            "fstype": fs.partition.fstype,
        }
        size.add_labels(labels, fs.usage.size_bytes)
        free.add_labels(labels, fs.usage.free_bytes)
        avail.add_labels(labels, fs.usage.avail_bytes)
    families += [size, free, avail]

    read_bytes, written_bytes = DISK_READ_BYTES.family(), DISK_WRITTEN_BYTES.family()
    reads, writes, io_time = (
        DISK_READS_COMPLETED.family(),
        DISK_WRITES_COMPLETED.family(),
        DISK_IO_TIME.family(),
    )
    for disk in snapshot.disks:
        read_bytes.add(disk.read_bytes, device=disk.device)
        written_bytes.add(disk.written_bytes, device=disk.device)
        reads.add(disk.reads_completed, device=disk.device)
        writes.add(disk.writes_completed, device=disk.device)
        if disk.io_time_seconds is not None:
            io_time.add(disk.io_time_seconds, device=disk.device)
    families += [read_bytes, written_bytes, reads, writes, io_time]

    net = {
        spec: spec.family()
        for spec in (
            NETWORK_RECEIVE_BYTES,
            NETWORK_TRANSMIT_BYTES,
            NETWORK_RECEIVE_ERRORS,
            NETWORK_TRANSMIT_ERRORS,
            NETWORK_RECEIVE_DROP,
            NETWORK_TRANSMIT_DROP,
        )
    }
    for nic in snapshot.networks:
        net[NETWORK_RECEIVE_BYTES].add(nic.receive_bytes, device=nic.device)
        net[NETWORK_TRANSMIT_BYTES].add(nic.transmit_bytes, device=nic.device)
        net[NETWORK_RECEIVE_ERRORS].add(nic.receive_errors, device=nic.device)
        net[NETWORK_TRANSMIT_ERRORS].add(nic.transmit_errors, device=nic.device)
        net[NETWORK_RECEIVE_DROP].add(nic.receive_drop, device=nic.device)
        net[NETWORK_TRANSMIT_DROP].add(nic.transmit_drop, device=nic.device)
    families += net.values()

    if snapshot.load is not None:
        load1, load5, load15 = snapshot.load
        families += [LOAD1.family().add(load1), LOAD5.family().add(load5), LOAD15.family().add(load15)]
    if snapshot.boot_time_seconds is not None:
        families.append(BOOT_TIME.family().add(snapshot.boot_time_seconds))

    return [family for family in families if family.samples]


def select_partitions(
    partitions: Iterable[Partition],
    exclude_fstypes: Collection[str],
    exclude_mountpoints: re.Pattern[str],
) -> list[Partition]:
    """The filesystems worth measuring, each mountpoint once.

    When several filesystems are mounted on the same mountpoint only the last one is visible (and
    stat returns its numbers), so the last entry wins; it is then excluded or kept by its own fstype.
    """
    visible: dict[str, Partition] = {}
    for partition in partitions:
        visible.pop(partition.mountpoint, None)  # keep the mount table order of the visible entries
        visible[partition.mountpoint] = partition
    return [
        p
        for p in visible.values()
        if p.fstype not in exclude_fstypes and not exclude_mountpoints.search(p.mountpoint)
    ]


# --- reading: thin wrappers around psutil and the OS -----------------------------------------------


def read_cpu_seconds() -> dict[str, float]:
    times: dict[str, float] = psutil.cpu_times()._asdict()
    return {
        mode: float(seconds) for mode, seconds in times.items() if mode not in _CPU_MODES_COUNTED_ELSEWHERE
    }


def read_cpus() -> int | None:
    return psutil.cpu_count(logical=True)


def read_memory() -> MemorySnapshot:
    memory = psutil.virtual_memory()
    return MemorySnapshot(total_bytes=memory.total, available_bytes=memory.available, used_bytes=memory.used)


def read_swap() -> SwapSnapshot | None:
    try:
        swap = psutil.swap_memory()
    except (OSError, RuntimeError):
        return None
    return SwapSnapshot(total_bytes=swap.total, used_bytes=swap.used)


def read_partitions() -> list[Partition]:
    # all=True: psutil's physical-only filter would also drop overlay, the root of a container.
    return [
        Partition(device=p.device, mountpoint=p.mountpoint, fstype=p.fstype)
        for p in psutil.disk_partitions(all=True)
    ]


def read_filesystem_usage(mountpoint: str) -> FilesystemUsage:
    """Size, free and available bytes; raises OSError when the filesystem cannot be read."""
    if hasattr(os, "statvfs"):
        st = os.statvfs(mountpoint)
        return FilesystemUsage(
            size_bytes=st.f_blocks * st.f_frsize,
            free_bytes=st.f_bfree * st.f_frsize,
            avail_bytes=st.f_bavail * st.f_frsize,
        )
    # Windows: no reserved blocks; psutil reports the volume's total free bytes.
    usage = psutil.disk_usage(mountpoint)
    return FilesystemUsage(size_bytes=usage.total, free_bytes=usage.free, avail_bytes=usage.free)


def read_disks(include_devices: re.Pattern[str] | None) -> list[DiskSnapshot]:
    try:
        counters = psutil.disk_io_counters(perdisk=True)
    except (OSError, RuntimeError):  # no /proc/diskstats in some containers; NotImplementedError
        return []
    disks = []
    for device, io in (counters or {}).items():
        if include_devices is not None and not include_devices.search(device):
            continue
        busy_ms = getattr(io, "busy_time", None)  # Linux and FreeBSD only
        disks.append(
            DiskSnapshot(
                device=device,
                read_bytes=io.read_bytes,
                written_bytes=io.write_bytes,
                reads_completed=io.read_count,
                writes_completed=io.write_count,
                io_time_seconds=None if busy_ms is None else busy_ms / 1000.0,
            )
        )
    return disks


def read_networks(include_devices: re.Pattern[str] | None) -> list[NetworkSnapshot]:
    try:
        counters = psutil.net_io_counters(pernic=True)
    except (OSError, RuntimeError):
        return []
    return [
        NetworkSnapshot(
            device=device,
            receive_bytes=nic.bytes_recv,
            transmit_bytes=nic.bytes_sent,
            receive_errors=nic.errin,
            transmit_errors=nic.errout,
            receive_drop=nic.dropin,
            transmit_drop=nic.dropout,
        )
        for device, nic in (counters or {}).items()
        if include_devices is None or include_devices.search(device)
    ]


def read_load() -> tuple[float, float, float] | None:
    getloadavg = getattr(os, "getloadavg", None)  # absent on Windows
    if getloadavg is None:
        return None
    try:
        load1, load5, load15 = getloadavg()
    except OSError:
        return None
    return (float(load1), float(load5), float(load15))


def read_boot_time() -> float:
    return float(psutil.boot_time())


class MountStatGuard:
    """Stats filesystems in worker threads so that a hung mount cannot hang the check.

    A stat that has not returned by the deadline is abandoned and its mountpoint is skipped by later
    runs until the stat finally returns: a dead NFS server costs one timeout, not one per scrape, and
    never more than one blocked thread per mountpoint.
    """

    def __init__(self, stat: Callable[[str], FilesystemUsage] = read_filesystem_usage) -> None:
        self._stat = stat
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()

    def stat_all(self, mountpoints: Sequence[str], timeout: float) -> dict[str, FilesystemUsage]:
        """Usage of each mountpoint that could be read within `timeout` seconds (all in parallel)."""
        results: dict[str, FilesystemUsage] = {}
        workers: list[tuple[str, threading.Thread]] = []
        for mountpoint in mountpoints:
            with self._lock:
                if mountpoint in self._in_flight:
                    logger.debug("skipping %s: an earlier stat has not returned yet", mountpoint)
                    continue
                self._in_flight.add(mountpoint)
            worker = threading.Thread(
                target=self._stat_one, args=(mountpoint, results), name=f"stat {mountpoint}", daemon=True
            )
            worker.start()
            workers.append((mountpoint, worker))

        deadline = time.monotonic() + timeout
        for mountpoint, worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                logger.warning(
                    "stat of filesystem %s did not return within %.1f s; skipping it until it does",
                    mountpoint,
                    timeout,
                )
        with self._lock:
            return dict(results)

    def _stat_one(self, mountpoint: str, results: dict[str, FilesystemUsage]) -> None:
        usage: FilesystemUsage | None = None
        try:
            usage = self._stat(mountpoint)
        except (OSError, ValueError) as exc:  # stale NFS handle, permission denied, no media
            logger.debug("cannot read filesystem %s: %s", mountpoint, exc)
        finally:
            with self._lock:
                self._in_flight.discard(mountpoint)
                if usage is not None:
                    results[mountpoint] = usage


class HostCheck(BaseCheck):
    """CPU, memory, swap, filesystem, disk, network, load and boot time statistics of this host.

    `include_devices` is an optional regex (`re.search`) that disk and network device names must
    match; filesystems are selected by fstype and mountpoint instead. The loopback interface is kept:
    filter it in PromQL where it is in the way.
    """

    kind: ClassVar[str] = "host"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        CPU_SECONDS,
        CPUS,
        MEMORY_TOTAL,
        MEMORY_AVAILABLE,
        MEMORY_USED,
        SWAP_TOTAL,
        SWAP_USED,
        FILESYSTEM_SIZE,
        FILESYSTEM_FREE,
        FILESYSTEM_AVAIL,
        DISK_READ_BYTES,
        DISK_WRITTEN_BYTES,
        DISK_READS_COMPLETED,
        DISK_WRITES_COMPLETED,
        DISK_IO_TIME,
        NETWORK_RECEIVE_BYTES,
        NETWORK_TRANSMIT_BYTES,
        NETWORK_RECEIVE_ERRORS,
        NETWORK_TRANSMIT_ERRORS,
        NETWORK_RECEIVE_DROP,
        NETWORK_TRANSMIT_DROP,
        LOAD1,
        LOAD5,
        LOAD15,
        BOOT_TIME,
    )

    def __init__(
        self,
        name: str = "host",
        exclude_fstypes: frozenset[str] = DEFAULT_EXCLUDED_FSTYPES,
        exclude_mountpoints: str = DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX,
        include_devices: str | None = None,
    ) -> None:
        super().__init__(name)
        self._exclude_fstypes = exclude_fstypes
        self._exclude_mountpoints = _compile("exclude_mountpoints", exclude_mountpoints)
        self._include_devices = (
            None if include_devices is None else _compile("include_devices", include_devices)
        )
        self._mounts = MountStatGuard()

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        try:
            snapshot = self._read(stat_timeout=ctx.timeout / 2)
        except (OSError, RuntimeError, psutil.Error) as exc:
            raise CheckError(ErrorReason.OTHER, f"reading host statistics failed: {exc}") from exc
        return host_to_families(snapshot)

    def _read(self, stat_timeout: float) -> HostSnapshot:
        partitions = select_partitions(read_partitions(), self._exclude_fstypes, self._exclude_mountpoints)
        usage = self._mounts.stat_all([p.mountpoint for p in partitions], timeout=stat_timeout)
        return HostSnapshot(
            cpu_seconds=read_cpu_seconds(),
            cpus=read_cpus(),
            memory=read_memory(),
            swap=read_swap(),
            filesystems=tuple(FilesystemSnapshot(p, usage.get(p.mountpoint)) for p in partitions),
            disks=read_disks(self._include_devices),
            networks=read_networks(self._include_devices),
            load=read_load(),
            boot_time_seconds=read_boot_time(),
        )


def _compile(setting: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{setting}: invalid regular expression {pattern!r}: {exc}") from exc


def build_host_checks(loaded: LoadedConfig) -> list[ScheduledCheck]:
    """The host check (`host`), unless the config turns it off."""
    host, settings = loaded.config.host, loaded.config.global_
    if not host.enabled:
        return []
    check = HostCheck(
        "host",
        exclude_fstypes=frozenset(host.exclude_fstypes),
        exclude_mountpoints=host.exclude_mountpoints,
        include_devices=host.include_devices,
    )
    schedule = check_schedule(
        host.interval, host.timeout, default_interval=settings.interval, default_timeout=settings.timeout
    )
    return [ScheduledCheck("host", check, schedule.interval, schedule.timeout)]


def check_kind() -> CheckKind:
    """`host`: the machine the exporter runs on, from the `host` section."""
    return CheckKind("host", HostCheck.metrics, build_for_exporter=build_host_checks)
