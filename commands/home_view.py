"""The Home tab as a Block Kit `home` view: the campaigns at a glance and the viewer's own latest changes, with an
Undo button where the change can still be undone. Pure: data in, a view dict out (bot/home.py gathers the data).

At most 1 + 2 + campaign sections + 1 + 10 changes + 3 notes blocks: well within Slack's 100 for a view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from . import registry
from .blocks import pack_lines, slack_date, trim, undo_button
from .campaign import CampaignRow, hopper_text
from .caveat_text import escape
from .fields import change_ref

HOME_CAMPAIGNS = "home_campaigns"  # the campaigns' lines: home_campaigns_1, home_campaigns_2 …
HOME_CHANGES = "home_changes"  # the header of the changes; each one is home_change_1, home_change_2 …
HOME_CHANGE = "home_change"
HOME_NOTICE = "home_notice"
HOME_DENIED = "home_denied"
CHANGES_SHOWN = 10
CAMPAIGN_SECTIONS_MAX = 20
SECTION_TEXT_MAX = 3000

_OUTCOME = {
    "ok": "",
    "failed": " — failed, nothing changed",
    "unknown": " — outcome unknown",
    "pending": " — in progress or interrupted",
}
_VERB = {"undo": "undid a change:", "undo_add": "deleted", "apply": "applied"}


@dataclass(frozen=True, slots=True)
class HomeCampaign:
    row: CampaignRow
    last_alert: str | None = None  # the last alert line about it, in plain words
    last_alert_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HomeChange:
    """One of the viewer's changes: its record's number, when, what was done to which lead in which list."""

    ref: int
    at: datetime
    action: str
    outcome: str
    lead_name: str
    list_name: str
    summary: str
    undone: bool = False
    undoable: bool = False  # the viewer may undo it now: it gets an Undo button


def campaign_line(campaign: HomeCampaign, *, alerts_on: bool) -> str:
    """One campaign: name, active or not, the hopper's fill, and its last alert (when alerts are on)."""
    row = campaign.row
    active = "active" if row.campaign.active else "_not active_"
    parts = [f"*{escape(row.campaign.name)}*", active, hopper_text(row.campaign, row.hopper)]
    if campaign.last_alert is not None:
        when = f" ({slack_date(campaign.last_alert_at)})" if campaign.last_alert_at is not None else ""
        parts.append(f"last alert: {escape(trim(campaign.last_alert, 200))}{when}")
    elif alerts_on:
        parts.append("no alert")
    return " · ".join(parts)


def change_line(change: HomeChange) -> str:
    spec = registry.find(change.action)
    verb = spec.done_verb if spec is not None else _VERB.get(change.action, change.action)
    if change.outcome != "ok":
        verb = f"tried to {change.action}:"
    outcome = _OUTCOME.get(change.outcome, f" — {escape(change.outcome)}")
    undone = " _(undone)_" if change.undone else ""
    where = f"{escape(change.lead_name)} in {escape(change.list_name)}"
    return trim(
        f"`{change_ref(change.ref)}` · {slack_date(change.at)} · *{escape(verb)}* {where}: "
        f"{escape(change.summary)}{outcome}{undone}",
        SECTION_TEXT_MAX,
    )


def home_view(
    *,
    campaigns: Sequence[HomeCampaign] | None,
    changes: Sequence[HomeChange] | None,
    campaigns_error: str | None = None,
    changes_error: str | None = None,
    alerts_on: bool = False,
    notice: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The Home tab. `campaigns` / `changes` None: they could not be read (the `*_error` sentence says why)."""
    blocks: list[Block] = []
    if notice:
        blocks.append(
            SectionBlock(block_id=HOME_NOTICE, text=MarkdownTextObject(text=trim(escape(notice), SECTION_TEXT_MAX)))
        )
    blocks.append(HeaderBlock(text="Campaigns"))
    if campaigns is None:
        blocks.append(
            _section(f"{HOME_CAMPAIGNS}_1", f"The campaigns could not be read: {escape(campaigns_error or '')}")
        )
    elif not campaigns:
        blocks.append(_section(f"{HOME_CAMPAIGNS}_1", "babelforce has no campaigns."))
    else:
        lines = [campaign_line(campaign, alerts_on=alerts_on) for campaign in campaigns]
        for index, text in enumerate(_packed(lines), 1):
            blocks.append(_section(f"{HOME_CAMPAIGNS}_{index}", text))
    alerts = (
        "Alerts go to LEADBOT_ALERT_CHANNEL; the last one per campaign is shown (since leadbot started)."
        if alerts_on
        else "Campaign alerts are off (LEADBOT_ALERT_CHANNEL is not set)."
    )
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=f"`/lead campaign <name>` shows one in full. {alerts}")])
    )
    blocks.append(DividerBlock())
    blocks.append(HeaderBlock(block_id=HOME_CHANGES, text="Your latest changes"))
    if changes is None:
        blocks.append(_section(f"{HOME_CHANGE}_1", f"Your changes could not be read: {escape(changes_error or '')}"))
    elif not changes:
        blocks.append(_section(f"{HOME_CHANGE}_1", "You have made no change through leadbot yet."))
    else:
        for index, change in enumerate(changes[:CHANGES_SHOWN], 1):
            button = None
            if change.undoable:
                deletes = (change.lead_name, change.list_name) if change.action == "add" else None
                button = undo_button(change.ref, deletes)
            blocks.append(
                SectionBlock(
                    block_id=f"{HOME_CHANGE}_{index}",
                    text=MarkdownTextObject(text=change_line(change)),
                    accessory=button,
                )
            )
    updated = f"Updated {slack_date(now)}. " if now is not None else ""
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"{updated}Newest first, {CHANGES_SHOWN} at most; times in your time zone. Open the tab "
                    "again to refresh it; `/lead history <list> <lead>` shows a lead's changes by everyone."
                )
            ]
        )
    )
    return View(type="home", callback_id="leadbot_home", blocks=blocks).to_dict()


def home_denied(message: str) -> dict[str, Any]:
    """The Home tab of someone who may not use leadbot: why, in one sentence, and nothing else."""
    blocks: list[Block] = [
        HeaderBlock(text="leadbot"),
        _section(HOME_DENIED, f":x: {escape(message)}"),
    ]
    return View(type="home", callback_id="leadbot_home", blocks=blocks).to_dict()


def _section(block_id: str, text: str) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=trim(text, SECTION_TEXT_MAX)))


def _packed(lines: Sequence[str]) -> list[str]:
    """Lines joined into sections within Slack's 3000 characters, at most CAMPAIGN_SECTIONS_MAX of them."""
    sections, shown = pack_lines(lines, CAMPAIGN_SECTIONS_MAX, room=40)
    if shown < len(lines):
        sections[-1] += f"\n… and {len(lines) - shown} more"
    return sections
