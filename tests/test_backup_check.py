"""The backup check on real dumps: `pg_dump -Fc` and a gzip'd plain `pg_dump` of the test PostgreSQL.

Dumps are made once per module (the fixture writes a table with its own psql connection); every test
copies them into its own directory and sets the files' modification times, so the expected values are
exact: the size is os.stat's, the timestamps are the mtimes the test set.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import running_app, wait_until
from servers import PostgresServer, _newest_postgres_bin_dir

from exporter.checks.backup import BackupCheck, BackupFormat, find_pg_restore
from exporter.checks.base import CancelToken, CheckError, ErrorReason, RunContext
from exporter.config.loader import ConfigError, load_config
from exporter.metrics import MetricFamily

DATABASE = "backup_src"
T0 = 1_700_000_000.0  # the oldest file's mtime; later files are a day apart
DAY = 86_400.0


@pytest.fixture(scope="module")
def dumps(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, bytes]]:
    """A custom-format dump and a plain SQL dump of a database with a 20,000-row table."""
    postgres.psql(f"DROP DATABASE IF EXISTS {DATABASE};\nCREATE DATABASE {DATABASE};\n", database="postgres")
    postgres.psql(
        "CREATE TABLE material AS SELECT g AS id, md5(g::text) AS code FROM generate_series(1, 20000) AS g;"
        "\nCREATE INDEX material_code ON material (code);\n",
        database=DATABASE,
    )
    out = tmp_path_factory.mktemp("dumps")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    made = {}
    for name, fmt in (("custom", "c"), ("plain", "p")):
        target = out / name
        subprocess.run(
            [
                str(postgres.bin_dir / "pg_dump"),
                f"-F{fmt}",
                "-h", str(postgres.socket_dir),
                "-p", str(postgres.port),
                "-U", postgres.superuser,
                "-d", DATABASE,
                "-f", str(target),
            ],
            check=True, env=env, timeout=120, capture_output=True,
        )  # fmt: skip
        made[name] = target.read_bytes()
    yield made
    postgres.psql(f"DROP DATABASE IF EXISTS {DATABASE};\n", database="postgres")


@pytest.fixture
def pg_restore(postgres: PostgresServer) -> str:
    """The pg_restore of the server that made the dumps (the version must be at least the dump's)."""
    return str(postgres.bin_dir / "pg_restore")


def put(path: Path, data: bytes, mtime: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def sha256_file(path: Path, digest: str) -> Path:
    sidecar = path.with_name(path.name + ".sha256")
    sidecar.write_text(f"{digest}  {path.name}\n")
    return sidecar


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flipped(data: bytes) -> bytes:
    """The same length with 8 bytes of compressed table data inverted (70 % into the file, past the TOC)."""
    at = len(data) * 7 // 10
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + 8]) + data[at + 8 :]


def check(path: Path | str, pg_restore: str | None = None, **kwargs: object) -> BackupCheck:
    return BackupCheck("backup:nightly", "nightly", str(path), pg_restore=pg_restore, min_age=0.0, **kwargs)  # type: ignore[arg-type]


def run(backup_check: BackupCheck, timeout: float = 60.0) -> dict[str, float]:
    """One run, as {metric name: value}; every family must hold one sample labelled backup="nightly"."""
    families: list[MetricFamily] = backup_check.run(RunContext(timeout=timeout))
    values = {}
    for family in families:
        assert family.spec in BackupCheck.metrics
        assert len(family.samples) == 1, family
        sample = family.samples[0]
        assert dict(sample.labels) == {"backup": "nightly"}
        assert isinstance(sample.value, float | int)
        values[family.name] = float(sample.value)
    return values


def newest(path: Path, files: int, integrity: int, last_good: float) -> dict[str, float]:
    st = os.stat(path)
    return {
        "erp_backup_files": files,
        "erp_backup_newest_timestamp_seconds": st.st_mtime,
        "erp_backup_newest_size_bytes": st.st_size,
        "erp_backup_integrity_ok": integrity,
        "erp_backup_last_good_timestamp_seconds": last_good,
    }


# --- pg_custom ---------------------------------------------------------------------------------------


def test_newest_custom_dump_reports_count_time_size_and_passes(
    dumps: dict[str, bytes], pg_restore: str, tmp_path: Path
) -> None:
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    latest = put(tmp_path / "erp-2.dump", dumps["custom"], T0 + DAY)

    assert run(check(tmp_path, pg_restore)) == newest(latest, files=2, integrity=1, last_good=T0 + DAY)


def test_truncated_newest_dump_fails_and_last_good_stays_on_the_previous_one(
    dumps: dict[str, bytes], pg_restore: str, tmp_path: Path
) -> None:
    backup_check = check(tmp_path, pg_restore)
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    assert run(backup_check)["erp_backup_last_good_timestamp_seconds"] == T0

    broken = put(tmp_path / "erp-2.dump", truncated(dumps["custom"]), T0 + DAY)

    assert run(backup_check) == newest(broken, files=2, integrity=0, last_good=T0)


def test_dump_with_corrupted_data_blocks_fails_although_its_table_of_contents_reads(
    dumps: dict[str, bytes], pg_restore: str, tmp_path: Path
) -> None:
    broken = put(tmp_path / "erp-1.dump", flipped(dumps["custom"]), T0)
    toc = subprocess.run([pg_restore, "--list", str(broken)], check=False, capture_output=True, timeout=60)
    assert toc.returncode == 0

    values = run(check(tmp_path, pg_restore))

    assert values == {
        "erp_backup_files": 1,
        "erp_backup_newest_timestamp_seconds": T0,
        "erp_backup_newest_size_bytes": len(dumps["custom"]),
        "erp_backup_integrity_ok": 0,
    }


def test_table_of_contents_only_passes_the_corrupted_dump_when_verify_data_is_off(
    dumps: dict[str, bytes], pg_restore: str, tmp_path: Path
) -> None:
    put(tmp_path / "erp-1.dump", flipped(dumps["custom"]), T0)

    assert run(check(tmp_path, pg_restore, verify_data=False))["erp_backup_integrity_ok"] == 1


def test_a_new_check_finds_the_last_good_backup_behind_a_broken_newest_one(
    dumps: dict[str, bytes], pg_restore: str, tmp_path: Path
) -> None:
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    put(tmp_path / "erp-2.dump", truncated(dumps["custom"]), T0 + DAY)
    broken = put(tmp_path / "erp-3.dump", flipped(dumps["custom"]), T0 + 2 * DAY)

    assert run(check(tmp_path, pg_restore)) == newest(broken, files=3, integrity=0, last_good=T0)


def test_older_files_are_verified_at_most_max_files_checked_per_run(
    dumps: dict[str, bytes], pg_restore: str, tmp_path: Path
) -> None:
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    put(tmp_path / "erp-2.dump", truncated(dumps["custom"]), T0 + DAY)
    put(tmp_path / "erp-3.dump", truncated(dumps["custom"]), T0 + 2 * DAY)
    backup_check = check(tmp_path, pg_restore, max_files_checked=2)

    first = run(backup_check)  # verifies erp-3 and erp-2: both broken, erp-1 not reached yet
    second = run(backup_check)  # those two are known now; erp-1 is verified

    assert "erp_backup_last_good_timestamp_seconds" not in first
    assert first["erp_backup_integrity_ok"] == 0
    assert second["erp_backup_last_good_timestamp_seconds"] == T0
    assert second["erp_backup_integrity_ok"] == 0


def test_an_unchanged_file_is_not_verified_again(dumps: dict[str, bytes], pg_restore: str, tmp_path: Path) -> None:
    dump = put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    backup_check = check(tmp_path, pg_restore)
    assert run(backup_check)["erp_backup_integrity_ok"] == 1

    # Corrupt it behind the check's back, keeping size and mtime: the cached verdict stands...
    put(dump, flipped(dumps["custom"]), T0)
    assert run(backup_check)["erp_backup_integrity_ok"] == 1
    # ...until the file visibly changes.
    os.utime(dump, (T0 + 1, T0 + 1))
    assert run(backup_check)["erp_backup_integrity_ok"] == 0


def test_a_hung_pg_restore_is_killed_when_the_check_is_cancelled(dumps: dict[str, bytes], tmp_path: Path) -> None:
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    marker = tmp_path / "pg_restore.pid"
    fake = tmp_path / "bin" / "pg_restore"  # stands in for a pg_restore stuck on a dead NFS mount
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 60\n")
    fake.chmod(0o755)
    token = CancelToken()
    threading.Timer(0.5, token.cancel).start()

    started = time.monotonic()
    with pytest.raises(CheckError) as raised:
        check(tmp_path, str(fake)).run(RunContext(timeout=60.0, cancel=token))

    assert raised.value.reason is ErrorReason.TIMEOUT
    assert time.monotonic() - started < 5
    pid = int(marker.read_text())
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 5, f"pg_restore {pid} still runs")


def test_a_pg_restore_that_overruns_the_timeout_is_killed(dumps: dict[str, bytes], tmp_path: Path) -> None:
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    fake = tmp_path / "bin" / "pg_restore"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)

    started = time.monotonic()
    with pytest.raises(CheckError) as raised:
        check(tmp_path, str(fake)).run(RunContext(timeout=0.5))

    assert raised.value.reason is ErrorReason.TIMEOUT
    assert time.monotonic() - started < 5


def test_a_pg_restore_that_does_not_exist_fails_the_check_naming_it(dumps: dict[str, bytes], tmp_path: Path) -> None:
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)

    with pytest.raises(CheckError) as raised:
        check(tmp_path, "/nonexistent/pg_restore").run(RunContext(timeout=10.0))

    assert raised.value.reason is ErrorReason.OTHER
    assert "/nonexistent/pg_restore" in raised.value.message


# --- gzip, plain and .sha256 ----------------------------------------------------------------------


def test_gzipped_plain_dump_passes(dumps: dict[str, bytes], tmp_path: Path) -> None:
    dump = put(tmp_path / "erp-1.sql.gz", gzip.compress(dumps["plain"]), T0)

    assert run(check(tmp_path)) == newest(dump, files=1, integrity=1, last_good=T0)


def test_truncated_gzip_fails(dumps: dict[str, bytes], tmp_path: Path) -> None:
    put(tmp_path / "erp-1.sql.gz", gzip.compress(dumps["plain"]), T0)
    broken = put(tmp_path / "erp-2.sql.gz", truncated(gzip.compress(dumps["plain"])), T0 + DAY)

    assert run(check(tmp_path)) == newest(broken, files=2, integrity=0, last_good=T0)


def test_gzip_with_flipped_bytes_fails(dumps: dict[str, bytes], tmp_path: Path) -> None:
    put(tmp_path / "erp-1.sql.gz", flipped(gzip.compress(dumps["plain"])), T0)

    assert run(check(tmp_path))["erp_backup_integrity_ok"] == 0


def test_matching_sha256_file_passes(dumps: dict[str, bytes], tmp_path: Path) -> None:
    dump = put(tmp_path / "erp-1.sql", dumps["plain"], T0)
    sha256_file(dump, hashlib.sha256(dumps["plain"]).hexdigest())

    assert run(check(tmp_path)) == newest(dump, files=1, integrity=1, last_good=T0)


def test_sha256_mismatch_fails_an_otherwise_intact_dump(
    dumps: dict[str, bytes], pg_restore: str, tmp_path: Path
) -> None:
    put(tmp_path / "erp-1.dump", dumps["custom"], T0)
    dump = put(tmp_path / "erp-2.dump", dumps["custom"], T0 + DAY)
    sha256_file(dump, hashlib.sha256(b"another file").hexdigest())

    assert run(check(tmp_path, pg_restore)) == newest(dump, files=2, integrity=0, last_good=T0)


def test_sha256_file_without_a_digest_fails(dumps: dict[str, bytes], tmp_path: Path) -> None:
    dump = put(tmp_path / "erp-1.sql", dumps["plain"], T0)
    sha256_file(dump, "not-a-digest")

    assert run(check(tmp_path))["erp_backup_integrity_ok"] == 0


def test_empty_plain_file_fails(tmp_path: Path) -> None:
    put(tmp_path / "erp-1.sql", b"", T0)

    assert run(check(tmp_path))["erp_backup_integrity_ok"] == 0


def test_explicit_format_overrides_detection(dumps: dict[str, bytes], tmp_path: Path) -> None:
    put(tmp_path / "erp-1.sql", dumps["plain"], T0)  # not gzip at all

    assert run(check(tmp_path, fmt=BackupFormat.GZIP))["erp_backup_integrity_ok"] == 0


def test_verify_off_publishes_count_time_and_size_only(dumps: dict[str, bytes], tmp_path: Path) -> None:
    dump = put(tmp_path / "erp-1.sql.gz", truncated(gzip.compress(dumps["plain"])), T0)

    assert run(check(tmp_path, verify=False)) == {
        "erp_backup_files": 1,
        "erp_backup_newest_timestamp_seconds": T0,
        "erp_backup_newest_size_bytes": os.stat(dump).st_size,
    }


# --- which files are backups ------------------------------------------------------------------------


def test_empty_directory_publishes_zero_files_and_nothing_else(tmp_path: Path) -> None:
    assert run(check(tmp_path)) == {"erp_backup_files": 0}


def test_missing_directory_publishes_zero_files(tmp_path: Path) -> None:
    assert run(check(tmp_path / "unmounted-share")) == {"erp_backup_files": 0}


def test_directory_leaves_out_checksum_files_hidden_files_and_subdirectories(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    dump = put(tmp_path / "erp-1.sql", dumps["plain"], T0)
    sha256_file(dump, hashlib.sha256(dumps["plain"]).hexdigest())
    put(tmp_path / ".erp-2.sql.partial", b"rsync temporary file", T0 + 2 * DAY)
    put(tmp_path / "old" / "erp-0.sql", dumps["plain"], T0 + 3 * DAY)

    assert run(check(tmp_path)) == newest(dump, files=1, integrity=1, last_good=T0)


def test_glob_counts_only_the_matching_files(dumps: dict[str, bytes], tmp_path: Path) -> None:
    put(tmp_path / "erp-1.sql.gz", gzip.compress(dumps["plain"]), T0)
    dump = put(tmp_path / "erp-2.sql.gz", gzip.compress(dumps["plain"]), T0 + DAY)
    put(tmp_path / "crm-3.sql.gz", b"not even gzip", T0 + 2 * DAY)
    put(tmp_path / "erp-4.log", b"newer, but not a backup", T0 + 3 * DAY)

    assert run(check(tmp_path / "erp-*.sql.gz")) == newest(dump, files=2, integrity=1, last_good=T0 + DAY)


def test_files_modified_within_min_age_are_still_being_written_and_left_out(
    dumps: dict[str, bytes], tmp_path: Path
) -> None:
    now = time.time()
    done = put(tmp_path / "erp-1.sql.gz", gzip.compress(dumps["plain"]), now - 120)
    put(tmp_path / "erp-2.sql.gz", truncated(gzip.compress(dumps["plain"])), now - 5)
    backup_check = BackupCheck("backup:nightly", "nightly", str(tmp_path), min_age=60.0, clock=lambda: now)

    assert run(backup_check) == newest(done, files=1, integrity=1, last_good=os.stat(done).st_mtime)


# --- config and the running exporter -----------------------------------------------------------------


def test_config_resolves_a_relative_path_from_the_config_files_directory(tmp_path: Path) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text("backups:\n  - name: nightly\n    path: backups/erp-*.dump\n    interval: 1h\n")

    loaded = load_config(config)

    backup = loaded.config.backups[0]
    assert (backup.path, backup.format, backup.verify, backup.interval, backup.effective_timeout) == (
        "backups/erp-*.dump",
        "auto",
        True,
        3600.0,
        120.0,
    )
    assert loaded.base_dir == tmp_path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "  - name: a\n    path: /b\n    format: tar\n",
            ":4: backups[0].format: input should be 'auto', 'pg_custom', 'gzip' or 'plain', got 'tar'",
        ),
        (
            "  - name: a\n    path: /b\n    interval: 1m\n    timeout: 2m\n",
            ":5: backups[0].timeout: timeout 2m is longer than its interval (1m); a check must end before its next run",
        ),
        ("  - name: a\n    path: /b\n  - name: a\n    path: /c\n", ":4: backups[1].name: duplicate backup name 'a'"),
        (
            "  - name: a\n    path: /b\n    max_files_checked: 0\n",
            ":4: backups[0].max_files_checked: must be at least 1, got 0",
        ),
        ("  - name: a\n", ":2: backups[0].path: required key is missing"),
    ],
    ids=["format", "timeout-longer-than-interval", "duplicate-name", "max-files-checked", "path-missing"],
)
def test_config_errors_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text("backups:\n" + body)

    with pytest.raises(ConfigError) as raised:
        load_config(config)

    assert str(raised.value).endswith(message)


def test_running_exporter_publishes_the_backup_check(dumps: dict[str, bytes], pg_restore: str, tmp_path: Path) -> None:
    dump = put(tmp_path / "backups" / "erp-1.dump", dumps["custom"], T0)
    config = (
        "host:\n  enabled: false\n"
        "backups:\n"
        "  - name: nightly\n"
        "    path: backups\n"  # relative to the config file
        f"    pg_restore: {pg_restore}\n"
        "    interval: 1h\n"
    )
    with running_app(tmp_path, config) as app:
        wait_until(lambda: app.state("", "backup:nightly").runs_total >= 1, 30, "the backup check did not run")

        assert app.value("erp_backup_files", backup="nightly") == 1
        assert app.value("erp_backup_newest_size_bytes", backup="nightly") == os.stat(dump).st_size
        assert app.value("erp_backup_integrity_ok", backup="nightly") == 1
        assert app.value("erp_backup_last_good_timestamp_seconds", backup="nightly") == T0
        assert app.value("erp_check_success", check="backup:nightly") == 1


def test_without_pg_restore_on_path_the_newest_installed_one_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH

    assert find_pg_restore(None) == str(_newest_postgres_bin_dir() / "pg_restore")
    assert find_pg_restore("/opt/pg/bin/pg_restore") == "/opt/pg/bin/pg_restore"
