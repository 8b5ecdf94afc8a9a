"""A configured target as a connection spec for the database layer."""

from __future__ import annotations

from exporter.config.model import TargetConfig
from exporter.db.connstr import ConnectionSpec

# The driver's socket read timeout is only a backstop: a check that overruns is cancelled at its own
# timeout, and a cancel needs the grace period to come back before the socket gives up.
READ_TIMEOUT_MARGIN = 5.0


def read_timeout(longest_check_timeout: float, cancel_grace: float) -> float:
    """The connection read timeout of a target whose longest check may run `longest_check_timeout`."""
    return longest_check_timeout + cancel_grace + READ_TIMEOUT_MARGIN


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
