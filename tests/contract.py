"""Check responses against babelforce's OpenAPI contract (shared/reference/babelforce-outbound.openapi.yaml).

`validate_response(method, path, status, body)` finds the operation for a concrete path, takes the schema the
spec documents for that status and validates the body with OAS 3.0 rules (`nullable`), checking `date-time` and
accepting `format: uuid` in both spellings (real responses use 32 hex digits). Error statuses the spec does not
document are checked as the API's error envelope `{"success": false, "message": str}`.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator

SPEC_PATH = (Path(__file__).parents[1] / ".." / "shared" / "reference" / "babelforce-outbound.openapi.yaml").resolve()

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "message"],
    "properties": {"success": {"enum": [False]}, "message": {"type": "string"}},
}

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_DASHED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("uuid")
def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(_HEX32.fullmatch(value) or _DASHED.fullmatch(value))


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.fullmatch(value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # rejects impossible dates
    return True


def spec_available() -> bool:
    return SPEC_PATH.is_file()


@functools.cache
def load_spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _resolve(node: Any, spec: dict[str, Any], depth: int = 0) -> Any:
    """Inline every `$ref` (the spec has no recursive schemas; depth guards against one appearing)."""
    if depth > 50:
        raise RecursionError("$ref nesting too deep in the OpenAPI spec")
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target, spec, depth + 1)
        return {key: _resolve(value, spec, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolve(item, spec, depth + 1) for item in node]
    return node


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """(template, operation) for a concrete path; literal segments win over parameters (`leads/delete`)."""
    path = path.split("?", 1)[0]
    spec = load_spec()
    matches = [
        template
        for template, item in spec["paths"].items()
        if method.lower() in item and _template_regex(template).fullmatch(path)
    ]
    if not matches:
        raise AssertionError(f"{method} {path} is not an operation of the OpenAPI spec")
    template = min(matches, key=lambda candidate: candidate.count("{"))
    return template, spec["paths"][template][method.lower()]


def response_schema(method: str, path: str, status: int, content_type: str = "application/json") -> dict[str, Any]:
    template, operation = find_operation(method, path)
    documented = operation.get("responses", {}).get(str(status))
    if documented is None:
        if status >= 400:
            return ERROR_SCHEMA
        raise AssertionError(f"{method} {template} does not document status {status}")
    content = documented.get("content", {})
    if content_type not in content:
        raise AssertionError(f"{method} {template} {status} does not document {content_type}")
    return _resolve(content[content_type]["schema"], load_spec())


def validate_response(
    method: str, path: str, status: int, body_json: Any, content_type: str = "application/json"
) -> None:
    """Raise (jsonschema.ValidationError or AssertionError) unless the body fits the spec for method/path/status."""
    schema = response_schema(method, path, status, content_type)
    OAS30Validator(schema, format_checker=FORMAT_CHECKER).validate(body_json)
