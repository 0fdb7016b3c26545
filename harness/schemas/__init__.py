"""Load the project's JSON Schemas (harness/schemas/*.json) and validate documents against them.

Errors come back as readable strings, each with the JSON path of the offending value.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent  # shipped inside the package (package-data)


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """`name` is e.g. "submission" or "verdict" (harness/schemas/<name>.schema.json)."""
    path = SCHEMA_DIR / f"{name}.schema.json"
    with path.open(encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def json_path(error: jsonschema.ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validation_errors(document: Any, name: str) -> list[str]:
    """Every schema violation of `document`, as "<json path>: <message>", in path order."""
    validator = jsonschema.Draft202012Validator(load_schema(name), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{json_path(e)}: {_message(e)}" for e in errors]


def _message(error: jsonschema.ValidationError) -> str:
    """anyOf/oneOf messages repeat the whole instance and pattern messages print a regex; the schema's own
    description says what was wanted."""
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    if description and error.validator in ("anyOf", "oneOf"):
        return f"expected {description}"
    if description and error.validator == "pattern":
        return f"{error.instance!r} is not {description}"
    return error.message
