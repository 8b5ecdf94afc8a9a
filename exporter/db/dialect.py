"""SQL dialects: detected from the ODBC driver's SQL_DBMS_NAME, they pick the built-in queries."""

from __future__ import annotations

from enum import StrEnum


class Dialect(StrEnum):
    POSTGRESQL = "postgresql"
    MYSQL = "mysql"  # MariaDB and MySQL
    SQLITE = "sqlite"
    MSSQL = "mssql"
    ORACLE = "oracle"
    HANA = "hana"
    DB2 = "db2"
    UNKNOWN = "unknown"


_DBMS_NAME_PREFIXES: tuple[tuple[str, Dialect], ...] = (
    ("postgresql", Dialect.POSTGRESQL),
    ("mariadb", Dialect.MYSQL),
    ("mysql", Dialect.MYSQL),
    ("sqlite", Dialect.SQLITE),
    ("microsoft sql server", Dialect.MSSQL),
    ("oracle", Dialect.ORACLE),
    ("hdb", Dialect.HANA),
    ("sap hana", Dialect.HANA),
    ("db2", Dialect.DB2),
)


def dialect_from_dbms_name(dbms_name: str) -> Dialect:
    """Map SQL_DBMS_NAME ('PostgreSQL', 'MariaDB', 'SQLite', 'Microsoft SQL Server', ...) to a dialect."""
    lowered = dbms_name.strip().lower()
    for prefix, dialect in _DBMS_NAME_PREFIXES:
        if lowered.startswith(prefix):
            return dialect
    return Dialect.UNKNOWN


def dialect_from_driver_name(driver: str) -> Dialect:
    """A guess before connecting, from the ODBC driver name or library path.

    Only used where a setting must go into the connection string (SQLite's read-only URI); after
    connecting, the dialect always comes from SQL_DBMS_NAME.
    """
    lowered = driver.lower()
    if "sqlite" in lowered:
        return Dialect.SQLITE
    if "psql" in lowered or "postgres" in lowered:
        return Dialect.POSTGRESQL
    if "maria" in lowered or "mysql" in lowered or "maodbc" in lowered:
        return Dialect.MYSQL
    if "sql server" in lowered or "msodbcsql" in lowered or "tds" in lowered:
        return Dialect.MSSQL
    return Dialect.UNKNOWN
