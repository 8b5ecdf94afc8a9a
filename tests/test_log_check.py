"""The log check: following real files through appends, rotation and truncation, on real logs.

Files are written by the test (and, for the PostgreSQL and Python cases, by the real programs); every
count is exact.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from harness import running_app, wait_until
from servers import PostgresServer, ServerError

from exporter.checks.base import CheckError, ErrorReason, RunContext
from exporter.checks.log_follow import LogCheck, patterns_for
from exporter.config.loader import ConfigError, load_config
from exporter.metrics import MetricFamily

PG_PATTERNS = patterns_for(["postgresql"], {})


def log_check(path: Path, patterns: dict[str, str] | None = None, **kwargs: int | bool) -> LogCheck:
    return LogCheck("log:app", "app", str(path), PG_PATTERNS if patterns is None else patterns, **kwargs)  # type: ignore[arg-type]


def values(families: list[MetricFamily]) -> dict[str, float]:
    """{"error": n, ..., "read_bytes": n, "rotations": n}; checks the labels of every sample."""
    result = {}
    for family in families:
        assert family.spec in LogCheck.metrics
        for sample in family.samples:
            labels = dict(sample.labels)
            assert labels.pop("log") == "app"
            assert isinstance(sample.value, float | int)
            key = labels.pop("pattern") if family.name == "erp_log_matches_total" else family.name
            assert not labels
            result[key] = float(sample.value)
    return result


def run(check: LogCheck) -> dict[str, float]:
    return values(check.run(RunContext(timeout=30.0)))


def counts(error: int = 0, fatal: int = 0, panic: int = 0, read: int = 0, rotations: int = 0) -> dict[str, float]:
    return {
        "error": error,
        "fatal": fatal,
        "panic": panic,
        "erp_log_read_bytes_total": read,
        "erp_log_rotations_total": rotations,
    }


def append(path: Path, text: str | bytes) -> int:
    data = text.encode() if isinstance(text, str) else text
    with path.open("ab") as handle:
        handle.write(data)
    return len(data)


def test_first_run_starts_at_the_end_and_only_new_lines_count(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("ERROR:  from last week\nFATAL:  from last week\n")
    check = log_check(log)

    assert run(check) == counts()

    added = append(log, "LOG:  fine\nERROR:  one\n2024-05-01 UTC [7] ERROR:  two\nFATAL:  three\n")
    assert run(check) == counts(error=2, fatal=1, read=added)
    assert run(check) == counts(error=2, fatal=1, read=added)


def test_every_configured_pattern_is_published_from_the_start_with_zero(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    patterns = patterns_for(["postgresql", "python_traceback"], {"deadlock": "deadlock detected"})

    result = run(log_check(log, patterns))

    assert result == {
        "error": 0, "fatal": 0, "panic": 0, "traceback": 0, "deadlock": 0,
        "erp_log_read_bytes_total": 0, "erp_log_rotations_total": 0,
    }  # fmt: skip


def test_a_line_matching_two_patterns_counts_for_both(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    check = log_check(log, {"error": r"\bERROR:\s", "deadlock": "deadlock detected"})
    run(check)

    added = append(log, "ERROR:  deadlock detected\nLOG:  deadlock detected earlier\n")

    assert run(check) == {"error": 1, "deadlock": 2, "erp_log_read_bytes_total": added, "erp_log_rotations_total": 0}


def test_rotation_by_rename_finishes_the_old_file_then_reads_the_new_one_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    check = log_check(log)
    run(check)
    writer = log.open("ab", buffering=0)  # the server's handle, still writing after the rename
    read = append(log, "ERROR:  before the rotation\n")

    log.rename(tmp_path / "app.log.1")
    writer.write(b"ERROR:  written to the old file after the rename\n")
    read += len(b"ERROR:  written to the old file after the rename\n")
    writer.close()
    read += append(log, "FATAL:  first line of the new file\n")

    assert run(check) == counts(error=2, fatal=1, read=read, rotations=1)
    read += append(log, "PANIC:  second line of the new file\n")
    assert run(check) == counts(error=2, fatal=1, panic=1, read=read, rotations=1)


def test_copytruncate_starts_again_at_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("LOG:  a long line written before the exporter started\n")
    check = log_check(log)
    run(check)
    read = append(log, "ERROR:  one\n")
    assert run(check) == counts(error=1, read=read)

    with log.open("r+b") as handle:  # what logrotate's copytruncate does after copying
        handle.truncate(0)
    read += append(log, "ERROR:  two\n")

    assert run(check) == counts(error=2, read=read, rotations=1)


def test_partial_line_is_counted_once_when_its_newline_arrives(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    check = log_check(log)
    run(check)

    read = append(log, "ERROR:  half of a li")
    assert run(check) == counts(read=read)
    assert check.follower.buffered_bytes == len("ERROR:  half of a li")
    read += append(log, "ne\nLOG:  next\n")
    assert run(check) == counts(error=1, read=read)
    assert run(check) == counts(error=1, read=read)
    assert check.follower.buffered_bytes == 0


def test_a_line_the_exporter_started_in_the_middle_of_is_not_counted(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("LOG:  old\nERROR:  being writ")
    check = log_check(log)
    run(check)

    read = append(log, "ten when the exporter started\nERROR:  new\n")

    assert run(check) == counts(error=1, read=read)


def test_a_huge_line_is_matched_on_its_first_max_line_bytes_and_never_buffered_beyond(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    check = log_check(log, max_line_bytes=1024)
    run(check)

    read = append(log, "ERROR:  " + "x" * 1024 * 1024)  # 1 MiB, no newline yet
    assert run(check) == counts(error=1, read=read)
    assert check.follower.buffered_bytes <= 1024
    read += append(log, "x" * 5000 + " FATAL:  beyond the limit: not seen\n" + "x" * 2000 + " PANIC:  not seen\n")
    read += append(log, "FATAL:  the next line\n")

    assert run(check) == counts(error=1, fatal=1, read=read)
    assert check.follower.buffered_bytes == 0


def test_a_run_reads_at_most_max_read_bytes_and_the_next_runs_catch_up(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    check = log_check(log, max_read_bytes=4096)
    run(check)
    line = "ERROR:  %05d\n"  # 14 bytes
    written = append(log, "".join(line % n for n in range(1000)))  # 14,000 bytes

    assert run(check)["erp_log_read_bytes_total"] == 4096
    assert run(check)["erp_log_read_bytes_total"] == 8192
    assert run(check)["erp_log_read_bytes_total"] == 12288
    assert run(check) == counts(error=1000, read=written)


def test_missing_file_fails_the_check_keeps_the_counters_and_is_read_from_its_start_when_it_appears(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    check = log_check(log)

    with pytest.raises(CheckError) as raised:
        check.run(RunContext(timeout=30.0))
    assert raised.value.reason is ErrorReason.OTHER
    assert raised.value.message == f"log file {log} does not exist (waiting for it to appear)"
    assert values(check.failure_families(raised.value)) == counts()

    read = append(log, "ERROR:  first line of a new file\n")
    assert run(check) == counts(error=1, read=read)


def test_deleted_file_is_finished_then_the_recreated_one_counts_as_a_rotation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    check = log_check(log)
    run(check)
    read = append(log, "ERROR:  last words\n")
    log.unlink()

    with pytest.raises(CheckError) as raised:
        check.run(RunContext(timeout=30.0))
    assert values(check.failure_families(raised.value)) == counts(error=1, read=read)

    read += append(log, "FATAL:  reborn\n")
    assert run(check) == counts(error=1, fatal=1, read=read, rotations=1)


def test_without_keeping_the_file_open_rotation_still_reads_the_new_file_from_its_start(tmp_path: Path) -> None:
    # How it runs on Windows, where an open file cannot be renamed.
    log = tmp_path / "app.log"
    log.write_text("LOG:  start\n")
    check = log_check(log, keep_open=False)
    run(check)
    read = append(log, "ERROR:  one\n")
    assert run(check) == counts(error=1, read=read)

    log.rename(tmp_path / "app.log.1")
    read += append(log, "ERROR:  two\n")

    assert run(check) == counts(error=2, read=read, rotations=1)


def test_python_traceback_preset_counts_a_real_logged_exception(tmp_path: Path) -> None:
    log = tmp_path / "trytond.log"
    log.write_text("")
    check = log_check(log, patterns_for(["python_traceback"], {}))
    run(check)
    program = (
        "import logging\n"
        f"logging.basicConfig(filename={str(log)!r}, format='%(asctime)s %(levelname)s %(name)s %(message)s')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    logging.getLogger('trytond').exception('dispatch failed')\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)

    assert run(check) == {
        "traceback": 1,
        "erp_log_read_bytes_total": log.stat().st_size,
        "erp_log_rotations_total": 0,
    }


def test_real_postgresql_log_counts_one_error_for_one_failing_statement(postgres: PostgresServer) -> None:
    check = log_check(postgres.log_file)
    before = run(check)
    assert before["error"] == 0

    with pytest.raises(ServerError):
        postgres.psql("SELECT 1 / 0;")
    # The server writes the log line before it answers; a few more runs only make sure nothing else came.

    def error_seen() -> dict[str, float] | None:
        result = run(check)
        return result if result["error"] >= 1 else None

    after = wait_until(error_seen, 10, "no ERROR line seen")

    assert (after["error"], after["fatal"], after["panic"]) == (1, 0, 0)
    assert run(check)["error"] == 1
    assert "ERROR:  division by zero" in postgres.log_file.read_text()


# --- config and the running exporter -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "    patterns:\n      - name: bad\n        regex: '(unclosed'\n",
            ":6: logs[0].patterns[0].regex: not a valid regular expression: "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            "    presets: [postgres]\n",
            ":4: logs[0].presets[0]: input should be 'postgresql' or 'python_traceback', got 'postgres'",
        ),
        (
            "    presets: [postgresql]\n    patterns:\n      - name: error\n        regex: oops\n",
            ":6: logs[0].patterns[0].name: duplicate pattern name 'error' (also given by preset 'postgresql')",
        ),
        ("    interval: 1m\n", ":2: logs[0]: needs patterns or presets (or both)"),
        (
            "    presets: [postgresql]\n    max_read_bytes: 100\n",
            ":5: logs[0].max_read_bytes: must be at least 4096, got 100",
        ),
    ],
    ids=["bad-regex", "unknown-preset", "pattern-name-taken-by-preset", "no-patterns", "max-read-bytes"],
)
def test_config_errors_name_the_key(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "erp-exporter.yml"
    config.write_text("logs:\n  - name: app\n    path: app.log\n" + body)

    with pytest.raises(ConfigError) as raised:
        load_config(config)

    assert str(raised.value).endswith(message)


def test_running_exporter_counts_new_lines_of_a_log_relative_to_the_config_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "server.log"
    log.parent.mkdir()
    log.write_text("ERROR:  before the exporter\n")
    config = (
        "host:\n  enabled: false\n"
        "logs:\n"
        "  - name: app\n"
        "    path: logs/server.log\n"
        "    presets: [postgresql, python_traceback]\n"
        "    patterns:\n"
        "      - name: deadlock\n"
        "        regex: deadlock detected\n"
        "    interval: 1s\n"
    )
    with running_app(tmp_path, config) as app:
        first = wait_until(lambda: app.state("", "log:app").runs_total >= 1 or None, 30, "the log check did not run")
        assert first
        assert app.value("erp_log_matches_total", log="app", pattern="deadlock") == 0
        append(log, "ERROR:  deadlock detected\nTraceback (most recent call last):\n")

        wait_until(
            lambda: app.value("erp_log_matches_total", log="app", pattern="error") == 1 or None,
            30,
            "the new ERROR line was not counted",
        )
        assert app.value("erp_log_matches_total", log="app", pattern="deadlock") == 1
        assert app.value("erp_log_matches_total", log="app", pattern="traceback") == 1
        assert app.value("erp_log_matches_total", log="app", pattern="fatal") == 0
        assert app.value("erp_check_success", check="log:app") == 1


def test_running_exporter_keeps_publishing_the_counters_while_the_file_is_missing(tmp_path: Path) -> None:
    config = "host:\n  enabled: false\nlogs:\n  - name: app\n    path: missing.log\n    presets: [postgresql]\n"
    with running_app(tmp_path, config) as app:
        wait_until(lambda: app.state("", "log:app").runs_total >= 1 or None, 30, "the log check did not run")
        state = app.state("", "log:app")

        assert state.error_reason is ErrorReason.OTHER
        assert state.error_message == f"log file {tmp_path / 'missing.log'} does not exist (waiting for it to appear)"
        assert app.value("erp_check_success", check="log:app") == 0
        assert app.value("erp_log_matches_total", log="app", pattern="error") == 0
        assert app.value("erp_log_rotations_total", log="app") == 0


def test_the_postgresql_preset_patterns_are_the_documented_ones() -> None:
    assert set(patterns_for(["postgresql", "python_traceback"], {})) == {"error", "fatal", "panic", "traceback"}
    with pytest.raises(ValueError, match="given twice"):
        patterns_for(["postgresql"], {"error": "x"})
