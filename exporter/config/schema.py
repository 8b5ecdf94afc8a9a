"""The JSON Schema of the config file, generated from the model (shipped for editors' completion).

Regenerate the shipped file after changing the model:

    python -m exporter.config.schema
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from exporter.config.model import ExporterConfig
from exporter.source.durations import DURATION_PATTERN, format_duration

SCHEMA_ID = "https://github.com/erp-exporter/erp-exporter/blob/main/exporter/config/erp-exporter.schema.json"
SCHEMA_FILE = Path(__file__).with_name("erp-exporter.schema.json")
REGENERATE_COMMAND = "python -m exporter.config.schema"


class _UserFacingSchema(GenerateJsonSchema):
    """Defaults as users write them: a duration's default is '30s', not the 30.0 seconds Python holds."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        default = json_schema.get("default")
        if (
            json_schema.get("pattern") == DURATION_PATTERN
            and isinstance(default, int | float)
            and not isinstance(default, bool)
        ):
            json_schema["default"] = format_duration(default)
        return json_schema


def config_json_schema() -> dict[str, Any]:
    """Generate the schema; aliases (such as `global`) are the keys users write."""
    schema = ExporterConfig.model_json_schema(
        by_alias=True, mode="validation", schema_generator=_UserFacingSchema
    )
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    """The schema file's exact text: indented by 2, ending with a newline."""
    return json.dumps(config_json_schema(), indent=2) + "\n"


def shipped_schema() -> dict[str, Any]:
    """The schema file in the package (a test keeps it equal to the generated one)."""
    text = resources.files("exporter.config").joinpath("erp-exporter.schema.json").read_text("utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def main() -> None:
    """Rewrite the shipped schema file from the model."""
    SCHEMA_FILE.write_text(render_schema(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
