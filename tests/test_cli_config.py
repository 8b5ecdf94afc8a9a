"""The installed `erp-exporter` command and the config: exit codes, messages, never a traceback.

Runs the real console script (the one next to this interpreter) in a subprocess, as a user or a
service manager would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter import __version__
from exporter.config.schema import shipped_schema

EXPORTER = Path(sys.executable).parent / ("erp-exporter.exe" if os.name == "nt" else "erp-exporter")
SECRET = "pw-3b7e90aa-unique"
TIMEOUT = 30  # seconds; a config error must end the program long before this

VALID = """\
targets:
  - name: erp
    driver: PostgreSQL Unicode
    connection:
      server: db.example.com
    password: ${ERP_TEST_PASSWORD}
    checks:
      - kind: db_response
        interval: 15s
process_groups:
  - name: erp-server
    process_name: trytond
"""

BROKEN = """\
targets:
  - name: erp
    driver: PostgreSQL Unicode
    password: ${ERP_TEST_PASSWORD}
    max_connections: 0
    checks:
      - kind: db_response
        interval: fast
"""
BROKEN_ERRORS = [
    "erp-exporter.yml:5: targets[0].max_connections: must be at least 1, got 0",
    "erp-exporter.yml:8: targets[0].checks[0].interval: expected a duration like 30s, got 'fast'",
]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert EXPORTER.is_file(), f"{EXPORTER} is missing: install the package (pip install -e '.[dev]')"
    env = {**os.environ, "ERP_TEST_PASSWORD": SECRET}
    return subprocess.run(
        [str(EXPORTER), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def write_config(directory: Path, text: str) -> None:
    (directory / "erp-exporter.yml").write_text(text, encoding="utf-8")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# ---------------------------------------------------------------------------------------------------
# check-config


def test_check_config_on_a_valid_file_exits_0_and_says_ok(tmp_path: Path) -> None:
    write_config(tmp_path, VALID)
    result = run("check-config", "--config.file=erp-exporter.yml", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("erp-exporter.yml: OK"), result.stdout


def test_check_config_counts_what_the_file_configures(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        VALID
        + """\
calendars:
  - {name: hq, timezone: Europe/Brussels, country: BE, closing_periods: [{type: month_end, name: close}]}
logs:
  - {name: pg, path: /var/log/postgresql/pg.log, presets: [postgresql]}
  - {name: erp, path: /var/log/trytond.log, presets: [python_traceback]}
""",
    )
    result = run("check-config", "--config.file=erp-exporter.yml", cwd=tmp_path)
    assert result.stdout == (
        "erp-exporter.yml: OK (1 target, 1 configured target check, 1 process group, 2 log files, 1 calendar)\n"
    )


def test_check_config_on_a_broken_file_exits_2_with_every_error_line(tmp_path: Path) -> None:
    write_config(tmp_path, BROKEN)
    result = run("check-config", "--config.file=erp-exporter.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == BROKEN_ERRORS
    assert result.stdout == ""


def test_check_config_never_shows_the_password(tmp_path: Path) -> None:
    write_config(tmp_path, BROKEN)
    result = run("check-config", "--config.file=erp-exporter.yml", cwd=tmp_path)
    assert SECRET not in result.stdout + result.stderr


def test_check_config_on_a_missing_file_exits_2(tmp_path: Path) -> None:
    result = run("check-config", "--config.file=absent.yml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["absent.yml: cannot read file: No such file or directory"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("global:\n  interval: 30s\n timeout: 10s\n", id="yaml-syntax-error"),
        pytest.param("- name: erp\n", id="top-level-list"),
        pytest.param("global: &loop\n  nested: *loop\n", id="recursive-alias"),
        pytest.param("targets:\n  - name: !!python/object/apply:os.getcwd []\n", id="unsafe-tag"),
        pytest.param("targets: {name: erp}\n", id="targets-not-a-list"),
        pytest.param("\x00", id="control-character"),
    ],
)
def test_check_config_on_any_broken_file_exits_2_without_traceback(tmp_path: Path, text: str) -> None:
    write_config(tmp_path, text)
    result = run("check-config", "--config.file=erp-exporter.yml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("erp-exporter.yml:"), result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------------
# The exporter itself (serve) with a broken config


def test_serve_with_a_broken_config_exits_2_without_listening(tmp_path: Path) -> None:
    write_config(tmp_path, BROKEN)
    port = free_port()
    env = {**os.environ, "ERP_TEST_PASSWORD": SECRET}
    args = [str(EXPORTER), "--config.file=erp-exporter.yml", f"--web.listen-address=127.0.0.1:{port}"]
    with subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        listened = False
        deadline = time.monotonic() + TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            listened = listened or accepts_connections(port)
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 2, stderr
    assert not listened
    assert stderr.splitlines() == BROKEN_ERRORS
    assert "Traceback" not in stderr
    assert SECRET not in stdout + stderr


# ---------------------------------------------------------------------------------------------------
# schema and --version


def test_schema_prints_the_shipped_schema(tmp_path: Path) -> None:
    result = run("schema", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == shipped_schema()


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"erp-exporter {__version__} "), result.stdout
