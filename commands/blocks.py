"""Block Kit replies: the lead card, errors and help. Pure: data in, Slack message dicts out.

Built with slack_sdk's block models, whose `to_dict()` checks Slack's limits; every text that comes from a user or
from babelforce is escaped for mrkdwn and trimmed to the limit of the place it goes, so a reply is never refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from babelforce.models import Lead, LeadList

from . import registry
from .caveat_text import campaign_line, caveat_text, describe, escape, verdict
from .caveats import Action, Caveat, CaveatKind, DialContext, Subject
from .fields import change_ref
from .queue import QueuePosition, queue_text

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks): kept a little under where it is cheap.
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FALLBACK_TEXT_MAX = 3000
DATA_SHOWN_MAX = 40  # data variables listed on a card; the rest are counted
DATA_LINE_MAX = 300  # one variable's line; longer values end in …
DATA_VALUE_SHOWN_MAX = 120  # a data value on a card; longer ones are cut and say so
DATA_KEY_SHOWN_MAX = 60

BLOCK_VERDICT = "verdict"  # the first line of a reply: what happened, in a few words
BLOCK_LEAD_HEADER = "lead_header"
BLOCK_LEAD_FIELDS = "lead_fields"
BLOCK_LEAD_DATA = "lead_data"
BLOCK_CAVEAT = "lead_caveat"
BLOCK_CAMPAIGN = "lead_campaign"
BLOCK_QUEUE = "lead_queue"
BLOCK_ERROR = "error"
BLOCK_USAGE = "usage"
BLOCK_PROGRESS = "progress"
BLOCK_ACTIONS = "lead_actions"
BLOCK_CONFIRM = "lead_confirm"
BLOCK_NOTICE = "notice"
BLOCK_HISTORY = "lead_history"  # the empty history's line; entries are lead_history_1, lead_history_2 …
BLOCK_UNDO_QUESTION = "undo_question"

# Buttons: their ids are the bot's contract with Slack (a message in a channel outlives a deploy).
ACTION_UNDO = "lead_undo"  # value: the audit record's id
ACTION_APPLY_ANYWAY = "lead_apply_anyway"  # value: the held confirmation's token
ACTION_CANCEL = "lead_cancel"  # value: the held confirmation's token
ACTION_REMOVE = "lead_remove"  # value: the held confirmation's token (a /lead remove waiting for its yes)
HISTORY_SHOWN_MAX = 15

ICON_WARNING = ":warning:"
ICON_OK = ":white_check_mark:"
ICON_INFO = ":information_source:"
ICON_ERROR = ":x:"


@dataclass(frozen=True, slots=True)
class LeadReport:
    """The outcome of one command on one lead: what it was, what it is now, and what the dialer will do."""

    action: Action
    lead_list: LeadList
    lead: Lead  # as babelforce returned it after the change (or as read, for show)
    context: DialContext
    caveats: tuple[Caveat, ...]
    before: Lead | None = None  # None for add and show
    recovered: bool = False  # an add whose answer was lost, confirmed by a lookup
    unchanged: bool = False  # the lead already had these values: nothing was sent
    notes: tuple[str, ...] = field(default=())  # extra plain sentences (mrkdwn-escaped by the renderer)
    queue: QueuePosition | None = None  # where the lead stands in line (show and writes), from the standings


def ephemeral(blocks: Sequence[Block | Mapping[str, Any]], text: str, *, replace_original: bool = False) -> dict:
    """A message for a response_url (or an ack body): visible only to the caller. Its top-level `text` (the
    notification and screen-reader line) is plain words built from user and babelforce values, and Slack reads it
    as mrkdwn: escaped like any block, so a uid like `<!channel>` notifies nobody."""
    message: dict[str, Any] = {
        "response_type": "ephemeral",
        "text": _trim(escape(text), FALLBACK_TEXT_MAX),
        "blocks": [block.to_dict() if isinstance(block, Block) else dict(block) for block in blocks],
    }
    if replace_original:
        message["replace_original"] = True
    return message


def lead_message(report: LeadReport, *, replace_original: bool = False, undo_id: int | None = None) -> dict:
    """The lead card; a change recorded in the audit trail as `undo_id` gets an Undo button."""
    blocks = lead_blocks(report)
    if undo_id is not None:
        blocks.append(_undo_actions(report, undo_id))
    return ephemeral(blocks, lead_text(report), replace_original=replace_original)


def _undo_actions(report: LeadReport, undo_id: int) -> ActionsBlock:
    named = (report.lead.uid or report.lead.id, report.lead_list.name)
    deletes = named if report.action == "add" else None
    readds = named if report.action == "remove" else None
    return ActionsBlock(block_id=BLOCK_ACTIONS, elements=[_undo_button(undo_id, deletes, readds)])


def _undo_button(undo_id: int, deletes: tuple[str, str] | None, readds: tuple[str, str] | None = None) -> ButtonElement:
    """The Undo button of a recorded change. `deletes` (lead name, list name): its change is an add, so undoing it
    deletes a lead, and Slack asks before the click is sent."""
    confirm = None
    if deletes is not None:
        lead_name, list_name = deletes
        confirm = ConfirmObject(
            title="Delete this lead?",
            # plain text: a uid or list name is shown as typed, never read as mrkdwn (`*`, `<!channel>`)
            text=PlainTextObject(
                text=_trim(f"Undo deletes lead {lead_name} from list {list_name} in babelforce.", 300)
            ),
            confirm="Delete it",
            deny="Keep it",
            style="danger",
        )
    elif readds is not None:  # undoing a remove makes the lead dialable again, as a new lead
        lead_name, list_name = readds
        confirm = ConfirmObject(
            title="Add this lead back?",
            text=PlainTextObject(
                text=_trim(
                    f"Undo adds lead {lead_name} back to list {list_name} as a new lead (same uid, number, rank and "
                    "data) that the dialer may call again; its call history does not come back.",
                    300,
                )
            ),
            confirm="Add it back",
            deny="Keep it removed",
        )
    return ButtonElement(text="Undo", action_id=ACTION_UNDO, value=str(undo_id), confirm=confirm)


def undo_button(undo_id: int, deletes: tuple[str, str] | None = None) -> ButtonElement:
    """The Undo button of a recorded change, wherever it is shown (a reply, history, the Home tab); `deletes` (lead
    name, list name) for an add, whose undo deletes the lead after Slack's confirm dialog."""
    return _undo_button(undo_id, deletes)


def undo_add_question(change_id: int, lead_name: str, list_name: str) -> dict:
    """`/lead undo` of an add: it would delete a lead, so it is asked first, as the Undo button's dialog asks; the
    button is that Undo button (same action, same record id), so the click takes the button's one path."""
    question = (
        f"Undoing {change_ref(change_id)} deletes lead {lead_name} from list {list_name} in babelforce. "
        "Nothing is deleted unless you click Delete lead."
    )
    blocks: list[Block] = [
        SectionBlock(
            block_id=BLOCK_UNDO_QUESTION,
            text=MarkdownTextObject(text=_trim(f"{ICON_WARNING} {escape(question)}", SECTION_TEXT_MAX)),
        ),
        ActionsBlock(
            block_id=BLOCK_ACTIONS,
            elements=[ButtonElement(text="Delete lead", action_id=ACTION_UNDO, value=str(change_id), style="danger")],
        ),
    ]
    return ephemeral(blocks, question, replace_original=True)


def confirmation_message(question: str, caveats: Sequence[Caveat], token: str, *, replace_original: bool) -> dict:
    """ "Apply anyway?": the change would not affect dialling now; nothing is written until the user says so."""
    blocks: list[Block] = [
        SectionBlock(
            block_id=BLOCK_CONFIRM,
            text=MarkdownTextObject(
                text=_trim(f"{ICON_WARNING} *Not applied yet:* {escape(question)}.", SECTION_TEXT_MAX)
            ),
        ),
        ContextBlock(
            block_id=BLOCK_CAVEAT,
            elements=[
                MarkdownTextObject(text=_trim(f"{ICON_WARNING} {caveat_text(caveat)}", SECTION_TEXT_MAX))
                for caveat in caveats[:10]
            ],
        ),
        ActionsBlock(
            block_id=BLOCK_ACTIONS,
            elements=[
                ButtonElement(text="Apply anyway", action_id=ACTION_APPLY_ANYWAY, value=token, style="primary"),
                ButtonElement(text="Cancel", action_id=ACTION_CANCEL, value=token),
            ],
        ),
    ]
    text = f"Not applied yet: {question}. {describe(caveats)} Apply anyway?"
    return ephemeral(blocks, text, replace_original=replace_original)


def removal_question(report: LeadReport, token: str, *, changed: bool = False) -> dict:
    """ "Remove this lead?": its card, whether a loaded batch may still call it, and a Remove button behind Slack's
    confirm dialog (naming the uid and the list). Nothing is deleted until that is clicked and confirmed."""
    name = escape(report.lead.uid or report.lead.id)
    list_name = escape(report.lead_list.name)
    blocks = lead_blocks(report)
    if changed:
        blocks.insert(
            1,
            SectionBlock(
                block_id=BLOCK_NOTICE,
                text=MarkdownTextObject(
                    text=f"{ICON_WARNING} The lead changed since you were asked; check it again before removing it."
                ),
            ),
        )
    confirm = ConfirmObject(
        title="Remove this lead?",
        text=_trim(
            f"leadbot deletes lead {name} from list {list_name} in babelforce, so no later batch calls it. Undo can "
            "add it back only as a new lead, without its call history.",
            300,
        ),
        confirm="Remove it",
        deny="Keep it",
        style="danger",
    )
    blocks.append(
        ActionsBlock(
            block_id=BLOCK_ACTIONS,
            elements=[
                ButtonElement(
                    text="Remove lead", action_id=ACTION_REMOVE, value=token, style="danger", confirm=confirm
                ),
                ButtonElement(text="Keep it", action_id=ACTION_CANCEL, value=token),
            ],
        )
    )
    text = f"{_title(report)} {describe(report.caveats)} Nothing is removed until you click Remove lead."
    return ephemeral(blocks, text)


def notice_message(text: str, *, replace_original: bool = False) -> dict:
    """A plain outcome that is neither a lead card nor an error (cancelled, already undone, deleted)."""
    block = SectionBlock(
        block_id=BLOCK_NOTICE, text=MarkdownTextObject(text=_trim(f"{ICON_INFO} {escape(text)}", SECTION_TEXT_MAX))
    )
    return ephemeral([block], text, replace_original=replace_original)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One audited change of a lead, as the history shows it."""

    at: datetime
    user_id: str
    action: str
    summary: str  # what changed, plain text (see change_summary)
    outcome: str  # ok, failed, unknown, pending, denied
    detail: str | None = None  # the failure's sentence
    undone: bool = False
    ref: int | None = None  # the audit record's id, shown as #12 (`/lead undo #12`)
    undoable: bool = False  # the viewer may undo it now: it gets an Undo button


def history_message(list_name: str, lead_name: str, entries: Sequence[HistoryEntry]) -> dict:
    """`/lead history`: newest first, one section per change: its number (for `/lead undo #12`), when (in each
    viewer's own time zone), who (a Slack mention), what, how it ended, and an Undo button when the viewer can
    still undo it. At most HISTORY_SHOWN_MAX + 2 blocks, well within Slack's 50."""
    title = f"History of {lead_name} in {list_name}"
    blocks: list[Block] = [HeaderBlock(block_id=BLOCK_LEAD_HEADER, text=PlainTextObject(text=_trim(title, HEADER_MAX)))]
    if not entries:
        blocks.append(
            SectionBlock(
                block_id=BLOCK_HISTORY,
                text=MarkdownTextObject(text="No changes through leadbot are recorded for this lead."),
            )
        )
        return ephemeral(blocks, f"{title}: no changes recorded.")
    shown = entries[:HISTORY_SHOWN_MAX]
    for index, entry in enumerate(shown, 1):
        button = None
        if entry.undoable and entry.ref is not None:
            button = _undo_button(entry.ref, (lead_name, list_name) if entry.action == "add" else None)
        blocks.append(
            SectionBlock(
                block_id=f"{BLOCK_HISTORY}_{index}",
                text=MarkdownTextObject(text=_history_line(entry)),
                accessory=button,
            )
        )
    undoable = next((entry.ref for entry in shown if entry.undoable and entry.ref is not None), None)
    note = (
        "Newest first; changes made through leadbot only; times in your time zone. "
        + f"{len(shown)} shown"
        + ("; older ones are left out." if len(entries) > len(shown) else ".")
        + (f" Undo one by its number too: `/lead undo {change_ref(undoable)}`." if undoable is not None else "")
    )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
    plain = f"{title}: " + "; ".join(
        f"{_ref(e)}{_when(e.at)} {e.action} {e.summary} ({e.outcome})" for e in entries[:5]
    )
    return ephemeral(blocks, plain)


def _ref(entry: HistoryEntry) -> str:
    return "" if entry.ref is None else f"{change_ref(entry.ref)} "


_OUTCOME_SHOWN = {
    "ok": "",
    "failed": " — *failed*, nothing changed",
    "unknown": " — *outcome unknown*",
    "pending": " — *in progress or interrupted*",
    "denied": " — *denied*",
}
#: How the buttons' recorded actions read in a history line; a subcommand's own says `Subcommand.done_verb`.
_ACTION_SHOWN = {"undo": "undid a change:", "undo_add": "deleted", "undo_remove": "added back", "apply": "applied"}


def _done_verb(action: str) -> str:
    """ "@alice · *changed* rank 40 → 45": how a finished action reads (an unknown one reads as its name)."""
    spec = registry.find(action)
    return spec.done_verb if spec is not None else _ACTION_SHOWN.get(action, action)


def _history_line(entry: HistoryEntry) -> str:
    user = f"<@{entry.user_id}>" if _SLACK_USER_ID.fullmatch(entry.user_id) else escape(entry.user_id or "someone")
    done = entry.outcome == "ok"
    verb = _done_verb(entry.action) if done else f"tried to {entry.action}:"
    outcome = _OUTCOME_SHOWN.get(entry.outcome, f" — {escape(entry.outcome)}")
    undone = " _(undone)_" if entry.undone else ""
    detail = f" ({escape(entry.detail)})" if entry.detail and not done else ""
    ref = "" if entry.ref is None else f"`{change_ref(entry.ref)}` · "
    line = f"{ref}{slack_date(entry.at)} · {user} · *{escape(verb)}* {escape(entry.summary)}{outcome}{detail}{undone}"
    return _trim(line, DATA_LINE_MAX * 2)


def change_summary(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> str:
    """What a change did, in one line: `rank 40 → 5; city Berlin → Bonn; +vip; −old`. Pure."""
    if after is None and before is None:
        return ""
    if before is None:
        after = after or {}
        added = (
            f"uid {_value(after.get('uid'))}, number {_value(after.get('number'))}, rank {_value(after.get('rank'))}"
        )
        data = after.get("data") or {}
        return "; ".join([added, *(f"{key}={_data_value(data[key])}" for key in sorted(data, key=str.casefold))])
    if after is None:
        return "(no result recorded)"
    parts = [
        f"{name} {_value(before.get(name))} → {_value(after.get(name))}"
        for name in ("uid", "number", "rank")
        if before.get(name) != after.get(name)
    ]
    old, new = before.get("data") or {}, after.get("data") or {}
    for key in sorted(set(old) | set(new), key=str.casefold):
        if key in old and key in new and old[key] != new[key]:
            parts.append(f"{key} {_data_value(old[key])} → {_data_value(new[key])}")
        elif key in new and key not in old:
            parts.append(f"+{key}={_data_value(new[key])}")
        elif key in old and key not in new:
            parts.append(f"−{key} (was {_data_value(old[key])})")
    return "; ".join(parts) if parts else "no values changed"


def lead_blocks(report: LeadReport) -> list[Block]:
    lead, before = report.lead, report.before
    blocks: list[Block] = []
    if report.action not in _TITLE_IS_VERDICT:
        blocks.append(
            SectionBlock(
                block_id=BLOCK_VERDICT,
                text=MarkdownTextObject(text=_trim(f"*{escape(report_verdict(report))}*", SECTION_TEXT_MAX)),
            )
        )
    blocks += [
        HeaderBlock(block_id=BLOCK_LEAD_HEADER, text=PlainTextObject(text=_trim(_title(report), HEADER_MAX))),
        SectionBlock(
            block_id=BLOCK_LEAD_FIELDS,
            text=MarkdownTextObject(
                text=_trim(f"List *{escape(report.lead_list.name)}* · lead id `{lead.id}`", SECTION_TEXT_MAX)
            ),
            fields=[
                MarkdownTextObject(text=_trim(f"*{label}*\n{value}", FIELD_TEXT_MAX))
                for label, value in _fields(lead, before)
            ],
        ),
    ]
    data_text = _data_text(lead, before, restored=report.action == "undo")
    if data_text:
        blocks.append(SectionBlock(block_id=BLOCK_LEAD_DATA, text=MarkdownTextObject(text=data_text)))
    notes = list(report.notes)
    if report.recovered:
        done = {"add": "it was created once", "undo_remove": "it was added back once", "remove": "it is deleted"}.get(
            report.action, "the change was applied"
        )
        notes.insert(0, f"babelforce's answer was lost on the way, so leadbot looked the lead up: {done}.")
    blocks.append(DividerBlock())
    caveat_elements = [
        MarkdownTextObject(text=_trim(f"{_icon(report, caveat)} {caveat_text(caveat)}", SECTION_TEXT_MAX))
        for caveat in report.caveats
    ]
    caveat_elements += [
        MarkdownTextObject(text=_trim(f"{ICON_INFO} {escape(note)}", SECTION_TEXT_MAX)) for note in notes
    ]
    if caveat_elements:
        caveat_block = ContextBlock(block_id=BLOCK_CAVEAT, elements=caveat_elements[:10])
        # a remove's verdict hangs on its caveat (is it still loaded?): right under the title
        if report.action == "remove":
            blocks.insert(1, caveat_block)
        else:
            blocks.append(caveat_block)
    if report.queue is not None:
        blocks.append(
            ContextBlock(
                block_id=BLOCK_QUEUE,
                elements=[MarkdownTextObject(text=_trim(queue_text(report.queue), SECTION_TEXT_MAX))],
            )
        )
    blocks.append(
        ContextBlock(
            block_id=BLOCK_CAMPAIGN,
            elements=[MarkdownTextObject(text=_trim(campaign_line(report.context), SECTION_TEXT_MAX))],
        )
    )
    return blocks


def lead_text(report: LeadReport) -> str:
    """The notification / screen-reader text of a lead card: the title and the caveats in plain words."""
    verdict_first = "" if report.action in _TITLE_IS_VERDICT else f"{report_verdict(report)}. "
    return _trim(f"{verdict_first}{_title(report)}. {describe(report.caveats)}", FALLBACK_TEXT_MAX)


_DONE = {"add": "Added", "undo": "Undone"}
#: Replies whose title already says what happened and what it means ("Removed: lead-40 will not be dialled"):
#: the title is their first line, so no verdict line above it.
_TITLE_IS_VERDICT = frozenset({"remove", "undo_remove"})


def report_verdict(report: LeadReport) -> str:
    """What happened and what it means for dialling, from the report's first (most important) caveat."""
    if report.unchanged:
        return "No change: nothing was written"
    done = _DONE.get(report.action, "Applied")
    if not report.caveats:
        return done if report.action != "show" else "Lead found"
    return verdict(report.caveats[0], done)


def error_message(message: str, usage: str | None = None, *, replace_original: bool = False) -> dict:
    """One sentence saying what went wrong (and, for input errors, the command's usage line)."""
    blocks: list[Block] = [
        SectionBlock(
            block_id=BLOCK_ERROR,
            text=MarkdownTextObject(text=_trim(f"{ICON_ERROR} {escape(message)}", SECTION_TEXT_MAX)),
        )
    ]
    if usage:
        lines = "\n".join(f"`{escape(line)}`" for line in usage.splitlines())
        blocks.append(
            ContextBlock(
                block_id=BLOCK_USAGE, elements=[MarkdownTextObject(text=_trim(f"Usage: {lines}", SECTION_TEXT_MAX))]
            )
        )
    text = message + (f" Usage: {usage}" if usage else "")
    return ephemeral(blocks, text, replace_original=replace_original)


def progress_message(text: str) -> dict:
    """The immediate ack of a command that answers after it: "Received: <what was asked>", one small line.

    Why a line, and why worded so: Slack wants an answer within 3 s, and babelforce may take longer (its deadline
    is 20 s), so the ack comes first and the answer follows at the response_url. That answer is a new message: Slack
    never replaces a slash command's ack (replace_original is for messages from interactions), so the ack stays on
    screen above it for good. An "⏳ Changing …" line would then claim forever that work is still going on, and an
    empty ack would leave a slow babelforce with nothing on screen, inviting the user to type the command again (a
    second change). A receipt says what was asked, reads true before the answer and after it, and the user sees
    the typed command, which Slack does not show for an ephemeral answer.
    """
    asked = text.rstrip("…. ")
    block = ContextBlock(
        block_id=BLOCK_PROGRESS,
        elements=[MarkdownTextObject(text=_trim(f"Received: {escape(asked)}", SECTION_TEXT_MAX))],
    )
    return ephemeral([block], f"Received: {asked}")


def help_message(topic: str | None = None) -> dict[str, Any]:
    """Usage with one example per command; a topic narrows it to one command."""
    chosen = registry.find(topic or "")
    specs = [chosen] if chosen is not None else list(registry.all_subcommands().values())
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="leadbot: /lead"))]
    for spec in specs:
        blocks.append(
            SectionBlock(
                block_id=f"help_{spec.name}",
                text=MarkdownTextObject(
                    text=f"*{spec.name}* — {spec.summary}\n`{escape(spec.usage)}`\nExample: `{escape(spec.example)}`"
                ),
            )
        )
    blocks.append(
        ContextBlock(
            block_id="help_notes",
            elements=[
                MarkdownTextObject(
                    text=(
                        "`&lt;list&gt;` is a list name (in double quotes when it has spaces) or a list id. "
                        "`&lt;lead&gt;` is a uid, a lead id or the lead's phone number. "
                        "Values with spaces go in double quotes; `key=null` deletes a data variable. "
                        "A command without its arguments (e.g. `/lead add`) opens a form; "
                        "`/lead undo` alone undoes your own latest change instead. "
                        "Replies are visible only to you."
                    )
                )
            ],
        )
    )
    text = "leadbot: " + " · ".join(spec.usage for spec in specs)
    return ephemeral(blocks, text)


def _title(report: LeadReport) -> str:
    name = report.lead.uid or report.lead.id
    before = report.before
    if report.action == "add":
        return f"Lead {name} added"
    if report.action == "undo":
        if report.unchanged:
            return f"No change: {name} already has its earlier values"
        return f"Undone: {_restored_what(before, report.lead)} of {name} restored"
    if report.action == "show":
        return f"Lead {name}"
    if report.action == "remove":
        return _removal_title(report, name)
    if report.action == "undo_remove":
        return f"Undone: {name} is back in {report.lead_list.name} as a new lead"
    if report.unchanged and report.action == "rank":
        return f"No change: {name} already has rank {_value(report.lead.rank)}"
    if report.unchanged:
        return f"No change: {name} already has these values"
    if report.action == "rank" and before is not None:
        return f"Rank of {name}: {_value(before.rank)} → {_value(report.lead.rank)}"
    return f"Lead {name} updated"


def _restored_what(before: Lead | None, lead: Lead) -> str:
    """What an undo put back (only what the undone change had changed): "rank", "number and data 'city'"."""
    if before is None:
        return "the values"
    names = [name for name in ("uid", "number", "rank") if getattr(before, name) != getattr(lead, name)]
    keys = sorted(set(before.data) | set(lead.data), key=str.casefold)
    names += [f"data {key!r}" for key in keys if before.data.get(key) != lead.data.get(key)]
    if not names:
        return "the values"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _removal_title(report: LeadReport, name: str) -> str:
    """The question before a remove, or its verdict after: "will not be dialled" only when no hopper holds it."""
    caveat = report.caveats[0] if report.caveats else None
    if caveat is None or caveat.subject != Subject.REMOVED:
        return f"Remove lead {name} from {report.lead_list.name}?"
    if caveat.kind == CaveatKind.NOT_LOADED:
        return f"Removed: {name} will not be dialled"
    return f"Removed: {name} will not be dialled by later batches"


def _fields(lead: Lead, before: Lead | None) -> list[tuple[str, str]]:
    def changed(label: str, old: Any, new: Any) -> tuple[str, str]:
        if before is not None and old != new:
            return label, f"{escape(_value(old))} → *{escape(_value(new))}*"
        return label, escape(_value(new))

    return [
        changed("uid", before.uid if before else None, lead.uid),
        changed("number", before.number if before else None, lead.number),
        changed("rank", before.rank if before else None, lead.rank),
        ("status", escape(_value(lead.status))),
        ("calls", _value(lead.call_count)),
        ("last updated", slack_date(lead.last_updated)),
    ]


def _data_text(lead: Lead, before: Lead | None, *, restored: bool = False) -> str:
    old = before.data if before is not None else {}
    new = lead.data
    lines: list[str] = []
    for key in sorted(set(old) | set(new), key=str.casefold):
        name = escape(_cut(key, DATA_KEY_SHOWN_MAX))
        if key in new and key in old and old[key] != new[key]:
            lines.append(f"{name}: {_shown_data(old[key])} → *{_shown_data(new[key])}*")
        elif key in new and key not in old and before is not None:
            lines.append(f"{name}: *{_shown_data(new[key])}* ({'restored' if restored else 'added'})")
        elif key in new:
            lines.append(f"{name}: {_shown_data(new[key])}")
        else:
            lines.append(f"~{name}: {_shown_data(old[key])}~ (deleted)")
    if not lines:
        return ""
    text = "*data*"
    budget = SECTION_TEXT_MAX - len("\n… and 99999 more")  # room for the count, so it is never cut off
    shown = 0
    for line in lines[:DATA_SHOWN_MAX]:
        line = _trim(line, DATA_LINE_MAX)
        if len(text) + 1 + len(line) > budget:
            break
        text += "\n" + line
        shown += 1
    if shown < len(lines):
        text += f"\n… and {len(lines) - shown} more"
    return text


def _icon(report: LeadReport, caveat: Caveat) -> str:
    if caveat.is_warning:
        return ICON_WARNING
    return ICON_INFO if report.action in ("show", "remove") or report.unchanged else ICON_OK


def _value(value: Any) -> str:
    if value is None or value == "":
        return "–"
    return str(value)


def _shown_data(value: Any) -> str:
    """A data value for a card line: cut before it is marked up, so a cut never leaves a stray `*` or `~`, and
    saying that it was cut and how long it is."""
    text = _data_value(value)
    if len(text) > DATA_VALUE_SHOWN_MAX:
        text = f"{text[: DATA_VALUE_SHOWN_MAX - 1]}… (cut: {len(text)} characters in all)"
    return escape(text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _data_value(value: Any) -> str:
    """A data variable's value as the user should read it: empty and the text "null" made unmistakable."""
    if value is None or value == "":
        return "(empty)"
    if value == "null":
        return '"null" (text)'
    return str(value)


def _when(moment: datetime | None) -> str:
    """A moment as plain UTC text (notifications, fallbacks); a naive datetime is taken to be UTC already."""
    if moment is None:
        return "–"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def slack_date(moment: datetime | None) -> str:
    """A moment in mrkdwn that Slack shows in each viewer's own time zone ("today 18:40", "Nov 26, 2026 6:40 PM"),
    with the UTC text as the fallback Slack requires. Syntax: `<!date^unix^token_string|fallback_text>`
    (docs.slack.dev/messaging/formatting-message-text, "Date formatting"); it needs no scope."""
    if moment is None:
        return "–"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"<!date^{int(moment.timestamp())}^{SLACK_DATE_TOKENS}|{_when(moment)}>"


SLACK_DATE_TOKENS = "{date_short_pretty} {time}"


def trim(text: str, limit: int = SECTION_TEXT_MAX) -> str:
    """Cut to Slack's limit with an ellipsis, never through an escaped `&lt;` / `&gt;` / `&amp;`."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + "…"


_trim = trim


def one_line(text: str, limit: int = 80) -> str:
    """Text from babelforce or a user as one line of at most `limit` characters (then …)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def pack_lines(lines: Sequence[str], sections_max: int, *, room: int = 0) -> tuple[list[str], int]:
    """Lines joined into at most `sections_max` sections of at most SECTION_TEXT_MAX - `room` characters (`room`:
    what the caller appends, such as "… and N more"), each line trimmed to fit; the sections and how many lines
    they hold."""
    limit = SECTION_TEXT_MAX - room
    sections: list[str] = []
    current = ""
    shown = 0
    for line in lines:
        line = trim(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            if len(sections) + 1 >= sections_max:
                break
            sections.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
        shown += 1
    if current:
        sections.append(current)
    return sections, shown


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
