"""What every model of a YAML file the exporter reads shares: the config, ERP packs and audit files.

Kept apart from `exporter.config.model`, which imports the pack and audit models, so those can use it too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class StrictModel(BaseModel):
    """Unknown keys are errors; values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
