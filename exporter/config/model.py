"""The configuration model: types, defaults and per-field validation.

Every model forbids unknown keys. Check kinds form a discriminated union on `kind`, so each kind carries
only its own settings. Cross-object rules (unique names, timeouts within intervals) live in
`exporter.config.semantics`, which can point at the exact key that is wrong.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, SecretStr, field_validator

from exporter.checks.host import DEFAULT_EXCLUDED_FSTYPES, DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX
from exporter.config.durations import Duration, PositiveDuration

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
LABEL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Label names the exporter's own metrics use; a static target label with one of these names would
# collide with them and corrupt series.
RESERVED_LABEL_NAMES = frozenset(
    {"target", "check", "reason", "kind", "job", "instance", "le", "quantile", "group", "mode", "device",
     "mountpoint", "fstype", "state", "dialect", "version", "name", "transaction", "step", "source",
     "owner", "category", "severity", "support_line", "audit", "period", "table", "pack", "query"}
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _compile_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


# ---------------------------------------------------------------------------------------------------
# Checks


class CheckSettings(StrictModel):
    """Settings every check has. Unset values come from the kind's default or from `global`."""

    default_interval: ClassVar[float | None] = None  # None: use global.interval

    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None, description="Unique per target; defaults to the kind."
    )
    interval: PositiveDuration | None = Field(default=None, description="How often the check runs.")
    timeout: PositiveDuration | None = Field(
        default=None, description="A run that takes longer is cancelled."
    )
    series_limit: Annotated[int, Field(ge=1, le=1_000_000)] | None = Field(
        default=None, description="Series above this are dropped and counted, protecting Prometheus."
    )

    @property
    def kind_name(self) -> str:
        return str(getattr(self, "kind"))  # noqa: B009 - every concrete subclass defines `kind`

    @property
    def effective_name(self) -> str:
        return self.name or self.kind_name


class DbResponseCheckConfig(CheckSettings):
    """Connect time, probe-query round trip and erp_up for a target."""

    kind: Literal["db_response"]
    default_interval: ClassVar[float | None] = 15.0
    probe_query: str | None = Field(
        default=None, description="Read-only query to time; defaults to the dialect's 'SELECT 1'."
    )
    fresh_connection: bool = Field(
        default=True,
        description="Open a new connection for every probe, so connect time and refused logins are seen.",
    )


class PrivilegesCheckConfig(CheckSettings):
    """Reports whether the monitoring login could write (superuser or write privileges it can see)."""

    kind: Literal["privileges"]
    default_interval: ClassVar[float | None] = 600.0


TargetCheckConfig = Annotated[DbResponseCheckConfig | PrivilegesCheckConfig, Field(discriminator="kind")]

DEFAULT_TARGET_CHECKS: tuple[str, ...] = ("db_response", "privileges")
"""Kinds every target gets even when its `checks` list does not name them."""


# ---------------------------------------------------------------------------------------------------
# Targets


def _odbc_value(value: Any) -> str | int:
    # YAML reads yes/no/on/off/true/false as booleans and 1.0 as a float; passing them on as 1 or 1.0
    # would silently change what the driver gets (Encrypt=yes is not Encrypt=1), so they must be quoted.
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    expected = "expected a string or a whole number"
    if isinstance(value, bool):
        raise ValueError(
            f"{expected}, got {str(value).lower()} (YAML reads yes/no/on/off/true/false as booleans: "
            "put the value in quotes, e.g. 'yes')"
        )
    if value is None:
        raise ValueError(f"{expected}, got an empty value")
    if isinstance(value, dict | list):
        raise ValueError(f"{expected}, got a {'mapping' if isinstance(value, dict) else 'list'}")
    raise ValueError(f"{expected}, got {value!r} (put the value in quotes)")


OdbcValue = Annotated[str | int, PlainValidator(_odbc_value, json_schema_input_type=str | int)]

# Connection keywords that have their own target keys: credentials there would escape masking and the
# password_file/${ENV} rules, and a second DRIVER or DSN would fight the target's own.
_KEYS_WITH_THEIR_OWN_PLACE = {
    "pwd": "put the password in the target's password (from ${ENV_VAR}) or password_file",
    "password": "put the password in the target's password (from ${ENV_VAR}) or password_file",
    "uid": "use the target's username key",
    "user": "use the target's username key",
    "username": "use the target's username key",
    "driver": "use the target's driver key",
    "dsn": "use the target's dsn key",
}


def _connection_key(key: str) -> str:
    advice = _KEYS_WITH_THEIR_OWN_PLACE.get(key.strip().lower())
    if advice is not None:
        raise ValueError(f"not allowed in connection: {advice}")
    return key


ConnectionKey = Annotated[str, AfterValidator(_connection_key)]


class BackoffConfig(StrictModel):
    initial: PositiveDuration = Field(default=1.0, description="Wait after the first failed connect.")
    max: PositiveDuration = Field(default=60.0, description="Longest wait between connect attempts.")


class TargetConfig(StrictModel):
    """One database of the ERP landscape, reached through ODBC."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `target` label value.")]
    driver: str | None = Field(
        default=None, description="ODBC driver name from odbcinst.ini (e.g. 'PostgreSQL Unicode') or a path."
    )
    dsn: str | None = Field(default=None, description="A DSN from odbc.ini, instead of `driver`.")
    connection: dict[ConnectionKey, OdbcValue] = Field(
        default_factory=dict,
        description="Further ODBC keywords passed as they are (server, port, database, ...).",
    )
    username: str | None = Field(default=None, description="Login name (ODBC UID).")
    password: SecretStr | None = Field(default=None, description="Login password; use ${ENV_VAR}.")
    password_file: str | None = Field(
        default=None,
        description="File holding the password (relative to the config file; a trailing newline is ignored).",
    )
    labels: dict[Annotated[str, Field(pattern=LABEL_NAME_PATTERN)], str] = Field(
        default_factory=dict,
        description="Static labels added to every series of this target.",
        json_schema_extra={"additionalProperties": False},  # names that do not match the pattern are errors
    )
    max_connections: Annotated[int, Field(ge=1, le=32)] = Field(
        default=2, description="Most connections the exporter opens to this target at once."
    )
    connect_timeout: PositiveDuration = Field(default=5.0, description="Login timeout.")
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    checks: list[TargetCheckConfig] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# Host and processes

class HostConfig(StrictModel):
    """Resources of the machine the exporter runs on (psutil: works on Linux and Windows)."""

    enabled: bool = True
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    exclude_fstypes: list[str] = Field(
        default_factory=lambda: sorted(DEFAULT_EXCLUDED_FSTYPES),
        description="Filesystem types to leave out (pseudo and read-only image filesystems by default).",
    )
    exclude_mountpoints: str = Field(
        default=DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX,
        description="Regular expression of mount points to leave out.",
    )
    include_devices: str | None = Field(
        default=None, description="Regular expression of disk and network devices to keep (default: all)."
    )

    @field_validator("exclude_mountpoints", "include_devices")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return _compile_regex(value)


class ProcessGroupConfig(StrictModel):
    """A group of processes (an ERP application server, its workers) matched by name and/or cmdline."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `group` label value.")]
    process_name: str | None = Field(default=None, description="Regular expression on the process name.")
    cmdline: str | None = Field(default=None, description="Regular expression on the joined command line.")
    interval: PositiveDuration | None = None
    timeout: PositiveDuration | None = None

    @field_validator("process_name", "cmdline")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return _compile_regex(value)


# ---------------------------------------------------------------------------------------------------
# Global settings and the root


class GlobalConfig(StrictModel):
    interval: PositiveDuration = Field(
        default=30.0, description="Default interval of checks without their own."
    )
    timeout: PositiveDuration = Field(
        default=10.0, description="Default timeout of checks without their own."
    )
    series_limit: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=2000, description="Default most series one check may produce."
    )
    workers: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4, description="Worker threads that run checks (bounds the load the exporter can make)."
    )
    abandoned_workers_limit: Annotated[int, Field(ge=0, le=64)] = Field(
        default=4,
        description="Workers stuck on a hung server that may be given up and replaced; beyond this the "
        "pool shrinks instead of growing.",
    )
    cancel_grace: Duration = Field(
        default=2.0, description="After a timeout, how long a cancelled query may take to return."
    )
    jitter: Annotated[float, Field(ge=0.0, le=0.5)] = Field(
        default=0.1, description="Random spread of start times, as a fraction of the interval."
    )


class ExporterConfig(StrictModel):
    """The whole erp-exporter configuration file."""

    global_: GlobalConfig = Field(default_factory=GlobalConfig, alias="global")
    targets: list[TargetConfig] = Field(default_factory=list)
    host: HostConfig = Field(default_factory=HostConfig)
    process_groups: list[ProcessGroupConfig] = Field(default_factory=list)
