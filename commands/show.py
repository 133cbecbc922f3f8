"""`/lead show <list> <lead>`: a lead's card and where it stands with the dialer (readers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import registry
from .blocks import lead_message
from .fields import FIELD_LEAD, FIELD_LIST
from .grammar import Token, list_and_lead
from .modals import LEAD_FIELD, LIST_FIELD

if TYPE_CHECKING:
    from bot.pipeline import Leadbot, Request

NAME = "show"


@dataclass(frozen=True, slots=True)
class ShowLead:
    list_ref: str
    lead_ref: str


def parse(args: list[Token], region: str | None) -> ShowLead:
    return ShowLead(*list_and_lead(NAME, args))


async def run(bot: Leadbot, command: ShowLead, request: Request, replace_original: bool) -> dict[str, Any]:
    report = await bot.service.show(command.list_ref, command.lead_ref)
    return lead_message(report, replace_original=replace_original)


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=ShowLead,
        summary="show a lead and where it stands in the hopper",
        usage="/lead show <list> <lead>",
        example='/lead show "Spring leads" lead-40',
        tier=registry.Tier.READ,
        positionals=(FIELD_LIST, FIELD_LEAD),
        parse=parse,
        written=lambda command: ([command.list_ref, command.lead_ref], {}, {}),
        progress=lambda command: f"show {command.lead_ref} in {command.list_ref}",
        form=registry.Form(
            title="Show a lead",
            submit="Show",
            fields=(LIST_FIELD, LEAD_FIELD),
            build=lambda values: ShowLead(values[FIELD_LIST], values[FIELD_LEAD]),
        ),
        run=run,
    )
)
