"""`/lead remove <list> <lead>`: stop a lead from being dialled by deleting it (writers), after a confirmation.

babelforce's outbound API has no do-not-call list and a lead's status is read-only, so deleting the lead is the only
stop it offers. Two steps: the command (or its form) reads the lead and asks, with its card and a Remove button
behind Slack's confirm dialog; the click deletes it through the write pipeline (audit record first, with the whole
lead, so Undo can add it back). The reply reads the hopper again: a lead already loaded may still be called by that
batch (the API cannot take it out), never by a later one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import registry
from .blocks import LeadReport, removal_question
from .fields import FIELD_LEAD, FIELD_LIST
from .grammar import Token, list_and_lead
from .modals import LEAD_FIELD, LIST_FIELD

if TYPE_CHECKING:
    from bot.service import LeadService, Plan

NAME = "remove"

#: Why removing means deleting, said before the user confirms.
WHY_DELETE = "babelforce's API has no do-not-call list and a lead's status cannot be set, so removing deletes the lead."


@dataclass(frozen=True, slots=True)
class RemoveLead:
    list_ref: str
    lead_ref: str


def parse(args: list[Token], region: str | None) -> RemoveLead:
    return RemoveLead(*list_and_lead(NAME, args))


def status_and_calls(status: Any, call_count: Any) -> str:
    """`status no_answer, 2 calls`: a lead's call history in a few words."""
    calls = call_count or 0
    return f"status {status or '–'}, {calls} call{'' if calls == 1 else 's'}"


def call_history(status: Any, call_count: Any) -> str:
    """`its call history (status no_answer, 2 calls)`: what a removed lead loses for good."""
    return f"its call history ({status_and_calls(status, call_count)})"


def undo_note(status: Any, call_count: Any) -> str:
    """What Undo can and cannot give back, said before the delete and after it."""
    return (
        "Undo adds it back as a new lead with the same uid, number, rank and data; "
        f"{call_history(status, call_count)} does not come back."
    )


async def _plan(service: LeadService, command: RemoveLead) -> Plan:
    plan = await service.plan_remove(command, lead_ref=command.lead_ref)
    assert plan.before is not None  # a remove's plan always reads the lead
    return replace(plan, notes=(undo_note(plan.before.status, plan.before.call_count),))


def _question(plan: Plan, token: str, changed: bool) -> dict[str, Any]:
    """The lead's card, whether a loaded batch may still call it, and the Remove button (Slack's confirm dialog)."""
    assert plan.before is not None
    report = LeadReport(
        "remove", plan.lead_list, plan.before, plan.context, plan.predicted, notes=(WHY_DELETE, *plan.notes)
    )
    return removal_question(report, token, changed=changed)


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=RemoveLead,
        summary="remove a lead so that no later batch dials it (asks first; Undo adds it back as a new lead)",
        usage="/lead remove <list> <lead>",
        example='/lead remove "Spring leads" lead-40',
        tier=registry.Tier.WRITE,
        positionals=(FIELD_LIST, FIELD_LEAD),
        parse=parse,
        written=lambda command: ([command.list_ref, command.lead_ref], {}, {}),
        progress=lambda command: f"remove {command.lead_ref} from {command.list_ref}",
        form=registry.Form(
            title="Remove a lead",
            submit="Review",
            fields=(LIST_FIELD, LEAD_FIELD),
            build=lambda values: RemoveLead(values[FIELD_LIST], values[FIELD_LEAD]),
        ),
        plan=_plan,
        question=_question,
        done_verb="removed",
    )
)
