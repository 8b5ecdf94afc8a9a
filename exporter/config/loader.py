"""Load and validate the config file, turning every problem into `file:line: key.path: message`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from exporter.config.model import ExporterConfig
from exporter.config.semantics import semantic_issues
from exporter.config.yaml_source import PathKey, SourceError, SourceIssue, YamlDocument, load_yaml


class ConfigError(SourceError):
    """The config file is invalid; `issues` name file, line and key of each problem."""


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus what was resolved from outside the file."""

    config: ExporterConfig
    source: str
    passwords: dict[str, str] = field(default_factory=dict)  # target name -> password

    def secrets(self) -> list[str]:
        """Every secret value, so the log masker can hide them wherever they appear."""
        return [p for p in self.passwords.values() if p]


def load_config(path: Path) -> LoadedConfig:
    """Read, validate and resolve a config file; raise ConfigError with every problem found."""
    try:
        document = load_yaml(path)
    except SourceError as exc:
        raise ConfigError(exc.issues) from None
    return validate_document(document)


def validate_document(document: YamlDocument) -> LoadedConfig:
    """Validate parsed YAML against the model and the cross-object rules."""
    data = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError([document.issue((), "the top level must be a mapping of keys")])
    try:
        config = ExporterConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_issues_from_validation(exc, document)) from None
    issues = [document.issue(path, message) for path, message in semantic_issues(config)]
    passwords: dict[str, str] = {}
    for index, target in enumerate(config.targets):
        if target.password is not None:
            passwords[target.name] = target.password.get_secret_value()
        elif target.password_file is not None:
            try:
                passwords[target.name] = _read_secret_file(Path(target.password_file))
            except OSError as exc:
                issues.append(
                    document.issue(("targets", index, "password_file"), f"cannot read: {exc.strerror}")
                )
    if issues:
        raise ConfigError(issues)
    return LoadedConfig(config=config, source=document.file, passwords=passwords)


def _read_secret_file(path: Path) -> str:
    # A trailing newline is what every editor and `echo` add; it is never part of the secret.
    return path.read_text(encoding="utf-8").rstrip("\r\n")


# ---------------------------------------------------------------------------------------------------
# Translating pydantic's errors into messages that speak the config file's language


def _issues_from_validation(exc: ValidationError, document: YamlDocument) -> list[SourceIssue]:
    issues: list[SourceIssue] = []
    seen: set[tuple[PathKey, str]] = set()
    for error in exc.errors(include_url=False):
        path = _data_path(error["loc"], document.data)
        message = _message(error, path, document.data)
        if (path, message) not in seen:
            seen.add((path, message))
            issues.append(document.issue(path, message))
    issues.sort(key=lambda issue: (issue.line or 0, issue.path))
    return issues


def _data_path(loc: tuple[str | int, ...], data: Any) -> PathKey:
    """Drop the union-tag components pydantic inserts (…, 'checks', 1, 'db_response', 'interval')."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and node.get("kind") == part:
            continue
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def _message(error: ErrorDetails, path: PathKey, data: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1], data)
        key = str(path[-1]) if path else ""
        hint = difflib.get_close_matches(key, allowed, n=1)
        if hint:
            return f"unknown key (did you mean '{hint[0]}'?)"
        return f"unknown key (allowed: {', '.join(sorted(allowed))})" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r}; expected one of: {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "'kind' is required"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        return f"{error['input']!r} does not match {ctx.get('pattern')}"
    message = error["msg"]
    message = message[0].lower() + message[1:] if message else kind
    if "input" in error and not isinstance(error["input"], dict | list) and "password" not in str(path):
        message += f", got {error['input']!r}"
    return message


def _allowed_keys(parent: PathKey, data: Any) -> list[str]:
    """The keys the model at `parent` accepts, for 'did you mean' hints."""
    model: Any = ExporterConfig
    node = data
    for part in parent:
        node = node.get(part) if isinstance(node, dict) else node[part] if isinstance(node, list) else None
        model = _child_model(model, part, node)
        if model is None:
            return []
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _child_model(model: Any, part: str | int, node: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str):
        for name, info in model.model_fields.items():
            if part in (name, info.alias):
                return _resolve_union(info.annotation, node)
        return None
    origin = get_origin(model)
    if origin in (list, dict):
        return _resolve_union(get_args(model)[-1], node)
    return None


def _resolve_union(annotation: Any, node: Any) -> Any:
    """Unwrap Optional/Annotated/discriminated unions down to the model the data selects."""
    while True:
        args = get_args(annotation)
        if get_origin(annotation) in (list, dict) or not args:
            return annotation
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if models:
            kind = node.get("kind") if isinstance(node, dict) else None
            for candidate in models:
                field_info = candidate.model_fields.get("kind")
                if field_info is None or kind in get_args(field_info.annotation):
                    return candidate
            return models[0]
        nested = [a for a in args if get_origin(a) is not None or get_args(a)]
        if not nested:
            return args[0]
        annotation = nested[0]
