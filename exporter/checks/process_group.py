"""The process group check: how many processes of an ERP application server run, and what they use.

An ERP application server runs as several processes (a dispatcher and its work processes, a JVM and
its helpers). A group is the set of processes whose name and/or command line match regexes.

Reading is apart from parsing: `read_group_processes()` calls psutil and returns plain
`ProcessSample`s, `CpuAccountant` keeps the group's CPU counter monotonic across member exits, and the
pure `process_group_to_families()` turns a `ProcessGroupSnapshot` into metric families.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import psutil

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.loader import LoadedConfig
from exporter.config.schedule import check_schedule
from exporter.metrics import MetricFamily, MetricSpec, counter, gauge

PROCESSES = gauge(
    "erp_process_group_processes",
    "Number of running processes in the process group; 0 when none matches.",
    "group",
)
CPU_SECONDS = counter(
    "erp_process_group_cpu_seconds_total",
    "CPU seconds the processes of the group used in user and system mode, including processes that "
    "have exited since the exporter started watching.",
    "group",
    "mode",
)
RESIDENT_MEMORY = gauge(
    "erp_process_group_resident_memory_bytes",
    "Resident memory of the processes in the group in bytes, summed over the processes.",
    "group",
)
VIRTUAL_MEMORY = gauge(
    "erp_process_group_virtual_memory_bytes",
    "Virtual memory of the processes in the group in bytes (private bytes on Windows), summed over "
    "the processes.",
    "group",
)
THREADS = gauge("erp_process_group_threads", "Number of threads of the processes in the group.", "group")
OPEN_FILES = gauge(
    "erp_process_group_open_files",
    "Number of regular files the processes in the group have open, counting only the processes whose "
    "open files the exporter may read.",
    "group",
)
OLDEST_START_TIME = gauge(
    "erp_process_group_oldest_start_time_seconds",
    "When the longest-running process of the group started, in seconds since the Unix epoch.",
    "group",
)


@dataclass(frozen=True)
class ProcessSample:
    """One member process as read in one run.

    `identity` tells a process apart from a later one that reuses its PID: psutil's Process, which
    compares by PID and creation time (on Linux the clock-independent one); any hashable in tests.
    """

    identity: Hashable
    create_time: float
    cpu_user_seconds: float
    cpu_system_seconds: float
    resident_bytes: int
    virtual_bytes: int
    threads: int
    open_files: int | None  # None when they could not be read (access denied)


@dataclass(frozen=True)
class CpuTotals:
    user_seconds: float
    system_seconds: float


@dataclass(frozen=True)
class ProcessGroupSnapshot:
    group: str
    processes: Sequence[ProcessSample]
    cpu: CpuTotals | None  # None until the group has had a member


def process_group_to_families(snapshot: ProcessGroupSnapshot) -> list[MetricFamily]:
    """The count always; the CPU counter once the group has had members; the rest while it has some."""
    group = snapshot.group
    processes = snapshot.processes
    families = [PROCESSES.family().add(len(processes), group=group)]
    if snapshot.cpu is not None:
        families.append(
            CPU_SECONDS.family()
            .add(snapshot.cpu.user_seconds, group=group, mode="user")
            .add(snapshot.cpu.system_seconds, group=group, mode="system")
        )
    if not processes:
        return families
    families += [
        RESIDENT_MEMORY.family().add(sum(p.resident_bytes for p in processes), group=group),
        VIRTUAL_MEMORY.family().add(sum(p.virtual_bytes for p in processes), group=group),
        THREADS.family().add(sum(p.threads for p in processes), group=group),
    ]
    open_files = [p.open_files for p in processes if p.open_files is not None]
    if open_files:
        families.append(OPEN_FILES.family().add(sum(open_files), group=group))
    families.append(OLDEST_START_TIME.family().add(min(p.create_time for p in processes), group=group))
    return families


class CpuAccountant:
    """Keeps a group's CPU seconds monotonic when member processes exit (process-exporter's approach).

    It remembers the CPU times each member had when last seen; when a member is gone (or its PID now
    belongs to another process) those times move into an accumulated total. The CPU a member used
    between its last sighting and its exit is not seen. A process that stops matching and later matches
    again is counted twice; command lines rarely change that way. Not thread-safe: the check locks.
    """

    def __init__(self) -> None:
        self._last_seen: dict[Hashable, tuple[float, float]] = {}
        self._retired_user = 0.0
        self._retired_system = 0.0
        self._had_members = False

    def update(self, processes: Iterable[ProcessSample]) -> CpuTotals | None:
        """Record this run's members; the group's totals, or None if it has never had a member."""
        current = {p.identity: (p.cpu_user_seconds, p.cpu_system_seconds) for p in processes}
        for identity, (user, system) in self._last_seen.items():
            if identity not in current:
                self._retired_user += user
                self._retired_system += system
        self._last_seen = current
        self._had_members = self._had_members or bool(current)
        if not self._had_members:
            return None
        return CpuTotals(
            user_seconds=self._retired_user + sum(user for user, _ in current.values()),
            system_seconds=self._retired_system + sum(system for _, system in current.values()),
        )


def process_matches(
    name: str,
    cmdline: Sequence[str] | None,
    name_pattern: re.Pattern[str] | None,
    cmdline_pattern: re.Pattern[str] | None,
) -> bool:
    """Both given patterns must match (`re.search`); the command line is matched joined by spaces."""
    if name_pattern is not None and not name_pattern.search(name):
        return False
    if cmdline_pattern is not None:
        return cmdline is not None and bool(cmdline_pattern.search(" ".join(cmdline)))
    return True


def read_group_processes(
    name_pattern: re.Pattern[str] | None,
    cmdline_pattern: re.Pattern[str] | None,
    cancel: threading.Event | None = None,
) -> list[ProcessSample]:
    """The matching processes that could be read; vanished, zombie and unreadable ones are skipped."""
    samples = []
    for pid in psutil.pids():
        if cancel is not None and cancel.is_set():
            break
        try:
            # A fresh Process each run: psutil's cached ones (process_iter) would not notice PID reuse.
            proc = psutil.Process(pid)
            with proc.oneshot():
                name = proc.name()
                if name_pattern is not None and not name_pattern.search(name):
                    continue  # before reading the command line, which costs a file read per process
                cmdline = proc.cmdline() if cmdline_pattern is not None else None
                if not process_matches(name, cmdline, name_pattern, cmdline_pattern):
                    continue
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                cpu = proc.cpu_times()
                memory = proc.memory_info()
                sample = ProcessSample(
                    identity=proc,
                    create_time=proc.create_time(),
                    cpu_user_seconds=cpu.user,
                    cpu_system_seconds=cpu.system,
                    resident_bytes=memory.rss,
                    virtual_bytes=memory.vms,
                    threads=proc.num_threads(),
                    open_files=_open_files(proc),
                )
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue  # exited since listing, a zombie, or not ours to read
        samples.append(sample)
    return samples


def _open_files(proc: psutil.Process) -> int | None:
    try:
        return len(proc.open_files())
    except psutil.AccessDenied:
        return None


class ProcessGroupCheck(BaseCheck):
    """Count and resource use of the processes matching `name_pattern` and/or `cmdline_pattern`.

    Both patterns use `re.search`; when both are given, both must match. `name_pattern` is matched
    against psutil's process name (`java`, `disp+work.exe`), `cmdline_pattern` against the command
    line joined by spaces.

    The exporter's own process is not excluded: a cmdline pattern that happens to match the
    exporter's command line (for example a bare `python`) counts the exporter too. Anchor cmdline
    patterns on something only the ERP processes have (a main class, a profile path, an instance name).

    Processes the exporter may not read (other users' processes on Windows, `open_files` of other
    users' processes on Linux) are skipped, or for open files left out of the sum.

    The CPU state lives in the check object, as long as its configuration does, behind a lock.
    """

    kind: ClassVar[str] = "process_group"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        PROCESSES,
        CPU_SECONDS,
        RESIDENT_MEMORY,
        VIRTUAL_MEMORY,
        THREADS,
        OPEN_FILES,
        OLDEST_START_TIME,
    )

    def __init__(
        self,
        name: str,
        group: str,
        name_pattern: str | None,
        cmdline_pattern: str | None,
    ) -> None:
        super().__init__(name)
        if name_pattern is None and cmdline_pattern is None:
            raise ValueError(f"process group {group!r}: give name_pattern, cmdline_pattern or both")
        self._group = group
        self._name_pattern = None if name_pattern is None else _compile(group, "name_pattern", name_pattern)
        self._cmdline_pattern = (
            None if cmdline_pattern is None else _compile(group, "cmdline_pattern", cmdline_pattern)
        )
        self._lock = threading.Lock()
        self._cpu = CpuAccountant()

    @property
    def group(self) -> str:
        return self._group

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        cancelled = threading.Event()
        unregister = ctx.cancel.on_cancel(cancelled.set)
        try:
            with self._lock:
                try:
                    processes = read_group_processes(self._name_pattern, self._cmdline_pattern, cancelled)
                except (OSError, psutil.Error) as exc:
                    raise CheckError(ErrorReason.OTHER, f"listing processes failed: {exc}") from exc
                if cancelled.is_set():
                    # A partial list would retire the unseen members' CPU time and count it twice later.
                    raise CheckError(ErrorReason.TIMEOUT, "cancelled while listing processes")
                cpu = self._cpu.update(processes)
        finally:
            unregister()
        return process_group_to_families(ProcessGroupSnapshot(self._group, processes, cpu))


def _compile(group: str, setting: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"process group {group!r}: invalid {setting} {pattern!r}: {exc}") from exc


def build_process_group_checks(loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per process group (`process_group:<name>`)."""
    settings = loaded.config.global_
    checks: list[ScheduledCheck] = []
    for group in loaded.config.process_groups:
        check = ProcessGroupCheck(group.name, group.name, group.process_name, group.cmdline)
        schedule = check_schedule(
            group.interval, group.timeout, default_interval=settings.interval, default_timeout=settings.timeout
        )
        checks.append(ScheduledCheck(f"process_group:{group.name}", check, schedule.interval, schedule.timeout))
    return checks


def check_kind() -> CheckKind:
    """`process_group`: one check per entry of `process_groups`."""
    return CheckKind("process_group", ProcessGroupCheck.metrics, build_for_exporter=build_process_group_checks)
