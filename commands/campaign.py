"""`/lead campaign [name]`: every campaign at a glance, or one campaign's live status and statistics (readers).

Without a name it lists every campaign, one line each (active or not, its list, its list order, the hopper's fill),
so it needs no form. With a name (any case, quotes optional: the name is the only argument) or an id, it shows
what babelforce's status and statistics endpoints give, labelled plainly: babelforce leaves their figures
free-form, so every key it sends is shown, known ones with a plain label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from babelforce.models import AgentStatistics, Campaign, CampaignStatus

from . import registry
from .blocks import ephemeral, one_line, pack_lines, slack_date, trim
from .caveat_text import escape
from .caveats import ORDER_MEANING
from .fields import quote_input
from .grammar import Refusal, Token

if TYPE_CHECKING:
    from bot.pipeline import Leadbot, Request

NAME = "campaign"
FIELD_CAMPAIGN = "campaign"

BLOCK_CAMPAIGN_VERDICT = "campaign_verdict"
BLOCK_CAMPAIGN_HEADER = "campaign_header"
BLOCK_CAMPAIGN_FIELDS = "campaign_fields"
BLOCK_CAMPAIGN_STATUS = "campaign_status"
BLOCK_CAMPAIGN_AGENTS = "campaign_agents"
BLOCK_CAMPAIGN_LINES = "campaign_lines"  # the overview's lines: campaign_lines_1, campaign_lines_2 …
BLOCK_CAMPAIGN_NOTE = "campaign_note"

SECTION_TEXT_MAX = 3000
HEADER_MAX = 150
OVERVIEW_SECTIONS_MAX = 40  # of 50 blocks in a message: room for the header, verdict and note
AGENTS_SHOWN_MAX = 15
FIGURES_SHOWN_MAX = 30  # figures of one free-form object; the rest are counted

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Part(Generic[T]):
    """One read of a reply that may fail on its own: its value, or why babelforce could not give it."""

    value: T | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CampaignRow:
    """One campaign of the overview; `hopper` is its hopper's fill, read only when it is dialling (None)."""

    campaign: Campaign
    hopper: Part[int] | None = None


@dataclass(frozen=True, slots=True)
class CampaignDetail:
    campaign: Campaign
    hopper: Part[int]
    status: Part[CampaignStatus]
    agents: Part[tuple[AgentStatistics, ...]]


@dataclass(frozen=True, slots=True)
class ShowCampaign:
    """A campaign by name or id, or (None) every campaign."""

    campaign_ref: str | None = None

    @property
    def list_ref(self) -> str:
        """A campaign is named, not a list (registry.TargetsList): nothing to name here."""
        return ""


def parse(args: list[Token], region: str | None) -> ShowCampaign:
    """No arguments: every campaign. Otherwise the words make one name, quoted or not (it is the only argument)."""
    if not args:
        return ShowCampaign()
    pair = next((token for token in args if token.key is not None), None)
    if pair is not None:
        raise Refusal(
            f"campaign takes a campaign's name or id, not key=value pairs; {quote_input(pair.text)} is one; put a "
            'name with = in double quotes, like "A=B".',
            FIELD_CAMPAIGN,
        )
    name = " ".join(token.text.strip() for token in args).strip()
    if not name:
        raise Refusal("campaign must not be empty; give a campaign's name or id, or nothing to list them all.")
    return ShowCampaign(name)


async def run(bot: Leadbot, command: ShowCampaign, request: Request, replace_original: bool) -> dict[str, Any]:
    if command.campaign_ref is None:
        return overview_message(await bot.campaigns.overview(), replace_original=replace_original)
    return campaign_message(await bot.campaigns.detail(command.campaign_ref), replace_original=replace_original)


# ---------------------------------------------------------------------- the overview


def overview_line(row: CampaignRow) -> str:
    """One campaign in one mrkdwn line: name, active or not, its list, its order and the hopper's fill."""
    campaign = row.campaign
    parts = [f"*{escape(campaign.name)}*", _activity(campaign)]
    if campaign.lead_list is None:
        parts.append("no list")
    else:
        parts.append(f"list {escape(campaign.lead_list.name or campaign.lead_list.id)}")
    parts.append(order_text(campaign.list_order))
    parts.append(hopper_text(campaign, row.hopper))
    return " · ".join(parts)


def hopper_text(campaign: Campaign, hopper: Part[int] | None) -> str:
    """The hopper's fill as one phrase ("hopper 20 loaded", "hopper empty", "not dialling")."""
    if not campaign.active or campaign.lead_list is None:
        return "not dialling"
    if hopper is None:
        return "hopper not read"
    if hopper.value is None:
        return f"hopper unreadable ({escape(hopper.error or 'no answer')})"
    return f"hopper {hopper.value} loaded" if hopper.value else "*hopper empty*"


def order_text(order: str | None) -> str:
    if not order:
        return "list order not set"
    meaning = ORDER_MEANING.get(order)
    return f"{escape(order)} ({meaning})" if meaning else escape(order)


def _activity(campaign: Campaign) -> str:
    if campaign.active is None:
        return "active: unknown"
    if not campaign.active:
        return "_not active_"
    return "active (test mode)" if campaign.test_mode else "active"


def overview_message(rows: Sequence[CampaignRow], *, replace_original: bool = False) -> dict[str, Any]:
    """Every campaign, one line each, in as few sections as Slack's limits allow ("… and N more" past them)."""
    active = sum(1 for row in rows if row.campaign.active)
    empty = [row.campaign.name for row in rows if row.hopper is not None and row.hopper.value == 0]
    verdict = f"{active} of {len(rows)} campaigns active" if rows else "babelforce has no campaigns"
    if empty:
        verdict += f"; hopper empty: {', '.join(empty[:5])}" + (" …" if len(empty) > 5 else "")
    blocks: list[Block] = [
        SectionBlock(block_id=BLOCK_CAMPAIGN_VERDICT, text=MarkdownTextObject(text=trim(f"*{escape(verdict)}*"))),
        HeaderBlock(block_id=BLOCK_CAMPAIGN_HEADER, text=PlainTextObject(text=f"Campaigns ({len(rows)})")),
    ]
    lines = [overview_line(row) for row in rows]
    sections, shown = pack_lines(lines, OVERVIEW_SECTIONS_MAX)
    for index, text in enumerate(sections, 1):
        blocks.append(SectionBlock(block_id=f"{BLOCK_CAMPAIGN_LINES}_{index}", text=MarkdownTextObject(text=text)))
    note = "`/lead campaign <name>` shows one campaign's live status and statistics."
    if shown < len(lines):
        note = f"… and {len(lines) - shown} more. " + note
    blocks.append(ContextBlock(block_id=BLOCK_CAMPAIGN_NOTE, elements=[MarkdownTextObject(text=note)]))
    plain = verdict + ". " + "; ".join(_plain(row) for row in rows[:10])
    return ephemeral(blocks, plain, replace_original=replace_original)


# ---------------------------------------------------------------------- one campaign

#: Plain labels for the figures babelforce's status is known to carry; any other key is shown as its words.
FIGURE_LABELS = {
    "total": "leads in the list",
    "dialable": "dialable",
    "inHopper": "in the hopper",
    "byStatus": "by status",
    "calls": "calls so far",
    "outcomes": "outcomes",
    "loggedIn": "agents logged in",
}
GROUPS = (
    ("campaign_lead_stats", "Leads"),
    ("campaign_call_stats", "Calls"),
    ("campaign_agent_stats", "Agents"),
    ("trunk", "Trunk"),
)


def campaign_verdict(detail: CampaignDetail) -> str:
    """Whether the campaign is dialling, in a few words."""
    campaign, hopper = detail.campaign, detail.hopper
    if campaign.active is False:
        return "Not dialling: the campaign is not active"
    if campaign.lead_list is None:
        return "Not dialling: the campaign has no list"
    test = " in test mode (no real calls)" if campaign.test_mode else ""
    if hopper.value is None:
        return f"Active{test}; its hopper could not be read"
    dialable = detail.status.value.dialable_leads if detail.status.value is not None else None
    if hopper.value == 0 and dialable == 0:
        return f"Active{test}, but nothing to dial: hopper empty and no dialable leads left"
    if hopper.value == 0:
        return f"Active{test}, but its hopper is empty"
    return f"Dialling{test}: {hopper.value} leads in the hopper"


def campaign_message(detail: CampaignDetail, *, replace_original: bool = False) -> dict[str, Any]:
    campaign = detail.campaign
    verdict = campaign_verdict(detail)
    fields = [
        ("active", "unknown" if campaign.active is None else "yes" if campaign.active else "no"),
        ("test mode", "yes" if campaign.test_mode else "no"),
        ("list", escape(campaign.lead_list.name or campaign.lead_list.id) if campaign.lead_list else "none"),
        ("list order", order_text(campaign.list_order)),
        ("call ratio", _number(campaign.call_ratio)),
        ("hopper", hopper_text(campaign, detail.hopper).removeprefix("hopper ")),
    ]
    blocks: list[Block] = [
        SectionBlock(block_id=BLOCK_CAMPAIGN_VERDICT, text=MarkdownTextObject(text=trim(f"*{escape(verdict)}*"))),
        HeaderBlock(
            block_id=BLOCK_CAMPAIGN_HEADER,
            text=PlainTextObject(text=trim(f"Campaign {campaign.name}", HEADER_MAX)),
        ),
        SectionBlock(
            block_id=BLOCK_CAMPAIGN_FIELDS,
            text=MarkdownTextObject(text=f"Campaign id `{campaign.id}`"),
            fields=[MarkdownTextObject(text=trim(f"*{label}*\n{value}", 2000)) for label, value in fields],
        ),
        SectionBlock(block_id=BLOCK_CAMPAIGN_STATUS, text=MarkdownTextObject(text=trim(status_text(detail.status)))),
        SectionBlock(block_id=BLOCK_CAMPAIGN_AGENTS, text=MarkdownTextObject(text=trim(agents_text(detail.agents)))),
        ContextBlock(
            block_id=BLOCK_CAMPAIGN_NOTE,
            elements=[
                MarkdownTextObject(
                    text="Figures as babelforce reports them, read just now. "
                    "`/lead campaign` alone lists every campaign."
                )
            ],
        ),
    ]
    return ephemeral(blocks, f"{verdict}. Campaign {campaign.name}.", replace_original=replace_original)


def status_text(status: Part[CampaignStatus]) -> str:
    """babelforce's live status: dial method and level, the statuses it loads, and every figure it gives."""
    if status.value is None:
        return f"*Live status*\nNot available: {escape(status.error or 'babelforce gave none')}"
    value = status.value
    when = f" (as of {slack_date(value.time)})" if value.time is not None else ""
    lines = [f"*Live status*{when}"]
    dialling = []
    if value.dial_method:
        dialling.append(f"dial method {escape(value.dial_method)}")
    if value.dial_level is not None:
        dialling.append(f"dial level {_number(value.dial_level)}")
    if value.order:
        dialling.append(f"order {escape(value.order)}")
    if value.statuses:
        dialling.append("loads " + ", ".join(escape(status) for status in value.statuses))
    if dialling:
        lines.append(" · ".join(dialling))
    for attribute, title in GROUPS:
        figures: Mapping[str, Any] = getattr(value, attribute)
        if figures:
            lines.append(f"*{title}*: {figures_text(figures)}")
    if len(lines) == 1:
        lines.append("babelforce gave no figures.")
    return "\n".join(lines)


def figures_text(figures: Mapping[str, Any]) -> str:
    """A free-form object of figures as `label value · label value`, nested objects as `a 1, b 2`."""
    items = list(figures.items())
    shown = [f"{escape(label_of(key))} {_figure(value)}" for key, value in items[:FIGURES_SHOWN_MAX]]
    if len(items) > FIGURES_SHOWN_MAX:
        shown.append(f"… and {len(items) - FIGURES_SHOWN_MAX} more")
    return " · ".join(shown)


def label_of(key: str) -> str:
    """A figure's key as words: a known one by its plain label, any other split at capitals and underscores."""
    if key in FIGURE_LABELS:
        return FIGURE_LABELS[key]
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").split()
    return " ".join(words).lower() or key


def _figure(value: Any) -> str:
    if isinstance(value, Mapping):
        if not value:
            return "none"
        inner = [
            f"{escape(label_of(str(key)))} {_scalar(item)}" for key, item in list(value.items())[:FIGURES_SHOWN_MAX]
        ]
        return ", ".join(inner) + (" …" if len(value) > FIGURES_SHOWN_MAX else "")
    if isinstance(value, list):
        return ", ".join(_scalar(item) for item in value[:FIGURES_SHOWN_MAX]) or "none"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _number(value)
    return escape(one_line(str(value)))


def agents_text(agents: Part[tuple[AgentStatistics, ...]]) -> str:
    """The per-agent statistics, one line each (login, talk, wait, pause)."""
    if agents.value is None:
        return f"*Agent statistics*\nNot available: {escape(agents.error or 'babelforce gave none')}"
    if not agents.value:
        return "*Agent statistics*\nNone: no agent has worked this campaign in babelforce's figures."
    lines = [f"*Agent statistics* ({len(agents.value)} agents)"]
    for agent in agents.value[:AGENTS_SHOWN_MAX]:
        parts = [escape(one_line(agent.agent or "an agent"))]
        if agent.login_at is not None:
            parts.append(f"logged in {slack_date(agent.login_at)}")
        parts += [
            f"{label} {duration(seconds)}"
            for label, seconds in (
                ("talk", agent.talk_in_seconds),
                ("wait", agent.wait_in_seconds),
                ("pause", agent.pause_in_seconds),
            )
            if seconds is not None
        ]
        lines.append(" · ".join(parts))
    if len(agents.value) > AGENTS_SHOWN_MAX:
        lines.append(f"… and {len(agents.value) - AGENTS_SHOWN_MAX} more")
    return "\n".join(lines)


def duration(seconds: int) -> str:
    """`45 s`, `3 min 20 s`, `2 h 5 min`."""
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _plain(row: CampaignRow) -> str:
    """A campaign in notification text: its name and whether it is active."""
    return f"{row.campaign.name} ({'active' if row.campaign.active else 'not active'})"


def _shown(command: ShowCampaign) -> str:
    return "the campaigns" if command.campaign_ref is None else f"campaign {command.campaign_ref}"


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=ShowCampaign,
        summary=(
            "every campaign at a glance (active, list, list order, hopper fill); with a campaign's name or id, its "
            "live status and statistics as babelforce gives them. Without a name it lists them all, so it opens no "
            "form"
        ),
        usage="/lead campaign [name]",
        example='/lead campaign "Spring outreach"',
        tier=registry.Tier.READ,
        positionals=(FIELD_CAMPAIGN,),
        parse=parse,
        written=lambda command: ([] if command.campaign_ref is None else [command.campaign_ref], {}, {}),
        progress=lambda command: f"show {_shown(command)}",
        run=run,
        log_ref=lambda command: command.campaign_ref or "all",
    )
)
