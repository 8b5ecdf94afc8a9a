"""The configuration model: types, defaults and per-field validation.

Every model forbids unknown keys. Check kinds form a discriminated union on `kind`, so each kind carries
only its own settings. Cross-object rules (unique names, timeouts within intervals) live in
`exporter.config.semantics`, which can point at the exact key that is wrong.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    Field,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
)

from exporter.audits.model import DEFAULT_INTERVAL as DEFAULT_AUDIT_INTERVAL
from exporter.audits.model import AuditConfig, AuditOverride
from exporter.audits.model import ParamName as AuditParamName
from exporter.audits.model import ParamValue as AuditParamValue
from exporter.calendar.days import WEEKDAY_NAMES, check_country, check_subdivision, zone
from exporter.config.host_defaults import DEFAULT_EXCLUDED_FSTYPES, DEFAULT_EXCLUDED_MOUNTPOINTS_REGEX
from exporter.config.schedule import check_timeout
from exporter.metrics import validate_buckets
from exporter.packs.model import Pack
from exporter.source.base import NAME_PATTERN, StrictModel
from exporter.source.durations import Duration, PositiveDuration
from exporter.sqlparams import Number as PackNumber

LABEL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Label names the exporter's own metrics use; a static target label with one of these names would
# collide with them and corrupt series.
RESERVED_LABEL_NAMES = frozenset(
    {"target", "check", "reason", "kind", "job", "instance", "le", "quantile", "group", "mode", "device",
     "mountpoint", "fstype", "state", "dialect", "version", "name", "transaction", "step", "source",
     "owner", "category", "severity", "support_line", "audit", "period", "table", "pack", "query",
     "replica"}
)


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


class AuditsCheckConfig(CheckSettings):
    """Data-governance audits. Every audit of the listed packs, files and inline list becomes its own check
    `audit:<name>` with its own interval; this entry's interval and timeout are the defaults of audits that
    set none (15m and 60s otherwise)."""

    kind: Literal["audits"]
    default_interval: ClassVar[float | None] = DEFAULT_AUDIT_INTERVAL
    packs: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(
        default_factory=list, description="Audit sets shipped with the exporter, e.g. tryton."
    )
    files: list[str] = Field(
        default_factory=list,
        description="Audit files (YAML with an `audits:` list), relative to this config file.",
    )
    audits: list[AuditConfig] = Field(default_factory=list, description="Audits written here.")
    params: dict[str, dict[AuditParamName, AuditParamValue]] = Field(
        default_factory=dict, description="Per audit name: numbers that replace the audit's own params."
    )
    overrides: dict[str, AuditOverride] = Field(
        default_factory=dict,
        description="Per audit name: owner, support_line, severity, warning, critical, interval or timeout "
        "to use instead of the audit's own.",
    )
    exclude: list[str] = Field(default_factory=list, description="Names of audits not to run.")


class DbSessionsCheckConfig(CheckSettings):
    """Database sessions by state (active, idle, idle in transaction, waiting on a lock), the connection
    limit and the share used. Needs pg_monitor (PostgreSQL), PROCESS (MariaDB/MySQL) or VIEW SERVER STATE
    (SQL Server); on SQLite there are no sessions and it publishes nothing."""

    kind: Literal["db_sessions"]
    default_interval: ClassVar[float | None] = 30.0


class DbActivityCheckConfig(CheckSettings):
    """Long-running queries (count over a threshold, age of the oldest) and sessions waiting for a lock
    (count, longest wait) in the target's database; idle sessions and the exporter's own are left out.
    Needs pg_monitor (PostgreSQL) or PROCESS (MariaDB/MySQL); on SQLite it publishes nothing."""

    kind: Literal["db_activity"]
    long_query_threshold: PositiveDuration = Field(
        default=300.0, description="A query running longer than this counts as long-running."
    )


class DbSizeCheckConfig(CheckSettings):
    """Database size and the largest tables (size with indexes, estimated rows). Growth is computed by
    Prometheus (deriv over hours), not by the exporter."""

    kind: Literal["db_size"]
    default_interval: ClassVar[float | None] = 300.0
    top_tables: Annotated[int, Field(ge=0, le=100)] = Field(
        default=10, description="How many of the largest tables get their own series (0 to 100)."
    )


class DbStatementsCheckConfig(CheckSettings):
    """The statements that cost the database most, for the optimization workshop: the top N by total
    execution time, with calls, rows and mean time (PostgreSQL `pg_stat_statements`, MariaDB/MySQL
    `performance_schema`). Opt-in; a clear error when the extension or schema is not there."""

    kind: Literal["db_statements"]
    default_interval: ClassVar[float | None] = 300.0
    top: Annotated[int, Field(ge=1, le=100)] = Field(
        default=20, description="How many statements get their own series (1 to 100), by total time."
    )
    query_length: Annotated[int, Field(ge=20, le=500)] = Field(
        default=120, description="The normalized statement text is cut to this many characters in its label."
    )


class DbMaintenanceCheckConfig(CheckSettings):
    """Index health (invalid, unused since the statistics reset, duplicate) and, on PostgreSQL, the oldest
    vacuum and analyze and the transaction-ID age. What a database cannot tell is not published."""

    kind: Literal["db_maintenance"]
    default_interval: ClassVar[float | None] = 900.0


class ReplicationCheckConfig(CheckSettings):
    """Whether the target is a replica, and replication lag: per streaming replica on a PostgreSQL primary,
    the target's own on a standby or a MariaDB/MySQL replica. Needs pg_monitor (PostgreSQL) or
    REPLICA MONITOR / REPLICATION CLIENT (MariaDB/MySQL)."""

    kind: Literal["replication"]

def _transaction_buckets(value: list[float]) -> list[float]:
    return list(validate_buckets(value))


TransactionBuckets = Annotated[list[float], AfterValidator(_transaction_buckets)]


class SqlTransactionStepConfig(StrictModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `step` label value.")]
    sql: str = Field(
        description="One read-only query (the statement guard refuses anything else); its rows are fetched "
        "(up to 10000) and discarded."
    )


class SqlTransactionCheckConfig(CheckSettings):
    """A synthetic business transaction: named read-only queries run in one read-only transaction on one
    connection, always rolled back, timed per step and in total (erp_transaction_duration_seconds with
    source="sql"). A failing step fails the transaction and the check."""

    kind: Literal["sql_transaction"]
    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="The `transaction` label value; unique per target."
    )
    steps: Annotated[list[SqlTransactionStepConfig], Field(min_length=1)] = Field(
        description="The queries, run in this order; each step's `name` is its `step` label value."
    )
    buckets: TransactionBuckets | None = Field(
        default=None, description="Histogram upper bounds in seconds (default: 0.025 to 600)."
    )


class PackCheckConfig(CheckSettings):
    """An ERP pack: read-only queries of the ERP's own tables (users, sessions, queue, scheduler, errors,
    version). Each query of the pack becomes its own check `<pack>/<query>` with the query's own interval
    and timeout unless this entry sets them; its metrics carry the label `pack`."""

    kind: Literal["pack"]
    # Each query has its own interval (at most an hour in the shipped packs); the exact rule for a timeout
    # set here is checked per query when the pack is resolved (exporter.packs.loader).
    default_interval: ClassVar[float | None] = 3600.0
    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None,
        description="The prefix of the check names `<name>/<query>` and the `pack` label value; defaults to "
        "the pack's name. Give one to run the same pack twice on a target.",
    )
    pack: Annotated[str, Field(min_length=1)] = Field(
        description="A shipped pack's name (e.g. tryton), or the path of a pack file ending in .yml "
        "(relative to this config file)."
    )
    queries: list[Annotated[str, Field(pattern=NAME_PATTERN)]] | None = Field(
        default=None, description="Run only these queries of the pack (default: all)."
    )
    params: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], PackNumber] = Field(
        default_factory=dict,
        description="Numbers that replace the pack's parameter defaults (e.g. active_window_seconds: 600).",
    )
    buckets: TransactionBuckets | None = Field(
        default=None, description="Histogram upper bounds in seconds of the pack's job_log queries."
    )
    _resolved: Pack | None = PrivateAttr(default=None)

    @property
    def effective_name(self) -> str:
        """The prefix of the check names `<prefix>/<query>`: the entry's name, else the pack's name."""
        if self.name:
            return self.name
        if self._resolved is not None:
            return self._resolved.name
        return Path(self.pack).stem if self.pack.endswith((".yml", ".yaml")) or "/" in self.pack else self.pack

    @property
    def resolved_pack(self) -> Pack | None:
        """The pack loaded and checked against this entry when the config was loaded (None before)."""
        return self._resolved

    def attach(self, pack: Pack) -> None:
        self._resolved = pack


TargetCheckConfig = Annotated[
    DbResponseCheckConfig
    | PrivilegesCheckConfig
    | DbSessionsCheckConfig
    | AuditsCheckConfig
    | SqlTransactionCheckConfig
    | PackCheckConfig
    | DbActivityCheckConfig
    | DbSizeCheckConfig
    | DbMaintenanceCheckConfig
    | DbStatementsCheckConfig
    | ReplicationCheckConfig,
    Field(discriminator="kind"),
]

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

    def checks_with_defaults(self) -> list[CheckSettings]:
        """The configured checks, plus the kinds every target gets when its list does not name them:
        db_response, privileges and db_sessions."""
        configured = {check.kind_name for check in self.checks}
        defaults: tuple[CheckSettings, ...] = (
            DbResponseCheckConfig(kind="db_response"),
            PrivilegesCheckConfig(kind="privileges"),
            DbSessionsCheckConfig(kind="db_sessions"),
        )
        return [*self.checks, *(check for check in defaults if check.kind_name not in configured)]


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
# Backups (exporter.checks.backup) and log files (exporter.checks.log_follow)


class BackupConfig(StrictModel):
    """A set of backup files: how many, the newest one's age and size, and whether it is intact."""

    default_timeout: ClassVar[float] = 120.0

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `backup` label value.")]
    path: Annotated[str, Field(min_length=1)] = Field(
        description="A directory (its files, not recursive), a glob (`/backups/erp-*.dump`; `**` recurses) or "
        "one file. Relative paths are relative to the config file's directory. Hidden files and `*.sha256` "
        "checksum files are not backups."
    )
    format: Literal["auto", "pg_custom", "gzip", "plain"] = Field(
        default="auto",
        description="How to verify the files: pg_custom (`pg_dump -Fc`), gzip, plain; auto tells them apart "
        "by their first bytes.",
    )
    verify: bool = Field(
        default=True,
        description="Verify the newest file (format check and `FILE.sha256` when present); false: only count, "
        "age and size.",
    )
    verify_data: bool = Field(
        default=True,
        description="pg_custom: also read every data block (`pg_restore --file=/dev/null`), not only the table "
        "of contents (`pg_restore --list`), which passes truncated and corrupted dumps.",
    )
    max_files_checked: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3,
        description="When the newest file fails, older ones are verified until one passes: at most this many "
        "not yet verified files per run (each file is verified once while it is unchanged).",
    )
    min_age: Duration = Field(
        default=60.0,
        description="Files modified more recently are taken as still being written and left out.",
    )
    pg_restore: str | None = Field(
        default=None,
        description="Path of pg_restore (at least the dump's PostgreSQL version); default: from PATH, else the "
        "newest /usr/lib/postgresql/*/bin/pg_restore.",
    )
    interval: PositiveDuration = Field(default=300.0, description="How often the backups are looked at.")
    timeout: PositiveDuration | None = Field(
        default=None,
        description="Most time one run may take, verifying included (default 2m, at most the interval).",
    )

    @property
    def effective_timeout(self) -> float:
        return check_timeout(self.timeout, self.default_timeout, self.interval)


class LogPatternConfig(StrictModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `pattern` label value.")]
    regex: str = Field(description="Python regular expression, searched in every line (re.search).")

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, value: str) -> str:
        _compile_regex(value)
        return value


class LogConfig(StrictModel):
    """A log file followed like `tail -F`, counting the lines that match named patterns."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `log` label value.")]
    path: Annotated[str, Field(min_length=1)] = Field(
        description="The log file; relative paths are relative to the config file's directory."
    )
    presets: list[Literal["postgresql", "python_traceback"]] = Field(
        default_factory=list,
        description="Built-in patterns: postgresql gives error, fatal and panic (`ERROR:` ...); "
        "python_traceback gives traceback (`Traceback (most recent call last):`).",
    )
    patterns: list[LogPatternConfig] = Field(default_factory=list, description="Your own named patterns.")
    interval: PositiveDuration = Field(default=15.0, description="How often new lines are read.")
    timeout: PositiveDuration | None = Field(
        default=None, description="Most time one run may take (default: global.timeout, at most the interval)."
    )
    max_read_bytes: Annotated[int, Field(ge=4096, le=1024**3)] = Field(
        default=16 * 1024 * 1024, description="Most bytes read per run; the rest is read by the next runs."
    )
    max_line_bytes: Annotated[int, Field(ge=256, le=16 * 1024**2)] = Field(
        default=64 * 1024, description="Longer lines are matched on their first max_line_bytes bytes only."
    )


# ---------------------------------------------------------------------------------------------------
# Synthetic HTTP transactions against the ERP's application API (exporter.checks.http_transaction)

TRYTON_METHOD_PATTERN = r"^(common|model|wizard|report)(\.[A-Za-z0-9_]+)+$"


def _base_url(value: str) -> str:
    match = re.match(r"^(https?)://([^/?#]*)([^?#]*)$", value)
    if match is None:
        raise ValueError(f"expected an http:// or https:// URL without query or fragment, got {value!r}")
    if "@" in match.group(2):
        raise ValueError("must not contain credentials: use the transaction's credentials key")
    if not match.group(2):
        raise ValueError(f"needs a host, got {value!r}")
    return value.rstrip("/")


class HttpTlsConfig(StrictModel):
    """TLS settings for https base URLs."""

    verify: bool = Field(default=True, description="Verify the server's certificate chain and host name.")
    ca_file: str | None = Field(
        default=None,
        description="PEM file of the CA certificates to trust instead of the system's (relative to the "
        "config file).",
    )
    cert_file: str | None = Field(
        default=None, description="Client certificate (PEM) for servers that ask for one (relative to the config file)."
    )
    key_file: str | None = Field(
        default=None, description="Private key of cert_file when it is not in cert_file itself (unencrypted PEM)."
    )
    server_name: str | None = Field(
        default=None,
        description="Host name to send (SNI) and verify the certificate for, instead of the base URL's host.",
    )


class HttpCredentialsConfig(StrictModel):
    """Who the scenario logs in as: a Tryton login, or HTTP basic auth for protocol http."""

    username: str = Field(description="Login name.")
    password: SecretStr | None = Field(default=None, description="Password; use ${ENV_VAR}.")
    password_file: str | None = Field(
        default=None,
        description="File holding the password (relative to the config file; a trailing newline is ignored).",
    )


class TrytonStepConfig(StrictModel):
    """One JSON-RPC call made with the scenario's session."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `step` label value.")]
    method: Annotated[str, Field(pattern=TRYTON_METHOD_PATTERN)] = Field(
        description="JSON-RPC method, e.g. model.party.party.search_read; only reading methods are allowed."
    )
    params: list[Any] = Field(
        default_factory=list,
        description="JSON-RPC params; for model methods the last one is the context (usually {}).",
    )


class HttpStepConfig(StrictModel):
    """One HTTP request, with what its answer must look like."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `step` label value.")]
    method: Literal["GET", "HEAD", "POST"] = Field(default="GET", description="HTTP method.")
    path: str = Field(default="/", description="Appended to base_url, e.g. /api/health?full=1.")
    body: str | None = Field(default=None, description="Request body sent as it is (POST).")
    json_body: Any = Field(default=None, alias="json", description="Request body sent as JSON (POST).")
    expect_status: Annotated[int, Field(ge=100, le=599)] = Field(
        default=200, description="The HTTP status the answer must have."
    )
    expect_regex: str | None = Field(
        default=None, description="Regular expression the answer's body must contain (re.search)."
    )
    expect_json_path: str | None = Field(
        default=None,
        description="Dotted path (keys and list indexes, e.g. data.0.id) that must exist, not null, in the "
        "answer's JSON.",
    )

    @field_validator("expect_regex")
    @classmethod
    def _valid_regex(cls, value: str | None) -> str | None:
        return _compile_regex(value)


class _HttpTransactionBaseConfig(StrictModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `transaction` label value.")]
    base_url: Annotated[str, AfterValidator(_base_url)] = Field(
        description="The application server, e.g. https://erp.example.com:8000 (no credentials in it)."
    )
    labels: dict[Annotated[str, Field(pattern=LABEL_NAME_PATTERN)], str] = Field(
        default_factory=dict,
        description="Static labels added to every series of this transaction.",
        json_schema_extra={"additionalProperties": False},
    )
    interval: PositiveDuration | None = Field(default=None, description="How often the scenario runs.")
    timeout: PositiveDuration | None = Field(
        default=None, description="Longest the whole scenario may take (login to logout)."
    )
    step_timeout: PositiveDuration | None = Field(
        default=None, description="Longest one request may take (default: the timeout)."
    )
    tls: HttpTlsConfig = Field(default_factory=HttpTlsConfig)
    buckets: TransactionBuckets | None = Field(
        default=None, description="Histogram upper bounds in seconds (default: 0.025 to 600)."
    )


class TrytonTransactionConfig(_HttpTransactionBaseConfig):
    """A Tryton JSON-RPC scenario: log in (step `login`), the calls, log out (step `logout`)."""

    protocol: Literal["tryton"]
    database: str = Field(description="The Tryton database (POST <base_url>/<database>/rpc/).")
    credentials: HttpCredentialsConfig
    steps: list[TrytonStepConfig] = Field(
        default_factory=list, description="Calls between login and logout, in this order."
    )


class PlainHttpTransactionConfig(_HttpTransactionBaseConfig):
    """Plain HTTP requests in order, each with an expected status and content."""

    protocol: Literal["http"]
    credentials: HttpCredentialsConfig | None = Field(
        default=None, description="Sent as HTTP basic auth with every request."
    )
    steps: Annotated[list[HttpStepConfig], Field(min_length=1)] = Field(description="Requests, in this order.")


HttpTransactionConfig = Annotated[
    TrytonTransactionConfig | PlainHttpTransactionConfig, Field(discriminator="protocol")
]


# ---------------------------------------------------------------------------------------------------
# Business calendars (exporter.calendar documents the counting rules)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
CALENDAR_DEFAULT_INTERVAL = 60.0
_CLOSE_DAYS = Annotated[int, Field(ge=0, le=15)]
_MONDAY_TO_FRIDAY: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")


class _MonthCloseWindowConfig(StrictModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `period` label value.")]
    last_business_days: _CLOSE_DAYS = Field(
        default=3, description="Business days at the end of the month that belong to the close."
    )
    first_business_days: _CLOSE_DAYS = Field(
        default=2, description="Business days at the start of the next month that belong to the close."
    )


class MonthEndPeriodConfig(_MonthCloseWindowConfig):
    """Every month: its last N business days and the first M business days of the next month."""

    type: Literal["month_end"]


class FiscalYearEndPeriodConfig(_MonthCloseWindowConfig):
    """Once a year: the last N business days of the fiscal year's last month and the first M of the next."""

    type: Literal["fiscal_year_end"]
    fiscal_year_end_month: Annotated[int, Field(ge=1, le=12)] = Field(
        default=12, description="The month the fiscal year ends in (12: a calendar year; 6: ends in June)."
    )


class DateRangeConfig(StrictModel):
    start: date = Field(description="First day, e.g. 2025-12-22.")
    end: date | None = Field(default=None, description="Last day, included (default: the start day).")

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start")
        if value is not None and isinstance(start, date) and value < start:
            raise ValueError(f"must not be before start ({start.isoformat()}), got {value.isoformat()}")
        return value


class DatesPeriodConfig(StrictModel):
    """Explicit date ranges (an audit, a stock take, a migration weekend)."""

    type: Literal["dates"]
    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `period` label value.")]
    dates: Annotated[list[DateRangeConfig], Field(min_length=1)] = Field(
        description="Ranges of {start, end} dates, both included."
    )


ClosingPeriodConfig = Annotated[
    MonthEndPeriodConfig | FiscalYearEndPeriodConfig | DatesPeriodConfig, Field(discriminator="type")
]


class CalendarConfig(StrictModel):
    """A business calendar: when is a business day, and when is a closing period on."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, description="The `calendar` label value.")]
    timezone: str = Field(description="IANA time zone that decides which date it is, e.g. Europe/Berlin.")
    country: str | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code whose public holidays are not business days."
    )
    subdivision: str | None = Field(
        default=None, description="State or region of the country with its own holidays, e.g. BY for Bavaria."
    )
    extra_holidays: list[date] = Field(
        default_factory=list, description="Further days off (company holidays, bridge days)."
    )
    workdays: list[Weekday] = Field(
        default_factory=lambda: list(_MONDAY_TO_FRIDAY),
        description="Weekdays that are business days unless a holiday.",
    )
    closing_periods: list[ClosingPeriodConfig] = Field(default_factory=list)
    interval: PositiveDuration = Field(default=CALENDAR_DEFAULT_INTERVAL, description="How often to evaluate.")
    timeout: PositiveDuration | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        return None if value is None else check_country(value)

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "country" not in info.data:
            return value  # the country itself is wrong: reported there
        country = info.data["country"]
        if country is None:
            raise ValueError("needs a country (the subdivision's country code, e.g. country: DE)")
        return check_subdivision(country, value)

    @field_validator("workdays")
    @classmethod
    def _workdays(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one weekday")
        repeated = sorted({day for day in value if value.count(day) > 1}, key=WEEKDAY_NAMES.index)
        if repeated:
            raise ValueError(f"lists {', '.join(repeated)} more than once")
        return value


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
    backups: list[BackupConfig] = Field(
        default_factory=list, description="Backup sets: freshness, size and integrity of the newest backup."
    )
    logs: list[LogConfig] = Field(
        default_factory=list, description="Log files whose lines matching named patterns are counted."
    )
    http_transactions: list[HttpTransactionConfig] = Field(
        default_factory=list, description="Synthetic business transactions against the ERP's application API."
    )
    calendars: list[CalendarConfig] = Field(
        default_factory=list, description="Business calendars: business days, holidays and closing periods."
    )
