"""The JSON Schema shipped for editors: generated from the model, kept in sync, and true to the examples."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from exporter.config import schema as config_schema
from exporter.config.loader import load_config
from exporter.config.schema import config_json_schema, render_schema, shipped_schema

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yml"))
FULL_CONFIG = ROOT / "tests" / "data" / "config" / "valid-full.yml"
DOCUMENTS = [*EXAMPLES, FULL_CONFIG]


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    return Draft202012Validator(shipped_schema())


class _EditorLoader(yaml.SafeLoader):
    """YAML as editors read it (the YAML 1.2 core schema): 2025-12-31 stays text, checked by `format: date`."""


_EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def users_view(path: Path) -> Any:
    """The document as an editor sees it: plain YAML, ${VARS} unexpanded."""
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_EditorLoader)  # noqa: S506 - a SafeLoader


def schema_errors(validator: Draft202012Validator, document: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


# ---------------------------------------------------------------------------------------------------
# The shipped file


def test_shipped_schema_is_what_the_model_generates() -> None:
    shipped = config_schema.SCHEMA_FILE
    assert shipped.read_text(encoding="utf-8") == render_schema(), (
        f"{shipped.relative_to(ROOT)} is out of date with exporter/config/model.py: "
        f"regenerate it with `{config_schema.REGENERATE_COMMAND}` and commit it"
    )


def test_shipped_schema_is_in_the_package() -> None:
    assert shipped_schema() == config_json_schema()


def test_shipped_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(shipped_schema())
    assert shipped_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# ---------------------------------------------------------------------------------------------------
# It describes what users write


def test_schema_has_the_keys_users_write() -> None:
    assert sorted(shipped_schema()["properties"]) == [
        "backups", "calendars", "global", "host", "http_transactions", "logs", "process_groups", "targets"
    ]


def test_duration_is_a_string_with_the_prometheus_pattern_and_a_duration_default() -> None:
    interval = shipped_schema()["$defs"]["GlobalConfig"]["properties"]["interval"]
    assert interval["type"] == "string"
    assert interval["default"] == "30s"
    pattern = re.compile(interval["pattern"])
    assert all(pattern.search(text) for text in ("15s", "2m", "1h30m", "500ms"))
    assert not any(pattern.search(text) for text in ("fast", "30", "1.5s", "30 s"))


def test_password_is_a_write_only_string() -> None:
    password = shipped_schema()["$defs"]["TargetConfig"]["properties"]["password"]
    assert {"type": "string", "format": "password", "writeOnly": True} in password["anyOf"]


# ---------------------------------------------------------------------------------------------------
# Examples and the full config: valid for the schema and for the loader


def test_there_are_examples_to_check() -> None:
    assert EXAMPLES, (
        f"no examples/*.yml under {ROOT}: ship at least examples/erp-exporter.yml, "
        "so users start from a config that is known to be valid"
    )


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_document_is_valid_for_the_schema(path: Path, validator: Draft202012Validator) -> None:
    assert schema_errors(validator, users_view(path)) == []


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_document_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text(encoding="utf-8")):
        if name not in os.environ:
            # URLs must look like URLs; every other placeholder is a plain word
            placeholder = "http://127.0.0.1:8000" if name.endswith("_URL") else f"placeholder-for-{name}"
            monkeypatch.setenv(name, placeholder)
    load_config(path)


def test_full_config_uses_every_key_of_the_schema() -> None:
    schema = shipped_schema()
    keys = set(schema["properties"])
    for definition in schema["$defs"].values():
        keys |= set(definition.get("properties", {}))
    assert keys - _keys_used(users_view(FULL_CONFIG)) == set(), f"extend {FULL_CONFIG.name} with these keys"


def test_full_config_uses_every_check_kind() -> None:
    checks = [check for target in users_view(FULL_CONFIG)["targets"] for check in target.get("checks", [])]
    assert {check["kind"] for check in checks} == set(_schema_check_kinds())


def _keys_used(node: Any) -> set[str]:
    """Every mapping key anywhere in the document (label names too: harmless, they are not schema keys)."""
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in _keys_used(value)}
    if isinstance(node, list):
        return {key for item in node for key in _keys_used(item)}
    return set()


def _schema_check_kinds() -> list[str]:
    properties = [definition.get("properties", {}) for definition in shipped_schema()["$defs"].values()]
    return [p["kind"]["const"] for p in properties if "kind" in p]


# ---------------------------------------------------------------------------------------------------
# Invalid documents are invalid for the schema too (the path of each error shows it is the right one)

INVALID_DOCUMENTS = [
    pytest.param(
        """\
        scrape_configs: []
        """,
        [""],
        id="unknown-top-level-key",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            pasword: x
        """,
        ["targets/0"],
        id="unknown-target-key",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            checks:
              - kind: privileges
                intervall: 10m
        """,
        ["targets/0/checks/0"],
        id="unknown-check-key",
    ),
    pytest.param(
        """\
        global:
          interval: fast
        """,
        ["global/interval"],
        id="duration-not-a-duration",
    ),
    pytest.param(
        """\
        global:
          interval: 30
        """,
        ["global/interval"],
        id="duration-without-unit",
    ),
    pytest.param(
        """\
        targets:
          - dsn: erp
        """,
        ["targets/0"],
        id="target-without-name",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            checks:
              - kind: db_ping
        """,
        ["targets/0/checks/0"],
        id="check-kind-unknown",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            labels:
              cost-center: x
        """,
        ["targets/0/labels"],
        id="label-name-invalid",
    ),
    pytest.param(
        """\
        targets:
          - name: erp
            dsn: erp
            max_connections: 0
        """,
        ["targets/0/max_connections"],
        id="max-connections-zero",
    ),
]


@pytest.mark.parametrize(("text", "paths"), INVALID_DOCUMENTS)
def test_invalid_document_is_rejected_by_the_schema(
    text: str, paths: list[str], validator: Draft202012Validator
) -> None:
    errors = schema_errors(validator, yaml.safe_load(textwrap.dedent(text)))
    assert [error.split(": ", 1)[0] for error in errors] == paths, errors
