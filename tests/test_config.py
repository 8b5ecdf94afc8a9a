"""The config file: what is accepted, and the exact `file:line: key.path: message` of everything that is not.

Bad configs are a table (the blackbox_exporter `config_test.go` pattern): the YAML written to a file named
`erp-exporter.yml`, and the exact error lines `erp-exporter check-config` prints for it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exporter.config.loader import ConfigError, LoadedConfig, load_config
from exporter.source.durations import format_duration, parse_duration

CONFIG_NAME = "erp-exporter.yml"
SECRET = "pw-9f2c61d4-unique"  # the value of ${ERP_TEST_PASSWORD}; must never be shown


@pytest.fixture(autouse=True)
def _in_tmp_dir_with_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in tmp_path (so messages name `erp-exporter.yml` as a user would pass it) with a known env."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ERP_TEST_PASSWORD", SECRET)
    monkeypatch.setenv("ERP_TEST_SERVER", "db.example.com")
    monkeypatch.delenv("ERP_TEST_UNSET", raising=False)


def yaml_text(text: str) -> str:
    """Dedent a YAML literal; its first line (right after the opening quotes) is line 1 of the file."""
    return textwrap.dedent(text)


def load(text: str) -> LoadedConfig:
    Path(CONFIG_NAME).write_text(yaml_text(text), encoding="utf-8")
    return load_config(Path(CONFIG_NAME))


def errors(text: str) -> list[str]:
    """The error lines for a config that must be refused."""
    with pytest.raises(ConfigError) as caught:
        load(text)
    lines = [str(issue) for issue in caught.value.issues]
    assert str(caught.value) == "\n".join(lines), "the exception text is the list of issues, one per line"
    return lines


# ---------------------------------------------------------------------------------------------------
# Bad configs: one table, exact lines

BAD_CONFIGS = [
    pytest.param(
        """\
        global:
          interval: 30s

        targets:
          - name: erp
            driver: PostgreSQL Unicode
            connection:
              server: db.example.com
            checks:
              - kind: db_response
              - kind: privileges
                interval: fast
        """,
        ["erp-exporter.yml:12: targets[0].checks[1].interval: expected a duration like 30s, got 'fast'"],
        id="duration-not-a-duration",
    ),
    pytest.param(
        """\
        global:
          interval: 30
        """,
        ["erp-exporter.yml:2: global.interval: expected a duration like 30s, got 30"],
        id="duration-without-unit",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: SQLite3
            checks:
              - kind: db_response
                interval: 0s
        """,
        ["erp-exporter.yml:6: targets[0].checks[0].interval: expected a duration longer than 0s, got '0s'"],
        id="duration-zero-interval",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: SQLite3
            checks:
              - kind: db_response
                intervall: 30s
        """,
        ["erp-exporter.yml:6: targets[0].checks[0].intervall: unknown key (did you mean 'interval'?)"],
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        """\
        target:
          - name: erp
        """,
        ["erp-exporter.yml:1: target: unknown key (did you mean 'targets'?)"],
        id="unknown-top-level-key-did-you-mean",
    ),
    pytest.param(
        """\
        scrape_configs: []
        """,
        [
            "erp-exporter.yml:1: scrape_configs: unknown key (allowed: backups, calendars, global, host, "
            "http_transactions, logs, process_groups, targets)"
        ],
        id="unknown-top-level-key-lists-allowed",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: SQLite3
            checks:
              - kind: db_ping
        """,
        ["erp-exporter.yml:5: targets[0].checks[0].kind: unknown check kind 'db_ping'; "
         "expected one of: db_response, privileges, db_sessions, audits, sql_transaction, pack, db_activity, db_size, "
         "db_maintenance, db_statements, replication"],
        id="check-kind-unknown",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: SQLite3
            checks:
              - interval: 30s
        """,
        ["erp-exporter.yml:5: targets[0].checks[0].kind: required key is missing; "
         "expected one of: db_response, privileges, db_sessions, audits, sql_transaction, pack, db_activity, db_size, "
         "db_maintenance, db_statements, replication"],
        id="check-kind-missing",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: SQLite3
            checks:
              - db_response
        """,
        ["erp-exporter.yml:5: targets[0].checks[0]: expected a mapping of keys, got 'db_response'"],
        id="check-not-a-mapping",
    ),
    pytest.param(
        """\
        targets:
          - driver: SQLite3
        """,
        ["erp-exporter.yml:2: targets[0].name: required key is missing"],
        id="target-name-missing",
    ),
    pytest.param(
        """\
        targets:
          - name: erp prod
            driver: SQLite3
        """,
        ["erp-exporter.yml:2: targets[0].name: expected a name of letters, digits, '_', '.' and '-' "
         "that starts with a letter or digit, got 'erp prod'"],
        id="target-name-invalid",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: PostgreSQL Unicode
            dsn: erp
        """,
        ["erp-exporter.yml:4: targets[0].dsn: set driver or dsn, not both"],
        id="target-driver-and-dsn",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            username: monitoring
        """,
        ["erp-exporter.yml:2: targets[0]: needs driver (with its connection keys) or dsn"],
        id="target-neither-driver-nor-dsn",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp_prod
          - name: erp
            dsn: erp_test
        """,
        ["erp-exporter.yml:4: targets[1].name: duplicate target name 'erp'"],
        id="target-names-duplicate",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            checks:
              - kind: db_response
              - kind: db_response
                interval: 1m
        """,
        ["erp-exporter.yml:6: targets[0].checks[1].name: duplicate check name 'db_response' "
         "(a check's name defaults to its kind: give this one a name)"],
        id="check-names-duplicate-by-default",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            checks:
              - kind: db_response
                name: probe
              - kind: privileges
                name: probe
        """,
        ["erp-exporter.yml:8: targets[0].checks[1].name: duplicate check name 'probe'"],
        id="check-names-duplicate-explicit",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            checks:
              - kind: privileges
                interval: 10s
                timeout: 20s
        """,
        ["erp-exporter.yml:7: targets[0].checks[0].timeout: timeout 20s is longer than its interval (10s); "
         "a check must end before its next run"],
        id="check-timeout-longer-than-its-interval",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            checks:
              - kind: db_response
                timeout: 20s
        """,
        ["erp-exporter.yml:6: targets[0].checks[0].timeout: timeout 20s is longer than the default interval "
         "of db_response checks (15s); a check must end before its next run"],
        id="check-timeout-longer-than-kind-default-interval",
    ),
    pytest.param(
        """\
        global:
          interval: 30s
        host:
          timeout: 1m
        """,
        ["erp-exporter.yml:4: host.timeout: timeout 1m is longer than global.interval (30s); "
         "a check must end before its next run"],
        id="host-timeout-longer-than-global-interval",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            labels:
              environment: production
              target: erp-prod
        """,
        ["erp-exporter.yml:6: targets[0].labels.target: label name 'target' is reserved by the exporter's "
         "metrics"],
        id="label-name-reserved",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            labels:
              cost-center: "4711"
        """,
        ["erp-exporter.yml:5: targets[0].labels.cost-center: expected a label name of letters, digits "
         "and '_' that does not start with a digit, got 'cost-center'"],
        id="label-name-invalid",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            labels:
              company: 1000
        """,
        ["erp-exporter.yml:5: targets[0].labels.company: expected a string, got 1000 "
         "(put the value in quotes)"],
        id="label-value-unquoted-number",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: ODBC Driver 18 for SQL Server
            connection:
              server: db
              PWD: ${ERP_TEST_PASSWORD}
        """,
        ["erp-exporter.yml:6: targets[0].connection.PWD: not allowed in connection: put the password in the "
         "target's password (from ${ENV_VAR}) or password_file"],
        id="connection-pwd",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            driver: ODBC Driver 18 for SQL Server
            connection:
              server: db
              Encrypt: yes
        """,
        ["erp-exporter.yml:6: targets[0].connection.Encrypt: expected a string or a whole number, got true "
         "(YAML reads yes/no/on/off/true/false as booleans: put the value in quotes, e.g. 'yes')"],
        id="connection-value-yaml-boolean",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_PASSWORD}
            password_file: erp.password
        """,
        ["erp-exporter.yml:5: targets[0].password_file: set password or password_file, not both"],
        id="password-and-password-file",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            password_file: missing.password
        """,
        ["erp-exporter.yml:4: targets[0].password_file: cannot read missing.password: "
         "No such file or directory"],
        id="password-file-missing",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            password: 123456
        """,
        ["erp-exporter.yml:4: targets[0].password: expected a string, got a number "
         "(put the value in quotes)"],
        id="password-unquoted-number",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_UNSET}
        """,
        ["erp-exporter.yml:4: targets[0].password: environment variable ERP_TEST_UNSET is not set"],
        id="env-variable-unset",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            max_connections: 0
        """,
        ["erp-exporter.yml:4: targets[0].max_connections: must be at least 1, got 0"],
        id="max-connections-zero",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            max_connections: many
        """,
        ["erp-exporter.yml:4: targets[0].max_connections: expected a whole number, got 'many'"],
        id="max-connections-not-a-number",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            backoff:
              initial: 30s
              max: 10s
        """,
        ["erp-exporter.yml:6: targets[0].backoff.max: must not be shorter than backoff.initial (30s)"],
        id="backoff-max-below-initial",
    ),
    pytest.param(
        """\
        targets:
        """,
        ["erp-exporter.yml:1: targets: expected a list, got an empty value"],
        id="targets-empty",
    ),
    pytest.param(
        """\
        targets:
          name: erp
          dsn: erp
        """,
        ["erp-exporter.yml:1: targets: expected a list, got a mapping"],
        id="targets-not-a-list",
    ),
    pytest.param(
        """\
        process_groups:
          - name: erp-server
            process_name: "trytond("
        """,
        ["erp-exporter.yml:3: process_groups[0].process_name: not a valid regular expression: "
         "missing ), unterminated subpattern at position 7"],
        id="process-group-regex-invalid",
    ),
    pytest.param(
        """\
        process_groups:
          - name: erp-server
            interval: 30s
        """,
        ["erp-exporter.yml:2: process_groups[0]: needs process_name or cmdline (or both)"],
        id="process-group-without-pattern",
    ),
    pytest.param(
        """\
        process_groups:
          - name: erp-server
            process_name: trytond
          - name: erp-server
            cmdline: trytond
        """,
        ["erp-exporter.yml:4: process_groups[1].name: duplicate process group name 'erp-server'"],
        id="process-group-names-duplicate",
    ),
    pytest.param(
        """\
        global:
          interval: 30s
          timeout: 10s
          interval: 15s
        """,
        ["erp-exporter.yml:4: global.interval: duplicate key"],
        id="yaml-duplicate-key",
    ),
    pytest.param(
        """\
        global:
          interval: 30s
         timeout: 10s
        """,
        ["erp-exporter.yml:3: YAML syntax error: expected <block end>, but found '<block mapping start>' "
         "(column 2; while parsing a block mapping that starts at line 1; check the indentation)"],
        id="yaml-syntax-error",
    ),
    pytest.param(
        """\
        targets:
          - name: 'erp
        """,
        ["erp-exporter.yml:3: YAML syntax error: found unexpected end of stream "
         "(column 1; while scanning a quoted scalar that starts at line 2)"],
        id="yaml-unterminated-quote",
    ),
    pytest.param(
        "global:\n  interval: 30s\n  timeout: \x01\n",
        ["erp-exporter.yml:3: YAML syntax error: unacceptable character #x0001: "
         "special characters are not allowed"],
        id="yaml-control-character",
    ),
    pytest.param(
        """\
        - name: erp
          dsn: erp
        """,
        ["erp-exporter.yml:1: the top level must be a mapping of keys (global, targets, ...)"],
        id="yaml-top-level-list",
    ),
    pytest.param(
        """\
        global: &loop
          nested: *loop
        """,
        ["erp-exporter.yml:2: global.nested: recursive YAML alias (an anchor used inside itself)"],
        id="yaml-recursive-alias",
    ),
    pytest.param(
        """\
        targets:
          - name: !!python/object/apply:os.getcwd []
        """,
        ["erp-exporter.yml:2: targets[0].name: unsupported YAML tag !!python/object/apply:os.getcwd"],
        id="yaml-unsafe-tag",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS)
def test_bad_config_is_refused_with_exact_error_lines(text: str, expected: list[str]) -> None:
    assert errors(text) == expected


def test_probe_query_that_writes_is_refused_at_its_key() -> None:
    # The wording is the guard's (exporter/db/guard.py); the config names the key and says 'refused'.
    [line] = errors(
        """\
        targets:
          - name: erp
            driver: PostgreSQL Unicode
            checks:
              - kind: db_response
                probe_query: DELETE FROM t
        """
    )
    prefix = "erp-exporter.yml:6: targets[0].checks[0].probe_query: "
    assert line.startswith(prefix), line
    assert "refused" in line.removeprefix(prefix)


# ---------------------------------------------------------------------------------------------------
# Several errors: all of them, sorted by line


def test_every_model_error_is_reported_sorted_by_line() -> None:
    assert errors(
        """\
        global:
          interval: fast
          workers: 0
        targets:
          - name: erp
            dsn: erp
            max_connections: 0
            checks:
              - kind: nope
        process_groups:
          - nme: erp-server
        """
    ) == [
        "erp-exporter.yml:2: global.interval: expected a duration like 30s, got 'fast'",
        "erp-exporter.yml:3: global.workers: must be at least 1, got 0",
        "erp-exporter.yml:7: targets[0].max_connections: must be at least 1, got 0",
        "erp-exporter.yml:9: targets[0].checks[0].kind: unknown check kind 'nope'; "
        "expected one of: db_response, privileges, db_sessions, audits, sql_transaction, pack, db_activity, db_size, "
         "db_maintenance, db_statements, replication",
        "erp-exporter.yml:11: process_groups[0].name: required key is missing",
        "erp-exporter.yml:11: process_groups[0].nme: unknown key (did you mean 'name'?)",
    ]


def test_every_cross_key_error_is_reported_sorted_by_line() -> None:
    assert errors(
        """\
        targets:
          - name: erp
            checks:
              - kind: privileges
              - kind: privileges
          - name: erp
            dsn: erp
            labels:
              job: erp
        """
    ) == [
        "erp-exporter.yml:2: targets[0]: needs driver (with its connection keys) or dsn",
        "erp-exporter.yml:5: targets[0].checks[1].name: duplicate check name 'privileges' "
        "(a check's name defaults to its kind: give this one a name)",
        "erp-exporter.yml:6: targets[1].name: duplicate target name 'erp'",
        "erp-exporter.yml:9: targets[1].labels.job: label name 'job' is reserved by the exporter's metrics",
    ]


def test_yaml_problems_are_reported_with_model_errors() -> None:
    assert errors(
        """\
        global:
          interval: 1x
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_UNSET}
            dsn: erp2
        """
    ) == [
        "erp-exporter.yml:2: global.interval: expected a duration like 30s, got '1x'",
        "erp-exporter.yml:6: targets[0].password: environment variable ERP_TEST_UNSET is not set",
        "erp-exporter.yml:7: targets[0].dsn: duplicate key",
    ]


def test_missing_config_file_is_an_error_without_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(Path("absent.yml"))
    assert str(caught.value) == "absent.yml: cannot read file: No such file or directory"


# ---------------------------------------------------------------------------------------------------
# Valid configs


def test_empty_file_is_all_defaults() -> None:
    config = load("").config
    assert config.targets == []
    assert config.process_groups == []
    assert config.global_.interval == 30.0
    assert config.global_.timeout == 10.0
    assert config.host.enabled is True


def test_target_defaults() -> None:
    target = load(
        """\
        targets:
          - name: erp
            dsn: erp
        """
    ).config.targets[0]
    assert target.max_connections == 2
    assert target.connect_timeout == 5.0
    assert (target.backoff.initial, target.backoff.max) == (1.0, 60.0)
    assert target.labels == {}
    assert target.checks == []  # the default checks are added by the app, not by the config


def test_target_with_driver_connection_and_static_labels() -> None:
    target = load(
        """\
        targets:
          - name: erp-prod
            driver: PostgreSQL Unicode
            connection:
              server: ${ERP_TEST_SERVER}
              port: 5432
            labels:
              environment: production
              system: erp
              company: "1000"
        """
    ).config.targets[0]
    assert target.driver == "PostgreSQL Unicode"
    assert target.connection == {"server": "db.example.com", "port": 5432}
    assert target.labels == {"environment": "production", "system": "erp", "company": "1000"}


def test_env_variable_expands_into_password() -> None:
    loaded = load(
        """\
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_PASSWORD}
        """
    )
    target = loaded.config.targets[0]
    assert target.password is not None
    assert target.password.get_secret_value() == SECRET
    assert loaded.passwords == {"erp": SECRET}
    assert loaded.secrets() == [SECRET]


def test_password_file_loses_its_trailing_newline() -> None:
    Path("erp.password").write_text(f"{SECRET}\n", encoding="utf-8")
    loaded = load(
        """\
        targets:
          - name: erp
            dsn: erp
            password_file: erp.password
        """
    )
    assert loaded.passwords == {"erp": SECRET}


def test_relative_password_file_is_read_next_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    (config_dir / "erp.password").write_text(SECRET, encoding="utf-8")
    (config_dir / CONFIG_NAME).write_text(
        "targets:\n  - name: erp\n    dsn: erp\n    password_file: erp.password\n", encoding="utf-8"
    )
    monkeypatch.chdir("/")
    assert load_config(config_dir / CONFIG_NAME).passwords == {"erp": SECRET}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("2m", 120.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1d", 86400.0), ("1m30s500ms", 90.5)],
)
def test_duration_in_config(text: str, seconds: float) -> None:
    config = load(f"global:\n  interval: {text}\n  timeout: {text}\n").config
    assert config.global_.interval == seconds


@pytest.mark.parametrize("seconds", [0.5, 15.0, 90.5, 5400.0, 86400.0])
def test_duration_formats_back_to_what_parses(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_yaml_merge_key_shares_settings_between_targets() -> None:
    targets = load(
        """\
        targets:
          - &erp
            name: erp-prod
            driver: PostgreSQL Unicode
            labels:
              system: erp
          - <<: *erp
            name: erp-test
        """
    ).config.targets
    assert [(t.name, t.driver, t.labels) for t in targets] == [
        ("erp-prod", "PostgreSQL Unicode", {"system": "erp"}),
        ("erp-test", "PostgreSQL Unicode", {"system": "erp"}),
    ]


def test_dollar_quoted_sql_is_not_taken_for_an_env_variable() -> None:
    check = load(
        """\
        targets:
          - name: erp
            driver: PostgreSQL Unicode
            checks:
              - kind: db_response
                probe_query: SELECT $$ok$$
        """
    ).config.targets[0].checks[0]
    assert getattr(check, "probe_query") == "SELECT $$ok$$"  # noqa: B009 - the union has no common attribute


# ---------------------------------------------------------------------------------------------------
# Secrets are never shown


def test_password_is_not_in_errors_about_its_target() -> None:
    lines = errors(
        """\
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_PASSWORD}
            max_connections: 0
            connect_timeout: soon
        """
    )
    assert lines == [
        "erp-exporter.yml:5: targets[0].max_connections: must be at least 1, got 0",
        "erp-exporter.yml:6: targets[0].connect_timeout: expected a duration like 30s, got 'soon'",
    ]
    assert not any(SECRET in line for line in lines)


def test_password_put_in_the_wrong_key_is_masked_in_the_error() -> None:
    assert errors(
        """\
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_PASSWORD}
            connect_timeout: ${ERP_TEST_PASSWORD}
        """
    ) == ["erp-exporter.yml:5: targets[0].connect_timeout: expected a duration like 30s, got '<secret>'"]


def test_password_from_file_is_masked_in_errors() -> None:
    Path("erp.password").write_text("hunter2-f00d\n", encoding="utf-8")
    assert errors(
        """\
        targets:
          - name: erp
            dsn: erp
            password_file: erp.password
            max_connections: hunter2-f00d
        """
    ) == ["erp-exporter.yml:5: targets[0].max_connections: expected a whole number, got '<secret>'"]


def test_password_in_a_label_is_refused_without_showing_it() -> None:
    assert errors(
        """\
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_PASSWORD}
            labels:
              environment: ${ERP_TEST_PASSWORD}
        """
    ) == ["erp-exporter.yml:6: targets[0].labels.environment: must not contain a password"]


def test_password_is_not_in_the_repr_of_the_loaded_config() -> None:
    Path("erp.password").write_text("hunter2-f00d\n", encoding="utf-8")
    loaded = load(
        """\
        targets:
          - name: erp
            dsn: erp
            password: ${ERP_TEST_PASSWORD}
          - name: erp2
            dsn: erp2
            password_file: erp.password
        """
    )
    assert loaded.secrets() == [SECRET, "hunter2-f00d"]
    for text in (repr(loaded.config), str(loaded.config), repr(loaded)):
        assert SECRET not in text
        assert "hunter2-f00d" not in text
