"""The field validators shared by the text command and the modal: what they accept and how they refuse."""

from __future__ import annotations

import time

import pytest

from commands.fields import (
    FIELD_DATA,
    FIELD_NUMBER,
    FIELD_RANK,
    FIELD_UID,
    READ_ONLY_FIELDS,
    FieldError,
    is_read_only_field,
    parse_data_lines,
    parse_data_pair,
    parse_number,
    parse_rank,
    parse_uid,
    quote_input,
    read_only_error,
    shorten,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("500", 500),
        (" 42 ", 42),
        ("+7", 7),
        ("-5", -5),
        ("007", 7),
        ("-32768", -32768),
        ("32767", 32767),
        ("-0", 0),
        ("\u00a012\u00a0", 12),  # NBSP around is just whitespace
    ],
)
def test_rank_accepts_whole_numbers_in_range(text: str, expected: int) -> None:
    assert parse_rank(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("-32769", "rank -32769 is out of range: it must be from -32768 to 32767."),
        ("32768", "rank 32768 is out of range"),
        ("40000", "rank 40000 is out of range: it must be from -32768 to 32767."),
        ("1" * 5000, "out of range"),  # longer than Python's int() digit limit: refused, not crashed
        ("1.5", "rank must be a whole number from -32768 to 32767; got '1.5'."),
        ("1.0", "got '1.0'"),
        ("1e3", "got '1e3'"),
        ("ten", "got 'ten'"),
        ("abc", "rank must be a whole number from -32768 to 32767; got 'abc'."),
        ("١٢", "got '١٢'"),  # Arabic-Indic digits: int() would take them, we do not
        ("１２", "whole number"),  # fullwidth digits
        ("+-5", "whole number"),
        ("5 5", "whole number"),
        ("0x10", "whole number"),
        ("1_000", "whole number"),
    ],
)
def test_rank_refusals_name_the_rank(text: str, fragment: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_rank(text)
    assert caught.value.field == FIELD_RANK
    assert caught.value.message.startswith("rank ")
    assert fragment in caught.value.message
    assert caught.value.message.endswith(".")
    assert str(caught.value) == caught.value.message


def test_rank_message_truncates_long_input() -> None:
    with pytest.raises(FieldError) as caught:
        parse_rank("x" * 500)
    assert "…" in caught.value.message
    assert len(caught.value.message) < 120


@pytest.mark.parametrize(
    ("text", "expected"),
    [("uuid_100", "uuid_100"), ("  lead-1 ", "lead-1"), ("O'Brien 7", "O'Brien 7"), ("x" * 255, "x" * 255)],
)
def test_uid_accepts(text: str, expected: str) -> None:
    assert parse_uid(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "uid must not be empty."),
        (" \t ", "uid must not be empty."),
        ("a\nb", "line breaks or control characters"),
        ("a\x00b", "control characters"),
        ("a\u2028b", "line breaks"),
        ("x" * 256, "uid is too long: it has 256 characters, at most 255 are allowed."),
    ],
)
def test_uid_refusals(text: str, fragment: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_uid(text)
    assert caught.value.field == FIELD_UID
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+4916098119998", None, "+4916098119998"),
        ("004916098119998", None, "+4916098119998"),
        ("4916098119998", None, "+4916098119998"),  # the babelforce article's spelling
        ("+49 151 000 000 40", None, "+4915100000040"),
        ("+49 (0) 151 000 000 40", None, "+4915100000040"),
        ("+49-151-000.000/40", None, "+4915100000040"),
        ("0151 00000040", "DE", "+4915100000040"),
        ("0151 00000040", "de", "+4915100000040"),  # region code in any case
        ("4916098119998", "US", "+4916098119998"),  # international first, even with a region
        ("2125551234", "US", "+12125551234"),  # not valid as +212..., so national for US
        ("(212) 555-1234", "US", "+12125551234"),
        ("12125551234", None, "+12125551234"),
        ("011 49 151 00000040", "US", "+4915100000040"),  # the region's own international prefix
        ("\u00a0+4915100000040\u00a0", None, "+4915100000040"),
    ],
)
def test_number_accepts(text: str, region: str | None, expected: str) -> None:
    assert parse_number(text, region) == expected


@pytest.mark.parametrize(
    ("text", "region", "fragment"),
    [
        ("", None, "number must not be empty."),
        ("  ", "DE", "number must not be empty."),
        ("0151 00000040", None, "LEADBOT_DEFAULT_REGION"),
        ("0151 00000040", "", "LEADBOT_DEFAULT_REGION"),
        ("0151 00000040", "XX", "LEADBOT_DEFAULT_REGION"),  # unknown region: as if none, never a crash
        ("0151 00000040", "001", "LEADBOT_DEFAULT_REGION"),  # non-geographic entity is no region
        ("0151", "DE", "not a valid number for region DE"),
        ("abc", None, "is not a phone number"),
        ("1-800-FLOWERS", "US", "is not a phone number"),  # vanity numbers are not guessed at
        ("+49 151 ext 40", None, "is not a phone number"),
        ("١٥١٠٠٠٠٠٠٤٠", "DE", "is not a phone number"),
        ("49+151", None, "is not a phone number"),
        ("+", None, "has no digits"),
        ("()", None, "has no digits"),
        ("123", None, "not a valid phone number"),
        ("+999123", None, "does not start with a known country code"),
        ("+4915", None, "not a valid phone number"),
        ("00", None, "not a valid phone number"),
        ("2125", "US", "neither with a country code nor for region US"),
        ("1" * 40, None, "too long to be a phone number"),
        ("9" * 10_000, "DE", "too long"),
    ],
)
def test_number_refusals_name_the_number(text: str, region: str | None, fragment: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_number(text, region)
    assert caught.value.field == FIELD_NUMBER
    assert caught.value.message.startswith("number ")
    assert fragment in caught.value.message
    assert caught.value.message.endswith(".")
    assert len(caught.value.message) < 200


NATIONAL_TAIL = " for a German number). Whoever runs leadbot can set a default country (LEADBOT_DEFAULT_REGION)."
WITH_CODE = "; write it with its country code, e.g. +4916098119998."


@pytest.mark.parametrize(
    ("text", "region", "message"),
    [
        # national numbers without a default region: the user's own digits after +49, and who can set a default
        (
            "0151 2345678",
            None,
            "number '0151 2345678' is a national number; write it with its country code (+49 151 …" + NATIONAL_TAIL,
        ),
        (
            "0151 00000040",
            "XX",
            "number '0151 00000040' is a national number; write it with its country code (+49 151 …" + NATIONAL_TAIL,
        ),
        (
            "015112345678",
            None,
            "number '015112345678' is a national number; write it with its country code (+49 151 …" + NATIONAL_TAIL,
        ),
        (
            "(030) 1234567",
            None,
            "number '(030) 1234567' is a national number; write it with its country code (+49 30 …" + NATIONAL_TAIL,
        ),
        ("0", None, "number '0' is a national number; write it with its country code (+49 …" + NATIONAL_TAIL),
        # no + or 00 typed: no country code is named, whatever the first digits are
        ("12345", None, "number '12345' is not a valid phone number" + WITH_CODE),
        ("123", None, "number '123' is not a valid phone number" + WITH_CODE),
        ("4915", None, "number '4915' is not a valid phone number" + WITH_CODE),
        ("999 123", None, "number '999 123' is not a valid phone number" + WITH_CODE),
        ("2125", "US", "number '2125' is not a valid phone number, neither with a country code nor for region US."),
        # + or 00 typed: the reason names the code that was typed
        ("+12345", None, "number '+12345' is not a valid phone number: it is too short for country code +1."),
        ("0012345", None, "number '0012345' is not a valid phone number: it is too short for country code +1."),
        ("+999123", None, "number '+999123' is not a valid phone number: it does not start with a known country code."),
        ("0151", "DE", "number '0151' is not a valid number for region DE."),
    ],
)
def test_number_messages(text: str, region: str | None, message: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_number(text, region)
    assert caught.value.message == message


@pytest.mark.parametrize("text", ["1", "12", "12345", "1234567", "4915", "7 123", "(212) 55", "44 20", "9" * 16])
@pytest.mark.parametrize("region", [None, "US", "DE", "XX"])
def test_number_typed_without_a_country_code_never_names_one(text: str, region: str | None) -> None:
    with pytest.raises(FieldError) as caught:
        parse_number(text, region)
    assert "country code +" not in caught.value.message


def test_number_handles_huge_input_quickly() -> None:
    started = time.perf_counter()
    for text in ("1 " * 5000, "+" + "9" * 10_000, "a" * 10_000):
        with pytest.raises(FieldError):
            parse_number(text, "DE")
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("key", "value", "allow_delete", "expected"),
    [
        ("address", "martin mendalde", False, ("address", "martin mendalde")),
        ("  new data ", "new", False, ("new data", "new")),
        ("note", "", False, ("note", "")),
        ("note", "  spaced  ", False, ("note", "  spaced  ")),  # values are kept as given
        ("old data", None, True, ("old data", None)),
    ],
)
def test_data_pair_accepts(key: str, value: str | None, allow_delete: bool, expected: tuple[str, str | None]) -> None:
    assert parse_data_pair(key, value, allow_delete=allow_delete) == expected


@pytest.mark.parametrize(
    ("key", "read_only"),
    [
        *((name, True) for name in ("status", "Status", "STATUS", "id", "ID", "callCount", "call_count", "CALLCOUNT")),
        *((name, True) for name in ("listId", "list_id", "campaignId", "campaign_id", "dateCreated", "date_created")),
        *((name, True) for name in ("lastUpdated", "last_updated", "dateCalled", "date_called", "duration", " id ")),
        *((name, False) for name in ("rank", "uid", "number", "status2", "my_status", "ids", "callcounter", "")),
        *((name, False) for name in ("call count", "list-id", "dateCalledAt", "Duration_s")),
    ],
)
def test_read_only_fields(key: str, read_only: bool) -> None:
    assert is_read_only_field(key) is read_only


def test_read_only_fields_are_lower_case() -> None:
    assert all(name == name.lower() for name in READ_ONLY_FIELDS)
    assert len(READ_ONLY_FIELDS) == 15


@pytest.mark.parametrize(
    ("key", "example", "message"),
    [
        (
            "status",
            '"status"=do_not_call',
            "status is set by the dialer from call outcomes and cannot be changed from leadbot; to store a data "
            'variable named status, put the key in double quotes: "status"=do_not_call.',
        ),
        (
            "Status",
            '"Status"=null',
            "Status is set by the dialer from call outcomes and cannot be changed from leadbot; to store a data "
            'variable named Status, put the key in double quotes: "Status"=null.',
        ),
        ("id", '"id"=7', 'id is read-only: babelforce sets it; to store a data variable named id, write "id"=7.'),
        (
            "date_called",
            '"date_called"=""',
            "date_called is read-only: babelforce sets it; to store a data variable named date_called, write "
            '"date_called"="".',
        ),
    ],
)
def test_read_only_error(key: str, example: str, message: str) -> None:
    error = read_only_error(key, example)
    assert (error.field, error.message) == (FIELD_DATA, message)


@pytest.mark.parametrize(
    ("key", "value", "allow_delete", "fragment"),
    [
        ("", "x", True, "data keys must not be empty"),
        ("   ", "x", False, "data keys must not be empty"),
        ("a\nb", "x", True, "line breaks or control characters"),
        ("old data", None, False, "null deletes a variable; a new lead has none to delete"),
    ],
)
def test_data_pair_refusals(key: str, value: str | None, allow_delete: bool, fragment: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_data_pair(key, value, allow_delete=allow_delete)
    assert caught.value.field == FIELD_DATA
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("text", "allow_delete", "expected"),
    [
        ("", True, {}),
        ("\n  \n", False, {}),
        ("address=martin mendalde", False, {"address": "martin mendalde"}),
        ("new data = new\n\nold data = null", True, {"new data": "new", "old data": None}),
        ('quoted="null"', False, {"quoted": "null"}),
        ("“curly”=“null”", False, {"curly": "null"}),  # Slack's smart quotes count as quotes
        ('x=" padded "', False, {"x": " padded "}),
        ("formula=a=b", False, {"formula": "a=b"}),  # split at the first '='
        ("Null=NULL", False, {"Null": "NULL"}),  # only lower-case, unquoted null deletes
        ("empty=", False, {"empty": ""}),
        ('"new data"=new', False, {"new data": "new"}),
        ("a=1\r\nb=2", False, {"a": "1", "b": "2"}),
    ],
)
def test_data_lines_accept(text: str, allow_delete: bool, expected: dict[str, str | None]) -> None:
    assert parse_data_lines(text, allow_delete=allow_delete) == expected


@pytest.mark.parametrize(
    ("text", "allow_delete", "fragment"),
    [
        ("a=1\njust words", True, "data line 2 ('just words') has no '='"),
        ("a=1\n\nb=2\nc", True, "data line 4"),
        ("x=1\nx=2", True, "data key 'x' is given twice."),
        (" x =1\nx=2", True, "data key 'x' is given twice."),
        ("=value", True, "data keys must not be empty"),
        ("old data=null", False, "a new lead has none to delete"),
    ],
)
def test_data_lines_refusals(text: str, allow_delete: bool, fragment: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_data_lines(text, allow_delete=allow_delete)
    assert caught.value.field == FIELD_DATA
    assert fragment in caught.value.message


def test_field_error_is_a_value_error() -> None:
    error = FieldError(FIELD_RANK, "rank must be a whole number.")
    assert isinstance(error, ValueError)
    assert (error.field, error.message, str(error)) == (FIELD_RANK, "rank must be a whole number.", error.message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abc", "abc"),
        ("a\nb\tc", "a b c"),
        ("a\x00b", "a�b"),
        ("x" * 40, "x" * 40),
        ("x" * 41, "x" * 39 + "…"),
    ],
)
def test_shorten_keeps_quotes_readable(text: str, expected: str) -> None:
    assert shorten(text) == expected
    assert quote_input(text) == f"'{expected}'"


def test_form_data_lines_refuse_read_only_lead_fields_unless_quoted() -> None:
    with pytest.raises(FieldError) as failure:
        parse_data_lines("city=Berlin\nstatus=do_not_call", allow_delete=True)
    assert failure.value.field == "data"
    assert 'put the key in double quotes: "status"=do_not_call' in failure.value.message
    assert parse_data_lines('"status"=do_not_call', allow_delete=True) == {"status": "do_not_call"}
