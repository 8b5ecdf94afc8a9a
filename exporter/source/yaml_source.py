"""Read YAML while remembering the line of every key, so config errors can name file, line and key.

PyYAML's composer gives us nodes with marks; we build plain Python data from them ourselves and keep a
map from key path to line. Duplicate keys, which PyYAML silently overwrites, are errors here. Merge keys
(`<<: *defaults`) work as in PyYAML; a recursive alias or a tag beyond the safe loader's is an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]

_PATH_SEPARATORS = re.compile(r"[.\[\]'\"\s]")
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
    """Plain data parsed from YAML, plus the line of every key and list item.

    `issues` holds the problems found while building the data (duplicate keys, unset environment
    variables, ...) when the document was parsed with strict=False; the data is still usable then.
    """

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    issues: list[SourceIssue] = field(default_factory=list)

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
            # An empty key, or one holding a separator, in quotes: else '' vanishes and 'a.b' reads as two keys.
            name = repr(part) if not part or _PATH_SEPARATORS.search(part) else part
            text += f".{name}" if text else name
    return text


def load_yaml(
    path: Path, display_name: str | None = None, expand_env: bool = True, strict: bool = True
) -> YamlDocument:
    """Parse one YAML file; raise SourceError naming file and line on any syntax or reference problem.

    With strict=False only unreadable files and syntax errors raise; the other problems are left in
    `document.issues`, so a caller can report them together with its own validation errors.
    """
    name = display_name or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError([SourceIssue(name, None, "", f"cannot read file: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Name where the bad byte is: in a file of hundreds of lines, "not UTF-8" alone sends one searching.
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = f"not UTF-8 text: {exc.reason} (byte 0x{data[exc.start]:02x} at column {column})"
        raise SourceError([SourceIssue(name, line, "", message)]) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as read_text() had them
    return parse_yaml_text(text, name, expand_env=expand_env, strict=strict)


def parse_yaml_text(text: str, name: str, expand_env: bool = True, strict: bool = True) -> YamlDocument:
    """Parse YAML text (see load_yaml)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise SourceError([_syntax_issue(name, exc)]) from None
    except yaml.reader.ReaderError as exc:  # a control character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        problem = str(exc).splitlines()[0]
        raise SourceError([SourceIssue(name, line, "", f"YAML syntax error: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise SourceError([SourceIssue(name, None, "", f"YAML error: {exc}")]) from None
    document = YamlDocument(file=name, data=None)
    if node is not None:
        document.data = _Builder(document, expand_env).build(node, ())
    if strict and document.issues:
        raise SourceError(document.issues)
    return document


def _syntax_issue(name: str, exc: yaml.MarkedYAMLError) -> SourceIssue:
    """'YAML syntax error: <problem> (column C; while parsing X that starts at line L; ...)'."""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    problem = exc.problem or exc.context or "invalid YAML"
    details: list[str] = []
    if exc.problem_mark is not None:
        details.append(f"column {exc.problem_mark.column + 1}")
    if exc.problem and exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
        details.append(f"{exc.context} that starts at line {exc.context_mark.line + 1}")
    if "<block end>" in problem:
        details.append("check the indentation")
    suffix = f" ({'; '.join(details)})" if details else ""
    return SourceIssue(name, line, "", f"YAML syntax error: {problem}{suffix}")


_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_PLAIN_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


class _Builder:
    """Turns composed nodes into plain data, recording lines and collecting issues on the document."""

    def __init__(self, document: YamlDocument, expand_env: bool) -> None:
        self.document = document
        self.expand_env = expand_env
        self._open: set[int] = set()  # nodes being built: meeting one again is a recursive alias

    def issue(self, node: yaml.Node, path: PathKey, message: str, at_node: bool = False) -> None:
        """An issue at `path`, on the line of its key, else of the node (an alias has no line of its own)."""
        line = node.start_mark.line + 1
        if not at_node:
            line = self.document.lines.get(path, line)
        self.document.issues.append(SourceIssue(self.document.file, line, format_path(path), message))

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.document.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._open:
            self.issue(node, path, "recursive YAML alias (an anchor used inside itself)")
            return None
        if node.tag not in _PLAIN_COLLECTION_TAGS and not isinstance(node, yaml.ScalarNode):
            self.issue(node, path, f"unsupported YAML tag {_short_tag(node.tag)}")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            return self._scalar_value(node, path)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, merged)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            child = (*path, key)
            if key in result:
                self.issue(key_node, child, "duplicate key", at_node=True)
                continue
            self.document.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child)
        # Keys written in the mapping win over merged ones, as in PyYAML.
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def _merge(self, value_node: yaml.Node, path: PathKey, merged: dict[str, Any]) -> None:
        """`<<: *anchor` or `<<: [*a, *b]` (earlier mappings win), as the YAML merge key type says."""
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                message = "a merge key (<<) takes a mapping or a list of mappings"
                self.issue(source, path, message, at_node=True)
                continue
            own_lines = dict(self.document.lines)
            data = self.build(source, path)
            self.document.lines.update(own_lines)  # a key written here keeps its own line
            if isinstance(data, dict):
                for key, value in data.items():
                    merged.setdefault(key, value)

    def _key(self, key_node: yaml.Node, path: PathKey) -> str | None:
        key = None
        if isinstance(key_node, yaml.ScalarNode):
            key = self._scalar_value(key_node, path, expand=False)
        if key is None or not isinstance(key, str | int | float | bool):
            written = "null" if isinstance(key_node, yaml.ScalarNode) else "a collection"
            self.issue(key_node, path, f"mapping keys must be plain scalars, not {written}", at_node=True)
            return None
        return str(key)

    def _scalar_value(self, node: yaml.Node, path: PathKey, expand: bool = True) -> Any:
        """Resolve a scalar with the safe loader's rules (ints, floats, bools, null, strings)."""
        if node.tag == _VALUE_TAG:
            # A plain '=' resolves to YAML 1.1's obsolete "value" type, which no loader constructs: it is
            # what was written, the string '=', and validation says whether that fits the key.
            node = yaml.ScalarNode("tag:yaml.org,2002:str", node.value, node.start_mark, node.end_mark)
        loader = yaml.SafeLoader("")
        try:
            value = loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            self.issue(node, path, f"unsupported YAML tag {_short_tag(node.tag)}")
            return None
        except ValueError as exc:  # YAML reads 2025-02-30 as a timestamp, and that day does not exist
            self.issue(node, path, f"{node.value!r} is not a valid date: {exc}")
            return None
        finally:
            loader.dispose()
        if expand and self.expand_env and isinstance(value, str):
            try:
                return expand_environment(value)
            except KeyError as exc:
                self.issue(node, path, f"environment variable {exc.args[0]} is not set")
        return value


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
