"""The shipped log pattern presets: regexes by preset name (the config names them, the log check uses them)."""

from __future__ import annotations

from collections.abc import Mapping

# Named built-in patterns. PostgreSQL's stderr log writes the severity followed by a colon and two
# spaces after the log_line_prefix ("2024-05-01 10:00:00 UTC [123] ERROR:  ..."); the severities are
# English unless lc_messages translates them. Python prints a traceback's first line on a line of its own
# (after any prefix the logging format adds).
PRESETS: Mapping[str, Mapping[str, str]] = {
    "postgresql": {
        "error": r"\bERROR:\s",
        "fatal": r"\bFATAL:\s",
        "panic": r"\bPANIC:\s",
    },
    "python_traceback": {
        "traceback": r"Traceback \(most recent call last\):\s*$",
    },
}
