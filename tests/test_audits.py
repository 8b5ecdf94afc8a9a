"""Data-governance audits: the model and its error messages, the check on a real SQLite database through
ODBC (count, samples, labels), the `audit` command and the status page.

The Tryton pack's audits are tested on real Tryton databases in test_tryton_audits.py.
"""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import requests
from harness import running_app, sample_value, wait_until

from exporter.app import App, build_runtime
from exporter.audits.loader import load_audit_file, pack_path
from exporter.checks.audits import AuditCheck, audit_reports, result_to_counts, wrap_sql
from exporter.checks.base import CheckError, ErrorReason
from exporter.checks.builtin import default_registry
from exporter.cli import main
from exporter.config.loader import ConfigError, LoadedConfig, load_config
from exporter.db.dialect import Dialect
from exporter.db.target import QueryResult
from exporter.http.server import ExporterHTTPServer
from exporter.http.status_page import StatusView, render_status_page
from exporter.http.web_config import WebConfig
from exporter.logs import SecretMask
from exporter.run import Findings
from exporter.source.yaml_source import SourceError
from exporter.store import CheckKey, CheckMeta, Outcome, ResultStore

# -- helpers -----------------------------------------------------------------------------------------


def make_customers_db(path: Path, names: list[str]) -> Path:
    """A real SQLite file with a customers table; rows without an e-mail are what the audits find."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, age INTEGER)")
        connection.executemany(
            "INSERT INTO customers (name, email, age) VALUES (?, NULL, ?)",
            [(name, index) for index, name in enumerate(names)],
        )
        connection.execute("INSERT INTO customers (name, email, age) VALUES ('Complete Ltd', 'a@b.example', 99)")
        connection.commit()
    return path


NO_EMAIL_AUDIT = """\
- name: customers_without_email
  description: Customers without an e-mail address.
  category: data_quality
  owner: sales
  support_line: 1
  severity: warning
  warning: 0
  critical: 10
  sql: SELECT name AS key FROM customers WHERE email IS NULL
"""


def config_text(database: Path, audits: str = NO_EMAIL_AUDIT, entry: str = "", target: str = "erp") -> str:
    return f"""\
targets:
  - name: {target}
    driver: SQLite3
    connection:
      database: {database}
    checks:
      - kind: audits
{textwrap.indent(entry, "        ")}        audits:
{textwrap.indent(audits, "          ")}
host:
  enabled: false
"""


def write_config(tmp_path: Path, text: str, name: str = "erp-exporter.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_all_once(loaded: LoadedConfig) -> dict[str, AuditCheck]:
    """Build the real runtime, run every check once, return the audit checks by audit name."""
    store = ResultStore()
    runtime = build_runtime(loaded, default_registry(), store)
    store.configure(runtime.metas)
    runtime.scheduler.start(schedule=False)
    try:
        runtime.scheduler.run_once(timeout=30)
    finally:
        runtime.stop()
    return {check.audit.name: check for check in runtime.checks.values() if isinstance(check, AuditCheck)}


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(issue) for issue in caught.value.issues]


# -- the model: errors name file, line and key -----------------------------------------------------------

AUDIT_ERROR_CASES = [
    pytest.param(
        NO_EMAIL_AUDIT.replace("  owner: sales", "  ownr: sales"),
        [
            "{config}:9: targets[0].checks[0].audits[0].owner: required key is missing",
            "{config}:12: targets[0].checks[0].audits[0].ownr: unknown key (did you mean 'owner'?)",
        ],
        id="misspelt-key",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("critical: 10", "critical: 5").replace("warning: 0", "warning: 10"),
        ["{config}:16: targets[0].checks[0].audits[0].critical: must be at least the warning threshold (10), got 5"],
        id="critical-below-warning",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("support_line: 1", "support_line: 4"),
        ["{config}:13: targets[0].checks[0].audits[0].support_line: input should be 1, 2 or 3, got 4"],
        id="support-line-out-of-range",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("severity: warning", "severity: urgent"),
        [
            "{config}:14: targets[0].checks[0].audits[0].severity: "
            "input should be 'info', 'warning' or 'critical', got 'urgent'"
        ],
        id="unknown-severity",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("category: data_quality", "category: Data Quality"),
        [
            "{config}:11: targets[0].checks[0].audits[0].category: expected a lower-case name of letters, "
            "digits and '_' that starts with a letter, got 'Data Quality'"
        ],
        id="category-not-snake-case",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("email IS NULL", "age > :min_age") + "  params: {min_age: '30'}\n",
        ["{config}:18: targets[0].checks[0].audits[0].params.min_age: expected a number of 0 or more, got '30'"],
        id="param-is-text",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("email IS NULL", "age > :min_age") + "  params: {min_age: -1}\n",
        ["{config}:18: targets[0].checks[0].audits[0].params.min_age: expected a number of 0 or more, got -1"],
        id="param-is-negative",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("email IS NULL", "age > :min_age"),
        ["{config}:17: targets[0].checks[0].audits[0].sql: uses :min_age but params has no 'min_age'"],
        id="placeholder-without-param",
    ),
    pytest.param(
        NO_EMAIL_AUDIT + "  params: {days: 30}\n",
        ["{config}:18: targets[0].checks[0].audits[0].params.days: not used by the sql (no :days in it)"],
        id="param-not-used",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("email IS NULL", "age > {min_age}") + "  params: {min_age: 30}\n",
        [
            "{config}:18: targets[0].checks[0].audits[0].params.min_age: not used by the sql "
            "(no :min_age in it; write :min_age, not {{min_age}})"
        ],
        id="param-written-in-braces",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace("sql: SELECT name AS key FROM", "sql: DELETE FROM"),
        [
            "{config}:17: targets[0].checks[0].audits[0].sql: refused: statement starts with 'DELETE'; "
            "only SELECT, WITH, VALUES, SHOW or EXPLAIN are allowed"
        ],
        id="sql-that-writes",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace(
            "sql: SELECT name AS key FROM customers WHERE email IS NULL",
            "sql:\n    postgresql: SELECT 'x' AS key\n    oracle9: SELECT 'x' AS key FROM dual",
        ),
        [
            "{config}:17: targets[0].checks[0].audits[0].sql: unknown dialect 'oracle9'; expected one of: "
            "postgresql, mysql, sqlite, mssql, oracle, hana, db2"
        ],
        id="unknown-dialect",
    ),
    pytest.param(
        NO_EMAIL_AUDIT.replace(
            "sql: SELECT name AS key FROM customers WHERE email IS NULL",
            "sql:\n    postgresql: SELECT 'x' AS key",
        ),
        [
            "{config}:7: targets[0].checks[0]: audit 'customers_without_email' has no SQL for this target's "
            "dialect sqlite (it has: postgresql); exclude it or add the query"
        ],
        id="no-sql-for-the-targets-dialect",
    ),
    pytest.param(
        NO_EMAIL_AUDIT + "  interval: 1m\n  timeout: 2m\n",
        [
            "{config}:19: targets[0].checks[0].audits[0].timeout: timeout 2m of audit 'customers_without_email' "
            "is longer than its interval (1m); a check must end before its next run"
        ],
        id="timeout-longer-than-interval",
    ),
    pytest.param(
        NO_EMAIL_AUDIT + NO_EMAIL_AUDIT,
        ["{config}:18: targets[0].checks[0].audits[1].name: duplicate audit name 'customers_without_email'"],
        id="duplicate-name",
    ),
]


@pytest.mark.parametrize(("audits", "expected"), AUDIT_ERROR_CASES)
def test_invalid_inline_audit_is_reported_at_its_file_line_and_key(
    tmp_path: Path, audits: str, expected: list[str]
) -> None:
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", audits))
    assert errors_of(config) == [line.format(config=config) for line in expected]


ENTRY_ERROR_CASES = [
    pytest.param(
        "packs: [odoo]\n",
        ["{config}:8: targets[0].checks[0].packs[0]: unknown audit pack 'odoo'; available: tryton"],
        id="unknown-pack",
    ),
    pytest.param(
        "files: [missing.yml]\n",
        ["{config}:8: targets[0].checks[0].files[0]: cannot read {dir}/missing.yml: no such file"],
        id="missing-file",
    ),
    pytest.param(
        "exclude: [customers_without_mail]\n",
        [
            "{config}:8: targets[0].checks[0].exclude[0]: exclude names no audit of this entry: "
            "'customers_without_mail' (known: customers_without_email)"
        ],
        id="exclude-unknown-audit",
    ),
    pytest.param(
        "params: {customers_without_email: {days: 3}}\n",
        [
            "{config}:8: targets[0].checks[0].params.customers_without_email.days: "
            "audit 'customers_without_email' has no parameter 'days' (it has: none)"
        ],
        id="param-the-audit-does-not-have",
    ),
    pytest.param(
        "overrides: {customers_without_email: {critical: 0, warning: 3}}\n",
        [
            "{config}:8: targets[0].checks[0].overrides.customers_without_email.critical: "
            "the critical threshold (0) must be at least the warning threshold (3)"
        ],
        id="override-critical-below-warning",
    ),
    pytest.param(
        "overrides: {customers_without_email: {severty: info}}\n",
        [
            "{config}:8: targets[0].checks[0].overrides.customers_without_email.severty: "
            "unknown key (did you mean 'severity'?)"
        ],
        id="override-misspelt-key",
    ),
]


@pytest.mark.parametrize(("entry", "expected"), ENTRY_ERROR_CASES)
def test_invalid_audits_entry_is_reported_at_its_key(tmp_path: Path, entry: str, expected: list[str]) -> None:
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", entry=entry))
    assert errors_of(config) == [line.format(config=config, dir=tmp_path) for line in expected]


def test_error_in_an_audit_file_names_that_file_and_its_line(tmp_path: Path) -> None:
    audit_file = tmp_path / "sales-audits.yml"
    audit_file.write_text("audits:\n" + textwrap.indent(NO_EMAIL_AUDIT.replace("warning: 0", "warning: lots"), "  "))
    entry = "files: [sales-audits.yml]\n"
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", audits="[]\n", entry=entry))
    assert errors_of(config) == [f"{audit_file}:8: audits[0].warning: expected a number, got 'lots'"]


def test_audit_file_with_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    audit_file = tmp_path / "a.yml"
    audit_file.write_text("audit:\n  - name: x\n")
    with pytest.raises(SourceError) as caught:
        load_audit_file(audit_file)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{audit_file}:1: audit: unknown key (did you mean 'audits'?)",
        f"{audit_file}:1: audits: required key is missing",
    ]


def test_same_audit_in_two_entries_of_a_target_is_refused(tmp_path: Path) -> None:
    text = config_text(tmp_path / "erp.db").replace(
        "      - kind: audits\n", "      - kind: audits\n        name: first\n", 1
    )
    text = text.replace("host:", "      - kind: audits\n        name: second\n        audits:\n"
                        + textwrap.indent(NO_EMAIL_AUDIT, "          ") + "host:")
    config = write_config(tmp_path, text)
    assert errors_of(config) == [
        f"{config}:20: targets[0].checks[1]: audit 'customers_without_email' already runs on this target "
        "(in targets[0].checks[0])"
    ]


def test_inline_audit_named_like_a_pack_audit_is_a_duplicate(tmp_path: Path) -> None:
    audits = NO_EMAIL_AUDIT.replace("customers_without_email", "tryton_production_overdue")
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", audits, entry="packs: [tryton]\n"))
    assert errors_of(config) == [
        f"{config}:10: targets[0].checks[0].audits[0].name: duplicate audit name 'tryton_production_overdue' "
        "(also in audit pack 'tryton')"
    ]


def test_shipped_tryton_pack_is_valid_and_passes_the_read_only_guard() -> None:
    audits = load_audit_file(pack_path("tryton"))
    assert [audit.name for audit in audits] == [
        "tryton_production_overdue",
        "tryton_stagnant_materials",
        "tryton_customer_master_data_incomplete",
        "tryton_sale_quotations_stale",
        "tryton_purchase_drafts_stale",
        "tryton_sales_not_shipped",
        "tryton_receivables_overdue",
        "tryton_supplier_deliveries_late",
        "tryton_sale_confirmed_by_quoter",
        "tryton_purchase_confirmed_by_quoter",
        "tryton_supplier_invoice_validated_and_posted_by_same_person",
        "tryton_supplier_invoices_without_purchase",
        "tryton_moves_posted_late",
        "tryton_lost_found_moves_by_hand",
        "tryton_documents_created_by_admin",
    ]
    assert [audit.category for audit in audits[8:]] == ["compliance"] * 7
    assert {audit.owner for audit in audits} == {"production", "sales", "procurement", "logistics", "finance", "it"}


def test_check_config_reports_a_broken_audit_file_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_file = tmp_path / "a.yml"
    audit_file.write_text("audits:\n" + textwrap.indent(NO_EMAIL_AUDIT.replace("sql: SELECT", "sql: DROP"), "  "))
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", audits="[]\n", entry="files: [a.yml]\n"))
    assert main(["check-config", "--config.file", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"{audit_file}:10: audits[0].sql: refused: statement starts with 'DROP'; "
        "only SELECT, WITH, VALUES, SHOW or EXPLAIN are allowed\n"
    )


# -- scheduling: one check per audit -------------------------------------------------------------------


def test_each_audit_is_its_own_check_with_its_own_interval_and_timeout(tmp_path: Path) -> None:
    second = NO_EMAIL_AUDIT.replace("customers_without_email", "old_customers") + "  interval: 1h\n  timeout: 2m\n"
    config = write_config(
        tmp_path, config_text(make_customers_db(tmp_path / "erp.db", []), NO_EMAIL_AUDIT + second)
    )
    store = ResultStore()
    runtime = build_runtime(load_config(config), default_registry(), store)
    try:
        schedule = {job.key.check: (job.interval, job.timeout) for job in runtime.jobs if job.key.target == "erp"}
        kinds = {key.check: meta.kind for key, meta in runtime.metas.items() if key.target == "erp"}
    finally:
        runtime.stop()
    assert schedule["audit:customers_without_email"] == (900.0, 60.0)
    assert schedule["audit:old_customers"] == (3600.0, 120.0)
    assert kinds["audit:customers_without_email"] == "audits"
    assert "audits" not in schedule


def test_entry_interval_and_override_decide_the_schedule_of_pack_audits(tmp_path: Path) -> None:
    entry = "interval: 30m\ntimeout: 20s\npacks: [tryton]\noverrides: {tryton_stagnant_materials: {interval: 1d}}\n"
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", audits="[]\n", entry=entry))
    loaded = load_config(config)
    audits = {audit.name: audit for audit in loaded.audits[("erp", "audits")]}
    assert (audits["tryton_production_overdue"].interval, audits["tryton_production_overdue"].timeout) == (1800, 20)
    assert (audits["tryton_stagnant_materials"].interval, audits["tryton_stagnant_materials"].timeout) == (86400, 20)


def test_exclude_leaves_an_audit_out_and_params_override_its_numbers(tmp_path: Path) -> None:
    entry = (
        "packs: [tryton]\nexclude: [tryton_stagnant_materials]\n"
        "params: {tryton_production_overdue: {days: 45}}\n"
        "overrides: {tryton_production_overdue: {owner: plant_1, warning: 2, critical: 4}}\n"
    )
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", audits="[]\n", entry=entry))
    audits = {audit.name: audit for audit in load_config(config).audits[("erp", "audits")]}
    assert "tryton_stagnant_materials" not in audits
    overdue = audits["tryton_production_overdue"]
    assert overdue.params == {"days": 45}
    assert "date('now', '-' || (45) || ' days')" in (overdue.sql_for(Dialect.SQLITE) or "")
    assert "CURRENT_DATE - (45)" in (overdue.sql_for(Dialect.POSTGRESQL) or "")
    assert overdue.description.startswith("Production orders not done 45 days after their planned date")
    assert (overdue.owner, overdue.warning, overdue.critical) == ("plant_1", 2, 4)


# -- running on a real database ------------------------------------------------------------------------


def test_violations_are_the_row_count_and_samples_are_capped_at_20_lowest_keys(tmp_path: Path) -> None:
    names = [f"Customer {index:02d}" for index in range(25, 0, -1)]
    config = write_config(tmp_path, config_text(make_customers_db(tmp_path / "erp.db", names)))
    result = run_all_once(load_config(config))["customers_without_email"].latest()
    assert result is not None
    assert result.count == 25
    assert result.samples == tuple(f"Customer {index:02d}" for index in range(1, 21))


def test_audit_without_findings_counts_zero_and_keeps_no_samples(tmp_path: Path) -> None:
    config = write_config(tmp_path, config_text(make_customers_db(tmp_path / "erp.db", [])))
    result = run_all_once(load_config(config))["customers_without_email"].latest()
    assert result is not None
    assert (result.count, result.samples) == (0, ())


def test_params_are_substituted_as_numbers(tmp_path: Path) -> None:
    audit = NO_EMAIL_AUDIT.replace("email IS NULL", "age >= :min_age") + "  params: {min_age: 3}\n"
    config = write_config(
        tmp_path,
        config_text(make_customers_db(tmp_path / "erp.db", ["a", "b", "c", "d", "e"]), audit,
                    entry="params: {customers_without_email: {min_age: 2.5}}\n"),
    )
    result = run_all_once(load_config(config))["customers_without_email"].latest()
    assert result is not None
    assert (result.count, result.samples) == (3, ("Complete Ltd", "d", "e"))


def test_metrics_carry_the_audit_labels_and_never_the_sample_keys(tmp_path: Path) -> None:
    names = ["Secret Customer AG", "Hidden GmbH"]
    config = make_customers_db(tmp_path / "erp.db", names)
    with running_app(tmp_path, config_text(config)) as app:
        wait_until(lambda: app.state("erp", "audit:customers_without_email").success, 30, "the audit did not run")
        text = app.metrics()
    labels = dict(
        audit="customers_without_email", category="data_quality", owner="sales", support_line="1",
        severity="warning", target="erp",
    )
    assert sample_value(text, "erp_audit_violations", **labels) == 2
    assert sample_value(text, "erp_audit_warning_threshold", **labels) == 0
    assert sample_value(text, "erp_audit_critical_threshold", **labels) == 10
    series = [line for line in text.splitlines() if line.startswith("erp_audit_violations{")]
    assert series == [
        'erp_audit_violations{audit="customers_without_email",category="data_quality",owner="sales",'
        'severity="warning",support_line="1",target="erp"} 2.0'
    ]
    assert all(name not in text for name in names)


def test_query_without_a_key_column_fails_the_check_and_keeps_the_thresholds(tmp_path: Path) -> None:
    audit = NO_EMAIL_AUDIT.replace("SELECT name AS key", "SELECT name")
    config = make_customers_db(tmp_path / "erp.db", ["a"])
    with running_app(tmp_path, config_text(config, audit)) as app:
        state = wait_until(
            lambda: (s := app.state("erp", "audit:customers_without_email")).success is False and s,
            30,
            "the audit did not fail",
        )
        text = app.metrics()
    assert state.error_reason is ErrorReason.QUERY
    assert state.error_message == (
        "audit customers_without_email: the first column of its query must be named key, got 'name'"
    )
    assert sample_value(text, "erp_audit_violations") is None
    assert sample_value(text, "erp_audit_critical_threshold", audit="customers_without_email") == 10


def test_result_rows_give_the_window_count_and_the_keys() -> None:
    result = QueryResult(columns=("KEY", "erp_audit_rows"), rows=[("a", 57), (None, 57)])
    assert result_to_counts("x", result) == (57, ("a", "(no key)"))


def test_result_without_a_key_column_is_a_query_error() -> None:
    with pytest.raises(CheckError) as caught:
        result_to_counts("x", QueryResult(columns=("id", "erp_audit_rows"), rows=[]))
    assert caught.value.reason is ErrorReason.QUERY


def test_sql_is_wrapped_into_one_statement_per_dialect() -> None:
    # SQL Server cannot run here: only the text of its statement is checked (TOP instead of LIMIT).
    assert wrap_sql("SELECT name AS key FROM t;  \n", Dialect.SQLITE) == (
        "SELECT audit_rows.*, COUNT(*) OVER () AS erp_audit_rows FROM (\nSELECT name AS key FROM t\n) audit_rows "
        "ORDER BY 1 LIMIT 20"
    )
    assert wrap_sql("SELECT 1 AS key", Dialect.MSSQL).startswith("SELECT TOP 20 audit_rows.*")
    assert wrap_sql("SELECT 1 AS key -- trailing comment", Dialect.POSTGRESQL).endswith(
        "-- trailing comment\n) audit_rows ORDER BY 1 LIMIT 20"
    )


# -- the audit command -----------------------------------------------------------------------------------


@pytest.fixture
def customers_config(tmp_path: Path) -> Iterator[Path]:
    names = ["Zeta & Sons", "Alpha <Ltd>"]
    yield write_config(tmp_path, config_text(make_customers_db(tmp_path / "erp.db", names)))


def test_audit_command_prints_count_owner_thresholds_and_keys(
    customers_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["audit", "customers_without_email", "--config.file", str(customers_config)])
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if not line.startswith("duration")]
    assert code == 0
    assert lines == [
        "audit         customers_without_email",
        "target        erp",
        "description   Customers without an e-mail address.",
        "category      data_quality",
        "owner         sales",
        "support line  1",
        "severity      warning",
        "thresholds    warning above 0, critical above 10",
        "source        this config file",
        "violations    2 (warning)",
        "sample keys (2 of 2):",
        "  Alpha <Ltd>",
        "  Zeta & Sons",
    ]


def test_audit_command_for_an_unknown_audit_exits_2(
    customers_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "customers_without_mail", "--config.file", str(customers_config)]) == 2
    assert capsys.readouterr().err == (
        f"{customers_config}: no audit named 'customers_without_mail'; configured audits: customers_without_email\n"
    )


def test_audit_command_on_a_broken_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, config_text(tmp_path / "erp.db", entry="packs: [odoo]\n"))
    assert main(["audit", "x", "--config.file", str(config)]) == 2
    assert "unknown audit pack 'odoo'" in capsys.readouterr().err


def test_audit_command_needs_a_target_when_several_run_the_audit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = make_customers_db(tmp_path / "erp.db", ["a"])
    text = config_text(database)
    second_target = text.split("targets:\n", 1)[1].split("host:", 1)[0].replace("name: erp", "name: erp-copy")
    config = write_config(tmp_path, text.replace("host:", second_target + "host:"))
    assert main(["audit", "customers_without_email", "--config.file", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"{config}: audit 'customers_without_email' runs on several targets (erp, erp-copy): "
        "choose one with --target\n"
    )
    assert main(["audit", "customers_without_email", "--target", "erp-copy", "--config.file", str(config)]) == 0
    assert "target        erp-copy" in capsys.readouterr().out


def test_audit_command_exits_1_when_the_query_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    audit = NO_EMAIL_AUDIT.replace("FROM customers", "FROM no_such_table")
    config = write_config(tmp_path, config_text(make_customers_db(tmp_path / "erp.db", []), audit))
    assert main(["audit", "customers_without_email", "--config.file", str(config)]) == 1
    captured = capsys.readouterr()
    assert "owner         sales" in captured.out
    assert captured.err.startswith("FAILED (query): ")
    assert "no such table: no_such_table" in captured.err


def test_audit_command_reports_a_timeout_through_the_scheduler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A query that runs far longer than its timeout: the same deadline, cancel and abandon as `serve`.
    slow_sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000000) "
        "SELECT i AS key FROM n WHERE i < 0"
    )
    audit = NO_EMAIL_AUDIT.replace(
        "  sql: SELECT name AS key FROM customers WHERE email IS NULL", f"  timeout: 500ms\n  sql: {slow_sql}"
    )
    config = write_config(tmp_path, config_text(make_customers_db(tmp_path / "erp.db", []), audit))
    assert main(["audit", "customers_without_email", "--config.file", str(config)]) == 1
    captured = capsys.readouterr()
    assert "owner         sales" in captured.out
    assert captured.err == "FAILED (timeout): no result within the 0.5s timeout; cancelled\n"


def test_once_prints_every_audit_with_its_owner_and_count(
    customers_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["once", "--config.file", str(customers_config)]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == ["TARGET", "AUDIT", "OWNER", "LINE", "SEVERITY", "VIOLATIONS", "LEVEL", "SAMPLE", "KEYS"]
    assert table[1].split("  ")[0:1] == ["erp"]
    assert table[1].split() == [
        "erp", "customers_without_email", "sales", "1", "warning", "2", "warning", "Alpha", "<Ltd>;", "Zeta", "&",
        "Sons",
    ]


# -- the status page -------------------------------------------------------------------------------------


def test_status_page_lists_audits_with_owner_count_and_escaped_keys(customers_config: Path, tmp_path: Path) -> None:
    app = App(customers_config, default_registry(), SecretMask())
    app.start()
    server = ExporterHTTPServer(("127.0.0.1", 0), app, WebConfig(), tmp_path)
    server.serve_in_thread()
    try:
        wait_until(app.ready, 30, "the first round of checks did not finish")
        page = requests.get(f"http://127.0.0.1:{server.server_address[1]}/", timeout=10).text
        _, states = app.store.snapshot()
        reports = audit_reports(states, app.runtime.loaded) if app.runtime else []
    finally:
        server.shutdown()
        server.server_close()
        app.stop()
    assert [(r.audit.name, r.result.count if r.result else None) for r in reports] == [("customers_without_email", 2)]
    section = page.split("<h2>Audits</h2>", 1)[1]
    assert (
        "<td>erp</td><td>customers_without_email</td><td>sales</td><td>1</td><td>warning</td>"
        "<td class='bad'>2</td><td>0 / 10</td>"
    ) in section
    assert "<ul><li>Alpha &lt;Ltd&gt;</li><li>Zeta &amp; Sons</li></ul>" in section
    assert "Alpha <Ltd>" not in page


def test_status_page_has_no_audit_section_without_audits(tmp_path: Path) -> None:
    view = StatusView(
        states=[], databases={}, reload_ok=True, reload_error="", config_file="c.yml", now_monotonic=0.0
    )
    assert "<h2>Audits</h2>" not in render_status_page(view, lambda text: text)


def test_reports_come_from_the_scheduled_checks_in_the_store(tmp_path: Path) -> None:
    config = write_config(tmp_path, config_text(make_customers_db(tmp_path / "erp.db", ["x"])))
    loaded = load_config(config)
    store = ResultStore()
    runtime = build_runtime(loaded, default_registry(), store)
    try:
        store.configure(runtime.metas)
        reports = audit_reports(store.snapshot()[1], loaded)
    finally:
        runtime.stop()
    assert [(r.target, r.audit.name, r.result) for r in reports] == [("erp", "customers_without_email", None)]
    assert CheckKey("erp", "audit:customers_without_email") in runtime.metas


def test_a_failed_run_keeps_the_last_findings_in_the_store(tmp_path: Path) -> None:
    key = CheckKey("erp", "audit:x")
    store = ResultStore()
    store.configure({key: CheckMeta(kind="audits", interval=60.0, timeout=5.0, series_limit=100, labels={})})
    store.record(key, Outcome(True, 0.2, [], findings=Findings(3, ("a", "b", "c"))))
    store.record(key, Outcome(False, 0.1, [], ErrorReason.QUERY, "boom"))
    state = store.get(key)
    assert state is not None
    assert (state.findings, state.last_success_duration) == (Findings(3, ("a", "b", "c")), 0.2)
