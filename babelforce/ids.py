"""babelforce ids come in two spellings: 32 hex digits (what real responses use) or a dashed uuid (what the spec
says). Everything in leadbot compares and sends the compact lowercase form: the API does not match the dashed
form in a URL and answers 404 (babelforce's Go SDK, github.com/babelforce/manager-sdk-go ids.go, rewrites dashed
ids before sending for that reason; the sandbox refuses them the same way)."""

from __future__ import annotations

import re

_COMPACT = re.compile(r"[0-9a-fA-F]{32}")
_DASHED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def normalize_id(value: str) -> str | None:
    """The compact lowercase spelling of an id given in either spelling, or None when `value` is not an id."""
    text = value.strip()
    if _COMPACT.fullmatch(text) or _DASHED.fullmatch(text):
        return text.replace("-", "").lower()
    return None


def looks_like_id(value: str) -> bool:
    return normalize_id(value) is not None


def lenient_id(value: object) -> object:
    """Pydantic before-validator: normalise ids, but keep anything else as the server sent it (tolerant reads)."""
    if isinstance(value, str):
        return normalize_id(value) or value
    return value
