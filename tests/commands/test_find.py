"""`/lead find`: reading the command and rendering the reply (pure; no server)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from babelforce.lookup import IndexedLead
from commands.find import (
    ACTION_SHOW_MATCH,
    SHOWN_MAX,
    FindLeads,
    FindReport,
    FoundLead,
    Hopper,
    find_message,
    match_line,
    show_value,
)
from commands.grammar import Invalid, OpenModal, command_text, parse

LIST_ID = "a" * 32


def parsed(text: str, region: str | None = None) -> Any:
    return parse(f"find {text}", default_region=region)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("martin", FindLeads("martin")),
        ("martin mendalde", FindLeads("martin mendalde")),
        ('"martin  mendalde"', FindLeads("martin mendalde")),
        ('martin in "Spring leads"', FindLeads("martin", "Spring leads")),
        ("martin in Spring leads", FindLeads("martin", "Spring leads")),
        ('"fell in love" in Renewals', FindLeads("fell in love", "Renewals")),
        ("lead-40", FindLeads("lead-40")),
        ("CRM-12345", FindLeads("CRM-12345")),
        ("+49 151 00000040", FindLeads("+49 151 00000040", number="+4915100000040")),
        ("0049 151 00000040", FindLeads("0049 151 00000040", number="+4915100000040")),
        ("4915100000040 in Spring", FindLeads("4915100000040", "Spring", "+4915100000040")),
        ('"a=b"', FindLeads("a=b")),
    ],
)
def test_text_and_optional_list_are_read(text: str, expected: FindLeads) -> None:
    assert parsed(text) == expected


def test_a_national_number_is_read_with_the_default_region() -> None:
    assert parsed("0151 00000040", region="DE").number == "+4915100000040"
    assert parsed("0151 00000040").number is None  # still searched as text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x", "at least 2 characters"),
        ('"x "', "at least 2 characters"),
        ("in Spring", "before 'in <list>'"),
        ("martin in", "a list after 'in'"),
        ("crm=1234", "not key=value pairs"),
        ("martin in list=Spring", "not key=value pairs"),
        ("a" * 201, "too long"),
        ('"bell\x07here"', "one line"),
    ],
)
def test_bad_text_is_refused_in_one_sentence_with_the_usage(text: str, words: str) -> None:
    result = parsed(text)
    assert isinstance(result, Invalid)
    assert words in result.message
    assert result.message.count(". ") == 0 and result.message.endswith(".")
    assert result.usage == "/lead find <text> [in <list>]"


def test_no_arguments_open_the_form() -> None:
    assert parse("find") == OpenModal("find")


@given(st.text(min_size=2, max_size=40).filter(lambda t: t.strip() and t.isprintable()))
def test_command_text_parses_back_to_the_same_command(text: str) -> None:
    command = parsed(f'"{text.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"')
    if isinstance(command, Invalid):
        return
    assert parse(command_text(command)) == command
    with_list = FindLeads(command.text, "Spring leads", command.number)
    assert parse(command_text(with_list)) == with_list


def lead(n: int, matched: str = "firstName") -> IndexedLead:
    return IndexedLead(f"{n:032x}", f"lead-{n}", f"+49151{n:08d}", n, "pending", matched)


def found(n: int, hopper: Hopper = Hopper.OUT, **kwargs: Any) -> FoundLead:
    return FoundLead(LIST_ID, "Spring leads", lead(n, **kwargs), hopper, hopper_size=20)


def report(matches: list[FoundLead], total: int | None = None, **kwargs: Any) -> FindReport:
    values: dict[str, Any] = {
        "text": "martin",
        "matches": tuple(matches),
        "total": len(matches) if total is None else total,
        "searched": ("Spring leads", "Renewals"),
        "oldest_s": 12.0,
        "max_lists": 50,
    }
    values.update(kwargs)
    return FindReport(**values)


def all_text(message: dict[str, Any]) -> str:
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str) and value.get("type") in {"mrkdwn", "plain_text"}:
                parts.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(message["blocks"])
    return "\n".join(parts)


def test_the_verdict_comes_first_then_one_line_and_show_button_per_match() -> None:
    message = find_message(report([found(40, Hopper.IN, matched="uid"), found(7)]))
    first = message["blocks"][0]["text"]["text"]
    assert first == "*2 leads match “martin”.*"
    match = message["blocks"][1]
    assert match["accessory"]["action_id"] == ACTION_SHOW_MATCH
    assert show_value(match["accessory"]["value"]) == (LIST_ID, f"{40:032x}")
    assert message["text"].startswith("2 leads match “martin”.")


def test_a_match_line_names_list_uid_number_rank_status_hopper_and_where_it_matched() -> None:
    line = match_line(FoundLead(LIST_ID, "Spring leads", lead(40, "uid"), Hopper.IN, 11, 20))
    assert line == "*Spring leads* · `lead-40` · +4915100000040 · rank 40 · pending · hopper 11 of 20 · _uid_"
    assert "not in the hopper" in match_line(found(7))
    assert "list not dialled" in match_line(FoundLead(LIST_ID, "A", lead(1), Hopper.NOT_DIALLED))
    assert "hopper unknown" in match_line(FoundLead(LIST_ID, "A", lead(1), Hopper.UNKNOWN))
    assert "_data firstName_" in match_line(found(7))
    bare = IndexedLead("b" * 32, None, None, None, None, "")
    assert match_line(FoundLead(LIST_ID, "A", bare, Hopper.OUT)) == (
        f"*A* · lead id `{'b' * 32}` · no number · rank – · status – · not in the hopper"
    )


def test_names_from_babelforce_are_escaped() -> None:
    line = match_line(FoundLead(LIST_ID, "<b>&co", lead(1), Hopper.OUT))
    assert line.startswith("*&lt;b&gt;&amp;co*")


def test_more_than_ten_matches_says_how_many_more() -> None:
    message = find_message(report([found(n) for n in range(SHOWN_MAX)], total=137))
    assert message["blocks"][0]["text"]["text"] == "*137 leads match “martin”.*"
    assert "… and 127 more." in all_text(message)


def test_no_match_names_how_many_lists_were_searched() -> None:
    message = find_message(report([]))
    assert message["blocks"][0]["text"]["text"] == "*No lead matches “martin” in the 2 lists searched.*"
    one = find_message(report([], searched=("Renewals",), list_ref="renewals"))
    assert one["blocks"][0]["text"]["text"] == "*No lead matches “martin” in list Renewals.*"


def test_lists_left_out_by_the_limit_are_said_with_the_setting() -> None:
    message = find_message(report([found(1)], left_out=23))
    assert "1 lead matches “martin”; 23 lists were not searched." in message["blocks"][0]["text"]["text"]
    assert "Only 50 of the account's 73 lists were searched (LEADBOT_FIND_MAX_LISTS)" in all_text(message)


def test_data_that_was_not_in_the_export_is_not_claimed_searched() -> None:
    every = find_message(report([], without_data=("Spring leads", "Renewals")))
    assert "carry no data variables, so only uid, number and lead id were searched" in all_text(every)
    some = find_message(report([], without_data=("Renewals",)))
    assert "Renewals: their exports carry no data variables" in all_text(some)
    assert "data variables" not in all_text(find_message(report([])))


def test_failed_lists_are_named_and_all_failing_is_an_error() -> None:
    partial = find_message(report([found(1)], failed=(("Autumn leads", "its export failed (HTTP 500)"),)))
    assert "1 list could not be searched" in partial["blocks"][0]["text"]["text"]
    assert "*Autumn leads* could not be searched: its export failed (HTTP 500)" in all_text(partial)
    nothing = find_message(report([], searched=(), failed=(("Autumn leads", "its export failed (HTTP 500)"),)))
    assert nothing["blocks"][0]["block_id"] == "error"


def test_the_reply_keeps_within_slacks_block_limits() -> None:
    long = FoundLead(LIST_ID, "L" * 5000, lead(1, "k" * 5000), Hopper.OUT)
    message = find_message(report([long] * 40, total=10**6, left_out=10**3, failed=(("x" * 3000, "y"),) * 30))
    assert len(message["blocks"]) <= 50
    for block in message["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    assert all(len(b["text"]["text"]) <= 3000 for b in message["blocks"] if b["type"] == "section")


def test_show_value_refuses_what_is_not_ours() -> None:
    assert show_value("nothing") is None
    assert show_value(":x") is None
    assert show_value(f"{LIST_ID}:{'b' * 32}") == (LIST_ID, "b" * 32)
