"""Load and validate the config file, turning every problem into `file:line: key.path: message`."""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from exporter.audits import loader as audit_loader  # a cycle: it uses this module's error wording
from exporter.audits.model import SNAKE_NAME_PATTERN, ResolvedAudit
from exporter.config.base import NAME_PATTERN
from exporter.config.model import (
    LABEL_NAME_PATTERN,
    ClosingPeriodConfig,
    ExporterConfig,
    HttpTransactionConfig,
    TargetCheckConfig,
)
from exporter.config.semantics import semantic_issues
from exporter.config.yaml_source import PathKey, SourceError, SourceIssue, YamlDocument, load_yaml
from exporter.packs import loader as pack_loader  # a cycle: it uses this module's error wording


class ConfigError(SourceError):
    """The config file is invalid; `issues` name file, line and key of each problem, sorted by line."""


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus what was resolved from outside the file."""

    config: ExporterConfig
    source: str
    passwords: dict[str, str] = field(default_factory=dict, repr=False)  # target name -> password
    # (target name, audits entry name) -> the audits it runs, read from packs, files and the config
    audits: dict[tuple[str, str], tuple[ResolvedAudit, ...]] = field(default_factory=dict)
    # http transaction name -> password (from credentials.password or credentials.password_file)
    http_passwords: dict[str, str] = field(default_factory=dict, repr=False)
    base_dir: Path = Path()  # the config file's directory: relative file names are resolved from it

    def secrets(self) -> list[str]:
        """Every secret value, so the log masker can hide them wherever they appear."""
        return [p for p in [*self.passwords.values(), *self.http_passwords.values()] if p]


def load_config(path: Path) -> LoadedConfig:
    """Read, validate and resolve a config file; raise ConfigError with every problem found.

    A relative `password_file` is read from the config file's directory (as Prometheus does).
    """
    try:
        document = load_yaml(path, strict=False)
    except SourceError as exc:
        raise ConfigError(exc.issues) from None
    return validate_document(document, path.parent)


def validate_document(document: YamlDocument, base_dir: Path | None = None) -> LoadedConfig:
    """Validate parsed YAML against the model and the cross-object rules.

    Every problem is reported, sorted by line: those found while reading the YAML (`document.issues`),
    then the model's, then, when the model is valid, the rules that span several keys. Known secret values
    never appear in a message.
    """
    base = base_dir if base_dir is not None else Path()
    issues = list(document.issues)
    data = document.data if document.data is not None else {}
    if not isinstance(data, dict):
        issues.append(document.issue((), "the top level must be a mapping of keys (global, targets, ...)"))
        raise ConfigError(_finish(issues, []))
    secrets = _raw_secrets(data, base)
    try:
        config = ExporterConfig.model_validate(data)
    except ValidationError as exc:
        issues.extend(_unless_reported(_issues_from_validation(exc, document), document.issues))
        raise ConfigError(_finish(issues, secrets)) from None
    issues.extend(document.issue(path, message) for path, message in semantic_issues(config))
    passwords: dict[str, str] = {}
    for index, target in enumerate(config.targets):
        if target.password is not None:
            passwords[target.name] = target.password.get_secret_value()
        elif target.password_file is not None:
            secret_path = base / target.password_file
            try:
                passwords[target.name] = _read_secret_file(secret_path)
            except OSError as exc:
                message = f"cannot read {secret_path}: {exc.strerror or exc}"
                issues.append(document.issue(("targets", index, "password_file"), message))
    http_passwords, http_issues = _http_transaction_files(config, document, base)
    issues.extend(http_issues)
    issues.extend(_secrets_in_labels(config, document, [*secrets, *passwords.values(), *http_passwords.values()]))
    audits, audit_issues = audit_loader.resolve_config_audits(config, document, base)
    issues.extend(audit_issues)
    issues.extend(pack_loader.resolve_config_packs(config, document, base))
    if issues:
        raise ConfigError(_finish(issues, [*secrets, *passwords.values(), *http_passwords.values()]))
    return LoadedConfig(
        config=config,
        source=document.file,
        passwords=passwords,
        audits=audits,
        http_passwords=http_passwords,
        base_dir=base,
    )


def _http_transaction_files(
    config: ExporterConfig, document: YamlDocument, base: Path
) -> tuple[dict[str, str], list[SourceIssue]]:
    """The http transactions' passwords, and an issue for every password or TLS file that cannot be read."""
    passwords: dict[str, str] = {}
    issues: list[SourceIssue] = []
    for index, transaction in enumerate(config.http_transactions):
        path: PathKey = ("http_transactions", index)
        credentials = transaction.credentials
        if credentials is not None and credentials.password is not None:
            passwords[transaction.name] = credentials.password.get_secret_value()
        elif credentials is not None and credentials.password_file is not None:
            secret_path = base / credentials.password_file
            try:
                passwords[transaction.name] = _read_secret_file(secret_path)
            except OSError as exc:
                message = f"cannot read {secret_path}: {exc.strerror or exc}"
                issues.append(document.issue((*path, "credentials", "password_file"), message))
        tls = transaction.tls
        for key, name in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)):
            if name is not None and not (base / name).is_file():
                issues.append(document.issue((*path, "tls", key), f"no such file: {base / name}"))
    return passwords, issues


def _read_secret_file(path: Path) -> str:
    # A trailing newline is what every editor and `echo` add; it is never part of the secret.
    return path.read_text(encoding="utf-8").rstrip("\r\n")


def _raw_secrets(data: dict[str, Any], base: Path) -> list[str]:
    """The passwords the file holds or points to, read before validation so no message can show them."""
    found: list[str] = []
    targets = data.get("targets")
    for target in targets if isinstance(targets, list) else []:
        if not isinstance(target, dict):
            continue
        if isinstance(target.get("password"), str):
            found.append(target["password"])
        if isinstance(target.get("password_file"), str):
            with contextlib.suppress(OSError, ValueError):
                found.append(_read_secret_file(base / target["password_file"]))
    transactions = data.get("http_transactions")
    for transaction in transactions if isinstance(transactions, list) else []:
        credentials = transaction.get("credentials") if isinstance(transaction, dict) else None
        if not isinstance(credentials, dict):
            continue
        if isinstance(credentials.get("password"), str):
            found.append(credentials["password"])
        if isinstance(credentials.get("password_file"), str):
            with contextlib.suppress(OSError, ValueError):
                found.append(_read_secret_file(base / credentials["password_file"]))
    return [secret for secret in found if secret]


def _secrets_in_labels(
    config: ExporterConfig, document: YamlDocument, secrets: list[str]
) -> list[SourceIssue]:
    """Labels are shown on every series: a password (e.g. a ${VAR} put in the wrong place) must not be."""
    labelled: list[tuple[str, int, dict[str, str]]] = [
        *(("targets", index, target.labels) for index, target in enumerate(config.targets)),
        *(("http_transactions", index, t.labels) for index, t in enumerate(config.http_transactions)),
    ]
    return [
        document.issue((section, index, "labels", name), "must not contain a password")
        for section, index, labels in labelled
        for name, value in labels.items()
        if any(secret in value for secret in secrets if secret)
    ]


def _unless_reported(issues: list[SourceIssue], reported: list[SourceIssue]) -> list[SourceIssue]:
    """Drop validation issues at or under a key whose YAML already had a problem (e.g. an unset variable)."""
    paths = {issue.path for issue in reported}
    return [
        issue for issue in issues
        if not any(issue.path == p or issue.path.startswith((f"{p}.", f"{p}[")) for p in paths if p)
    ]


def _finish(issues: list[SourceIssue], secrets: list[str]) -> list[SourceIssue]:
    """Sort by line (then key path) and hide every secret value, longest first."""
    ordered = sorted(set(secrets), key=len, reverse=True)

    def masked(issue: SourceIssue) -> SourceIssue:
        message = issue.message
        for secret in ordered:
            message = message.replace(secret, "<secret>")
        return replace(issue, message=message)

    return sorted((masked(issue) for issue in issues), key=lambda issue: (issue.line or 0, issue.path))


# ---------------------------------------------------------------------------------------------------
# Translating pydantic's errors into messages that speak the config file's language

# What a pattern means, in the words of the message (a raw regular expression helps nobody).
_PATTERN_NAMES = {
    NAME_PATTERN: "a name of letters, digits, '_', '.' and '-' that starts with a letter or digit",
    LABEL_NAME_PATTERN: "a label name of letters, digits and '_' that does not start with a digit",
    SNAKE_NAME_PATTERN: "a lower-case name of letters, digits and '_' that starts with a letter",
}
_CHECK_KINDS: tuple[str, ...] = tuple(
    str(get_args(model.model_fields["kind"].annotation)[0])
    for model in get_args(get_args(TargetCheckConfig)[0])
)
_PROTOCOLS: tuple[str, ...] = tuple(
    str(get_args(model.model_fields["protocol"].annotation)[0])
    for model in get_args(get_args(HttpTransactionConfig)[0])
)
_PERIOD_TYPES: tuple[str, ...] = tuple(
    str(get_args(model.model_fields["type"].annotation)[0])
    for model in get_args(get_args(ClosingPeriodConfig)[0])
)


def _issues_from_validation(
    exc: ValidationError, document: YamlDocument, root: type[BaseModel] = ExporterConfig
) -> list[SourceIssue]:
    """Pydantic errors as `file:line: key: message` issues; `root` is the model of the whole document."""
    issues: list[SourceIssue] = []
    seen: set[tuple[PathKey, str]] = set()
    for error in exc.errors(include_url=False):
        path = _data_path(error["loc"], document.data)
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = (*path, _discriminator(error))  # the key to fix, and its line
        message = _message(error, path, document.data, root)
        if (path, message) not in seen:
            seen.add((path, message))
            issues.append(document.issue(path, message))
    return issues


def _data_path(loc: tuple[str | int, ...], data: Any) -> PathKey:
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
            and _tag_of(node) == part
            and (
                part not in node
                or loc[index + 1 : index + 2] == (part,)
                or (index > 0 and isinstance(loc[index - 1], int))
            )
        ):
            tagged.add(id(node))
            continue
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(path)


def _message(error: ErrorDetails, path: PathKey, data: Any, root: type[BaseModel] = ExporterConfig) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = _describe(error.get("input"), secret=any("password" in str(part) for part in path))
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1], data, root)
        key = str(path[-1]) if path else ""
        hint = difflib.get_close_matches(key, allowed, n=1)
        if hint:
            return f"unknown key (did you mean '{hint[0]}'?)"
        return f"unknown key (allowed: {', '.join(sorted(allowed))})" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid" and _discriminator(error) == "type":
        return f"unknown closing period type {_describe(ctx.get('tag'))}; expected one of: {', '.join(_PERIOD_TYPES)}"
    if kind == "union_tag_not_found" and _discriminator(error) == "type":
        return f"required key is missing; expected one of: {', '.join(_PERIOD_TYPES)}"
    if kind == "union_tag_invalid" and _discriminator(error) == "protocol":
        return f"unknown protocol {_describe(ctx.get('tag'))}; expected one of: {', '.join(_PROTOCOLS)}"
    if kind == "union_tag_not_found" and _discriminator(error) == "protocol":
        return f"required key is missing; expected one of: {', '.join(_PROTOCOLS)}"
    if kind == "union_tag_invalid":
        return f"unknown check kind {_describe(ctx.get('tag'))}; expected one of: {', '.join(_CHECK_KINDS)}"
    if kind == "union_tag_not_found":
        return f"required key is missing; expected one of: {', '.join(_CHECK_KINDS)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        return f"expected {_PATTERN_NAMES.get(pattern, f'text matching {pattern}')}, got {got}"
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


# The keys discriminated unions select their model by: `kind` (checks), `type` (closing periods), `protocol`
# (http transactions).
_TAGS = ("kind", "type", "protocol")


def _tag_of(node: dict[str, Any]) -> Any:
    return next((node[key] for key in _TAGS if key in node), None)


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


def _allowed_keys(parent: PathKey, data: Any, root: type[BaseModel] = ExporterConfig) -> list[str]:
    """The keys the model at `parent` accepts, for 'did you mean' hints."""
    model: Any = root
    node = data
    for part in parent:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
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
            kind = _tag_of(node) if isinstance(node, dict) else None
            for candidate in models:
                field_info = next((candidate.model_fields[k] for k in _TAGS if k in candidate.model_fields), None)
                if field_info is None or kind in get_args(field_info.annotation):
                    return candidate
            return models[0]
        nested = [a for a in args if get_origin(a) is not None or get_args(a)]
        if not nested:
            return args[0]
        annotation = nested[0]
