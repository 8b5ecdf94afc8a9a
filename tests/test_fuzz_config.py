"""Fuzzing the config loader: whatever bytes the file holds, the result is a valid config or errors that name
the file, the line and (where there is one) the key; never a traceback.

Three sources of input, each with a fixed budget: raw bytes, YAML trees built from the config's own key
names, and the shipped example configs with one part changed (a value replaced, a key dropped or added,
bytes inserted or cut). A part of the examples goes through the real `erp-exporter check-config` command.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.config.loader import ConfigError, load_config
from exporter.config.schema import shipped_schema

ROOT = Path(__file__).resolve().parent.parent
EXPORTER = Path(sys.executable).parent / "erp-exporter"
EXAMPLES = [ROOT / "examples" / "erp-exporter.yml", ROOT / "examples" / "demo.yml"]
# The examples read these variables; set, they make the unchanged examples valid.
EXAMPLE_ENV = {
    "ERP_PROD_DB_PASSWORD": "fuzz-prod-pw",
    "ERP_REPORTING_DB_PASSWORD": "fuzz-reporting-pw",
    "ERP_TRYTON_MONITOR_PASSWORD": "fuzz-tryton-pw",
    "ERP_DEMO_DB": "/tmp/erp-fuzz-demo.sqlite",
    "ERP_DEMO_TRYTON_URL": "http://127.0.0.1:8000/",
    "ERP_DEMO_TRYTON_DATABASE": "demo",
    "ERP_DEMO_TRYTON_PASSWORD": "fuzz-demo-pw",
}
FILE_NAME = "erp-exporter.yml"
# What YAML counts as the end of a line (so a file's last line number).
YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# Problems of the whole text or of the top level's own keys, where no key name exists to give: they name the
# file and the line. (A tag, alias or key problem has an empty key path only at the document's root.)
WHOLE_TEXT = re.compile(
    r"^(YAML syntax error|YAML error|not UTF-8 text|the top level must be|unsupported YAML tag|recursive YAML"
    r"|mapping keys must be plain scalars)"
)


def _schema_words(node: Any, found: set[str]) -> set[str]:
    """Every property name and enum string of the shipped JSON Schema: the words a config is made of."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                found.update(value)
            if key in ("enum", "const"):
                found.update(item for item in (value if isinstance(value, list) else [value])
                             if isinstance(item, str))
            _schema_words(value, found)
    elif isinstance(node, list):
        for item in node:
            _schema_words(item, found)
    return found


KEYS = sorted(_schema_words(shipped_schema(), set()))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["15s", "0s", "-1s", "1h30m", "10m", "fast", "", "${UNSET_FUZZ_VARIABLE}", "${NAME}",
                     "SELECT 1", "DELETE FROM t", "/nonexistent/file", "PostgreSQL Unicode", "SQLite3",
                     "db_response", "month_end", "tryton", "1e309", "0x10", "~", "null", "yes"]),
    st.sampled_from(KEYS),
    st.text(max_size=12),
)


def _trees() -> st.SearchStrategy[Any]:
    """YAML-able trees whose keys are the config's own words, so validation gets deep, not just to the top."""
    return st.recursive(
        SCALARS,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children, max_size=5),
        ),
        max_leaves=25,
    )


def _example_data() -> list[Any]:
    return [yaml.safe_load(path.read_text()) for path in EXAMPLES]


EXAMPLE_DATA = _example_data()
EXAMPLE_TEXTS = [path.read_bytes() for path in EXAMPLES]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


@st.composite
def changed_examples(draw: st.DrawFn) -> bytes:
    """An example config with one part replaced, dropped or added, dumped back to YAML."""
    data = copy.deepcopy(EXAMPLE_DATA[draw(st.integers(0, len(EXAMPLE_DATA) - 1))])
    paths = [path for path in _paths(data) if path]
    path = draw(st.sampled_from(paths))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(_trees())
    elif action == "drop":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.sampled_from(KEYS))] = draw(_trees())
    else:
        parent.append(draw(_trees()))
    return yaml.safe_dump(data, allow_unicode=draw(st.booleans()), sort_keys=False).encode()


@st.composite
def cut_examples(draw: st.DrawFn) -> bytes:
    """An example config's bytes with a slice cut out and random bytes put in its place."""
    text = EXAMPLE_TEXTS[draw(st.integers(0, len(EXAMPLE_TEXTS) - 1))]
    start = draw(st.integers(min_value=0, max_value=len(text)))
    end = draw(st.integers(min_value=start, max_value=min(len(text), start + 40)))
    inserted = draw(st.one_of(st.binary(max_size=8), st.sampled_from(
        [b"\t", b"\n  ", b": ", b"- ", b"&a ", b"*a", b"<<: *a\n", b"!!binary ", b"\xff\xfe", b"\x00", b"'", b'"',
         b"{", b"[", b"%YAML 1.1\n---\n", b"\xef\xbb\xbf", b"\r", b"\xc3(", b"\xe2\x80\xa8"])))
    return text[:start] + inserted + text[end:]


ANY_CONFIG_BYTES = st.one_of(
    st.binary(max_size=200),
    _trees().map(lambda tree: yaml.safe_dump(tree, allow_unicode=True).encode()),
    changed_examples(),
    cut_examples(),
)


def assert_named_problems(error: ConfigError, file: str, text: bytes) -> None:
    """Every problem names the file and a line within it, and a key unless it is about the whole text."""
    assert error.issues, "a ConfigError without any problem in it"
    decoded = text.decode("utf-8", errors="replace")
    last_line = len(YAML_LINE_BREAK.findall(decoded)) + 1
    for issue in error.issues:
        assert issue.file == file, issue
        assert issue.line is not None and 1 <= issue.line <= last_line, issue
        assert issue.path or WHOLE_TEXT.match(issue.message), issue
        assert "Traceback" not in issue.message, issue


def config_error(directory: Path, text: bytes) -> ConfigError:
    path = directory / FILE_NAME
    path.write_bytes(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return raised.value


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config")


@pytest.fixture(scope="module", autouse=True)
def _example_env() -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in EXAMPLE_ENV}
    os.environ.update(EXAMPLE_ENV)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_the_unchanged_examples_are_valid(config_dir: Path) -> None:
    """The baseline the changed examples start from: otherwise the fuzzing would only ever meet errors."""
    for text in EXAMPLE_TEXTS:
        path = config_dir / FILE_NAME
        path.write_bytes(text)
        load_config(path)


@settings(max_examples=500)
@given(text=ANY_CONFIG_BYTES)
def test_any_bytes_give_a_config_or_errors_naming_file_line_and_key(config_dir: Path, text: bytes) -> None:
    path = config_dir / FILE_NAME
    path.write_bytes(text)
    try:
        load_config(path)
    except ConfigError as error:
        assert_named_problems(error, str(path), text)


@settings(max_examples=15)
@given(text=ANY_CONFIG_BYTES)
def test_check_config_exits_0_or_2_with_named_errors_and_no_traceback(config_dir: Path, text: bytes) -> None:
    """Through the real command (a process start costs most of a second, hence the small budget)."""
    (config_dir / FILE_NAME).write_bytes(text)
    done = subprocess.run(
        [str(EXPORTER), "check-config", f"--config.file={FILE_NAME}"],
        cwd=config_dir, capture_output=True, timeout=60, check=False,
    )
    stderr = done.stderr.decode("utf-8", errors="replace")
    assert "Traceback" not in stderr, stderr
    if done.returncode == 0:
        assert done.stdout.startswith(f"{FILE_NAME}: OK".encode()), done.stdout
        return
    assert done.returncode == 2, (done.returncode, stderr)
    lines = stderr.splitlines()
    assert lines, "exit 2 without saying why"
    assert all(re.match(rf"{re.escape(FILE_NAME)}:\d+: ", line) for line in lines), stderr


# --- what the fuzzing found, kept as plain examples ---------------------------------------------------


def test_a_byte_that_is_not_utf8_is_named_by_line_and_column(config_dir: Path) -> None:
    error = config_error(config_dir, b"global:\n  interval: 30s\ntargets: \x80\n")
    assert [str(issue).split(": ", 1)[1] for issue in error.issues] == [
        "not UTF-8 text: invalid start byte (byte 0x80 at column 10)"
    ]
    assert error.issues[0].line == 3


def test_a_bare_equals_sign_is_the_string_it_looks_like(config_dir: Path) -> None:
    """YAML 1.1 reads a plain '=' as its obsolete "value" type; the message was "unsupported YAML tag"."""
    error = config_error(config_dir, b"global:\n  interval: =\n")
    assert [issue.message for issue in error.issues] == ["expected a duration like 30s, got '='"]
    assert (error.issues[0].line, error.issues[0].path) == (2, "global.interval")


def test_an_empty_key_is_named_in_quotes(config_dir: Path) -> None:
    error = config_error(config_dir, b"global:\n  '': 1\n")
    assert [(issue.line, issue.path) for issue in error.issues] == [(2, "global.''")]
