"""The JSON Schema of the config file, generated from the model (shipped for editors' completion)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from exporter.config.model import ExporterConfig

SCHEMA_ID = "https://github.com/erp-exporter/erp-exporter/blob/main/exporter/config/erp-exporter.schema.json"


def config_json_schema() -> dict[str, Any]:
    """Generate the schema; aliases (such as `global`) are the keys users write."""
    schema = ExporterConfig.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def shipped_schema() -> dict[str, Any]:
    """The schema file in the package (a test keeps it equal to the generated one)."""
    text = resources.files("exporter.config").joinpath("erp-exporter.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result
