"""`/lead why <list> <lead>`: why a lead is (not) being dialled, one link of the chain per line (readers).

The chain: a campaign dials the list; the campaign is active (and not in test mode); the lead's status is dialable;
its number is valid E.164; it is in the hopper, or where it waits and what would move it. The last line says it in
one sentence. Costs what /lead show costs (the campaign and the hopper live, the standings from the lookup index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from babelforce.lookup import ListStandings
from babelforce.models import DIALABLE_STATUSES, FINAL_STATUSES, Lead, LeadList

from . import registry
from .blocks import ephemeral, trim
from .caveat_text import escape, unescape
from .caveats import ORDER_MEANING, CaveatKind, DialContext, top_rank
from .fields import FIELD_LEAD, FIELD_LIST, FieldError, parse_number
from .grammar import Token, list_and_lead
from .modals import LEAD_FIELD, LIST_FIELD
from .queue import ABOUT, InLine, QueuePosition, queue_position

if TYPE_CHECKING:
    from bot.pipeline import Leadbot, Request

NAME = "why"
YES = ":white_check_mark:"
NO = ":x:"

BLOCK_WHY_VERDICT = "why_verdict"
BLOCK_WHY_HEADER = "why_header"
BLOCK_WHY_CHAIN = "why_chain"
BLOCK_WHY_ANSWER = "why_answer"
SECTION_TEXT_MAX = 3000


@dataclass(frozen=True, slots=True)
class WhyLead:
    list_ref: str
    lead_ref: str


@dataclass(frozen=True, slots=True)
class Link:
    ok: bool
    text: str  # mrkdwn, escaped


@dataclass(frozen=True, slots=True)
class Diagnosis:
    lead_list: LeadList
    lead: Lead
    context: DialContext
    standings: ListStandings | None


def parse(args: list[Token], region: str | None) -> WhyLead:
    return WhyLead(*list_and_lead(NAME, args))


async def run(bot: Leadbot, command: WhyLead, request: Request, replace_original: bool) -> dict[str, Any]:
    service = bot.service
    lead_list = await service.resolve_list(command.list_ref)
    lead, context = await service.lead_and_context(lead_list, command.lead_ref)
    standings = await service.standings_for(lead_list, context)
    return why_message(Diagnosis(lead_list, lead, context, standings), service.default_region, replace_original)


def chain(diagnosis: Diagnosis, region: str | None) -> tuple[list[Link], str]:
    """The links, in order, and the answer in one sentence."""
    lead, context = diagnosis.lead, diagnosis.context
    campaign = context.campaign
    listed = escape(diagnosis.lead_list.name)
    name = escape(lead.uid or lead.id)
    links: list[Link] = []
    answers: list[str] = []
    if context.campaign_error is not None:
        links.append(
            Link(False, f"The campaign dialling *{listed}* could not be read ({escape(context.campaign_error)}).")
        )
        answers.append("leadbot cannot tell: the campaign could not be read")
    elif campaign is None:
        links.append(Link(False, f"No campaign dials *{listed}*."))
        answers.append(f"{name} is not dialled because no campaign dials {listed}")
    else:
        links.append(Link(True, f"Campaign *{escape(campaign.name)}* dials *{listed}*."))
        if not campaign.active:
            links.append(Link(False, f"*{escape(campaign.name)}* is not active."))
            answers.append(f"{name} is not dialled because campaign {escape(campaign.name)} is not active")
        elif campaign.test_mode:
            links.append(Link(False, f"*{escape(campaign.name)}* is active but in test mode: no real calls."))
            answers.append(f"{name} gets no real call: the campaign is in test mode")
        else:
            links.append(Link(True, f"*{escape(campaign.name)}* is active."))
    status = lead.status
    if status in FINAL_STATUSES:
        links.append(Link(False, f"Status *{escape(status or '')}* is final: it is never dialled again."))
        answers.append(f"{name} has the final status {escape(status or '')}")
    elif status is not None and status not in DIALABLE_STATUSES:
        links.append(
            Link(False, f"Status *{escape(status)}*: called already; back only when the recycling rules call it.")
        )
        answers.append(f"{name} waits for the campaign's recycling rules (status {escape(status)})")
    else:
        links.append(Link(True, f"Status *{escape(status or 'none')}* is dialable."))
    try:
        parse_number(lead.number or "", region)
        links.append(Link(True, "The number is a valid E.164 number."))
    except FieldError:
        links.append(Link(False, "The number is not a valid E.164 number: the dialer cannot call it."))
        answers.append(f"{name}'s number is not valid")
    queue = queue_position(lead, context, diagnosis.standings)
    if context.dialling and not answers:
        link, answer = _queue_link(diagnosis, queue)
        links.append(link)
        answers.append(answer)
    elif context.dialling and queue.where == InLine.IN_HOPPER:
        links.append(Link(True, f"In the hopper, position {queue.position} of {queue.hopper_size}."))
    return links, answers[0] + "."


def _queue_link(diagnosis: Diagnosis, queue: QueuePosition) -> tuple[Link, str]:
    lead, context = diagnosis.lead, diagnosis.context
    name = escape(lead.uid or lead.id)
    if queue.where == InLine.IN_HOPPER:
        return (
            Link(True, f"In the hopper, position {queue.position} of {queue.hopper_size}."),
            f"{name} is loaded: it is dialled after the {(queue.position or 1) - 1} leads ahead of it in the hopper",
        )
    if queue.where == InLine.UNKNOWN:
        reason = escape(context.hopper_error or "no answer")
        return (
            Link(False, f"The hopper could not be read ({reason})."),
            "leadbot cannot tell where it stands: the hopper could not be read",
        )
    ahead = queue.ahead
    where = (
        f"Not in the hopper; waiting with {ABOUT} {ahead} leads ahead of it "
        f"({queue.hopper_size} in the hopper, {queue.waiting_ahead} waiting before it)"
        if ahead is not None
        else f"Not in the hopper; waiting behind its {queue.hopper_size} leads"
    )
    if not context.ranks_matter:
        meaning = ORDER_MEANING.get(context.list_order, "")
        move = f"rank does not matter: list order {escape(context.list_order)} ({meaning})"
    elif diagnosis.standings is None:
        move = "what would move it is not known: the list's export could not be read"
    else:
        top = top_rank(lead, context, diagnosis.standings)
        if top.kind == CaveatKind.TOP_RANK:
            move = f"rank {top.rank} would head the next batch"
        elif top.kind == CaveatKind.ALREADY_TOP:
            move = "it already heads the next batch"
        else:
            move = "no rank would move it ahead"
    return (
        Link(True, f"{where}; {move}."),
        f"{name} is waiting to be loaded: {ABOUT} {ahead} leads ahead of it"
        if ahead is not None
        else f"{name} is waiting to be loaded after the hopper's leads",
    )


def why_message(diagnosis: Diagnosis, region: str | None, replace_original: bool = False) -> dict[str, Any]:
    links, answer = chain(diagnosis, region)
    lead = diagnosis.lead
    verdict = answer.removesuffix(".")
    text = "\n".join(f"{YES if link.ok else NO} {link.text}" for link in links)
    blocks: list[Block] = [
        SectionBlock(block_id=BLOCK_WHY_VERDICT, text=MarkdownTextObject(text=trim(f"*{verdict}*"))),
        HeaderBlock(
            block_id=BLOCK_WHY_HEADER,
            text=PlainTextObject(text=trim(f"Why {lead.uid or lead.id} in {diagnosis.lead_list.name}", 150)),
        ),
        SectionBlock(block_id=BLOCK_WHY_CHAIN, text=MarkdownTextObject(text=trim(text))),
        ContextBlock(block_id=BLOCK_WHY_ANSWER, elements=[MarkdownTextObject(text=trim(f"*Answer:* {answer}"))]),
    ]
    return ephemeral(blocks, unescape(verdict.replace("*", "")), replace_original=replace_original)


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=WhyLead,
        summary=(
            "why a lead is or is not being dialled: each link of the chain (campaign, active, status, number, "
            "hopper or queue) with ✓ or ✗, and the answer in one sentence"
        ),
        usage="/lead why <list> <lead>",
        example='/lead why "Spring leads" lead-10',
        tier=registry.Tier.READ,
        positionals=(FIELD_LIST, FIELD_LEAD),
        parse=parse,
        written=lambda command: ([command.list_ref, command.lead_ref], {}, {}),
        progress=lambda command: f"why {command.lead_ref} in {command.list_ref}",
        form=registry.Form(
            title="Why (not) dialled?",
            submit="Diagnose",
            fields=(LIST_FIELD, LEAD_FIELD),
            build=lambda values: WhyLead(values[FIELD_LIST], values[FIELD_LEAD]),
        ),
        run=run,
    )
)
