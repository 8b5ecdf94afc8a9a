"""ERP packs: loading and validating pack files (errors name file, line and key), the pack entries of a config,
parameters that only ever reach the SQL as numbers, the read-only guard on every shipped query, what a
check does with a result that lacks a column (on a real SQLite database), and the job-log bookkeeping that
counts every finished job exactly once.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import odbc_database

from exporter.checks.base import CheckError, ErrorReason, RunContext
from exporter.checks.builtin import default_registry
from exporter.checks.pack import JobRun, PackQueryCheck, Watermark, advance, build_pack_checks
from exporter.config.loader import ConfigError, LoadedConfig, load_config
from exporter.config.model import ExporterConfig, PackCheckConfig
from exporter.db.dialect import Dialect
from exporter.db.guard import check_read_only
from exporter.db.target import TargetDatabase
from exporter.packs.loader import PackError, load_pack, load_pack_file, shipped_packs
from exporter.packs.model import SINCE
from exporter.sqlparams import format_number, render_sql

PACK = """\
name: acme
description: An example ERP.
erp: acme
params:
  window_seconds:
    default: 600
    min: 1
    max: 3600
queries:
  - name: users
    interval: 30s
    columns: [users, region]
    sql:
      postgresql: SELECT count(*) AS users, region FROM sessions WHERE age < :window_seconds GROUP BY region
      sqlite: SELECT count(*) AS users, region FROM sessions WHERE age < :window_seconds GROUP BY region
    metrics:
      - name: erp_users_logged_in
        help: Users.
        value: users
        labels: [region]
"""

JOB_LOG_QUERY = """\
  - name: jobs
    kind: job_log
    columns: [id, job, finished_at, duration_seconds, success]
    sql:
      sqlite: SELECT id, job, finished_at, duration_seconds, success FROM runs WHERE finished_at >= :since
"""


def write(tmp_path: Path, text: str, name: str = "acme.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def pack_errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(PackError) as excinfo:
        load_pack_file(write(tmp_path, text), "acme.yml")
    return str(excinfo.value).splitlines()


# -- pack files -------------------------------------------------------------------------------------


def test_a_valid_pack_loads_with_its_defaults(tmp_path: Path) -> None:
    pack = load_pack_file(write(tmp_path, PACK + JOB_LOG_QUERY))
    assert [query.name for query in pack.queries] == ["users", "jobs"]
    users = pack.queries[0]
    assert (users.interval, users.timeout, users.kind) == (30.0, 10.0, "metrics")
    assert (pack.queries[1].interval, pack.queries[1].kind) == (60.0, "job_log")
    assert pack.defaults() == {"window_seconds": 600}


BAD_PACKS = {
    "unknown-key-gets-a-hint": (
        ("    columns: [users, region]", "    colums: [users, region]"),
        [
            "acme.yml:10: queries[0].columns: required key is missing",
            "acme.yml:12: queries[0].colums: unknown key (did you mean 'columns'?)",
        ],
    ),
    "unknown-dialect": (
        ("      postgresql:", "      postgres:"),
        ["acme.yml:14: queries[0].sql.postgres: unknown key (did you mean 'postgresql'?)"],
    ),
    "value-column-not-returned": (
        ("        value: users", "        value: user_count"),
        [
            "acme.yml:19: queries[0].metrics[0].value: column 'user_count' is not in the query's columns "
            "(users, region)"
        ],
    ),
    "reserved-label": (
        ("columns: [users, region]", "columns: [users, region, target]"),
        None,  # filled below
    ),
    "unknown-parameter": (
        ("age < :window_seconds GROUP BY region\n      sqlite", "age < :window GROUP BY region\n      sqlite"),
        [
            "acme.yml:14: queries[0].sql.postgresql: uses :window but the pack has no parameter 'window' "
            "(params: window_seconds)"
        ],
    ),
    "since-outside-job-log": (
        ("age < :window_seconds GROUP BY region\n      sqlite", "age < :since GROUP BY region\n      sqlite"),
        ["acme.yml:14: queries[0].sql.postgresql: uses :since, which only job_log and document_events queries have"],
    ),
    "a-write-is-refused": (
        (
            "      sqlite: SELECT count(*) AS users, region FROM sessions WHERE age < :window_seconds GROUP BY region",
            "      sqlite: DELETE FROM sessions WHERE age < :window_seconds",
        ),
        [
            "acme.yml:15: queries[0].sql.sqlite: refused: statement starts with 'DELETE'; only SELECT, WITH, "
            "VALUES, SHOW or EXPLAIN are allowed"
        ],
    ),
    "default-out-of-bounds": (
        ("default: 600", "default: 6000"),
        ["acme.yml:6: params.window_seconds.default: must be within 1..3600, got 6000"],
    ),
    "parameter-as-text": (
        ("default: 600", "default: '600'"),
        ["acme.yml:6: params.window_seconds.default: expected a number, got '600'"],
    ),
    "timeout-longer-than-interval": (
        ("    interval: 30s", "    interval: 30s\n    timeout: 1m"),
        [
            "acme.yml:12: queries[0].timeout: timeout 1m is longer than the interval (30s); a check must end "
            "before its next run"
        ],
    ),
    "counter-without-total": (
        ("        help: Users.", "        type: counter\n        help: Users."),
        ["acme.yml:17: queries[0].metrics[0].name: a counter's name must end in _total"],
    ),
    "yaml-syntax": (
        ("    columns: [users, region]", "    columns: [users, region"),
        [
            "acme.yml:13: YAML syntax error: expected ',' or ']', but got ':' (column 8; while parsing a flow "
            "sequence that starts at line 12)"
        ],
    ),
    "interval-without-unit": (
        ("interval: 30s", "interval: 30"),
        ["acme.yml:11: queries[0].interval: expected a duration like 30s, got 30"],
    ),
}
BAD_PACKS["reserved-label"] = (
    ("        labels: [region]", "        labels: [target]"),
    ["acme.yml:20: queries[0].metrics[0].labels[0]: column 'target' is not in the query's columns (users, region)"],
)


@pytest.mark.parametrize("case", list(BAD_PACKS), ids=list(BAD_PACKS))
def test_bad_pack_is_refused_with_exact_error_lines(tmp_path: Path, case: str) -> None:
    (old, new), expected = BAD_PACKS[case]
    assert old in PACK
    assert pack_errors(tmp_path, PACK.replace(old, new)) == expected


def test_a_label_named_like_an_exporter_label_is_refused(tmp_path: Path) -> None:
    text = PACK.replace("columns: [users, region]", "columns: [users, region, pack]").replace(
        "labels: [region]", "labels: [region, pack]"
    )
    assert pack_errors(tmp_path, text) == [
        "acme.yml:20: queries[0].metrics[0].labels[1]: label name 'pack' is reserved (the exporter or Prometheus "
        "sets it)"
    ]


def test_a_job_log_query_must_return_its_columns_and_use_since(tmp_path: Path) -> None:
    text = PACK + JOB_LOG_QUERY.replace("duration_seconds, success]", "duration_seconds]").replace(
        "WHERE finished_at >= :since", ""
    )
    assert pack_errors(tmp_path, text) == [
        "acme.yml:23: queries[1].columns: a job_log query returns id, job, finished_at, duration_seconds, "
        "success; missing: success",
        "acme.yml:25: queries[1].sql.sqlite: a job_log query must select the rows finished since the watermark: "
        "use :since",
    ]


def test_duplicate_query_and_metric_names_are_refused(tmp_path: Path) -> None:
    text = PACK + PACK[PACK.index("  - name: users") :]
    assert pack_errors(tmp_path, text) == [
        "acme.yml:21: queries[1].name: duplicate query name 'users'",
        "acme.yml:28: queries[1].metrics[0].name: metric 'erp_users_logged_in' is already published by "
        "queries[0].metrics[0]",
    ]


def test_a_query_without_sql_and_an_unused_parameter_are_refused(tmp_path: Path) -> None:
    start = PACK.index("      postgresql:")
    end = PACK.index("    metrics:")
    text = PACK[:start] + "      {}\n" + PACK[end:]
    assert pack_errors(tmp_path, text) == [
        "acme.yml:5: params.window_seconds: not used by any query (no :window_seconds in the SQL)",
        "acme.yml:13: queries[0].sql: needs the SQL of at least one dialect (postgresql, sqlite, mysql, mssql)",
    ]


def test_a_pack_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert pack_errors(tmp_path, "- a\n- b\n") == [
        "acme.yml:1: a pack is a mapping with name, description, erp and queries"
    ]


# -- the shipped packs ------------------------------------------------------------------------------


def test_tryton_is_shipped_and_valid() -> None:
    assert "tryton" in shipped_packs()
    pack = load_pack("tryton")
    assert (pack.name, pack.erp) == ("tryton", "tryton")
    assert [query.name for query in pack.queries] == [
        "sessions", "login_failures", "queue", "scheduled_jobs", "task_errors", "version", "modules", "adoption",
        "documents_created", "documents_progressed", "posting_backlog", "job_runs",
    ]


def _shipped_queries() -> Iterator[tuple[str, str, str, str]]:
    for pack_name in shipped_packs():
        pack = load_pack(pack_name)
        for query in pack.queries:
            for dialect, sql in query.sql.items():
                yield pack_name, query.name, dialect, render_sql(sql, {**pack.defaults(), SINCE: 1764115200.5})


SHIPPED = list(_shipped_queries())


@pytest.mark.parametrize(
    ("pack", "query", "dialect", "sql"), SHIPPED, ids=[f"{p}/{q}/{d}" for p, q, d, _ in SHIPPED]
)
def test_every_shipped_query_passes_the_read_only_guard(pack: str, query: str, dialect: str, sql: str) -> None:
    check_read_only(sql, Dialect(dialect))


def test_the_tryton_pack_has_postgresql_and_sqlite_sql_for_every_query() -> None:
    pack = load_pack("tryton")
    assert {query.name: [name for name, _ in query.sql.items()] for query in pack.queries} == {
        query.name: ["postgresql", "sqlite"] for query in pack.queries
    }


def test_shipped_pack_metrics_are_in_the_metric_catalog() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "metrics"], capture_output=True, text=True, check=True, timeout=60
    )
    rows = [line for line in result.stdout.splitlines() if "| pack |" in line or ", pack |" in line]
    names = sorted(row.split("|")[1].strip().strip("`") for row in rows)
    assert names == sorted([
        "erp_business_documents_total",
        "erp_documents_unposted",
        "erp_user_accounts",
        "erp_users_active_1d",
        "erp_users_active_30d",
        "erp_users_logged_in",
        "erp_sessions_active",
        "erp_login_failures",
        "erp_queue_tasks_pending",
        "erp_queue_oldest_pending_age_seconds",
        "erp_scheduled_jobs_overdue",
        "erp_scheduled_job_max_delay_seconds",
        "erp_task_errors",
        "erp_info",
        "erp_modules_installed",
        "erp_module_info",
        "erp_transaction_duration_seconds",
        "erp_transaction_failures_total",
        "erp_transaction_last_success_timestamp_seconds",
    ])
    labels = {row.split("|")[1].strip().strip("`"): row.split("|")[3].strip() for row in rows}
    assert labels["erp_info"] == "`erp`, `version`, `pack`"
    assert labels["erp_module_info"] == "`module`, `version`, `pack`"
    assert labels["erp_users_logged_in"] == "`pack`"
    assert labels["erp_transaction_failures_total"] == "`transaction`, `source`, `reason`, `pack`"


# -- parameters are numbers -------------------------------------------------------------------------


def test_parameters_reach_the_sql_as_parenthesised_numbers() -> None:
    sql = "SELECT 1 WHERE a < :window AND b::integer > :margin AND c = ':window'"
    assert render_sql(sql, {"window": 600, "margin": -5}) == (
        "SELECT 1 WHERE a < (600) AND b::integer > (-5) AND c = '(600)'"
    )
    assert format_number(2.5) == "(2.5)"
    assert format_number(1764115200.0) == "(1764115200)"


def test_numbers_are_written_in_plain_digits_never_with_an_exponent() -> None:
    assert [format_number(value) for value in (0.00001, -1e-7, 1e20, 123456789012345680.0, 10**20)] == [
        "(0.00001)", "(-0.0000001)", "(100000000000000000000)", "(123456789012345680)", "(100000000000000000000)",
    ]


@pytest.mark.parametrize("value", ["1; DROP TABLE x", True, float("nan"), None])
def test_anything_but_a_number_is_refused_before_it_reaches_the_sql(value: object) -> None:
    with pytest.raises(ValueError, match="expected a"):
        render_sql("SELECT :x", {"x": value})  # type: ignore[dict-item]


# -- pack entries in the config ---------------------------------------------------------------------

CONFIG = """\
targets:
  - name: erp
    driver: SQLite3
    connection:
      database: /tmp/erp.sqlite
    checks:
"""


def config_errors(tmp_path: Path, checks: str) -> list[str]:
    path = write(tmp_path, CONFIG + checks, "erp-exporter.yml")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    return [line.replace(f"{tmp_path}/", "") for line in str(excinfo.value).splitlines()]


BAD_ENTRIES = {
    "unknown-shipped-pack": (
        "      - kind: pack\n        pack: odoo\n",
        [
            "erp-exporter.yml:8: targets[0].checks[0].pack: unknown pack 'odoo'; shipped packs: tryton (or give the "
            "path of a pack file ending in .yml)"
        ],
    ),
    "missing-pack-file": (
        "      - kind: pack\n        pack: nope.yml\n",
        [
            "erp-exporter.yml:8: targets[0].checks[0].pack: cannot load pack nope.yml: cannot read file: No such "
            "file or directory"
        ],
    ),
    "pack-key-missing": (
        "      - kind: pack\n        pak: tryton\n",
        [
            "erp-exporter.yml:7: targets[0].checks[0].pack: required key is missing",
            "erp-exporter.yml:8: targets[0].checks[0].pak: unknown key (did you mean 'pack'?)",
        ],
    ),
    "unknown-query": (
        "      - kind: pack\n        pack: tryton\n        queries: [sessions, users]\n",
        [
            "erp-exporter.yml:9: targets[0].checks[0].queries[1]: pack 'tryton' has no query 'users' (it has: "
            "sessions, login_failures, queue, scheduled_jobs, task_errors, version, modules, adoption, "
            "documents_created, documents_progressed, posting_backlog, job_runs)"
        ],
    ),
    "unknown-parameter": (
        "      - kind: pack\n        pack: tryton\n        params:\n          window: 5\n",
        [
            "erp-exporter.yml:10: targets[0].checks[0].params.window: pack 'tryton' has no parameter 'window' (it "
            "has: active_window_seconds, login_failure_window_seconds, overdue_margin_seconds)"
        ],
    ),
    "parameter-out-of-bounds": (
        "      - kind: pack\n        pack: tryton\n        params:\n          active_window_seconds: 0\n",
        ["erp-exporter.yml:10: targets[0].checks[0].params.active_window_seconds: must be within 1..2592000, got 0"],
    ),
    "parameter-as-text": (
        "      - kind: pack\n        pack: tryton\n        params:\n          active_window_seconds: '600'\n",
        ["erp-exporter.yml:10: targets[0].checks[0].params.active_window_seconds: expected a number, got '600'"],
    ),
    "timeout-longer-than-a-query-interval": (
        "      - kind: pack\n        pack: tryton\n        timeout: 45s\n",
        [
            "erp-exporter.yml:9: targets[0].checks[0].timeout: timeout 45s is longer than the interval of query "
            "'sessions' (30s); a check must end before its next run"
        ],
    ),
    "same-pack-twice-without-names": (
        "      - kind: pack\n        pack: tryton\n      - kind: pack\n        pack: tryton\n",
        [
            "erp-exporter.yml:9: targets[0].checks[1].name: duplicate check name 'tryton' (a check's name "
            "defaults to its kind: give this one a name)",
            "erp-exporter.yml:10: targets[0].checks[1].pack: pack 'tryton' already runs on this target (in "
            "targets[0].checks[0]); give one of the entries a name",
        ],
    ),
    "bad-buckets": (
        "      - kind: pack\n        pack: tryton\n        buckets: [1, 0.5]\n",
        ["erp-exporter.yml:9: targets[0].checks[0].buckets: bucket bounds must be strictly increasing"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES), ids=list(BAD_ENTRIES))
def test_bad_pack_entry_is_refused_with_exact_error_lines(tmp_path: Path, case: str) -> None:
    checks, expected = BAD_ENTRIES[case]
    assert config_errors(tmp_path, checks) == expected


def test_a_pack_without_sql_for_the_target_dialect_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        CONFIG.replace("SQLite3", "MariaDB Unicode") + "      - kind: pack\n        pack: tryton\n"
        "        queries: [sessions]\n",
        "erp-exporter.yml",
    )
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert str(excinfo.value) == (
        f"{path}:8: targets[0].checks[0].pack: query 'sessions' of pack 'tryton' has no SQL for this target's "
        "dialect mysql (it has: postgresql, sqlite); list the queries to run in `queries`"
    )


def test_a_broken_user_pack_is_reported_in_its_own_file(tmp_path: Path) -> None:
    write(tmp_path, PACK.replace("default: 600", "default: 6000"), "mine.yml")
    assert config_errors(tmp_path, "      - kind: pack\n        pack: mine.yml\n") == [
        "mine.yml:6: params.window_seconds.default: must be within 1..3600, got 6000",
        "erp-exporter.yml:8: targets[0].checks[0].pack: pack 'mine.yml' is invalid (1 problems below)",
    ]


def test_a_user_pack_loads_from_a_path_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "packs").mkdir()
    write(tmp_path, PACK + JOB_LOG_QUERY, "packs/acme.yml")
    path = write(
        tmp_path,
        CONFIG + "      - kind: pack\n        pack: packs/acme.yml\n        params:\n          window_seconds: 60\n",
        "erp-exporter.yml",
    )
    loaded = load_config(path)
    entry = loaded.config.targets[0].checks[0]
    assert isinstance(entry, PackCheckConfig)
    assert entry.resolved_pack is not None and entry.resolved_pack.name == "acme"
    database = sqlite_database(tmp_path / "none.sqlite")
    built = build_pack_checks(entry, database, loaded)
    assert [(b.name, b.interval, b.timeout) for b in built] == [("acme/users", 30.0, 10.0), ("acme/jobs", 60.0, 10.0)]


def test_each_query_becomes_its_own_check_with_its_own_interval(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        CONFIG + "      - kind: pack\n        name: erp1\n        pack: tryton\n        queries: [version, queue]\n"
        "      - kind: pack\n        pack: tryton\n        interval: 2m\n        timeout: 20s\n",
        "erp-exporter.yml",
    )
    loaded = load_config(path)
    database = sqlite_database(tmp_path / "none.sqlite")
    registry = default_registry()
    first, second = loaded.config.targets[0].checks
    assert [(b.name, b.interval, b.timeout) for b in registry.build_target_checks(first, database, loaded)] == [
        ("erp1/queue", 30.0, 10.0),
        ("erp1/version", 3600.0, 10.0),
    ]
    built = registry.build_target_checks(second, database, loaded)
    assert {(b.interval, b.timeout) for b in built} == {(120.0, 20.0)}
    assert len(built) == 12


# -- running a pack query ---------------------------------------------------------------------------


def sqlite_database(path: Path) -> TargetDatabase:
    return odbc_database("SQLite3", {"database": str(path)}, name="erp", max_connections=1)


@pytest.fixture
def sessions_db(tmp_path: Path) -> Iterator[TargetDatabase]:
    path = tmp_path / "erp.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE sessions (age INTEGER, region TEXT)")
        connection.executemany(
            "INSERT INTO sessions VALUES (?, ?)", [(10, "north"), (20, "north"), (700, "north"), (30, "south")]
        )
    database = sqlite_database(path)
    yield database
    database.close()


def test_a_metrics_query_publishes_one_series_per_row_with_the_pack_label(
    tmp_path: Path, sessions_db: TargetDatabase
) -> None:
    pack = load_pack_file(write(tmp_path, PACK))
    check = PackQueryCheck("acme/users", sessions_db, "acme", pack.queries[0], pack.defaults())
    (family,) = check.run(RunContext(timeout=10))
    assert family.name == "erp_users_logged_in"
    assert sorted(((dict(s.labels), s.value) for s in family.samples), key=lambda item: item[0]["region"]) == [
        ({"region": "north", "pack": "acme"}, 2.0),
        ({"region": "south", "pack": "acme"}, 1.0),
    ]


def test_a_result_without_a_required_column_fails_naming_pack_query_and_column(
    tmp_path: Path, sessions_db: TargetDatabase
) -> None:
    text = PACK.replace("SELECT count(*) AS users, region", "SELECT count(*) AS users, region AS area")
    pack = load_pack_file(write(tmp_path, text))
    check = PackQueryCheck("acme/users", sessions_db, "acme", pack.queries[0], pack.defaults())
    with pytest.raises(CheckError) as excinfo:
        check.run(RunContext(timeout=10))
    assert excinfo.value.reason is ErrorReason.QUERY
    assert excinfo.value.message == "pack 'acme' query 'users' returned no column 'region' (it returned: users, area)"


def test_a_query_without_sql_for_the_dialect_fails_the_check(tmp_path: Path, sessions_db: TargetDatabase) -> None:
    text = PACK.replace(
        "      sqlite: SELECT count(*) AS users, region FROM sessions WHERE age < :window_seconds GROUP BY region\n", ""
    )
    pack = load_pack_file(write(tmp_path, text))
    check = PackQueryCheck("acme/users", sessions_db, "acme", pack.queries[0], pack.defaults())
    with pytest.raises(CheckError) as excinfo:
        check.run(RunContext(timeout=10))
    assert excinfo.value.reason is ErrorReason.QUERY
    assert excinfo.value.message == "pack 'acme' query 'users' has no SQL for sqlite (it has: postgresql)"


def test_overridden_parameters_change_what_the_query_counts(tmp_path: Path, sessions_db: TargetDatabase) -> None:
    pack = load_pack_file(write(tmp_path, PACK))
    check = PackQueryCheck("acme/users", sessions_db, "acme", pack.queries[0], {"window_seconds": 15})
    (family,) = check.run(RunContext(timeout=10))
    assert [(dict(s.labels), s.value) for s in family.samples] == [({"region": "north", "pack": "acme"}, 1.0)]


# -- counting finished jobs exactly once (pure) -----------------------------------------------------


def runs(*items: tuple[str, float]) -> list[JobRun]:
    return [JobRun(id=run_id, job="j", finished_at=at, duration_seconds=1.0, success=True) for run_id, at in items]


def test_runs_after_the_watermark_are_new_and_move_it() -> None:
    new, mark = advance(runs(("1", 100), ("2", 101), ("3", 101)), Watermark(50))
    assert [run.id for run in new] == ["1", "2", "3"]
    assert mark == Watermark(101, frozenset({"2", "3"}))


def test_runs_at_the_watermark_are_new_only_when_not_seen_there() -> None:
    new, mark = advance(runs(("2", 101), ("3", 101), ("4", 101)), Watermark(101, frozenset({"2", "3"})))
    assert [run.id for run in new] == ["4"]
    assert mark == Watermark(101, frozenset({"2", "3", "4"}))


def test_runs_before_the_watermark_are_never_new() -> None:
    new, mark = advance(runs(("1", 100), ("5", 102)), Watermark(101, frozenset({"2"})))
    assert [run.id for run in new] == ["5"]
    assert mark == Watermark(102, frozenset({"5"}))


def test_no_rows_keep_the_watermark() -> None:
    assert advance([], Watermark(101, frozenset({"2"}))) == ([], Watermark(101, frozenset({"2"})))


def test_a_round_cut_at_the_row_limit_is_continued_next_round() -> None:
    # the limit cut the three runs that finished at 105 after the first: the watermark stops at 105 with
    # only that id, so the next round (>= 105) returns all three and counts the other two
    new, mark = advance(runs(("1", 100), ("2", 105)), Watermark(50))
    assert [run.id for run in new] == ["1", "2"]
    new, mark = advance(runs(("2", 105), ("3", 105), ("4", 105)), mark)
    assert [run.id for run in new] == ["3", "4"]


def test_a_pack_entry_checks_are_named_after_the_entry_name(tmp_path: Path) -> None:
    entry = PackCheckConfig.model_validate({"kind": "pack", "pack": "tryton", "name": "prod", "queries": ["queue"]})
    built = build_pack_checks(entry, sqlite_database(tmp_path / "x.sqlite"), LoadedConfig(ExporterConfig(), "t"))
    assert [b.name for b in built] == ["prod/queue"]
