"""Phone numbers never reach a log line or a shared channel whole."""

from __future__ import annotations

import re
from typing import Any

# Digits with the separators people type in phone numbers (+49 151-000 (0)40), not inside a hex id.
_PHONE_LIKE = re.compile(r"(?<![0-9a-fA-F])\+?\d[\d\s\-./()]*\d(?![0-9a-fA-F])")
MASK_MIN_DIGITS = 6


def mask(text: str) -> str:
    """For logs: keep references readable but hide phone numbers (6+ digits, separators allowed: last 2 kept)."""
    text = " ".join(str(text).split())[:60]
    return _PHONE_LIKE.sub(mask_digits, text)


def mask_digits(match: re.Match[str]) -> str:
    """A found number with all but its last 2 digits hidden (kept whole below MASK_MIN_DIGITS digits)."""
    digits = [char for char in match.group() if char.isdigit()]
    if len(digits) < MASK_MIN_DIGITS:
        return match.group()
    return "•" * (len(digits) - 2) + "".join(digits[-2:])


def masked_number(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """A lead's values with its number masked (for the audit channel, which many read)."""
    if values is None or not values.get("number"):
        return values
    return {**values, "number": mask(str(values["number"]))}


# The password of a URL's user part (scheme://user:password@host) and a password=... parameter (libpq conninfo).
_URL_PASSWORD = re.compile(r"(?<=://)([^/@:]*):[^/]*@")
_PARAM_PASSWORD = re.compile(r"(password=)[^&\s]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """For logs and messages: a database URL with its password replaced by ***, the rest kept to tell which."""
    return _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1:***@", url))
