"""The forms `/lead add|rank|show|set|history` open without arguments, and the reading of what the user typed.

Pure: view dicts out, submitted `state.values` in, a command or per-field errors out. The ids below are part of the
bot's contract with Slack (and with tests): renaming one breaks forms that are open at the time of a deploy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ExternalDataSelectElement,
    InputBlock,
    PlainTextInputElement,
    PlainTextObject,
)
from slack_sdk.models.views import View

from .fields import (
    FIELD_DATA,
    FIELD_LEAD,
    FIELD_LIST,
    FIELD_NUMBER,
    FIELD_RANK,
    FIELD_UID,
    FieldError,
    parse_data_lines,
    parse_number,
    parse_rank,
    parse_uid,
)
from .grammar import AddLead, Command, LeadHistory, RankLead, SetLead, ShowLead

CALLBACK_IDS = {
    "add": "lead_add_form",
    "rank": "lead_rank_form",
    "show": "lead_show_form",
    "set": "lead_set_form",
    "history": "lead_history_form",
}
SUBCOMMAND_OF_CALLBACK = {callback: name for name, callback in CALLBACK_IDS.items()}

# One block per field; the block ids are the field names, so a FieldError maps straight to its block.
BLOCK_LIST, BLOCK_UID, BLOCK_LEAD, BLOCK_NUMBER, BLOCK_RANK, BLOCK_DATA = (
    FIELD_LIST,
    FIELD_UID,
    FIELD_LEAD,
    FIELD_NUMBER,
    FIELD_RANK,
    FIELD_DATA,
)
ACTION_LIST = "list_select"  # also the action id of the external select's options requests
ACTION_UID = "uid_input"
ACTION_LEAD = "lead_input"
ACTION_NUMBER = "number_input"
ACTION_RANK = "rank_input"
ACTION_DATA = "data_input"
ACTIONS = {
    BLOCK_LIST: ACTION_LIST,
    BLOCK_UID: ACTION_UID,
    BLOCK_LEAD: ACTION_LEAD,
    BLOCK_NUMBER: ACTION_NUMBER,
    BLOCK_RANK: ACTION_RANK,
    BLOCK_DATA: ACTION_DATA,
}
METADATA_MAX = 3000


@dataclass(frozen=True, slots=True)
class FormOrigin:
    """Where the form was opened from, so its result goes back there (kept in the view's private_metadata)."""

    response_url: str | None = None
    channel_id: str | None = None

    def encode(self) -> str:
        text = json.dumps({"response_url": self.response_url, "channel_id": self.channel_id}, separators=(",", ":"))
        if len(text) > METADATA_MAX:  # a response_url is ~100 characters; guard against surprises all the same
            text = json.dumps({"response_url": None, "channel_id": self.channel_id}, separators=(",", ":"))
        return text

    @classmethod
    def decode(cls, text: str | None) -> FormOrigin:
        try:
            value = json.loads(text or "{}")
        except (ValueError, RecursionError):  # ours, echoed back by Slack; broken means no origin
            return cls()
        if not isinstance(value, dict):
            return cls()
        url, channel = value.get("response_url"), value.get("channel_id")
        return cls(url if isinstance(url, str) else None, channel if isinstance(channel, str) else None)


_TITLES = {
    "add": "Add a lead",
    "rank": "Change a rank",
    "show": "Show a lead",
    "set": "Edit a lead",
    "history": "A lead's history",
}
_SUBMIT = {"add": "Add", "rank": "Change rank", "show": "Show", "set": "Save", "history": "Show history"}


def form_view(subcommand: str, origin: FormOrigin) -> dict:
    """The modal for one subcommand. The list select loads its options from the bot, so opening costs no API call."""
    blocks = [
        InputBlock(
            block_id=BLOCK_LIST,
            label="List",
            element=ExternalDataSelectElement(
                action_id=ACTION_LIST, placeholder="Type to search the lead-lists", min_query_length=0
            ),
        )
    ]
    if subcommand == "add":
        blocks += [
            _text_input(BLOCK_UID, "uid", "The customer's own id, unique in the list", hint=None),
            _text_input(
                BLOCK_NUMBER, "Number", "+4916098119998", hint="International (+49…), or national with a default region"
            ),
            _text_input(BLOCK_RANK, "Rank", "500", hint="A whole number from -32768 to 32767"),
            _data_input(optional=True, hint="One key=value per line, e.g. address=martin mendalde"),
        ]
    else:
        lead_hint = "A uid, a lead id or the lead's phone number"
        blocks.append(_text_input(BLOCK_LEAD, "Lead", "lead-40", hint=lead_hint))
    if subcommand == "rank":
        blocks.append(_text_input(BLOCK_RANK, "New rank", "100", hint="A whole number from -32768 to 32767"))
    if subcommand == "set":
        blocks += [
            _text_input(BLOCK_UID, "New uid", "Leave empty to keep it", optional=True),
            _text_input(BLOCK_NUMBER, "New number", "Leave empty to keep it", optional=True),
            _text_input(BLOCK_RANK, "New rank", "Leave empty to keep it", optional=True),
            _data_input(optional=True, hint="One key=value per line; key=null deletes that variable"),
        ]
    view = View(
        type="modal",
        callback_id=CALLBACK_IDS[subcommand],
        title=PlainTextObject(text=_TITLES[subcommand]),
        submit=PlainTextObject(text=_SUBMIT[subcommand]),
        close=PlainTextObject(text="Cancel"),
        private_metadata=origin.encode(),
        blocks=blocks,
    )
    return view.to_dict()


def read_form(
    subcommand: str, values: Mapping[str, Mapping[str, Any]], *, default_region: str | None
) -> Command | dict[str, str]:
    """The command a submitted form asks for, or {block_id: error} for every field that is wrong."""
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}

    def take(block_id: str, parse: Any, *, optional: bool = False) -> None:
        raw = _value(values, block_id)
        if raw is None or not raw.strip():
            if not optional:
                errors[block_id] = _REQUIRED[block_id]
            return
        try:
            parsed[block_id] = parse(raw)
        except FieldError as bad:
            errors[block_id] = bad.message

    take(BLOCK_LIST, lambda raw: raw.strip())
    if subcommand == "add":
        take(BLOCK_UID, parse_uid)
        take(BLOCK_NUMBER, lambda raw: parse_number(raw, default_region))
        take(BLOCK_RANK, parse_rank)
        take(BLOCK_DATA, lambda raw: parse_data_lines(raw, allow_delete=False), optional=True)
    else:
        take(BLOCK_LEAD, lambda raw: raw.strip())
    if subcommand == "rank":
        take(BLOCK_RANK, parse_rank)
    if subcommand == "set":
        take(BLOCK_UID, parse_uid, optional=True)
        take(BLOCK_NUMBER, lambda raw: parse_number(raw, default_region), optional=True)
        take(BLOCK_RANK, parse_rank, optional=True)
        take(BLOCK_DATA, lambda raw: parse_data_lines(raw, allow_delete=True), optional=True)
        if (
            not errors
            and not any(parsed.get(block) for block in (BLOCK_UID, BLOCK_NUMBER, BLOCK_DATA))
            and (BLOCK_RANK not in parsed)
        ):
            errors[BLOCK_DATA] = "Nothing to change: fill in a new uid, number, rank or at least one data line."
    if errors:
        return errors
    list_ref = parsed[BLOCK_LIST]
    if subcommand == "add":
        return AddLead(
            list_ref, parsed[BLOCK_UID], parsed[BLOCK_NUMBER], parsed[BLOCK_RANK], parsed.get(BLOCK_DATA, {})
        )
    if subcommand == "rank":
        return RankLead(list_ref, parsed[BLOCK_LEAD], parsed[BLOCK_RANK])
    if subcommand == "show":
        return ShowLead(list_ref, parsed[BLOCK_LEAD])
    if subcommand == "history":
        return LeadHistory(list_ref, parsed[BLOCK_LEAD])
    return SetLead(
        list_ref,
        parsed[BLOCK_LEAD],
        uid=parsed.get(BLOCK_UID),
        number=parsed.get(BLOCK_NUMBER),
        rank=parsed.get(BLOCK_RANK),
        data=parsed.get(BLOCK_DATA, {}),
    )


_REQUIRED = {
    BLOCK_LIST: "Pick a list.",
    BLOCK_UID: "uid must not be empty.",
    BLOCK_LEAD: "Give the lead's uid or id.",
    BLOCK_NUMBER: "number must not be empty.",
    BLOCK_RANK: "rank must not be empty: give a whole number from -32768 to 32767.",
    BLOCK_DATA: "data must not be empty.",
}


def _value(values: Mapping[str, Mapping[str, Any]], block_id: str) -> str | None:
    """The submitted text of a block: a text input's value or a select's chosen option value."""
    state = values.get(block_id, {}).get(ACTIONS[block_id])
    if not isinstance(state, Mapping):
        return None
    if "selected_option" in state:
        option = state.get("selected_option")
        value = option.get("value") if isinstance(option, Mapping) else None
    else:
        value = state.get("value")
    return value if isinstance(value, str) else None


def _text_input(
    block_id: str, label: str, placeholder: str, *, hint: str | None = None, optional: bool = False
) -> InputBlock:
    return InputBlock(
        block_id=block_id,
        label=label,
        hint=hint,
        optional=optional,
        element=PlainTextInputElement(action_id=ACTIONS[block_id], placeholder=placeholder),
    )


def _data_input(*, optional: bool, hint: str) -> InputBlock:
    return InputBlock(
        block_id=BLOCK_DATA,
        label="Data",
        hint=hint,
        optional=optional,
        element=PlainTextInputElement(action_id=ACTION_DATA, multiline=True, placeholder="new data=new"),
    )
