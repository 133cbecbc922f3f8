"""`/lead set <list> <lead> key=value ...`: change a lead's uid, number, rank or data variables (writers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import registry
from .fields import (
    FIELD_DATA,
    FIELD_LEAD,
    FIELD_LIST,
    FIELD_NUMBER,
    FIELD_RANK,
    FIELD_UID,
    FieldError,
    is_signed_up,
    parse_number,
    parse_rank,
    parse_uid,
)
from .grammar import (
    SET_FIELDS,
    WORD,
    Refusal,
    Token,
    bare,
    check_writable,
    count_leading,
    data_pairs,
    is_number,
    is_number_piece,
    ref,
    spaced_equals,
    split_arguments,
    value_or_delete,
)
from .modals import LEAD_FIELD, LIST_FIELD, data_field, number_field

if TYPE_CHECKING:
    from bot.service import LeadService, Plan

NAME = "set"


@dataclass(frozen=True, slots=True)
class SetLead:
    """A partial update: only the fields given change; a data value None deletes that variable."""

    list_ref: str
    lead_ref: str
    uid: str | None = None
    number: str | None = None
    rank: int | None = None
    data: dict[str, str | None] = field(default_factory=dict)
    relative_rank: bool = False  # rank typed as `+10`: refused by the plan, naming the lead's rank (no write)


def parse(args: list[Token], region: str | None) -> SetLead:
    if refusal := spaced_equals("set", args):
        raise refusal
    if count_leading(args) == 3 and (args[0].key_quoted or (len(args) == 3 and WORD.fullmatch(args[2].text))):
        # `set "Spring leads" lead-5 city`: a key without its value rather than a list name with spaces (the list
        # is quoted, or nothing follows that could be the changes and the word looks like a key, not a lead).
        ref(args[0], FIELD_LIST)
        ref(args[1], FIELD_LEAD)
        raise bare("set", args, 2)
    (list_token, lead_token), changes = split_arguments("set", args)
    list_ref, lead_ref = ref(list_token, FIELD_LIST), ref(lead_token, FIELD_LEAD)
    if not changes:
        raise Refusal("set needs at least one key=value change after the lead, like rank=200.")
    uid: str | None = None
    number: str | None = None
    rank: int | None = None
    relative_rank = False
    seen: set[str] = set()
    data_tokens: list[Token] = []
    index = 0
    while index < len(changes):
        token = changes[index]
        index += 1
        if token.key is None:
            raise bare("set", changes, index - 1)
        name = token.key.strip().lower() if not token.key_quoted else None
        if name not in SET_FIELDS:
            check_writable(token)
            data_tokens.append(token)
            continue
        if name in seen:
            raise Refusal(f"{name} is given twice.", name)
        seen.add(name)
        value = value_or_delete(token)
        if value is None:
            raise Refusal(f"{name} cannot be deleted, only changed; every lead has one.", name)
        if name == FIELD_UID:
            uid = parse_uid(value)
        elif name == FIELD_NUMBER:
            # number=+49 151 000 000 40 typed without quotes: the bare digit groups after it belong to it.
            given = index
            if not token.value_quoted:
                while index < len(changes) and is_number_piece(changes[index], first=False):
                    value += " " + changes[index].text
                    index += 1
            try:
                number = parse_number(value, region)
            except FieldError:
                if index > given and is_number(token.value or "", region):  # a number, then a stray word
                    raise bare("set", changes, given) from None
                raise
        else:
            if value.strip().casefold() == "top":
                raise Refusal("rank=top works with /lead rank only: /lead rank <list> <lead> top.", name)
            rank, relative_rank = parse_rank(value), is_signed_up(value)
    data = data_pairs("set", data_tokens, allow_delete=True)
    return SetLead(list_ref, lead_ref, uid=uid, number=number, rank=rank, data=data, relative_rank=relative_rank)


def _build(values: dict[str, Any]) -> SetLead | dict[str, str]:
    if not any(values.get(name) for name in (FIELD_UID, FIELD_NUMBER, FIELD_DATA)) and FIELD_RANK not in values:
        return {FIELD_DATA: "Nothing to change: fill in a new uid, number, rank or at least one data line."}
    rank, relative_rank = values.get(FIELD_RANK, (None, False))
    return SetLead(
        values[FIELD_LIST],
        values[FIELD_LEAD],
        uid=values.get(FIELD_UID),
        number=values.get(FIELD_NUMBER),
        rank=rank,
        data=values.get(FIELD_DATA, {}),
        relative_rank=relative_rank,
    )


def _written(command: SetLead) -> registry.Written:
    named = ((FIELD_UID, command.uid), (FIELD_NUMBER, command.number), (FIELD_RANK, command.rank))
    fields = {name: str(value) for name, value in named if value is not None}
    if command.relative_rank and command.rank is not None:
        fields[FIELD_RANK] = f"+{command.rank}"
    return [command.list_ref, command.lead_ref], fields, dict(command.data)


async def _plan(service: LeadService, command: SetLead) -> Plan:
    if command.relative_rank and command.rank is not None:
        await service.refuse_relative_rank(command.list_ref, command.lead_ref, command.rank, spelled="rank=")
    return await service.plan_update(
        command,
        action="set",
        lead_ref=command.lead_ref,
        uid=command.uid,
        number=command.number,
        rank=command.rank,
        data=command.data,
    )


async def _precheck(service: LeadService, command: SetLead) -> None:
    if command.relative_rank and command.rank is not None:  # next to the form's rank field: a bare number to write
        await service.refuse_relative_rank(command.list_ref, command.lead_ref, command.rank)
    lead = await service.check_lead_exists(command.list_ref, command.lead_ref)
    if command.uid is not None and command.uid != lead.uid:
        await service.check_uid_free(command.list_ref, command.uid, for_set=True)


_KEEP = "Leave empty to keep it"

#: The new rank, and whether it was typed as `+10` (refused naming the lead's rank).
_RANK_FIELD = registry.FormField(
    FIELD_RANK,
    "New rank",
    _KEEP,
    optional=True,
    required_message="rank must not be empty.",
    parse=lambda raw, region: (parse_rank(raw), is_signed_up(raw)),
)

SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=SetLead,
        summary="change a lead's uid, number, rank or data variables",
        usage="/lead set <list> <lead> key=value ...",
        example='/lead set "Spring leads" lead-12 rank=200 "new data"=new "old data"=null',
        tier=registry.Tier.WRITE,
        positionals=(FIELD_LIST, FIELD_LEAD),
        parse=parse,
        written=_written,
        progress=lambda command: f"change {command.lead_ref} in {command.list_ref}",
        form=registry.Form(
            title="Edit a lead",
            submit="Save",
            fields=(
                LIST_FIELD,
                LEAD_FIELD,
                registry.FormField(
                    FIELD_UID, "New uid", _KEEP, optional=True, parse=lambda raw, region: parse_uid(raw)
                ),
                number_field("New number", _KEEP, optional=True),
                _RANK_FIELD,
                data_field(allow_delete=True, hint="One key=value per line; key=null deletes that variable"),
            ),
            build=_build,
        ),
        plan=_plan,
        precheck=_precheck,
    )
)
