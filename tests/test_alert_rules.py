"""The alert and recording rules in alert_rules/: generated from thresholds.yml, clean for promtool, every
alert labelled, annotated, documented by a runbook with the three support lines, and unit-tested firing and
not firing with the real promtool (Debian prometheus 2.42)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from alerting_rules import (
    RULES_DIR,
    RUNBOOKS_DIR,
    UNIT_TESTS_DIR,
    alert_names,
    alert_rules,
    binary,
    generator,
    load_thresholds,
    recording_rules,
    rule_files,
    run,
    unit_cases,
    unit_expressions,
    unit_test_files,
    write_rules,
)

SEVERITIES = {"info", "warning", "critical"}
LINES = {"1", "2", "3"}
RUNBOOK_SECTIONS = ("## Meaning", "## How to check", "## Line 1", "## Line 2", "## Line 3", "## Escalation")
# Labels an alert may take from the series it fires on instead of a literal (the one generic audit rule).
FROM_SERIES = {"severity": "{{ $labels.severity }}", "support_line": "{{ $labels.support_line }}",
               "owner": "{{ $labels.owner }}"}
ALWAYS_FIRING = {"Watchdog"}  # by design it has no case where it does not fire


# -- one source -----------------------------------------------------------------------------------------------

def test_committed_rule_files_are_what_the_generator_makes_from_thresholds() -> None:
    expected = generator().generate(load_thresholds())
    committed = {path.name: path.read_text() for path in rule_files()}
    assert sorted(committed) == sorted(expected)
    for name, text in expected.items():
        assert committed[name] == text, f"alert_rules/{name} is out of date: run tools/gen_alert_rules.py"


def test_committed_runbook_index_is_what_the_generator_makes() -> None:
    expected = generator().runbook_index(load_thresholds())
    assert (RUNBOOKS_DIR / "README.md").read_text() == expected, "run tools/gen_alert_rules.py"


def test_generator_check_mode_fails_on_out_of_date_files_and_passes_after_writing(tmp_path: Path) -> None:
    main = generator().main
    assert main(["--check", "--out", str(tmp_path)]) == 1
    assert main(["--out", str(tmp_path)]) == 0
    assert main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "availability.rules.yml").write_text("groups: []\n")
    assert main(["--check", "--out", str(tmp_path)]) == 1


def test_every_alert_in_thresholds_has_rules_and_every_rule_has_thresholds() -> None:
    assert set(load_thresholds()["alerts"]) == set(alert_names())


def test_thresholds_change_the_generated_expression_and_texts(tmp_path: Path) -> None:
    thresholds = load_thresholds()
    thresholds["alerts"]["ErpDatabaseSlow"]["warning"] = 0.75
    thresholds["alerts"]["ErpTargetDown"]["for"] = "30s"
    write_rules(tmp_path, thresholds)
    rules = [r for g in yaml.safe_load((tmp_path / "performance.rules.yml").read_text())["groups"]
             for r in g["rules"] if r.get("alert") == "ErpDatabaseSlow" and r["labels"]["severity"] == "warning"]
    assert rules[0]["expr"] == "erp_database_probe_duration_seconds > 0.75"
    assert "(above 750ms)" in rules[0]["annotations"]["description"]
    down = yaml.safe_load((tmp_path / "availability.rules.yml").read_text())["groups"][0]["rules"][0]
    assert (down["alert"], down["for"]) == ("ErpTargetDown", "30s")


def test_a_transaction_objective_override_gets_its_own_rules_and_leaves_the_default(tmp_path: Path) -> None:
    thresholds = load_thresholds()
    thresholds["alerts"]["ErpTransactionLatencyHigh"]["overrides"]["values"] = {
        "month_report": {"warning": 60, "critical": 300},
    }
    write_rules(tmp_path, thresholds)
    latency = [r for g in yaml.safe_load((tmp_path / "performance.rules.yml").read_text())["groups"]
               for r in g["rules"] if r.get("alert") == "ErpTransactionLatencyHigh" and not
               r["labels"].get("escalated")]
    assert [r["expr"] for r in latency] == [
        'erp:transaction_duration_seconds:p95{source!="job_log",transaction!~"month_report"} > 2',
        'erp:transaction_duration_seconds:p95{source!="job_log",transaction!~"month_report"} > 5',
        'erp:transaction_duration_seconds:p95{source!="job_log",transaction="month_report"} > 60',
        'erp:transaction_duration_seconds:p95{source!="job_log",transaction="month_report"} > 300',
    ]
    assert latency[2]["annotations"]["description"].endswith("over its objective of 1m.")
    trends = [r["expr"].splitlines()[:2] for g in yaml.safe_load((tmp_path / "capacity.rules.yml").read_text())[
        "groups"] for r in g["rules"] if r.get("alert") == "ErpMonthEndLatencyTrend"]
    assert trends == [
        ['predict_linear(erp:transaction_duration_seconds:p95{source!="job_log",transaction!~"month_report"}'
         "[1h], 14400)", "> 2"],
        ['predict_linear(erp:transaction_duration_seconds:p95{source!="job_log",transaction="month_report"}'
         "[1h], 14400)", "> 60"],
    ]
    result = run([binary("promtool"), "check", "rules", *(str(p) for p in sorted(tmp_path.glob("*.rules.yml")))])
    assert result.returncode == 0, result.stderr


def test_runbook_base_url_is_configurable(tmp_path: Path) -> None:
    assert generator().main(["--out", str(tmp_path), "--runbook-base-url", "https://wiki.example.com/erp/"]) == 0
    rule = yaml.safe_load((tmp_path / "exporter.rules.yml").read_text())["groups"][0]["rules"][0]
    assert rule["annotations"]["runbook_url"] == "https://wiki.example.com/erp/ErpExporterDown.md"


# -- promtool ---------------------------------------------------------------------------------------------------

def test_promtool_check_rules_is_clean() -> None:
    result = run([binary("promtool"), "check", "rules", *map(str, rule_files())])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert result.stdout.count("SUCCESS") == len(rule_files())


@pytest.mark.parametrize("test_file", unit_test_files(), ids=lambda path: path.name)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    result = run([binary("promtool"), "test", "rules", str(test_file)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("test_file", unit_test_files(), ids=lambda path: path.name)
def test_unit_tests_evaluate_recording_rules_before_the_alerts_built_on_them(test_file: Path) -> None:
    # Without group_eval_order promtool evaluates the groups of one timestamp in map order, so an alert on a
    # recording rule sees it one evaluation late at random (a CI run failed on it once in about ten).
    document = yaml.safe_load(test_file.read_text())
    groups = [
        group["name"]
        for rule_file in document.get("rule_files", [])
        for group in yaml.safe_load((test_file.parent / rule_file).read_text())["groups"]
    ]
    if "erp-recording" not in groups or len(groups) == 1:
        return
    order = document.get("group_eval_order", [])
    assert order[:1] == ["erp-recording"], f"{test_file.name}: group_eval_order must start with erp-recording"
    assert sorted(order) == sorted(groups), f"{test_file.name}: group_eval_order must list every group once"


def test_the_unit_tests_cover_every_file_in_alert_rules_tests() -> None:
    assert {p.name for p in UNIT_TESTS_DIR.glob("*.yml")} == {p.name for p in unit_test_files()}


# -- labels and annotations -------------------------------------------------------------------------------------

def test_every_alert_has_severity_support_line_and_component() -> None:
    for rule in alert_rules():
        labels = rule.labels
        assert labels.get("severity") in SEVERITIES | {FROM_SERIES["severity"]}, rule
        assert labels.get("support_line") in LINES | {FROM_SERIES["support_line"]}, rule
        assert labels.get("component") in generator().COMPONENTS, rule
        if "owner" in labels:
            assert labels["owner"] == FROM_SERIES["owner"], rule
        templated = {key for key, value in labels.items() if "{{" in value}
        assert templated <= set(FROM_SERIES), f"{rule.name}: only {sorted(FROM_SERIES)} may come from series"


def test_every_alert_has_summary_description_with_the_value_and_runbook_url() -> None:
    base = load_thresholds()["runbook_base_url"].rstrip("/")
    assert base.startswith("https://")
    for rule in alert_rules():
        annotations = rule.annotations
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule.name
        assert annotations["summary"].strip(), rule.name
        assert "$value" in annotations["description"], f"{rule.name}: the description must show the value"
        assert annotations["runbook_url"] == f"{base}/{rule.name}.md"
        assert annotations["runbook_url"].endswith(f"docs/runbooks/{rule.name}.md")


def test_severity_pairs_share_the_alert_name_and_warn_before_critical() -> None:
    by_name: dict[str, set[str]] = {}
    for rule in alert_rules():
        if not rule.escalated and "{{" not in rule.labels["severity"]:
            by_name.setdefault(rule.name, set()).add(rule.labels["severity"])
    pairs = [name for name, severities in by_name.items() if severities == {"warning", "critical"}]
    assert len(pairs) >= 15, pairs
    thresholds = load_thresholds()["alerts"]
    for name in pairs:
        spec = thresholds[name]
        if isinstance(spec.get("warning"), (int, float)) and isinstance(spec.get("critical"), (int, float)):
            below = name in {"ErpHostMemoryPressure", "ErpHostDiskSpaceLow", "ErpTlsCertificateExpiring",
                             "ErpDatabaseGrowthFillsDisk"}
            assert (spec["warning"] > spec["critical"]) if below else (spec["warning"] <= spec["critical"]), name


def test_escalation_variants_go_up_exactly_one_line_after_a_longer_wait() -> None:
    gen = generator()
    rules = alert_rules()
    escalated = [rule for rule in rules if rule.escalated]
    assert {rule.name for rule in escalated} >= {"ErpTargetDown", "ErpProcessGroupGone", "ErpDatabaseSlow"}
    for rule in escalated:
        base = [r for r in rules if r.name == rule.name and not r.escalated and r.expr == rule.expr]
        assert len(base) == 1, rule.name
        assert int(rule.labels["support_line"]) == int(base[0].labels["support_line"]) + 1
        assert rule.labels["severity"] == base[0].labels["severity"]
        assert gen.duration_seconds(rule.for_) > gen.duration_seconds(base[0].for_)


def test_alert_names_are_unique_across_files_and_groups() -> None:
    homes: dict[str, set[tuple[str, str]]] = {}
    for rule in alert_rules():
        homes.setdefault(rule.name, set()).add((rule.file, rule.group))
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}


def test_recording_rules_follow_the_level_metric_operation_naming() -> None:
    for name in recording_rules():
        assert re.fullmatch(r"erp:[a-z0-9_]+:[a-z0-9_]+", name), name


# -- runbooks ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", alert_names())
def test_every_alert_has_a_runbook_with_the_three_lines_and_escalation(name: str) -> None:
    path = RUNBOOKS_DIR / f"{name}.md"
    assert path.is_file(), f"missing runbook {path}"
    text = path.read_text()
    assert text.startswith(f"# {name}\n")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    for section in RUNBOOK_SECTIONS:
        matching = [h for h in headings if h == section or h.startswith(section + ":")]
        assert len(matching) == 1, f"{path.name}: section {section!r}"
        body = text.split(matching[0], 1)[1].split("\n## ", 1)[0]
        assert len(body.strip()) > 20, f"{path.name}: section {section!r} is empty"
    assert "```promql" in text, f"{path.name}: How to check has no PromQL"


def test_every_runbook_belongs_to_an_alert() -> None:
    names = set(alert_names())
    orphans = [p.name for p in RUNBOOKS_DIR.glob("*.md") if p.stem not in names and p.name != "README.md"]
    assert orphans == []


# -- unit-test coverage -----------------------------------------------------------------------------------------

def test_every_alert_has_a_unit_case_where_it_fires_and_one_where_it_does_not() -> None:
    cases = list(unit_cases())
    for name in alert_names():
        fires = [c for c in cases if c.alertname == name and c.exp_alerts]
        quiet = [c for c in cases if c.alertname == name and not c.exp_alerts]
        assert fires, f"{name}: no promtool case where it fires"
        if name not in ALWAYS_FIRING:
            assert quiet, f"{name}: no promtool case where it does not fire"


def test_every_severity_line_and_escalation_variant_fires_in_a_unit_case() -> None:
    fired = {
        (c.alertname, alert["exp_labels"].get("severity"), str(alert["exp_labels"].get("support_line")),
         alert["exp_labels"].get("escalated", ""))
        for c in unit_cases() for alert in c.exp_alerts
    }
    for rule in alert_rules():
        if "{{" in rule.labels["severity"] + rule.labels["support_line"]:
            continue  # the audit rule: its labels come from the series (covered by the case above)
        variant = (rule.name, rule.labels["severity"], rule.labels["support_line"], rule.labels.get("escalated", ""))
        assert variant in fired, f"no promtool case fires {variant}"


def test_every_firing_case_asserts_the_runbook_url_and_routing_labels() -> None:
    for case in unit_cases():
        for alert in case.exp_alerts:
            labels, annotations = alert["exp_labels"], alert.get("exp_annotations", {})
            assert {"severity", "support_line", "component"} <= set(labels), (case.file, case.test)
            assert annotations.get("runbook_url", "").endswith(f"/docs/runbooks/{case.alertname}.md"), case.test


def test_every_recording_rule_has_a_unit_expression_test() -> None:
    tested = " ".join(unit_expressions())
    missing = [name for name in recording_rules() if name not in tested]
    assert missing == []


def test_rule_files_are_not_matched_by_the_thresholds_glob() -> None:
    # Prometheus loads alert_rules/*.rules.yml; thresholds.yml and the unit tests must stay out of that glob.
    assert sorted(RULES_DIR.glob("*.rules.yml")) == rule_files()
    assert not (RULES_DIR / "thresholds.rules.yml").exists()
