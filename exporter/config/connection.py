"""A configured target as a connection spec for the database layer."""

from __future__ import annotations

from exporter.config.model import TargetConfig
from exporter.db.connstr import ConnectionSpec


def connection_spec(target: TargetConfig, password: str | None, read_timeout: float) -> ConnectionSpec:
    """How to reach a configured target: its connection keys, login and the given timeouts."""
    return ConnectionSpec(
        driver=target.driver,
        dsn=target.dsn,
        attributes={key: str(value) for key, value in target.connection.items()},
        username=target.username,
        password=password,
        connect_timeout=target.connect_timeout,
        read_timeout=read_timeout,
    )
