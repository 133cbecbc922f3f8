"""`/lead history <list> <lead>`: who changed a lead through leadbot, when, and what (readers; no babelforce write)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import registry
from .fields import FIELD_LEAD, FIELD_LIST
from .grammar import Token, list_and_lead
from .modals import LEAD_FIELD, LIST_FIELD

if TYPE_CHECKING:
    from bot.pipeline import Leadbot, Request
    from bot.service import LeadService

NAME = "history"


@dataclass(frozen=True, slots=True)
class LeadHistory:
    """The lead's recent changes, from leadbot's audit trail (no babelforce write)."""

    list_ref: str
    lead_ref: str


def parse(args: list[Token], region: str | None) -> LeadHistory:
    return LeadHistory(*list_and_lead(NAME, args))


async def run(bot: Leadbot, command: LeadHistory, request: Request, replace_original: bool) -> dict[str, Any]:
    return await bot.history.reply(
        command.list_ref, command.lead_ref, replace_original=replace_original, requester=request.requester
    )


async def _precheck(service: LeadService, command: LeadHistory) -> None:
    """Only the list: a lead babelforce no longer has (an undone add) still has a history."""
    await service.resolve_list(command.list_ref)


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=LeadHistory,
        summary="who changed a lead through leadbot, when, and what",
        usage="/lead history <list> <lead>",
        example='/lead history "Spring leads" lead-10',
        tier=registry.Tier.READ,
        positionals=(FIELD_LIST, FIELD_LEAD),
        parse=parse,
        written=lambda command: ([command.list_ref, command.lead_ref], {}, {}),
        progress=lambda command: f"the history of {command.lead_ref} in {command.list_ref}",
        form=registry.Form(
            title="A lead's history",
            submit="Show history",
            fields=(LIST_FIELD, LEAD_FIELD),
            build=lambda values: LeadHistory(values[FIELD_LIST], values[FIELD_LEAD]),
        ),
        run=run,
        precheck=_precheck,
    )
)
