"""Load and validate the config file, turning every problem into `file:line: key.path: message`."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from exporter.audits.model import ResolvedAudit
from exporter.config.audit_entries import resolve_config_audits
from exporter.config.model import (
    ExporterConfig,
)
from exporter.config.pack_entries import resolve_config_packs
from exporter.config.semantics import semantic_issues
from exporter.config.validation import issues_from_validation
from exporter.source.yaml_source import PathKey, SourceError, SourceIssue, YamlDocument, load_yaml


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

    def path(self, name: str) -> str:
        """A file name from the config: absolute as it is, relative from the config file's directory."""
        return os.path.abspath(name if os.path.isabs(name) else os.path.join(self.base_dir, name))

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
        issues.extend(_unless_reported(issues_from_validation(exc, document), document.issues))
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
    audits, audit_issues = resolve_config_audits(config, document, base)
    issues.extend(audit_issues)
    issues.extend(resolve_config_packs(config, document, base))
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
    holders: list[Any] = []
    targets = data.get("targets")
    holders.extend(targets if isinstance(targets, list) else [])
    transactions = data.get("http_transactions")
    for transaction in transactions if isinstance(transactions, list) else []:
        holders.append(transaction.get("credentials") if isinstance(transaction, dict) else None)
    found: list[str] = []
    for holder in holders:
        if not isinstance(holder, dict):
            continue
        if isinstance(holder.get("password"), str):
            found.append(holder["password"])
        if isinstance(holder.get("password_file"), str):
            with contextlib.suppress(OSError, ValueError):
                found.append(_read_secret_file(base / holder["password_file"]))
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
