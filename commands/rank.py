"""`/lead rank <list> <lead> <rank>`: change who is called first when the campaign dials by rank (writers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import registry
from .fields import FIELD_LEAD, FIELD_LIST, FIELD_RANK, parse_rank, quote_input
from .grammar import Refusal, Token, ref, split_arguments
from .modals import LEAD_FIELD, LIST_FIELD, rank_field

if TYPE_CHECKING:
    from bot.service import LeadService, Plan

NAME = "rank"
POSITIONALS = (FIELD_LIST, FIELD_LEAD, FIELD_RANK)


@dataclass(frozen=True, slots=True)
class RankLead:
    list_ref: str
    lead_ref: str
    rank: int


def parse(args: list[Token], region: str | None) -> RankLead:
    (list_token, lead_token, rank_token), extra = split_arguments(NAME, args)
    if extra:
        raise Refusal(f"rank takes no key=value pairs; {quote_input(extra[0].text)} is one too many.")
    return RankLead(ref(list_token, FIELD_LIST), ref(lead_token, FIELD_LEAD), parse_rank(rank_token.text))


def _build(values: dict[str, Any]) -> RankLead:
    return RankLead(values[FIELD_LIST], values[FIELD_LEAD], values[FIELD_RANK])


async def _plan(service: LeadService, command: RankLead) -> Plan:
    return await service.plan_update(command, action="rank", lead_ref=command.lead_ref, rank=command.rank)


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=RankLead,
        summary="change a lead's rank: who is called first when the campaign dials by rank",
        usage="/lead rank <list> <lead> <rank>",
        example='/lead rank "Spring leads" lead-10 100',
        tier=registry.Tier.WRITE,
        positionals=POSITIONALS,
        parse=parse,
        written=lambda command: ([command.list_ref, command.lead_ref, str(command.rank)], {}, {}),
        progress=lambda command: f"change the rank of {command.lead_ref} in {command.list_ref} to {command.rank}",
        form=registry.Form(
            title="Change a rank",
            submit="Change rank",
            fields=(LIST_FIELD, LEAD_FIELD, rank_field("New rank", "100")),
            build=_build,
        ),
        plan=_plan,
    )
)
