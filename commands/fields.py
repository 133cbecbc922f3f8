"""Field validators shared by the /lead text parser and the modal parser.

Each returns the cleaned value or raises FieldError with one sentence a supervisor can act on, so the text
command and the modal refuse the same things with the same words. Pure: no I/O, no logging.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from babelforce.models import RANK_MAX, RANK_MIN

FIELD_LIST, FIELD_UID, FIELD_LEAD, FIELD_NUMBER, FIELD_RANK, FIELD_DATA = (
    "list",
    "uid",
    "lead",
    "number",
    "rank",
    "data",
)
FIELD_CHANGE = "change"  # a recorded change, by its number in the audit trail (`/lead undo #12`)

UID_MAX_LENGTH = 255
SHOWN_MAX = 40
REGION_SETTING = "LEADBOT_DEFAULT_REGION"

# Longest E.164 number is 15 digits; a little slack for a "(0)" or an IDD prefix. Longer is never a number, and
# checking first keeps huge inputs away from the phonenumbers library.
_NUMBER_MAX_DIGITS = 20
_RANK_RE = re.compile(r"[+-]?[0-9]+")  # [0-9] is ASCII only: no "١٢" or fullwidth digits
_NUMBER_SEPARATORS = frozenset("-.()/")
# Categories that must not appear in a uid or a data key: they break lines, CSV exports and Slack messages.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
_QUOTE_CHARS = '"“”„″'  # Slack clients turn " into curly quotes as you type
# A lead's own fields that babelforce sets and its API cannot change (lower case; both spellings supervisors see).
READ_ONLY_FIELDS = frozenset(
    {
        "status",
        "id",
        "callcount",
        "call_count",
        "listid",
        "list_id",
        "campaignid",
        "campaign_id",
        "datecreated",
        "date_created",
        "lastupdated",
        "last_updated",
        "datecalled",
        "date_called",
        "duration",
    }
)
# What an international number looks like, for messages; the one babelforce's own article uses.
NUMBER_EXAMPLE = "+4916098119998"
_NATIONAL_HEAD = re.compile(r"[^0-9]*0([0-9]*)")
# A change's number as typed: `12` or `#12`, ASCII digits; 18 digits at most keeps it inside SQLite's integers.
_CHANGE_REF = re.compile(r"#?([0-9]{1,18})")


class FieldError(ValueError):
    """One bad field: `field` is one of the FIELD_* names, `message` one sentence naming it, for a supervisor."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def shorten(text: str, limit: int = SHOWN_MAX) -> str:
    """User input fit to quote in a message: invisible characters shown as �, whitespace as spaces, at most
    `limit` characters (then …), so a pasted essay or a stray control character cannot wreck the reply."""
    chars = []
    for ch in text[: limit + 1]:
        category = unicodedata.category(ch)
        if ch.isspace():
            chars.append(" ")
        elif category in _INVISIBLE_CATEGORIES:
            chars.append("�")
        else:
            chars.append(ch)
    shown = "".join(chars)
    return shown if len(text) <= limit else shown[: limit - 1] + "…"


def quote_input(text: str) -> str:
    """`text` shortened and in single quotes, the way every message quotes what the user typed."""
    return f"'{shorten(text)}'"


def _has_forbidden(text: str) -> bool:
    return any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text)


def parse_rank(text: str) -> int:
    """A rank as babelforce stores it (a small integer); decimals, exponents and non-ASCII digits are refused
    rather than guessed at."""
    stripped = text.strip()
    allowed = f"a whole number from {RANK_MIN} to {RANK_MAX}"
    if not stripped:
        raise FieldError(FIELD_RANK, f"rank must not be empty; give {allowed}.")
    if not _RANK_RE.fullmatch(stripped):
        raise FieldError(FIELD_RANK, f"rank must be {allowed}; got {quote_input(stripped)}.")
    # Count digits before int(): Python refuses to convert very long digit strings, and they are out of range.
    if len(stripped.lstrip("+-").lstrip("0")) > 6 or not RANK_MIN <= (rank := int(stripped)) <= RANK_MAX:
        raise FieldError(
            FIELD_RANK, f"rank {shorten(stripped)} is out of range: it must be from {RANK_MIN} to {RANK_MAX}."
        )
    return rank


def is_signed_up(text: str) -> bool:
    """A rank typed with a plus sign (`+10`): most likely meant as "10 more", which babelforce cannot do (a rank is
    absolute), so it is refused naming the lead's rank. `-5` stays the absolute rank -5."""
    return text.strip().startswith("+")


def relative_rank_refusal(lead_name: str, current: int | None, step: int, *, spelled: str = "") -> str:
    """The refusal of a signed rank (`+10`), with the absolute value it probably meant. `spelled` prefixes the
    values to write (`rank=` for /lead set)."""
    if current is None:
        return f"rank is absolute: {lead_name} has no rank yet; write {spelled}{step} to set rank {step}."
    head = f"rank is absolute: {lead_name} has rank {current}"
    if step == 0:
        return f"{head}; write {spelled}0 to set rank 0."
    meant = current + step
    if meant > RANK_MAX:
        return (
            f"{head}, and {step} more would pass the highest rank, {RANK_MAX}; write {spelled}{RANK_MAX} for the "
            f"highest, or {spelled}{step} to set rank {step}."
        )
    return f"{head}; write {spelled}{meant} to raise it by {step}, or {spelled}{step} to set rank {step}."


def parse_uid(text: str) -> str:
    """A lead's uid (the customer's own id): surrounding spaces dropped, one line, at most 255 characters."""
    uid = text.strip()
    if not uid:
        raise FieldError(FIELD_UID, "uid must not be empty.")
    if _has_forbidden(uid):
        raise FieldError(FIELD_UID, f"uid {quote_input(uid)} must not contain line breaks or control characters.")
    if len(uid) > UID_MAX_LENGTH:
        raise FieldError(
            FIELD_UID, f"uid is too long: it has {len(uid)} characters, at most {UID_MAX_LENGTH} are allowed."
        )
    return uid


def _region(default_region: str | None) -> str | None:
    """The region as phonenumbers knows it, or None: an unknown code is a configuration error reported
    elsewhere, and must not turn into a crash while parsing a command."""
    if not isinstance(default_region, str):
        return None
    region = default_region.strip().upper()
    return region if region in phonenumbers.SUPPORTED_REGIONS else None


def _valid_e164(candidate: str, region: str | None) -> str | None:
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def parse_number(text: str, default_region: str | None) -> str:
    """A phone number in E.164. Digits without '+' are tried as international first (babelforce's own example
    is 4916098119998), then as a national number of `default_region`; only numbers phonenumbers calls valid
    pass, so a typo is caught here and not by the dialer."""
    raw = text.strip()
    if not raw:
        raise FieldError(FIELD_NUMBER, "number must not be empty.")
    shown = quote_input(raw)
    body = raw[1:] if raw.startswith("+") else raw
    if any(not (ch in "0123456789" or ch in _NUMBER_SEPARATORS or ch.isspace()) for ch in body):
        raise FieldError(
            FIELD_NUMBER,
            f"number {shown} is not a phone number: use only digits, a leading + and spaces, dashes, dots or "
            "parentheses.",
        )
    digits = "".join(ch for ch in body if ch in "0123456789")
    if not digits:
        raise FieldError(FIELD_NUMBER, f"number {shown} is not a phone number: it has no digits.")
    if len(digits) > _NUMBER_MAX_DIGITS:
        raise FieldError(FIELD_NUMBER, f"number {shown} is too long to be a phone number.")
    region = _region(default_region)

    if raw.startswith("+") or digits.startswith("00"):
        international = "+" + (digits if raw.startswith("+") else digits[2:])
        if number := _valid_e164(international, None):
            return number
        raise FieldError(FIELD_NUMBER, f"number {shown} is not a valid phone number{_why(international)}.")
    if digits.startswith("0"):
        if region is None:
            raise FieldError(
                FIELD_NUMBER,
                f"number {shown} is a national number; write it with its country code ({_national_example(raw)} for "
                f"a German number). Whoever runs leadbot can set a default country ({REGION_SETTING}).",
            )
        if number := _valid_e164(digits, region):
            return number
        raise FieldError(FIELD_NUMBER, f"number {shown} is not a valid number for region {region}.")
    if number := _valid_e164("+" + digits, None):
        return number
    if region is not None:
        if number := _valid_e164(digits, region):
            return number
        raise FieldError(
            FIELD_NUMBER,
            f"number {shown} is not a valid phone number, neither with a country code nor for region {region}.",
        )
    # No + or 00 was typed, so no country code either: naming the one phonenumbers guessed from the first digits
    # ("too short for country code +1" for 12345) would only confuse.
    raise FieldError(
        FIELD_NUMBER,
        f"number {shown} is not a valid phone number; write it with its country code, e.g. {NUMBER_EXAMPLE}.",
    )


def _national_example(raw: str) -> str:
    """How the start of a national number reads with a country code: 0151 2345678 -> +49 151 …. Germany is only
    the example (babelforce's home); the digits are the user's own, without the trunk 0."""
    match = _NATIONAL_HEAD.match(raw)
    area = match.group(1) if match else ""
    if len(area) > 4:  # typed without spaces: show an area code's worth
        area = area[:3]
    return f"+49 {area} …" if area else "+49 …"


def _why(international: str) -> str:
    """A short reason for an invalid international number, when phonenumbers can tell one."""
    try:
        parsed = phonenumbers.parse(international, None)
    except phonenumbers.NumberParseException as error:
        if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            return ": it does not start with a known country code"
        return ""
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    code = parsed.country_code
    if reason == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        return ": it does not start with a known country code"
    if reason == phonenumbers.ValidationResult.TOO_SHORT:
        return f": it is too short for country code +{code}"
    if reason == phonenumbers.ValidationResult.TOO_LONG:
        return f": it is too long for country code +{code}"
    if reason == phonenumbers.ValidationResult.INVALID_LENGTH:
        return f": it has the wrong length for country code +{code}"
    return ""


def is_read_only_field(key: str) -> bool:
    """Whether `key`, typed as an unquoted key, names one of the lead's own fields that only babelforce sets."""
    return key.strip().lower() in READ_ONLY_FIELDS


def read_only_error(key: str, example: str) -> FieldError:
    """The refusal for a read-only lead field typed as a key; `example` is the pair with the key in double quotes,
    the way to store a data variable of that name instead."""
    name = key.strip()
    if name.lower() == "status":
        message = (
            f"{name} is set by the dialer from call outcomes and cannot be changed from leadbot; to store a data "
            f"variable named {name}, put the key in double quotes: {example}."
        )
    else:
        message = f"{name} is read-only: babelforce sets it; to store a data variable named {name}, write {example}."
    return FieldError(FIELD_DATA, message)


def parse_data_pair(key: str, value: str | None, *, allow_delete: bool) -> tuple[str, str | None]:
    """One custom variable; `value` None deletes it, which only an update can do."""
    name = key.strip()
    if not name:
        raise FieldError(FIELD_DATA, "data keys must not be empty; write key=value.")
    if _has_forbidden(name):
        raise FieldError(
            FIELD_DATA, f"data key {quote_input(name)} must not contain line breaks or control characters."
        )
    if value is None and not allow_delete:
        raise FieldError(
            FIELD_DATA,
            f"data key {quote_input(name)} cannot be null: null deletes a variable; a new lead has none to delete "
            '(write "null" in double quotes to store the word).',
        )
    return name, value


def _unquote(text: str) -> tuple[str, bool]:
    """`text` without one pair of surrounding double quotes (straight or curly), and whether it had them."""
    if len(text) >= 2 and text[0] in _QUOTE_CHARS and text[-1] in _QUOTE_CHARS:
        return text[1:-1], True
    return text, False


def parse_data_lines(text: str, *, allow_delete: bool) -> dict[str, str | None]:
    """The modal's multi-line data field: one key=value per line, split at the first '='. `null` deletes; a
    value (or key) in double quotes is taken literally, so "null" stores the word."""
    data: dict[str, str | None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise FieldError(
                FIELD_DATA,
                f"data line {number} ({quote_input(line.strip())}) has no '=': write one key=value per line.",
            )
        key, key_quoted = _unquote(key.strip())
        value, quoted = _unquote(value.strip())
        if not key_quoted and is_read_only_field(key):
            raise read_only_error(key, f'"{key.strip()}"={value}')
        name, parsed = parse_data_pair(
            key, None if value == "null" and not quoted else value, allow_delete=allow_delete
        )
        if name in data:
            raise FieldError(FIELD_DATA, f"data key {quote_input(name)} is given twice.")
        data[name] = parsed
    return data


def change_ref(change_id: int) -> str:
    """A recorded change as users see and type it (`#12`): its audit record's id, short enough to type."""
    return f"#{change_id}"


def parse_change_ref(text: str) -> int:
    """The audit record id in `12` or `#12` (see change_ref)."""
    match = _CHANGE_REF.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise FieldError(
            FIELD_CHANGE,
            f"change must be a change's number from /lead history, like #12; {quote_input(text)} is not one.",
        )
    return int(match.group(1))
