"""`/lead hopper <list or campaign>`: what the dialer has loaded, in dial order, and who comes next (readers).

The campaign and its hopper are read live; ranks and statuses come from the list's export through the lookup index
(at most one export per cache period), so the next batch is "about": it may be minutes old.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from babelforce.lookup import LeadStanding, ListStandings
from babelforce.models import HopperEntry, LeadList, ListOrder

from . import registry
from .blocks import ephemeral, one_line, pack_lines, trim
from .caveat_text import escape, unescape
from .caveats import ORDER_MEANING, DialContext
from .fields import FIELD_LIST, quote_input
from .grammar import Refusal, Token
from .modals import LIST_FIELD
from .queue import ABOUT, next_batch, waiting_count

if TYPE_CHECKING:
    from bot.pipeline import Leadbot, Request

NAME = "hopper"
FIELD_TARGET = "list_or_campaign"

ACTION_HOPPER_REFRESH = "lead_hopper_refresh"  # value: the campaign id (or the list id when no campaign dials it)

BLOCK_HOPPER_VERDICT = "hopper_verdict"
BLOCK_HOPPER_HEADER = "hopper_header"
BLOCK_HOPPER_ORDER = "hopper_order"
BLOCK_HOPPER_LINES = "hopper_lines"  # hopper_lines_1, hopper_lines_2 …
BLOCK_HOPPER_NEXT = "hopper_next"  # hopper_next_1, hopper_next_2 …
BLOCK_HOPPER_NOTE = "hopper_note"
BLOCK_HOPPER_ACTIONS = "hopper_actions"

SECTION_TEXT_MAX = 3000
HEADER_MAX = 150
HOPPER_SECTIONS_MAX = 20  # 50 blocks in a message: room for both parts and the rest
NEXT_SHOWN_MAX = 20  # the next batch's leads listed; the rest are counted
#: The fill is "N loaded" only: babelforce's API (reference spec: Campaign, CampaignRealtimeStatus, HopperItem) has no
#: hopper size or minimum field, and its help article says support sets the minimum per customer.
HOPPER_MINIMUM_NOTE = (
    "babelforce's API does not give the hopper's minimum size (20 by default; babelforce support can change it)."
)


@dataclass(frozen=True, slots=True)
class ShowHopper:
    target: str  # a list's or a campaign's name or id

    @property
    def list_ref(self) -> str:
        return self.target


@dataclass(frozen=True, slots=True)
class HopperView:
    """The hopper of the campaign dialling `lead_list`, and the list's standings (None: not read)."""

    lead_list: LeadList
    context: DialContext
    standings: ListStandings | None


def parse(args: list[Token], region: str | None) -> ShowHopper:
    """The words make one name (quoted or not): a list's or a campaign's name or id."""
    pair = next((token for token in args if token.key is not None), None)
    if pair is not None:
        raise Refusal(
            f"hopper takes a list's or a campaign's name or id, not key=value pairs; {quote_input(pair.text)} is one.",
            FIELD_TARGET,
        )
    name = " ".join(token.text.strip() for token in args).strip()
    if not name:
        raise Refusal("hopper needs a list or a campaign: give its name or id.", FIELD_TARGET)
    return ShowHopper(name)


async def run(bot: Leadbot, command: ShowHopper, request: Request, replace_original: bool) -> dict[str, Any]:
    return hopper_message(await read_hopper(bot, command.target), replace_original=replace_original)


async def read_hopper(bot: Leadbot, target: str) -> HopperView:
    """A campaign by name or id first (the cached directory), else a list; then the campaign and hopper, live."""
    from bot.explain import UserFacingError  # the bot's types at run time only: commands/ never imports bot/ early

    service = bot.service
    lead_list: LeadList | None = None
    try:
        campaign = await bot.campaigns.find(target)
    except UserFacingError:
        campaign = None
    if campaign is not None and campaign.lead_list is not None:
        lead_list = await service.resolve_list(campaign.lead_list.id)
    elif campaign is not None:
        raise UserFacingError(f"Campaign {campaign.name!r} has no list, so it has no hopper.")
    else:
        lead_list = await service.resolve_list(target)
    context = await service.campaign_context(lead_list)
    standings = await service.standings_for(lead_list, context)
    return HopperView(lead_list, context, standings)


def hopper_verdict(view: HopperView) -> str:
    context = view.context
    campaign = context.campaign
    if context.campaign_error is not None:
        return f"The campaign dialling {view.lead_list.name} could not be read ({context.campaign_error})"
    if campaign is None:
        return f"No campaign dials {view.lead_list.name}: nothing is loaded"
    if not context.dialling:
        return f"{campaign.name} is not active: nothing is being dialled"
    if context.hopper is None:
        return f"{campaign.name}: its hopper could not be read ({context.hopper_error or 'no answer'})"
    meaning = ORDER_MEANING.get(context.list_order, context.list_order)
    test = " (test mode: no real calls)" if campaign.test_mode else ""
    if not context.hopper:
        return f"{campaign.name}: hopper empty{test}, dialling by {meaning}"
    return f"{campaign.name}: {len(context.hopper)} loaded{test}, dialling by {meaning}"


def entry_line(index: int, entry: HopperEntry, ranks: dict[str, int | None]) -> str:
    """`3` lead-48 · rank 48 · pending"""
    position = entry.order if entry.order is not None else index
    name = escape(one_line(entry.uid or entry.id or "an unnamed entry"))
    rank = ranks.get(entry.id) if entry.id is not None else None
    parts = [f"`{position}` {name}", f"rank {rank}" if rank is not None else "rank ?"]
    parts.append(escape(one_line(entry.status or "no status")))
    return " · ".join(parts)


def standing_line(index: int, lead: LeadStanding) -> str:
    rank = f"rank {lead.rank}" if lead.rank is not None else "no rank"
    status = escape(one_line(lead.status or "no status"))
    return f"`{index}` {escape(one_line(lead.uid or lead.id))} · {rank} · {status}"


def order_line(view: HopperView) -> str:
    context = view.context
    campaign = context.campaign
    listed = f"list *{escape(view.lead_list.name)}*"
    if campaign is None:
        return f"No campaign dials {listed}."
    order = context.list_order
    meaning = ORDER_MEANING.get(order, "")
    said = f"list order {escape(order)} ({meaning})"
    if not campaign.list_order:
        said += ", babelforce's default"
    if order in (ListOrder.UP, ListOrder.DOWN):
        said += "; rank does not matter"
    return f"Campaign *{escape(campaign.name)}* (`{campaign.id}`) dials {listed} · {said}."


def hopper_message(view: HopperView, *, replace_original: bool = False) -> dict[str, Any]:
    context = view.context
    verdict = hopper_verdict(view)
    campaign = context.campaign
    blocks: list[Block] = [
        SectionBlock(block_id=BLOCK_HOPPER_VERDICT, text=MarkdownTextObject(text=trim(f"*{escape(verdict)}*"))),
        HeaderBlock(
            block_id=BLOCK_HOPPER_HEADER,
            text=PlainTextObject(
                text=trim(f"Hopper of {campaign.name if campaign else view.lead_list.name}", HEADER_MAX)
            ),
        ),
        SectionBlock(block_id=BLOCK_HOPPER_ORDER, text=MarkdownTextObject(text=trim(order_line(view)))),
    ]
    notes: list[str] = []
    hopper = context.hopper if context.dialling else None
    if hopper is not None:
        loaded = {entry.id for entry in hopper if entry.id is not None}
        ranks = view.standings.ranks_of(loaded) if view.standings is not None else {}
        lines = [entry_line(index, entry, ranks) for index, entry in enumerate(hopper, 1)]
        if lines:
            sections, shown = pack_lines(
                [f"*In the hopper, in dial order ({len(lines)})*", *lines], HOPPER_SECTIONS_MAX, room=50
            )  # room for "… and N more"
            if shown - 1 < len(lines):
                sections[-1] += f"\n… and {len(lines) - shown + 1} more"
            for index, text in enumerate(sections, 1):
                blocks.append(
                    SectionBlock(block_id=f"{BLOCK_HOPPER_LINES}_{index}", text=MarkdownTextObject(text=text))
                )
        blocks.append(_next_block(view, hopper))
        notes.append(HOPPER_MINIMUM_NOTE)
        if view.standings is None:
            notes.append("The list's export could not be read: ranks and the next batch are not known.")
        else:
            notes.append("Ranks, statuses and the next batch come from the list's export, up to 5 minutes old.")
    notes.append("Refresh reads the campaign and its hopper again.")
    blocks.append(ContextBlock(block_id=BLOCK_HOPPER_NOTE, elements=[MarkdownTextObject(text=" ".join(notes))]))
    refresh_value = campaign.id if campaign is not None else view.lead_list.id
    blocks.append(
        ActionsBlock(
            block_id=BLOCK_HOPPER_ACTIONS,
            elements=[
                ButtonElement(
                    text=PlainTextObject(text="Refresh"), action_id=ACTION_HOPPER_REFRESH, value=refresh_value
                )
            ],
        )
    )
    return ephemeral(blocks, unescape(verdict), replace_original=replace_original)


def _next_block(view: HopperView, hopper: Sequence[HopperEntry]) -> SectionBlock:
    context = view.context
    if view.standings is None:
        text = "*Next batch*\nNot known: the list's export could not be read."
    else:
        waiting = waiting_count(view.standings, hopper, context.list_id)
        batch = next_batch(view.standings, hopper, context.list_order, context.list_id, limit=NEXT_SHOWN_MAX)
        order = context.list_order
        basis = ORDER_MEANING.get(order, escape(order))
        if order in (ListOrder.UP, ListOrder.DOWN):
            basis += ", by the export's row order"
        title = f"*Next batch* ({ABOUT} {waiting} dialable leads waiting, {basis})"
        text = title
        shown = 0
        for index, lead in enumerate(batch, 1):
            line = standing_line(index, lead)
            if len(text) + len(line) + 40 > SECTION_TEXT_MAX:  # room for "… and N more"
                break
            text += "\n" + line
            shown += 1
        if not batch:
            text += "\nNone: no dialable lead is waiting outside the hopper."
        elif shown < waiting:
            text += f"\n… and {waiting - shown} more"
    return SectionBlock(block_id=f"{BLOCK_HOPPER_NEXT}_1", text=MarkdownTextObject(text=trim(text)))


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=ShowHopper,
        summary=(
            "what a campaign's hopper holds, in dial order (position, uid, rank, status), and the next batch the "
            "dialer would load, by the list order; give a list or a campaign"
        ),
        usage="/lead hopper <list or campaign>",
        example='/lead hopper "Spring outreach"',
        tier=registry.Tier.READ,
        positionals=(FIELD_TARGET,),
        parse=parse,
        written=lambda command: ([command.target], {}, {}),
        progress=lambda command: f"show the hopper of {command.target}",
        form=registry.Form(
            title="Show a hopper",
            submit="Show",
            fields=(LIST_FIELD,),
            build=lambda values: ShowHopper(values[FIELD_LIST]),
        ),
        run=run,
        log_ref=lambda command: command.target,
    )
)
