"""The audit model: one data-governance audit, as written in YAML by a data owner or shipped in a pack.

An audit is a read-only SQL query that returns one row per offending record. Its first column, named
`key`, identifies the record for the humans who fix it ('SO-0012 (Acme)'). The exporter publishes the
number of rows as erp_audit_violations together with the audit's thresholds, labelled with its category,
owner, support line and severity, so one generic alert rule covers every audit. Up to 20 keys are kept as
samples for the status page and `erp-exporter audit NAME`; they never become labels.

Parameters are numbers: `:name` in the SQL is replaced by params.name in parentheses, the same way as in
the ERP packs (`exporter.sqlparams`). The description is prose for humans: there `{name}` is replaced by
the plain number ('{days} days' reads '30 days').

Names use `exporter.source.base.NAME_PATTERN`, the config's own, so config errors describe them in the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator, ValidationInfo, field_validator

from exporter.db.dialect import Dialect
from exporter.source.base import NAME_PATTERN, StrictModel
from exporter.source.durations import PositiveDuration
from exporter.sqlparams import finite_number, number_text, placeholders

SNAKE_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"  # categories and parameter names
SNAKE_NAME_WORDS = "a lower-case name of letters, digits and '_' that starts with a letter"

DEFAULT_INTERVAL = 900.0  # 15 minutes: audits are business data, not probes
DEFAULT_TIMEOUT = 60.0
SAMPLE_LIMIT = 20  # keys of offending records kept per audit
ANY_DIALECT = "*"  # ResolvedAudit.sql key of a query written once for every dialect

#: dialects an audit's `sql` mapping may name (the values of exporter.db.dialect.Dialect)
SQL_DIALECTS: tuple[str, ...] = tuple(d.value for d in Dialect if d is not Dialect.UNKNOWN)

# `{name}` in a description (prose); the SQL uses `:name` (exporter.sqlparams.PLACEHOLDER)
_DESCRIPTION_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def _param_value(value: Any) -> int | float:
    """A parameter is a finite number (never text) of 0 or more: audits count days, hours and amounts."""
    number = finite_number(value, "a number of 0 or more")
    if number < 0:
        raise ValueError(f"expected a number of 0 or more, got {number!r}")
    return number


ParamValue = Annotated[int | float, PlainValidator(_param_value, json_schema_input_type=int | float)]
ParamName = Annotated[str, Field(pattern=SNAKE_NAME_PATTERN)]


def _sql_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected the SQL text")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


SqlText = Annotated[str, PlainValidator(_sql_text, json_schema_input_type=str)]


def _sql(value: Any) -> str | dict[str, str]:
    """One query for every dialect, or a mapping dialect -> query."""
    if isinstance(value, str):
        return _sql_text(value)
    if isinstance(value, dict):
        if not value:
            raise ValueError(f"expected a query, or a mapping of dialect to query ({', '.join(SQL_DIALECTS)})")
        unknown = [key for key in value if key not in SQL_DIALECTS]
        if unknown:
            raise ValueError(f"unknown dialect '{unknown[0]}'; expected one of: {', '.join(SQL_DIALECTS)}")
        for key, text in value.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"the {key} query must be non-empty SQL text")
        return {str(key): str(text) for key, text in value.items()}
    raise ValueError(f"expected a query, or a mapping of dialect to query ({', '.join(SQL_DIALECTS)})")


AuditSql = Annotated[
    str | dict[str, str], PlainValidator(_sql, json_schema_input_type=str | dict[str, str])
]


class AuditConfig(StrictModel):
    """One audit: SQL returning one row per offending record, first column `key`."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="Unique name; the `audit` label and the check name `audit:<name>`."
    )
    description: Annotated[str, Field(min_length=1)] = Field(
        description="What the audit finds and what the owner should do about it."
    )
    sql: AuditSql = Field(
        description="A read-only query returning one row per offending record; its first column is `key`, "
        "text that identifies the record for humans. One query, or a mapping dialect -> query "
        f"({', '.join(SQL_DIALECTS)}). `:name` is replaced by the number params.name, in parentheses."
    )
    category: Annotated[str, Field(pattern=SNAKE_NAME_PATTERN)] = Field(
        description="Kind of finding: data_quality, compliance, security, performance, ... (the `category` "
        "label; lower case letters, digits and '_')."
    )
    owner: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="The department that owns the data and fixes it (the `owner` label), e.g. sales."
    )
    support_line: Literal[1, 2, 3] = Field(
        description="Support line that handles a finding: 1 service desk and key users (data quality), "
        "2 IT and ERP admins, 3 the ERP vendor or partner."
    )
    severity: Literal["info", "warning", "critical"] = Field(
        description="How bad a finding of this audit is (the `severity` label)."
    )
    warning: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        description="Violations above this are a warning (erp_audit_warning_threshold)."
    )
    critical: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        description="Violations above this are critical (erp_audit_critical_threshold); at least `warning`."
    )
    params: dict[ParamName, ParamValue] = Field(
        default_factory=dict,
        description="Numbers substituted for `:name` in the SQL and `{name}` in the description (e.g. days: 30); "
        "overridable per target.",
    )
    interval: PositiveDuration | None = Field(
        default=None, description="How often the audit runs (default: the audits entry's interval, else 15m)."
    )
    timeout: PositiveDuration | None = Field(
        default=None, description="A run that takes longer is cancelled (default: the entry's, else 60s)."
    )

    @field_validator("critical")
    @classmethod
    def _critical_not_below_warning(cls, value: float, info: ValidationInfo) -> float:
        warning = info.data.get("warning")
        if warning is not None and value < warning:
            raise ValueError(f"must be at least the warning threshold ({warning:g}), got {value:g}")
        return value

    def placeholders(self) -> list[str]:
        """The `:name` placeholders its SQL uses, in order of first use, without duplicates."""
        texts = [self.sql] if isinstance(self.sql, str) else list(self.sql.values())
        return list(dict.fromkeys(name for text in texts for name in placeholders(text)))


class AuditFile(StrictModel):
    """An audit file (a user's, or a shipped pack, exporter/packs/<erp>/audits.yml)."""

    audits: list[AuditConfig] = Field(description="The audits of this file.")


class AuditOverride(StrictModel):
    """Per-target changes to one audit of a pack or file (what a site tunes without copying the SQL)."""

    owner: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    support_line: Literal[1, 2, 3] | None = None
    severity: Literal["info", "warning", "critical"] | None = None
    warning: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    critical: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None


def render_description(text: str, params: Mapping[str, int | float]) -> str:
    """Replace each `{name}` of a description by the plain number params[name] ('{days} days' -> '30 days');
    braces around anything else stay as they are (it is prose, not SQL)."""

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        return number_text(params[name]) if name in params else match.group(0)

    return _DESCRIPTION_PLACEHOLDER.sub(number, text)


@dataclass(frozen=True)
class ResolvedAudit:
    """An audit as one target runs it: overrides applied, defaults filled in, parameters in the SQL."""

    name: str
    description: str
    category: str
    owner: str
    support_line: int
    severity: str
    warning: float
    critical: float
    interval: float
    timeout: float
    sql: Mapping[str, str]  # dialect value, or ANY_DIALECT -> SQL ready to run
    params: Mapping[str, int | float] = field(default_factory=dict)
    source: str = ""  # where it was defined: a pack or audit file, or the config file

    @property
    def check_name(self) -> str:
        return f"audit:{self.name}"

    def sql_for(self, dialect: Dialect | str) -> str | None:
        """The SQL for a dialect: its own query, else the query written for every dialect, else None."""
        return self.sql.get(str(dialect), self.sql.get(ANY_DIALECT))

    def dialects(self) -> list[str]:
        return sorted(self.sql)

    def labels(self) -> dict[str, str]:
        """The labels of its series (besides target and the target's static labels)."""
        return {
            "audit": self.name,
            "category": self.category,
            "owner": self.owner,
            "support_line": str(self.support_line),
            "severity": self.severity,
        }
