"""The backup check: how many backups there are, how fresh and large the newest is, and whether it is intact.

A backup set is a directory (its regular files, not recursive), a glob or one file. Hidden files (rsync
and editors write their temporary files as `.name.XXXX`) and `*.sha256` checksum files are not backups.
Files modified less than `min_age` ago are taken as still being written and left out, so a dump in
progress is neither "the newest backup" nor a failed one. (Writing to a temporary name and renaming at
the end is still the better practice.)

Integrity of a file, by its format (`auto` tells them apart by their first bytes):

* `pg_custom` (`pg_dump -Fc`, starts with `PGDMP`): `pg_restore --list FILE` must succeed (the table of
  contents is readable); then, with `verify_data` (the default), `pg_restore --file=<null device> FILE`
  must succeed too: it reads and decompresses every data block. `--list` alone passes a truncated dump
  or one with corrupted data blocks, because it reads the table of contents only.
* `gzip`: the whole file is decompressed as a stream (bounded memory): a truncated file, a bad CRC or
  corrupted deflate data fail.
* `plain`: nothing in the file says whether it is complete; an empty file fails.
* Any format: when `FILE.sha256` exists beside it (`sha256sum` output: the hex digest first), the
  file's SHA-256 must equal it. A checksum file that holds no digest fails too.

Every verification of a file is kept by path, size, modification time (and those of its checksum file),
so an unchanged file is verified once, not every run. A verification that is cut short (timeout) is not
kept. When the newest file fails, older ones are verified, newest first, until one passes (at most
`max_files_checked` files a run that are not verified yet): after a restart the last good backup is
found again without waiting for the next good one.

No files (also when the directory does not exist, for example an unmounted backup share): only
`erp_backup_files 0` is published and the check succeeds; the alert on the count handles it.

Reading is apart from deciding: `list_backup_files()` and the `verify_*()` functions touch the disk and
run pg_restore; the pure `backup_to_families()` turns a `BackupSnapshot` into metric families.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import logging
import os
import re
import shutil
import stat
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, ClassVar

from exporter.checks.base import BaseCheck, CancelToken, CheckError, ErrorReason, RunContext
from exporter.checks.registry import CheckKind, ScheduledCheck
from exporter.config.loader import LoadedConfig
from exporter.config.schedule import check_schedule
from exporter.metrics import MetricFamily, MetricSpec, gauge

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
SIDECAR_SUFFIX = ".sha256"
_GLOB_CHARS = re.compile(r"[*?\[]")
_SHA256_HEX = re.compile(r"^[0-9A-Fa-f]{64}$")

FILES = gauge(
    "erp_backup_files",
    "Number of backup files found (files modified within min_age, still being written, are not counted).",
    "backup",
)
NEWEST_TIMESTAMP = gauge(
    "erp_backup_newest_timestamp_seconds",
    "Modification time of the newest backup file, in seconds since the Unix epoch.",
    "backup",
)
NEWEST_SIZE = gauge("erp_backup_newest_size_bytes", "Size of the newest backup file in bytes.", "backup")
INTEGRITY_OK = gauge(
    "erp_backup_integrity_ok",
    "1 if the newest backup file passed its integrity checks (format and .sha256), 0 if it failed.",
    "backup",
)
LAST_GOOD_TIMESTAMP = gauge(
    "erp_backup_last_good_timestamp_seconds",
    "Modification time of the newest backup file that passed its integrity checks, in seconds since the "
    "Unix epoch; it never goes back while the exporter runs.",
    "backup",
)


class BackupFormat(StrEnum):
    AUTO = "auto"
    PG_CUSTOM = "pg_custom"
    GZIP = "gzip"
    PLAIN = "plain"


@dataclass(frozen=True)
class BackupFile:
    path: str
    size: int
    mtime: float  # st_mtime, the published timestamp
    mtime_ns: int  # st_mtime_ns, part of the verification cache key


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str  # what passed, or why it failed


@dataclass(frozen=True)
class BackupSnapshot:
    """What one run found. `integrity_ok` None: not verified (verify off, or no files)."""

    backup: str
    files: int
    newest: BackupFile | None
    integrity_ok: bool | None
    last_good_timestamp: float | None


# --- parsing: snapshot -> families -----------------------------------------------------------------


def backup_to_families(snapshot: BackupSnapshot) -> list[MetricFamily]:
    """The file count always; the newest file's time and size when there is one; integrity when verified."""
    backup = snapshot.backup
    families = [FILES.family().add(snapshot.files, backup=backup)]
    if snapshot.newest is None:
        return families
    families += [
        NEWEST_TIMESTAMP.family().add(snapshot.newest.mtime, backup=backup),
        NEWEST_SIZE.family().add(snapshot.newest.size, backup=backup),
    ]
    if snapshot.integrity_ok is not None:
        families.append(INTEGRITY_OK.family().add(1 if snapshot.integrity_ok else 0, backup=backup))
    if snapshot.last_good_timestamp is not None:
        families.append(LAST_GOOD_TIMESTAMP.family().add(snapshot.last_good_timestamp, backup=backup))
    return families


# --- reading: listing and verifying files ----------------------------------------------------------


def list_backup_files(path: str, min_age: float, now: float) -> list[BackupFile]:
    """The backup files of a directory, glob or single file, newest first (ties: by path).

    Raises OSError when a directory that exists cannot be listed (permission denied).
    """
    if _GLOB_CHARS.search(path):
        candidates = glob.glob(path, recursive=True)
    elif os.path.isdir(path):
        candidates = [os.path.join(path, name) for name in os.listdir(path) if not name.startswith(".")]
    else:
        candidates = [path]
    files = []
    for candidate in candidates:
        if candidate.endswith(SIDECAR_SUFFIX):
            continue
        try:
            st = os.stat(candidate)
        except OSError:  # vanished since the listing (backup rotation), or a broken link
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if 0 <= now - st.st_mtime < min_age:
            continue  # still being written
        files.append(BackupFile(candidate, st.st_size, st.st_mtime, st.st_mtime_ns))
    files.sort(key=lambda f: (f.mtime_ns, f.path), reverse=True)
    return files


def detect_format(path: str) -> BackupFormat:
    """pg_custom or gzip by the file's magic bytes, else plain."""
    with open(path, "rb") as handle:
        head = handle.read(5)
    if head == b"PGDMP":
        return BackupFormat.PG_CUSTOM
    if head[:2] == b"\x1f\x8b":
        return BackupFormat.GZIP
    return BackupFormat.PLAIN


def read_sidecar_digest(sidecar: str) -> str | None:
    """The hex digest a `sha256sum`-style file holds (lower case), or None if it holds none."""
    with open(sidecar, encoding="utf-8", errors="replace") as handle:
        text = handle.read(64 * 1024)
    for line in text.splitlines():
        fields = line.split()
        if fields:
            digest = fields[0].lstrip("\\")  # sha256sum prefixes '\' when the file name is escaped
            return digest.lower() if _SHA256_HEX.match(digest) else None
    return None


def find_pg_restore(configured: str | None) -> str | None:
    """The configured pg_restore, else the one on PATH, else the newest under the usual install roots."""
    if configured is not None:
        return configured
    found = shutil.which("pg_restore")
    if found:
        return found
    candidates = glob.glob("/usr/lib/postgresql/*/bin/pg_restore") + glob.glob(
        r"C:\Program Files\PostgreSQL\*\bin\pg_restore.exe"
    )

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(path).parent.parent.name))

    return max(candidates, key=version) if candidates else None


class Stopper:
    """Ends a verification when the check is cancelled or its time is up (a CheckError with reason timeout)."""

    def __init__(self, cancel: CancelToken, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.token = cancel
        self._clock = clock
        self._deadline = clock() + timeout
        self._timeout = timeout

    def remaining(self) -> float:
        return max(0.0, self._deadline - self._clock())

    def check(self) -> None:
        if self.token.cancelled:
            raise CheckError(ErrorReason.TIMEOUT, "cancelled while verifying a backup")
        if self.remaining() <= 0:
            raise CheckError(ErrorReason.TIMEOUT, f"verifying a backup took longer than {self._timeout:g}s")


class _HashingReader:
    """A file reader that feeds what passes through it to a hash and stops when told to."""

    def __init__(self, handle: BinaryIO, digest: hashlib._Hash | None, stopper: Stopper) -> None:
        self._handle = handle
        self._digest = digest
        self._stopper = stopper

    def read(self, size: int = -1) -> bytes:
        self._stopper.check()
        data = self._handle.read(size if 0 < size <= CHUNK_BYTES else CHUNK_BYTES)
        if self._digest is not None:
            self._digest.update(data)
        return data

    def seek(self, offset: int, /) -> int:
        raise OSError("a backup is verified in one forward pass")  # gzip seeks only to rewind

    def drain(self) -> None:
        while self.read(CHUNK_BYTES):
            pass


def verify_stream(path: str, fmt: BackupFormat, expected_sha256: str | None, stopper: Stopper) -> Verdict:
    """Read the file once: gzip-decompress it (gzip) and/or hash it (when a digest is expected)."""
    digest = hashlib.sha256() if expected_sha256 is not None else None
    with open(path, "rb") as handle:
        reader = _HashingReader(handle, digest, stopper)
        if fmt is BackupFormat.GZIP:
            try:
                with gzip.GzipFile(fileobj=reader, mode="rb") as stream:
                    while stream.read(CHUNK_BYTES):
                        pass
            except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
                return Verdict(False, f"gzip stream is damaged: {exc}")
        if digest is not None:
            reader.drain()
    if digest is not None and digest.hexdigest() != expected_sha256:
        return Verdict(False, f"SHA-256 {digest.hexdigest()} differs from {path}{SIDECAR_SUFFIX}")
    if fmt is BackupFormat.PLAIN and os.path.getsize(path) == 0:
        return Verdict(False, "the file is empty")
    return Verdict(True, "ok")


def run_tool(argv: Sequence[str], stopper: Stopper) -> tuple[int, str]:
    """Run a verification tool; its exit code and the tail of its stderr. Killed on cancel or timeout."""
    stopper.check()
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    unregister = stopper.token.on_cancel(proc.kill)
    try:
        try:
            _, err = proc.communicate(timeout=stopper.remaining())
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    finally:
        unregister()
    stopper.check()  # killed: the exit code says nothing about the file
    return proc.returncode, err.decode("utf-8", errors="replace").strip()[-500:]


def verify_pg_custom(path: str, pg_restore: str, read_data: bool, stopper: Stopper) -> Verdict:
    code, err = run_tool([pg_restore, "--list", path], stopper)
    if code != 0:
        return Verdict(False, f"pg_restore --list failed (exit code {code}): {err}")
    if read_data:
        code, err = run_tool([pg_restore, f"--file={os.devnull}", path], stopper)
        if code != 0:
            return Verdict(False, f"pg_restore could not read the data (exit code {code}): {err}")
    return Verdict(True, "ok")


# --- the check -------------------------------------------------------------------------------------

_CacheKey = tuple[str, int, int, BackupFormat, tuple[int, int] | None]


class BackupCheck(BaseCheck):
    """Freshness, size, count and integrity of the backups matching `path` (see the module docstring).

    State kept in the check object (behind a lock): the verification cache and the last good timestamp.
    """

    kind: ClassVar[str] = "backup"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        FILES,
        NEWEST_TIMESTAMP,
        NEWEST_SIZE,
        INTEGRITY_OK,
        LAST_GOOD_TIMESTAMP,
    )

    def __init__(
        self,
        name: str,
        backup: str,
        path: str,
        fmt: BackupFormat = BackupFormat.AUTO,
        verify: bool = True,
        verify_data: bool = True,
        max_files_checked: int = 3,
        min_age: float = 60.0,
        pg_restore: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        if max_files_checked < 1:
            raise ValueError(f"backup {backup!r}: max_files_checked must be at least 1")
        self._backup = backup
        self._path = path
        self._format = fmt
        self._verify = verify
        self._verify_data = verify_data
        self._max_files_checked = max_files_checked
        self._min_age = min_age
        self._pg_restore_setting = pg_restore
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[_CacheKey, Verdict] = {}
        self._last_good: float | None = None
        self._warned_missing = False

    @property
    def backup(self) -> str:
        return self._backup

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._lock:
            return backup_to_families(self._collect(Stopper(ctx.cancel, ctx.timeout)))

    def _collect(self, stopper: Stopper) -> BackupSnapshot:
        try:
            files = list_backup_files(self._path, self._min_age, self._clock())
        except OSError as exc:
            raise CheckError(ErrorReason.OTHER, f"cannot list backups in {self._path}: {exc}") from exc
        self._note_missing_directory(files)
        if not files:
            self._cache.clear()
            return BackupSnapshot(self._backup, 0, None, None, None)
        if not self._verify:
            return BackupSnapshot(self._backup, len(files), files[0], None, None)

        fresh_left = self._max_files_checked
        seen: set[_CacheKey] = set()
        newest_ok: bool | None = None
        good: float | None = None
        for index, file in enumerate(files):
            key = self._cache_key(file)
            if key is None:  # vanished or unreadable since the listing
                if index == 0:
                    raise CheckError(ErrorReason.OTHER, f"cannot read the newest backup {file.path}")
                continue
            seen.add(key)
            verdict = self._cache.get(key)
            if verdict is None:
                if fresh_left == 0:
                    break
                fresh_left -= 1
                verdict = self._verify_file(file, key[3], stopper)
                self._cache[key] = verdict
                if not verdict.ok:
                    logger.warning(
                        "backup failed its integrity check",
                        extra={"backup": self._backup, "file": file.path, "err": verdict.detail},
                    )
            if index == 0:
                newest_ok = verdict.ok
            if verdict.ok:
                good = file.mtime
                break
        # Only files still listed stay cached (the newest ones the walk reached).
        self._cache = {key: verdict for key, verdict in self._cache.items() if key in seen}
        if good is not None and (self._last_good is None or good > self._last_good):
            self._last_good = good
        return BackupSnapshot(self._backup, len(files), files[0], newest_ok, self._last_good)

    def _cache_key(self, file: BackupFile) -> _CacheKey | None:
        try:
            fmt = detect_format(file.path) if self._format is BackupFormat.AUTO else self._format
        except OSError:
            return None
        try:
            sidecar = os.stat(file.path + SIDECAR_SUFFIX)
            sidecar_key: tuple[int, int] | None = (sidecar.st_size, sidecar.st_mtime_ns)
        except OSError:
            sidecar_key = None
        return (file.path, file.size, file.mtime_ns, fmt, sidecar_key)

    def _verify_file(self, file: BackupFile, fmt: BackupFormat, stopper: Stopper) -> Verdict:
        sidecar = file.path + SIDECAR_SUFFIX
        expected: str | None = None
        if os.path.exists(sidecar):
            try:
                expected = read_sidecar_digest(sidecar)
            except OSError as exc:
                return Verdict(False, f"cannot read {sidecar}: {exc}")
            if expected is None:
                return Verdict(False, f"{sidecar} holds no SHA-256 digest")
        try:
            verdict = verify_stream(file.path, fmt, expected, stopper)
        except OSError as exc:
            return Verdict(False, f"cannot read the file: {exc}")
        if not verdict.ok or fmt is not BackupFormat.PG_CUSTOM:
            return verdict
        pg_restore = find_pg_restore(self._pg_restore_setting)
        if pg_restore is None:
            raise CheckError(
                ErrorReason.OTHER,
                "pg_restore not found on PATH or under /usr/lib/postgresql/*/bin: set the backup's pg_restore",
            )
        try:
            return verify_pg_custom(file.path, pg_restore, self._verify_data, stopper)
        except OSError as exc:  # the configured pg_restore does not exist or may not run
            raise CheckError(ErrorReason.OTHER, f"cannot run {pg_restore}: {exc}") from exc

    def _note_missing_directory(self, files: list[BackupFile]) -> None:
        """Say once (not every run) that the backup location is gone, and once that it is back."""
        base = self._path if not _GLOB_CHARS.search(self._path) else _glob_root(self._path)
        missing = not files and not os.path.exists(base)
        if missing and not self._warned_missing:
            logger.warning("backup location does not exist", extra={"backup": self._backup, "path": base})
        elif not missing and self._warned_missing:
            logger.info("backup location exists again", extra={"backup": self._backup, "path": base})
        self._warned_missing = missing


def _glob_root(pattern: str) -> str:
    """The directory part of a glob before its first wildcard."""
    head = _GLOB_CHARS.split(pattern, maxsplit=1)[0]
    return os.path.dirname(head) or "."


def build_backup_checks(loaded: LoadedConfig) -> list[ScheduledCheck]:
    """One check per backup set (`backup:<name>`); a run may verify, so its default timeout is longer."""
    checks: list[ScheduledCheck] = []
    for backup in loaded.config.backups:
        name = f"backup:{backup.name}"
        check = BackupCheck(
            name,
            backup.name,
            loaded.path(backup.path),
            fmt=BackupFormat(backup.format),
            verify=backup.verify,
            verify_data=backup.verify_data,
            max_files_checked=backup.max_files_checked,
            min_age=backup.min_age,
            pg_restore=backup.pg_restore,
        )
        schedule = check_schedule(
            backup.interval, backup.timeout, default_interval=backup.interval, default_timeout=backup.default_timeout
        )
        checks.append(ScheduledCheck(name, check, schedule.interval, schedule.timeout))
    return checks


def check_kind() -> CheckKind:
    """`backup`: one check per entry of `backups`."""
    return CheckKind("backup", BackupCheck.metrics, build_for_exporter=build_backup_checks)
