"""The config file's wording of pydantic's validation errors: its patterns and its discriminated unions.

The translation itself is generic (exporter.source.validation); this module names what the config's
models call things, so a message reads "unknown check kind 'x'; expected one of: ...".
"""

from __future__ import annotations

from typing import get_args

from pydantic import ValidationError

from exporter.audits.model import SNAKE_NAME_PATTERN, SNAKE_NAME_WORDS
from exporter.config.model import (
    LABEL_NAME_PATTERN,
    ClosingPeriodConfig,
    ExporterConfig,
    HttpTransactionConfig,
    TargetCheckConfig,
)
from exporter.source.base import NAME_PATTERN
from exporter.source.validation import NAME_PATTERN_WORDS, UnionTag, Wording
from exporter.source.validation import issues_from_validation as _translate
from exporter.source.yaml_source import SourceIssue, YamlDocument

# What a pattern means, in the words of the message (a raw regular expression helps nobody).
_PATTERN_NAMES = {
    NAME_PATTERN: NAME_PATTERN_WORDS,
    LABEL_NAME_PATTERN: "a label name of letters, digits and '_' that does not start with a digit",
    SNAKE_NAME_PATTERN: SNAKE_NAME_WORDS,
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


# The keys the config's discriminated unions select their model by, in lookup order.
CONFIG_WORDING = Wording(
    patterns=_PATTERN_NAMES,
    tags={
        "kind": UnionTag("check kind", _CHECK_KINDS),
        "type": UnionTag("closing period type", _PERIOD_TYPES),
        "protocol": UnionTag("protocol", _PROTOCOLS),
    },
)


def issues_from_validation(exc: ValidationError, document: YamlDocument) -> list[SourceIssue]:
    """Pydantic's errors on a config file as `file:line: key: message` issues in the config's words."""
    return _translate(exc, document, ExporterConfig, CONFIG_WORDING)
