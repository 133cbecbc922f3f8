"""The /lead forms: views Slack accepts with the ids the bot relies on, and the reading of submitted values into a
command or into {block_id: message} field errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from slack_sdk.models.views import View

from commands.add import AddLead
from commands.modals import (
    ACTION_DATA,
    ACTION_LEAD,
    ACTION_LIST,
    ACTION_NUMBER,
    ACTION_RANK,
    ACTION_UID,
    ACTIONS,
    BLOCK_DATA,
    BLOCK_LEAD,
    BLOCK_LIST,
    BLOCK_NUMBER,
    BLOCK_RANK,
    BLOCK_UID,
    FormOrigin,
    form_view,
    read_form,
)
from commands.rank import RankLead
from commands.set import SetLead
from commands.show import ShowLead
from tests.subcommands import CALLBACK_IDS, SUBCOMMAND_OF_CALLBACK

LIST_ID = "cfd395e2301b45f78a0f6abddbe15a4e"
ORIGIN = FormOrigin("https://hooks.slack.com/commands/T0001/1234/abcd", "C0123456789")
SUBCOMMANDS = ("add", "rank", "show", "set")
BLOCK_IDS = {BLOCK_LIST, BLOCK_UID, BLOCK_LEAD, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA}
EXPECTED_BLOCKS = {
    "add": [BLOCK_LIST, BLOCK_UID, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA],
    "rank": [BLOCK_LIST, BLOCK_LEAD, BLOCK_RANK],
    "show": [BLOCK_LIST, BLOCK_LEAD],
    "set": [BLOCK_LIST, BLOCK_LEAD, BLOCK_UID, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA],
}
OPTIONAL_BLOCKS = {
    "add": {BLOCK_DATA},
    "rank": set(),
    "show": set(),
    "set": {BLOCK_UID, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA},
}


# --- Slack-shaped state.values ------------------------------------------------------------------------------------


def text_state(block_id: str, value: str | None) -> dict[str, Any]:
    return {block_id: {ACTIONS[block_id]: {"type": "plain_text_input", "value": value}}}


def list_state(list_id: str | None) -> dict[str, Any]:
    option = None if list_id is None else {"text": {"type": "plain_text", "text": "Spring leads"}, "value": list_id}
    return {BLOCK_LIST: {ACTION_LIST: {"type": "external_select", "selected_option": option}}}


def state(list_id: str | None = LIST_ID, **texts: str | None) -> dict[str, Any]:
    values = list_state(list_id)
    for block_id, value in texts.items():
        values.update(text_state(block_id, value))
    return values


# --- form_view ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_form_view_is_a_valid_modal(sub: str) -> None:
    view = form_view(sub, ORIGIN)
    parsed = View(**view)
    parsed.validate_json()
    assert parsed.to_dict() == view
    assert view["type"] == "modal"
    assert 1 <= len(view["title"]["text"]) <= 24
    assert 1 <= len(view["submit"]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_form_view_callback_id(sub: str) -> None:
    view = form_view(sub, ORIGIN)
    assert view["callback_id"] == CALLBACK_IDS[sub]
    assert SUBCOMMAND_OF_CALLBACK[view["callback_id"]] == sub


def test_callback_ids_are_distinct() -> None:
    assert len(set(CALLBACK_IDS.values())) == len(CALLBACK_IDS) == len(SUBCOMMAND_OF_CALLBACK)


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_form_blocks_are_inputs_with_known_block_and_action_ids(sub: str) -> None:
    blocks = form_view(sub, ORIGIN)["blocks"]
    assert [b["block_id"] for b in blocks] == EXPECTED_BLOCKS[sub]
    for raw in blocks:
        assert raw["type"] == "input"
        assert raw["block_id"] in BLOCK_IDS
        assert raw["element"]["action_id"] == ACTIONS[raw["block_id"]]
        assert raw.get("optional", False) is (raw["block_id"] in OPTIONAL_BLOCKS[sub])


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_list_is_an_external_select(sub: str) -> None:
    (list_block,) = [b for b in form_view(sub, ORIGIN)["blocks"] if b["block_id"] == BLOCK_LIST]
    assert list_block["element"]["type"] == "external_select"
    assert list_block["element"]["action_id"] == ACTION_LIST
    assert list_block["element"]["min_query_length"] == 0


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_text_fields_are_plain_text_inputs_and_data_is_multiline(sub: str) -> None:
    for raw in form_view(sub, ORIGIN)["blocks"][1:]:
        assert raw["element"]["type"] == "plain_text_input"
        assert raw["element"].get("multiline", False) is (raw["block_id"] == BLOCK_DATA)


@pytest.mark.parametrize("sub", SUBCOMMANDS)
@pytest.mark.parametrize(
    "origin",
    [ORIGIN, FormOrigin(), FormOrigin(None, "C1"), FormOrigin("https://hooks.slack.com/x", None)],
)
def test_private_metadata_round_trips(sub: str, origin: FormOrigin) -> None:
    assert FormOrigin.decode(form_view(sub, origin)["private_metadata"]) == origin


def test_oversized_response_url_is_dropped_but_channel_kept() -> None:
    origin = FormOrigin("https://hooks.slack.com/" + "x" * 4000, "C0123456789")
    metadata = form_view("rank", origin)["private_metadata"]
    assert len(metadata) <= 3000
    assert FormOrigin.decode(metadata) == FormOrigin(None, "C0123456789")


@pytest.mark.parametrize(
    "garbage",
    [None, "", "not json", "{", "[1, 2]", "null", "42", '"text"', '{"response_url": 5, "channel_id": ["C1"]}', "{}"],
)
def test_garbage_metadata_decodes_to_empty_origin(garbage: str | None) -> None:
    assert FormOrigin.decode(garbage) == FormOrigin()


def test_deeply_nested_metadata_decodes_to_empty_origin() -> None:
    assert FormOrigin.decode("[" * 3000) == FormOrigin()


def test_partial_metadata_keeps_what_is_valid() -> None:
    assert FormOrigin.decode(json.dumps({"response_url": "https://x", "channel_id": 7})) == FormOrigin("https://x")


# --- read_form: commands --------------------------------------------------------------------------------------------


def test_read_add_form() -> None:
    values = state(
        uid=" uuid_100 ",
        number="4916098119998",
        rank="500",
        data='address=martin mendalde\n\nnew data = new\nnote="null"',
    )
    command = read_form("add", values, default_region=None)
    assert command == AddLead(
        LIST_ID, "uuid_100", "+4916098119998", 500, {"address": "martin mendalde", "new data": "new", "note": "null"}
    )


def test_read_add_form_without_data_and_with_national_number() -> None:
    values = state(uid="lead-1", number="0160 98119998", rank="-32768", data=None)
    assert read_form("add", values, default_region="DE") == AddLead(LIST_ID, "lead-1", "+4916098119998", -32768, {})


def test_read_rank_form() -> None:
    values = state(lead=" lead-10 ", rank="100")
    assert read_form("rank", values, default_region=None) == RankLead(LIST_ID, "lead-10", 100)


def test_read_show_form() -> None:
    assert read_form("show", state(lead="lead-40"), default_region=None) == ShowLead(LIST_ID, "lead-40")


def test_read_set_form_with_every_field() -> None:
    values = state(
        lead="lead-12", uid="lead-13", number="+4915100000040", rank="200", data="new data=new\nold data=null"
    )
    command = read_form("set", values, default_region=None)
    assert command == SetLead(
        LIST_ID, "lead-12", uid="lead-13", number="+4915100000040", rank=200, data={"new data": "new", "old data": None}
    )


def test_read_set_form_with_empty_optional_fields() -> None:
    values = state(lead="lead-12", uid="", number="   ", rank=None, data="kept=yes")
    assert read_form("set", values, default_region=None) == SetLead(LIST_ID, "lead-12", data={"kept": "yes"})


def test_set_form_rank_zero_counts_as_a_change() -> None:
    values = state(lead="lead-12", uid="", number="", rank="0", data="")
    assert read_form("set", values, default_region=None) == SetLead(LIST_ID, "lead-12", rank=0)


def test_set_form_delete_only_counts_as_a_change() -> None:
    values = state(lead="lead-12", data="old data=null")
    assert read_form("set", values, default_region=None) == SetLead(LIST_ID, "lead-12", data={"old data": None})


# --- read_form: field errors ----------------------------------------------------------------------------------------


def errors_of(sub: str, values: dict[str, Any], region: str | None = None) -> dict[str, str]:
    result = read_form(sub, values, default_region=region)
    assert isinstance(result, dict), result
    return result


def test_bad_number_is_a_number_error() -> None:
    errors = errors_of("add", state(uid="u", number="12ab", rank="1"))
    assert list(errors) == [BLOCK_NUMBER]
    assert "not a phone number" in errors[BLOCK_NUMBER]


def test_national_number_without_region_is_a_number_error() -> None:
    errors = errors_of("add", state(uid="u", number="0160 98119998", rank="1"))
    assert list(errors) == [BLOCK_NUMBER]
    assert "national number" in errors[BLOCK_NUMBER]


@pytest.mark.parametrize(("sub", "raw"), [("add", "32768"), ("rank", "-32769"), ("set", "40000")])
def test_rank_out_of_range_is_a_rank_error(sub: str, raw: str) -> None:
    values = state(uid="u", number="4916098119998", lead="lead-1", rank=raw)
    errors = errors_of(sub, values)
    assert list(errors) == [BLOCK_RANK]
    assert f"rank {raw} is out of range" in errors[BLOCK_RANK]


@pytest.mark.parametrize("sub", ["add", "rank"])
def test_rank_that_is_not_a_whole_number_is_a_rank_error(sub: str) -> None:
    errors = errors_of(sub, state(uid="u", number="4916098119998", lead="lead-1", rank="1.5"))
    assert list(errors) == [BLOCK_RANK]
    assert "whole number" in errors[BLOCK_RANK]


@pytest.mark.parametrize("uid", ["", "   ", None])
def test_empty_uid_in_add_is_a_uid_error(uid: str | None) -> None:
    errors = errors_of("add", state(uid=uid, number="4916098119998", rank="1"))
    assert errors == {BLOCK_UID: "uid must not be empty."}


def test_uid_with_line_break_in_set_is_a_uid_error() -> None:
    errors = errors_of("set", state(lead="lead-1", uid="a\nb"))
    assert list(errors) == [BLOCK_UID]
    assert "line breaks" in errors[BLOCK_UID]


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_missing_list_is_a_list_error(sub: str) -> None:
    values = state(None, uid="u", number="4916098119998", rank="1", lead="lead-1", data="a=b")
    assert errors_of(sub, values) == {BLOCK_LIST: "Pick a list."}


def test_list_block_absent_is_a_list_error() -> None:
    values = text_state(BLOCK_LEAD, "lead-1")
    assert errors_of("show", values) == {BLOCK_LIST: "Pick a list."}


@pytest.mark.parametrize("sub", ["rank", "show", "set"])
def test_missing_lead_is_a_lead_error(sub: str) -> None:
    errors = errors_of(sub, state(lead="  ", rank="1", data="a=b"))
    assert errors == {BLOCK_LEAD: "Give the lead's uid or id."}


@pytest.mark.parametrize("sub", ["add", "set"])
def test_data_line_without_equals_is_a_data_error(sub: str) -> None:
    values = state(uid="u", number="4916098119998", rank="1", lead="lead-1", data="address=x\njust words")
    errors = errors_of(sub, values)
    assert list(errors) == [BLOCK_DATA]
    assert "data line 2" in errors[BLOCK_DATA]
    assert "has no '='" in errors[BLOCK_DATA]


def test_data_null_in_add_is_a_data_error() -> None:
    errors = errors_of("add", state(uid="u", number="4916098119998", rank="1", data="old data=null"))
    assert list(errors) == [BLOCK_DATA]
    assert "cannot be null" in errors[BLOCK_DATA]


@pytest.mark.parametrize(
    "texts",
    [
        {},
        {BLOCK_UID: "", BLOCK_NUMBER: "", BLOCK_RANK: "", BLOCK_DATA: ""},
        {BLOCK_UID: "  ", BLOCK_NUMBER: None, BLOCK_RANK: " ", BLOCK_DATA: "\n  \n"},
    ],
    ids=["absent", "empty", "blank"],
)
def test_set_with_nothing_to_change_is_a_data_error(texts: dict[str, str | None]) -> None:
    errors = errors_of("set", state(lead="lead-12", **texts))
    assert list(errors) == [BLOCK_DATA]
    assert errors[BLOCK_DATA].startswith("Nothing to change")


def test_every_wrong_field_is_reported_at_once() -> None:
    values = state(None, uid="", number="12ab", rank="99999", data="no equals")
    errors = errors_of("add", values)
    assert set(errors) == {BLOCK_LIST, BLOCK_UID, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA}
    assert all(message.strip() for message in errors.values())


def test_error_keys_are_block_ids_of_the_submitted_form() -> None:
    view_blocks = {b["block_id"] for b in form_view("add", ORIGIN)["blocks"]}
    errors = errors_of("add", state(None, uid="", number="x", rank="x", data="x"))
    assert set(errors) <= view_blocks


def test_ids_are_pinned() -> None:
    """Open forms carry these ids across a deploy: renaming one breaks them, so a rename must be deliberate."""
    assert CALLBACK_IDS == {
        "add": "lead_add_form",
        "rank": "lead_rank_form",
        "show": "lead_show_form",
        "set": "lead_set_form",
        "history": "lead_history_form",
        "find": "lead_find_form",
        "remove": "lead_remove_form",
        "hopper": "lead_hopper_form",
        "why": "lead_why_form",
    }
    assert ACTIONS == {
        "list": "list_select",
        "uid": "uid_input",
        "lead": "lead_input",
        "number": "number_input",
        "rank": "rank_input",
        "data": "data_input",
    }
    assert tuple(ACTIONS.values()) == (ACTION_LIST, ACTION_UID, ACTION_LEAD, ACTION_NUMBER, ACTION_RANK, ACTION_DATA)
