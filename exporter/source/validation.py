"""Pydantic's validation errors as `file:line: key: message` issues in the words of the user's YAML files.

Generic over the model: each file format (the config, ERP packs, audit files) passes the model of its whole
document and a `Wording`, the names its patterns and discriminated unions go by in messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from exporter.source.base import NAME_PATTERN
from exporter.source.yaml_source import PathKey, SourceIssue, YamlDocument

NAME_PATTERN_WORDS = "a name of letters, digits, '_', '.' and '-' that starts with a letter or digit"


@dataclass(frozen=True)
class UnionTag:
    """A discriminated union's tag key in messages: what its values are called, and the values it takes."""

    noun: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Wording:
    """The words of one file format: its patterns' meanings and its unions' tag keys (in lookup order)."""

    patterns: Mapping[str, str] = field(default_factory=lambda: {NAME_PATTERN: NAME_PATTERN_WORDS})
    tags: Mapping[str, UnionTag] = field(default_factory=dict)


def issues_from_validation(
    exc: ValidationError, document: YamlDocument, root: type[BaseModel], wording: Wording
) -> list[SourceIssue]:
    """Pydantic errors as `file:line: key: message` issues; `root` is the model of the whole document."""
    issues: list[SourceIssue] = []
    seen: set[tuple[PathKey, str]] = set()
    for error in exc.errors(include_url=False):
        path = _data_path(error["loc"], document.data, tuple(wording.tags))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, _discriminator(error))  # the key to fix, and its line
        message = _message(error, path, document.data, root, wording)
        if (path, message) not in seen:
            seen.add((path, message))
            issues.append(document.issue(path, message))
    return issues


def _data_path(loc: tuple[str | int, ...], data: Any, tags: tuple[str, ...]) -> PathKey:
    """The path in the file: drop the union tags pydantic inserts (…, 'checks', 1, 'db_response', …) and
    the '[key]' it appends when a mapping key (rather than its value) is invalid."""
    path: list[str | int] = []
    node = data
    tagged: set[int] = set()  # items whose tag was dropped already: the same name again is their key
    for index, part in enumerate(loc):
        if part == "[key]" and not (isinstance(node, dict) and part in node):
            continue
        # A tag is not a key of the item, unless the type is named like one of its keys (type: dates has dates:,
        # kind: audits has audits:, kind: pack has pack:); a tag comes right after the list index of the item.
        if (
            isinstance(node, dict)
            and isinstance(part, str)
            and id(node) not in tagged
            and _tag_of(node, tags) == part
            and (
                part not in node
                or loc[index + 1 : index + 2] == (part,)
                or (index > 0 and isinstance(loc[index - 1], int))
            )
        ):
            tagged.add(id(node))
            continue
        path.append(part)
        node = _child_node(node, part)
    return tuple(path)


def _child_node(node: Any, part: str | int) -> Any:
    """The YAML value at key or index `part` of `node`, None when there is none."""
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and part < len(node):
        return node[part]
    return None


def _message(error: ErrorDetails, path: PathKey, data: Any, root: type[BaseModel], wording: Wording) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = _describe(error.get("input"), secret=any("password" in str(part) for part in path))
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1], data, root, wording)
        key = str(path[-1]) if path else ""
        hint = difflib.get_close_matches(key, allowed, n=1)
        if hint:
            return f"unknown key (did you mean '{hint[0]}'?)"
        return f"unknown key (allowed: {', '.join(sorted(allowed))})" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = wording.tags.get(_discriminator(error))
        choices = f"expected one of: {', '.join(tag.choices)}" if tag else "it selects no known model"
        if kind == "union_tag_not_found":
            return f"required key is missing; {choices}"
        noun = tag.noun if tag else f"value of '{_discriminator(error)}'"
        return f"unknown {noun} {_describe(ctx.get('tag'))}; {choices}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"expected {wording.patterns.get(pattern, f'text matching {pattern}')}, got {got}"
    expected = _EXPECTED.get(kind)
    if expected is not None:
        return f"{expected}, got {got}{_quote_hint(kind, error.get('input'))}"
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return f"must be {word} {ctx.get(key)}, got {got}"
    message = error["msg"]
    return (message[0].lower() + message[1:] if message else kind) + f", got {got}"


_EXPECTED = {
    "string_type": "expected a string",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping of keys",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "date_type": "expected a date like 2025-12-31",
    "date_parsing": "expected a date like 2025-12-31",
    "date_from_datetime_parsing": "expected a date like 2025-12-31",
    "date_from_datetime_inexact": "expected a date like 2025-12-31 without a time of day",
}
_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _tag_of(node: dict[str, Any], tags: tuple[str, ...]) -> Any:
    return next((node[key] for key in tags if key in node), None)


def _discriminator(error: ErrorDetails) -> str:
    """The key a union_tag_* error is about (pydantic quotes it: "'kind'")."""
    return str((error.get("ctx") or {}).get("discriminator", "'kind'")).strip("'")


def _describe(value: Any, secret: bool = False) -> str:
    """A value as the message shows it: YAML words for YAML things, and never a secret."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):  # YAML reads 2025-12-31 (and 2025-12-31 10:00) itself
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if secret:
        return "a number" if isinstance(value, int | float) else "a value that is not shown (it is secret)"
    return repr(value)


def _quote_hint(kind: str, value: Any) -> str:
    """YAML turns unquoted 12345, 1.0, yes and on into numbers and booleans: say how to keep the text."""
    if kind == "string_type" and isinstance(value, int | float):
        return " (put the value in quotes)"
    return ""


def _allowed_keys(parent: PathKey, data: Any, root: type[BaseModel], wording: Wording) -> list[str]:
    """The keys the model at `parent` accepts, for 'did you mean' hints."""
    model: Any = root
    node = data
    for part in parent:
        node = _child_node(node, part)
        model = _child_model(model, part, node, tuple(wording.tags))
        if model is None:
            return []
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _child_model(model: Any, part: str | int, node: Any, tags: tuple[str, ...]) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str):
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                return _resolve_union(info.annotation, node, tags)
        return None
    origin = get_origin(model)
    if origin in (list, dict):
        return _resolve_union(get_args(model)[-1], node, tags)
    return None


def _resolve_union(annotation: Any, node: Any, tags: tuple[str, ...]) -> Any:
    """Unwrap Optional/Annotated/discriminated unions down to the model the data selects."""
    while True:
        args = get_args(annotation)
        if get_origin(annotation) in (list, dict) or not args:
            return annotation
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            kind = _tag_of(node, tags) if isinstance(node, dict) else None
            for candidate in models:
                field_info = next((candidate.model_fields[k] for k in tags if k in candidate.model_fields), None)
                if field_info is None or kind in get_args(field_info.annotation):
                    return candidate
            return models[0]
        nested = [a for a in args if get_origin(a) is not None or get_args(a)]
        if not nested:
            return args[0]
        annotation = nested[0]
