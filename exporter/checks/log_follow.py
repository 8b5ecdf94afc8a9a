"""The log check: follows a log file (like `tail -F`) and counts the lines that match named patterns.

`LogFollower` does the file work, `LogCheck` the matching and counting.

How the file is followed:

* The first run starts at the end of the file: what was written before the exporter watched is not
  counted (a restart must not count last week's errors again). A file that does not exist at the first
  run and appears later is read from its start, it is new.
* Every run reads only the bytes added since the last one, at most `max_read_bytes`; the rest waits for
  the next run (the counters catch up, memory stays bounded).
* Lines are split on `\\n` (a trailing `\\r` is dropped) and decoded as UTF-8 (bad bytes replaced). A line
  still being written (no newline yet) waits in a buffer until it is complete, so it is counted once. A
  line longer than `max_line_bytes` is matched on its first `max_line_bytes` bytes, once, and the rest of
  it is skipped: the buffer never grows beyond that.
* Rotation by rename (or delete and re-create): on POSIX the old file stays open between runs, so what
  was written to it before the rename is read to its end first; then the new file is read from its start.
  On Windows the file is not kept open between runs (an open file there blocks the rename that rotates
  it), so lines written between the last run and the rotation are not seen.
* Truncation in place (logrotate's `copytruncate`): when the file is shorter than the position reached,
  reading starts again at 0. A file that is truncated and grows past the old position between two runs
  cannot be told apart from one that just grew (no tail can).
* Both count in `erp_log_rotations_total`.
* A missing file (between a rotation and the new file, or a wrong path) fails the check with reason
  `other` and a message naming the file; the counters stay published and keep their values, and the
  file is picked up again when it appears. It is logged once, not every run.

Counters start at 0 for every configured pattern and live in the check object; a config reload builds a
new check, which starts at the end of the file again (Prometheus' rate() handles the counter reset).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, ClassVar

from exporter.checks.base import BaseCheck, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.loader import LoadedConfig
from exporter.config.log_presets import PRESETS
from exporter.config.schedule import check_schedule
from exporter.metrics import MetricFamily, MetricSpec, counter

logger = logging.getLogger(__name__)

DEFAULT_MAX_READ_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 64 * 1024
_CHUNK_BYTES = 256 * 1024

MATCHES = counter(
    "erp_log_matches_total",
    "Lines of the log file that matched the named pattern since the exporter started following it.",
    "log",
    "pattern",
)
READ_BYTES = counter(
    "erp_log_read_bytes_total", "Bytes the exporter read from the log file (and its rotated predecessors).", "log"
)
ROTATIONS = counter(
    "erp_log_rotations_total",
    "Times the log file was replaced by a new file (rotation by rename) or truncated in place (copytruncate).",
    "log",
)


def patterns_for(presets: Sequence[str], patterns: Mapping[str, str]) -> dict[str, str]:
    """Pattern name -> regex: the presets' patterns, then the user's. Names must not repeat."""
    merged: dict[str, str] = {}
    for preset in presets:
        if preset not in PRESETS:
            raise ValueError(f"unknown log pattern preset {preset!r}; expected one of: {', '.join(PRESETS)}")
        for name, regex in PRESETS[preset].items():
            if name in merged:
                raise ValueError(f"pattern name {name!r} is given twice")
            merged[name] = regex
    for name, regex in patterns.items():
        if name in merged:
            raise ValueError(f"pattern name {name!r} is given twice (a preset defines it)")
        merged[name] = regex
    return merged


@dataclass(frozen=True)
class PollResult:
    missing: bool  # the path does not exist (after finishing the file it named before)
    at_end: bool  # everything written so far has been read (False: the budget ran out or it was stopped)


FileIdentity = tuple[int, int]  # (st_dev, st_ino)


def _identity(st: os.stat_result) -> FileIdentity:
    return (st.st_dev, st.st_ino)


class LogFollower:
    """Reads what is appended to one file across runs, handing complete lines to a callback.

    Not thread-safe: the check calls it under its lock.
    """

    def __init__(
        self,
        path: str,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        keep_open: bool = os.name != "nt",
    ) -> None:
        if max_read_bytes < 1 or max_line_bytes < 1:
            raise ValueError("max_read_bytes and max_line_bytes must be positive")
        self.path = path
        self.max_read_bytes = max_read_bytes
        self.max_line_bytes = max_line_bytes
        self.keep_open = keep_open
        self._started = False
        self._handle: BinaryIO | None = None
        self._identity: FileIdentity | None = None  # the file being followed; None: none seen yet
        self._offset = 0
        self._buffer = bytearray()  # the start of a line whose newline has not been read yet
        self._skipping = False  # inside a line that was already handed over (too long) or began before us
        self.read_bytes_total = 0
        self.rotations_total = 0

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer)

    @property
    def offset(self) -> int:
        return self._offset

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def poll(self, emit: Callable[[bytes], None], stop: threading.Event | None = None) -> PollResult:
        """Read what is new (at most max_read_bytes) and emit every complete line.

        `read_bytes_total` and `rotations_total` grow as it goes, so what was done before an error counts.
        Raises OSError when the file exists but cannot be opened or read (permission denied).
        """
        try:
            current: os.stat_result | None = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if not self._started:
            self._started = True
            if current is not None:
                self._start_at_end()
            return PollResult(missing=current is None, at_end=True)

        budget = self.max_read_bytes
        try:
            while True:
                if self._handle is None:
                    if current is None:
                        return PollResult(missing=True, at_end=True)
                    handle = open(self.path, "rb")  # noqa: SIM115 - kept open across runs (POSIX)
                    identity = _identity(os.fstat(handle.fileno()))
                    if self._identity is not None and identity != self._identity:
                        self._rotated(emit)  # replaced while we did not hold it open
                    self._identity, self._handle = identity, handle
                if os.fstat(self._handle.fileno()).st_size < self._offset:
                    self._rotated(emit)  # truncated in place
                got, at_eof = self._read(self._handle, budget, emit, stop)
                budget -= got
                if not at_eof:
                    return PollResult(missing=False, at_end=False)
                if current is not None and _identity(current) == self._identity:
                    return PollResult(missing=False, at_end=True)
                # The path now names another file, or none: the old one is finished.
                self._flush(emit)
                self.close()
                if current is None:
                    return PollResult(missing=True, at_end=True)
                self._rotated(emit)
                self._identity = None  # the next round opens the new file from its start
        finally:
            if not self.keep_open:
                self.close()

    def _rotated(self, emit: Callable[[bytes], None]) -> None:
        self.rotations_total += 1
        self._flush(emit)
        self._offset = 0

    def _start_at_end(self) -> None:
        handle = open(self.path, "rb")  # noqa: SIM115 - kept open across runs (POSIX)
        try:
            st = os.fstat(handle.fileno())
            self._identity, self._offset = _identity(st), st.st_size
            if st.st_size > 0:
                handle.seek(st.st_size - 1)
                self._skipping = handle.read(1) != b"\n"  # the rest of that line is not ours to count
        except BaseException:
            handle.close()
            raise
        if self.keep_open:
            self._handle = handle
        else:
            handle.close()

    def _read(
        self, handle: BinaryIO, budget: int, emit: Callable[[bytes], None], stop: threading.Event | None
    ) -> tuple[int, bool]:
        """Read from the offset until end of file or budget; (bytes read, reached end of file)."""
        handle.seek(self._offset)
        total = 0
        while total < budget:
            if stop is not None and stop.is_set():
                return total, False
            chunk = handle.read(min(_CHUNK_BYTES, budget - total))
            if not chunk:
                return total, True
            total += len(chunk)
            self._offset += len(chunk)
            self.read_bytes_total += len(chunk)
            self._split(chunk, emit)
        # The budget is spent: at the end only if nothing more is there.
        return total, self._offset >= os.fstat(handle.fileno()).st_size

    def _split(self, chunk: bytes, emit: Callable[[bytes], None]) -> None:
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            if self._skipping:
                if newline >= 0:
                    self._skipping = False
            else:
                room = self.max_line_bytes - len(self._buffer)
                self._buffer += piece[:room]
                if newline >= 0 or len(piece) > room:
                    # A complete line, or one that reached the limit: hand over its (first) bytes once.
                    emit(bytes(self._buffer))
                    self._buffer.clear()
                    self._skipping = newline < 0
            if newline < 0:
                return
            start = newline + 1

    def _flush(self, emit: Callable[[bytes], None]) -> None:
        """The file ends here for good: a last line without a newline is complete."""
        if self._buffer and not self._skipping:
            emit(bytes(self._buffer))
        self._buffer.clear()
        self._skipping = False


class LogCheck(BaseCheck):
    """Counts lines of one log file matching named patterns (`re.search` on each line)."""

    kind: ClassVar[str] = "log"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (MATCHES, READ_BYTES, ROTATIONS)

    def __init__(
        self,
        name: str,
        log: str,
        path: str,
        patterns: Mapping[str, str],
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        keep_open: bool = os.name != "nt",
    ) -> None:
        super().__init__(name)
        if not patterns:
            raise ValueError(f"log {log!r}: give at least one pattern or preset")
        self._log = log
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for pattern_name, regex in patterns.items():
            try:
                self._patterns.append((pattern_name, re.compile(regex)))
            except re.error as exc:
                raise ValueError(f"log {log!r}: pattern {pattern_name!r}: invalid regex {regex!r}: {exc}") from exc
        self._follower = LogFollower(path, max_read_bytes, max_line_bytes, keep_open)
        self._lock = threading.Lock()
        self._matches = dict.fromkeys((pattern_name for pattern_name, _ in self._patterns), 0)
        self._published = self._families()
        self._missing_reported = False

    @property
    def log(self) -> str:
        return self._log

    @property
    def follower(self) -> LogFollower:
        return self._follower

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        stop = threading.Event()
        unregister = ctx.cancel.on_cancel(stop.set)
        try:
            with self._lock:
                try:
                    result = self._follower.poll(self._match, stop)
                except OSError as exc:
                    raise CheckError(
                        ErrorReason.OTHER, f"cannot read log file {self._follower.path}: {exc.strerror or exc}"
                    ) from exc
                finally:
                    self._published = self._families()
                self._report_missing(result.missing)
        finally:
            unregister()
        if result.missing:
            raise CheckError(
                ErrorReason.OTHER, f"log file {self._follower.path} does not exist (waiting for it to appear)"
            )
        return self._published

    def failure_families(self, error: CheckError) -> list[MetricFamily]:
        """The counters keep their values while the file is missing or unreadable (never reset to absent)."""
        return self._published

    def _match(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        text = line.decode("utf-8", errors="replace")
        for pattern_name, pattern in self._patterns:
            if pattern.search(text):
                self._matches[pattern_name] += 1

    def _families(self) -> list[MetricFamily]:
        matches = MATCHES.family()
        for pattern_name, count in self._matches.items():
            matches.add(count, log=self._log, pattern=pattern_name)
        return [
            matches,
            READ_BYTES.family().add(self._follower.read_bytes_total, log=self._log),
            ROTATIONS.family().add(self._follower.rotations_total, log=self._log),
        ]

    def _report_missing(self, missing: bool) -> None:
        if missing and not self._missing_reported:
            logger.warning("log file does not exist", extra={"log": self._log, "file": self._follower.path})
        elif not missing and self._missing_reported:
            logger.info("log file exists again", extra={"log": self._log, "file": self._follower.path})
        self._missing_reported = missing


def build_log_checks(loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per followed log file (`log:<name>`)."""
    settings = loaded.config.global_
    checks: list[ScheduledCheck] = []
    for log_file in loaded.config.logs:
        name = f"log:{log_file.name}"
        check = LogCheck(
            name,
            log_file.name,
            loaded.path(log_file.path),
            patterns_for(log_file.presets, {p.name: p.regex for p in log_file.patterns}),
            max_read_bytes=log_file.max_read_bytes,
            max_line_bytes=log_file.max_line_bytes,
        )
        schedule = check_schedule(
            log_file.interval, log_file.timeout, default_interval=log_file.interval, default_timeout=settings.timeout
        )
        checks.append(ScheduledCheck(name, check, schedule.interval, schedule.timeout))
    return checks


def check_kind() -> CheckKind:
    """`log`: one check per entry of `logs`."""
    return CheckKind("log", LogCheck.metrics, build_for_exporter=build_log_checks)
