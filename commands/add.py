"""`/lead add <list> <uid> <number> <rank> [key=value ...]`: a new lead in a list (writers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import registry
from .fields import (
    FIELD_DATA,
    FIELD_LIST,
    FIELD_NUMBER,
    FIELD_RANK,
    FIELD_UID,
    FieldError,
    parse_number,
    parse_rank,
    parse_uid,
)
from .grammar import (
    MAX_NUMBER_PIECES,
    Token,
    bare,
    count_leading,
    data_pairs,
    is_number,
    is_number_piece,
    is_valid,
    ref,
    spaced_equals,
    split_arguments,
    too_many,
)
from .modals import LIST_FIELD, data_field, number_field, rank_field

if TYPE_CHECKING:
    from bot.service import LeadService, Plan

NAME = "add"
POSITIONALS = (FIELD_LIST, FIELD_UID, FIELD_NUMBER, FIELD_RANK)


@dataclass(frozen=True, slots=True)
class AddLead:
    list_ref: str
    uid: str
    number: str  # E.164
    rank: int
    data: dict[str, str] = field(default_factory=dict)


def parse(args: list[Token], region: str | None) -> AddLead:
    """An unquoted number typed with spaces (`+49 151 000 000 40`) is taken whole: every token between the uid
    and the rank looks like a piece of it, and no valid command reads otherwise."""
    if refusal := spaced_equals(NAME, args):
        raise refusal
    leading = count_leading(args)
    if (stray := _stray_word(args, leading, region)) is not None:
        raise bare(NAME, args, stray)
    pieces = args[2 : leading - 1]
    joined = (
        leading > len(POSITIONALS)
        and is_number_piece(pieces[0], first=True)
        and all(is_number_piece(piece, first=False) for piece in pieces[1:])
    )
    if joined:
        merged = [args[0], args[1], Token(" ".join(piece.text for piece in pieces)), *args[leading - 1 :]]
        (list_token, uid_token, number_token, rank_token), pairs = split_arguments(NAME, merged)
    else:
        (list_token, uid_token, number_token, rank_token), pairs = split_arguments(NAME, args)
    list_ref = ref(list_token, FIELD_LIST)
    uid = parse_uid(uid_token.text)
    try:
        number = parse_number(number_token.text, region)
    except FieldError:
        if joined and is_number(pieces[0].text, region):  # a number, then one argument too many
            raise too_many(NAME, args, leading) from None
        raise
    rank = parse_rank(rank_token.text)
    data = data_pairs(NAME, pairs, allow_delete=False)
    # allow_delete=False guarantees no None values.
    return AddLead(list_ref, uid, number, rank, {key: value for key, value in data.items() if value is not None})


def _stray_word(args: list[Token], leading: int, region: str | None) -> int | None:
    """The index of a word typed after a complete add (`add L u1 +4916098119998 5 city`), which belongs in the
    data part, not among the positionals; None when no reading of the positionals is complete before a word."""
    if leading <= len(POSITIONALS) or not args[0].text.strip() or not is_valid(parse_uid, args[1].text):
        return None
    for rank_at in range(3, min(leading - 1, 3 + MAX_NUMBER_PIECES)):
        # The number is args[2:rank_at]: one token, or the pieces of one typed with spaces.
        if rank_at > 3 and not (
            is_number_piece(args[2], first=True) and is_number_piece(args[rank_at - 1], first=False)
        ):
            return None
        if is_number_piece(args[rank_at + 1], first=False):  # digits: still the number or the rank
            continue
        number = " ".join(piece.text for piece in args[2:rank_at])
        if is_number(number, region) and is_valid(parse_rank, args[rank_at].text):
            return rank_at + 1
        return None
    return None


def _build(values: dict[str, Any]) -> AddLead:
    return AddLead(
        values[FIELD_LIST], values[FIELD_UID], values[FIELD_NUMBER], values[FIELD_RANK], values.get(FIELD_DATA, {})
    )


def _written(command: AddLead) -> registry.Written:
    return [command.list_ref, command.uid, command.number, str(command.rank)], {}, dict(command.data)


async def _plan(service: LeadService, command: AddLead) -> Plan:
    return await service.plan_add(command, uid=command.uid, number=command.number, rank=command.rank, data=command.data)


async def _precheck(service: LeadService, command: AddLead) -> None:
    await service.check_uid_free(command.list_ref, command.uid)


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=AddLead,
        summary="add a new lead to a list",
        usage="/lead add <list> <uid> <number> <rank> [key=value ...]",
        example='/lead add "Spring leads" uuid_100 4916098119998 500 address="martin mendalde" "new data"=new',
        tier=registry.Tier.WRITE,
        positionals=POSITIONALS,
        parse=parse,
        written=_written,
        progress=lambda command: f"add lead {command.uid} to {command.list_ref}",
        form=registry.Form(
            title="Add a lead",
            submit="Add",
            fields=(
                LIST_FIELD,
                registry.FormField(
                    FIELD_UID,
                    "uid",
                    "The customer's own id, unique in the list",
                    required_message="uid must not be empty.",
                    parse=lambda raw, region: parse_uid(raw),
                ),
                number_field(
                    "Number", "+4916098119998", hint="International (+49…), or national with a default region"
                ),
                rank_field("Rank", "500"),
                data_field(allow_delete=False, hint="One key=value per line, e.g. address=martin mendalde"),
            ),
            build=_build,
        ),
        plan=_plan,
        precheck=_precheck,
        done_verb="added",
        log_ref=lambda command: command.uid,
    )
)
