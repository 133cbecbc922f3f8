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

from . import registry
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
)
from .registry import FormField

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


LIST_FIELD = FormField(FIELD_LIST, "List", "Type to search the lead-lists", required_message="Pick a list.")
LEAD_FIELD = FormField(
    FIELD_LEAD,
    "Lead",
    "lead-40",
    hint="A uid, a lead id or the lead's phone number",
    required_message="Give the lead's uid or id.",
)
_RANK_HINT = "A whole number from -32768 to 32767"


def number_field(label: str, placeholder: str, *, hint: str | None = None, optional: bool = False) -> FormField:
    return FormField(
        FIELD_NUMBER,
        label,
        placeholder,
        hint=hint,
        optional=optional,
        required_message="number must not be empty.",
        parse=parse_number,
    )


def rank_field(label: str, placeholder: str, *, optional: bool = False) -> FormField:
    return FormField(
        FIELD_RANK,
        label,
        placeholder,
        hint=None if optional else _RANK_HINT,
        optional=optional,
        required_message="rank must not be empty: give a whole number from -32768 to 32767.",
        parse=lambda raw, region: parse_rank(raw),
    )


def data_field(*, allow_delete: bool, hint: str) -> FormField:
    return FormField(
        FIELD_DATA,
        "Data",
        "new data=new",
        hint=hint,
        optional=True,
        multiline=True,
        required_message="data must not be empty.",
        parse=lambda raw, region: parse_data_lines(raw, allow_delete=allow_delete),
    )


def action_id(field_name: str) -> str:
    """The action id of a field's input element (the list select's also names its options requests)."""
    return ACTION_LIST if field_name == FIELD_LIST else f"{field_name}_input"


def form_view(subcommand: str, origin: FormOrigin) -> dict[str, Any]:
    """The modal of one subcommand. The list select loads its options from the bot, so opening costs no API call."""
    spec = registry.get(subcommand)
    if spec.form is None:
        raise registry.UnknownSubcommand(f"subcommand {subcommand!r} has no form")
    view = View(
        type="modal",
        callback_id=spec.callback_id,
        title=PlainTextObject(text=spec.form.title),
        submit=PlainTextObject(text=spec.form.submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=origin.encode(),
        blocks=[_input_block(field) for field in spec.form.fields],
    )
    return view.to_dict()


def read_form(
    subcommand: str, values: Mapping[str, Mapping[str, Any]], *, default_region: str | None
) -> Any | dict[str, str]:
    """The command a submitted form asks for, or {block_id: error} for every field that is wrong."""
    form = registry.get(subcommand).form
    if form is None:
        raise registry.UnknownSubcommand(f"subcommand {subcommand!r} has no form")
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for field in form.fields:
        raw = _value(values, field.name)
        if raw is None or not raw.strip():
            if not field.optional:
                errors[field.name] = field.required_message or f"{field.name} must not be empty."
            continue
        try:
            parsed[field.name] = field.parse(raw, default_region)
        except FieldError as bad:
            errors[field.name] = bad.message
    if errors:
        return errors
    return form.build(parsed)


def _value(values: Mapping[str, Mapping[str, Any]], block_id: str) -> str | None:
    """The submitted text of a block: a text input's value or a select's chosen option value."""
    state = values.get(block_id, {}).get(action_id(block_id))
    if not isinstance(state, Mapping):
        return None
    if "selected_option" in state:
        option = state.get("selected_option")
        value = option.get("value") if isinstance(option, Mapping) else None
    else:
        value = state.get("value")
    return value if isinstance(value, str) else None


def _input_block(field: FormField) -> InputBlock:
    if field.name == FIELD_LIST:
        element: ExternalDataSelectElement | PlainTextInputElement = ExternalDataSelectElement(
            action_id=ACTION_LIST, placeholder=field.placeholder, min_query_length=0
        )
    else:
        element = PlainTextInputElement(
            action_id=action_id(field.name), placeholder=field.placeholder, multiline=field.multiline or None
        )
    return InputBlock(block_id=field.name, label=field.label, hint=field.hint, optional=field.optional, element=element)
