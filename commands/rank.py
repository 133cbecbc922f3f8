"""`/lead rank <list> <lead> <rank|top>`: change who is called first when the campaign dials by rank (writers).

A rank is absolute. `top` asks leadbot to work the rank out: the one that makes the lead head the next batch (see
`commands.caveats.top_rank`). A rank typed with a plus sign (`+10`) is refused, naming the lead's rank and the
absolute value it probably meant; `-5` is the absolute rank -5.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from babelforce.models import RANK_MAX, RANK_MIN

from . import registry
from .fields import FIELD_LEAD, FIELD_LIST, FIELD_RANK, FieldError, is_signed_up, parse_rank, quote_input
from .grammar import Refusal, Token, ref, split_arguments
from .modals import LEAD_FIELD, LIST_FIELD

if TYPE_CHECKING:
    from bot.service import LeadService, Plan

NAME = "rank"
POSITIONALS = (FIELD_LIST, FIELD_LEAD, FIELD_RANK)
TOP = "top"
_NUMBER_SHAPED = re.compile(r"\s*[+-]?[0-9]+\s*")


@dataclass(frozen=True, slots=True)
class RankLead:
    list_ref: str
    lead_ref: str
    # The rank to set. With `top` it is None until the plan works it out; a held `top` ("apply anyway?") carries the
    # number the question showed, and is refused if the list no longer gives that number.
    rank: int | None
    top: bool = False
    relative: bool = False  # typed as `+10`: refused by the plan, naming the lead's rank (no write)


class RankTarget(NamedTuple):
    """What the rank argument asks for: a number, `top`, or a number typed with a plus sign."""

    rank: int | None
    top: bool = False
    relative: bool = False


def parse_target(text: str) -> RankTarget:
    """`top` (any case), else a rank (FieldError when it is neither); a leading `+` marks it relative."""
    if text.strip().casefold() == TOP:
        return RankTarget(None, top=True)
    try:
        rank = parse_rank(text)
    except FieldError:
        if text.strip() and not _NUMBER_SHAPED.fullmatch(text):
            raise FieldError(
                FIELD_RANK,
                f"rank must be a whole number from {RANK_MIN} to {RANK_MAX}, or top; got {quote_input(text.strip())}.",
            ) from None
        raise
    return RankTarget(rank, relative=is_signed_up(text))


def parse(args: list[Token], region: str | None) -> RankLead:
    (list_token, lead_token, rank_token), extra = split_arguments(NAME, args)
    if extra:
        raise Refusal(f"rank takes no key=value pairs; {quote_input(extra[0].text)} is one too many.")
    return RankLead(ref(list_token, FIELD_LIST), ref(lead_token, FIELD_LEAD), *parse_target(rank_token.text))


def _build(values: dict[str, Any]) -> RankLead:
    return RankLead(values[FIELD_LIST], values[FIELD_LEAD], *values[FIELD_RANK])


def _rank_text(command: RankLead) -> str:
    """The rank argument as typed: `top`, `+10` or `10` (the audit trail's command text records `top`, not the
    number worked out; the record's before and after hold the numbers)."""
    if command.top:
        return TOP
    return f"+{command.rank}" if command.relative else str(command.rank)


def _progress(command: RankLead) -> str:
    if command.top:
        return f"rank {command.lead_ref} in {command.list_ref} top"
    if command.relative:
        return f"change the rank of {command.lead_ref} in {command.list_ref} by {command.rank:+d}"
    return f"change the rank of {command.lead_ref} in {command.list_ref} to {command.rank}"


async def _plan(service: LeadService, command: RankLead) -> Plan:
    if command.relative:
        assert command.rank is not None  # a relative rank is always a number
        await service.refuse_relative_rank(command.list_ref, command.lead_ref, command.rank)
    if command.top:
        return await service.plan_rank_top(command)
    return await service.plan_update(command, action="rank", lead_ref=command.lead_ref, rank=command.rank)


async def _precheck(service: LeadService, command: RankLead) -> None:
    """The form's checks: the lead exists, and a `+10` is refused next to the rank field with the lead's rank."""
    if command.relative:
        assert command.rank is not None
        await service.refuse_relative_rank(command.list_ref, command.lead_ref, command.rank)
    await service.check_lead_exists(command.list_ref, command.lead_ref)


RANK_TARGET_FIELD = registry.FormField(
    FIELD_RANK,
    "New rank",
    "100, or top",
    hint=f"A whole number from {RANK_MIN} to {RANK_MAX} (absolute), or top: the rank that heads the next batch",
    required_message=f"rank must not be empty: give a whole number from {RANK_MIN} to {RANK_MAX}, or top.",
    parse=lambda raw, region: parse_target(raw),
)

SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=RankLead,
        summary="change a lead's rank (absolute), or `top`: the rank that heads the next batch",
        usage="/lead rank <list> <lead> <rank|top>",
        example='/lead rank "Spring leads" lead-10 100',
        tier=registry.Tier.WRITE,
        positionals=POSITIONALS,
        parse=parse,
        written=lambda command: ([command.list_ref, command.lead_ref, _rank_text(command)], {}, {}),
        progress=_progress,
        form=registry.Form(
            title="Change a rank",
            submit="Change rank",
            fields=(LIST_FIELD, LEAD_FIELD, RANK_TARGET_FIELD),
            build=_build,
        ),
        plan=_plan,
        precheck=_precheck,
    )
)
