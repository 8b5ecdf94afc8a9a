"""Read YAML while remembering the line of every key, so config errors can name file, line and key.

PyYAML's composer gives us nodes with marks; we build plain Python data from them ourselves and keep a
map from key path to line. Duplicate keys, which PyYAML silently overwrites, are errors here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class SourceIssue:
    """One problem found while reading a file, before or during validation."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SourceError(Exception):
    """One or more problems in a YAML source; str() lists them one per line."""

    def __init__(self, issues: list[SourceIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


@dataclass
class YamlDocument:
    """Plain data parsed from YAML, plus the line of every key and list item."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """The line of the deepest existing prefix of `path` (a missing key reports its parent's line)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def issue(self, path: PathKey, message: str) -> SourceIssue:
        return SourceIssue(self.file, self.line_of(path), format_path(path), message)


def format_path(path: PathKey) -> str:
    """('targets', 0, 'checks', 1, 'interval') -> 'targets[0].checks[1].interval'."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def load_yaml(path: Path, display_name: str | None = None, expand_env: bool = True) -> YamlDocument:
    """Parse one YAML file; raise SourceError naming file and line on any syntax or reference problem."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceError([SourceIssue(name, None, "", f"cannot read file: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        raise SourceError([SourceIssue(name, None, "", f"not UTF-8 text: {exc.reason}")]) from None
    return parse_yaml_text(text, name, expand_env=expand_env)


def parse_yaml_text(text: str, name: str, expand_env: bool = True) -> YamlDocument:
    """Parse YAML text (see load_yaml)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SourceError([SourceIssue(name, line, "", f"YAML syntax error: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise SourceError([SourceIssue(name, None, "", f"YAML error: {exc}")]) from None
    document = YamlDocument(file=name, data=None)
    issues: list[SourceIssue] = []
    if node is not None:
        document.data = _build(node, (), document, issues, expand_env)
    if issues:
        raise SourceError(issues)
    return document


def _build(
    node: yaml.Node, path: PathKey, document: YamlDocument, issues: list[SourceIssue], expand_env: bool
) -> Any:
    document.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str | int | float | bool) or key is None:
                issues.append(document.issue(path, "mapping keys must be plain scalars"))
                continue
            key = str(key)
            child = (*path, key)
            if key in result:
                issues.append(
                    SourceIssue(document.file, key_node.start_mark.line + 1, format_path(child), "duplicate key")
                )
                continue
            document.lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, document, issues, expand_env)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, index), document, issues, expand_env) for index, item in enumerate(node.value)
        ]
    value = _scalar(node)
    if expand_env and isinstance(value, str):
        try:
            return expand_environment(value)
        except KeyError as exc:
            issues.append(document.issue(path, f"environment variable {exc.args[0]} is not set"))
    return value


def _scalar(node: yaml.Node) -> Any:
    """Resolve a scalar with the safe loader's rules (ints, floats, bools, null, strings)."""
    if not isinstance(node, yaml.ScalarNode):
        return node
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def expand_environment(text: str) -> str:
    """Replace ${NAME} by the environment variable NAME.

    Only the braced form is expanded, so SQL with PostgreSQL dollar quoting ($$...$$) passes untouched.
    Raises KeyError(NAME) for an unset variable, so a typo never silently becomes an empty password.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(name)
        return os.environ[name]

    if "${" not in text:
        return text
    return _ENV_REFERENCE.sub(replace, text)
