"""Could the monitoring login write? The guard and read-only sessions can both be undone by a
determined statement, so the login's privileges are the real boundary: this check makes an
over-privileged account visible before it matters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from exporter.checks.base import BaseCheck, RunContext
from exporter.checks.registry import CheckKind, one_check_per_entry
from exporter.config.model import CheckSettings
from exporter.db.dialect import Dialect
from exporter.db.target import TargetDatabase
from exporter.metrics import MetricFamily, MetricSpec, StatusRole, gauge, to_float

CAN_WRITE = gauge(
    "erp_database_login_can_write",
    "1 when the monitoring login could change data (superuser or write privileges); it should be 0.",
    status_role=StatusRole.LOGIN_CAN_WRITE,
)
SUPERUSER = gauge("erp_database_login_superuser", "1 when the monitoring login is a superuser.")
WRITABLE_OBJECTS = gauge(
    "erp_database_login_writable_objects",
    "Tables, schemas or grants through which the monitoring login could change data.",
)

_PG_WRITE_CHECK = (
    "has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE') "
    "OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE')"
)
_USER_SCHEMAS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
_MYSQL_GRANTEE = (
    "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
    "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
)
_MYSQL_WRITE_PRIVILEGES = (
    "('INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER', 'INDEX', 'FILE', 'CREATE ROUTINE', "
    "'ALTER ROUTINE', 'EXECUTE', 'TRIGGER', 'EVENT', 'DELETE HISTORY')"
)

PRIVILEGES_SQL: dict[Dialect, str] = {
    Dialect.POSTGRESQL: f"""
        SELECT
          (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
          (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p', 'v', 'f') AND {_USER_SCHEMAS} AND ({_PG_WRITE_CHECK}))
          + (SELECT count(*) FROM pg_namespace n WHERE {_USER_SCHEMAS}
            AND has_schema_privilege(n.oid, 'CREATE')) AS writable_objects
    """,
    Dialect.MYSQL: f"""
        SELECT
          (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
            WHERE GRANTEE = {_MYSQL_GRANTEE} AND PRIVILEGE_TYPE = 'SUPER') AS superuser,
          (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
            WHERE GRANTEE = {_MYSQL_GRANTEE} AND PRIVILEGE_TYPE IN {_MYSQL_WRITE_PRIVILEGES})
          + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES
            WHERE GRANTEE = {_MYSQL_GRANTEE} AND PRIVILEGE_TYPE IN {_MYSQL_WRITE_PRIVILEGES})
          + (SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES
            WHERE GRANTEE = {_MYSQL_GRANTEE} AND PRIVILEGE_TYPE IN {_MYSQL_WRITE_PRIVILEGES})
          AS writable_objects
    """,
    Dialect.MSSQL: """
        SELECT IS_SRVROLEMEMBER('sysadmin') AS superuser,
          (SELECT COUNT(*) FROM fn_my_permissions(NULL, 'DATABASE')
            WHERE permission_name IN ('INSERT', 'UPDATE', 'DELETE', 'ALTER', 'CONTROL', 'CREATE TABLE'))
          AS writable_objects
    """,
    Dialect.SQLITE: "SELECT file FROM pragma_database_list WHERE name = 'main'",
}


@dataclass(frozen=True)
class LoginPrivileges:
    superuser: bool
    writable_objects: int


def privileges_to_families(privileges: LoginPrivileges) -> list[MetricFamily]:
    """Pure conversion, the part unit tests call."""
    can_write = privileges.superuser or privileges.writable_objects > 0
    return [
        CAN_WRITE.family().add(1.0 if can_write else 0.0),
        SUPERUSER.family().add(1.0 if privileges.superuser else 0.0),
        WRITABLE_OBJECTS.family().add(privileges.writable_objects),
    ]


class PrivilegesCheck(BaseCheck):
    kind: ClassVar[str] = "privileges"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (CAN_WRITE, SUPERUSER, WRITABLE_OBJECTS)

    def __init__(self, name: str, database: TargetDatabase) -> None:
        super().__init__(name)
        self._database = database
        self.last: LoginPrivileges | None = None  # read by the status page

    def run(self, ctx: RunContext) -> list[MetricFamily]:
        with self._database.session(ctx) as session:
            dialect = session.dialect
            sql = PRIVILEGES_SQL.get(dialect)
            if sql is None:
                return []  # no way to tell on this database: no data, not an error
            row = session.query(sql, max_rows=1).rows
        if not row:
            return []
        if dialect is Dialect.SQLITE:
            # SQLite has no logins: what could write is whoever may write the file.
            path = str(row[0][0] or "")
            privileges = LoginPrivileges(False, 1 if path and os.access(path, os.W_OK) else 0)
        else:
            superuser = to_float(row[0][0]) or 0.0
            writable = to_float(row[0][1]) or 0.0
            privileges = LoginPrivileges(superuser > 0, int(writable))
        self.last = privileges
        return privileges_to_families(privileges)


def _build(settings: CheckSettings, database: TargetDatabase) -> PrivilegesCheck:
    return PrivilegesCheck(settings.effective_name, database)


def check_kind() -> CheckKind:
    """`privileges`: one check per entry of a target (every target has one by default)."""
    return CheckKind("privileges", PrivilegesCheck.metrics, build_for_target=one_check_per_entry(_build))
