"""`/lead find <text> [in <list>]`: which list a customer is on, by phone number, uid, lead id or any data value
(readers).

The search itself is `bot.finder.Finder` (one CSV export per list per cache period, never a GET per lead); this
module reads the command, builds its form and renders the reply: a verdict, one compact line per match with a Show
button (the same card `/lead show` gives), "and N more", and what was not searched.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from babelforce.lookup import IndexedLead

from . import registry
from .blocks import ICON_INFO, ICON_WARNING, ephemeral, error_message
from .caveat_text import escape
from .fields import FIELD_LIST, FieldError, parse_number, quote_input, shorten
from .grammar import Refusal, Token
from .registry import FormField

if TYPE_CHECKING:
    from bot.pipeline import Leadbot, Request
    from bot.service import LeadService

NAME = "find"
FIELD_TEXT = "text"
TEXT_MIN = 2
TEXT_MAX = 200
SHOWN_MAX = 10  # matches listed; the rest are counted
IN_WORD = "in"
#: The Show button on each match: its value is "<list id>:<lead id>"; the click answers with `/lead show`'s card.
ACTION_SHOW_MATCH = "lead_show_match"
BLOCK_FIND_VERDICT = "find_verdict"
BLOCK_FIND_MATCH = "find_match_{}"  # one per match, numbered from 0
BLOCK_FIND_MORE = "find_more"
BLOCK_FIND_NOTES = "find_notes"
_LINE_MAX = 2900  # a section's text is at most 3000 characters
_WHAT = "a name, a phone number, a uid, a lead id or any data value"


@dataclass(frozen=True, slots=True)
class FindLeads:
    """`text` as typed (spaces between its words made single); `list_ref` "" searches every list; `number` is the
    text read as a phone number (E.164), when it is one."""

    text: str
    list_ref: str = ""
    number: str | None = None


def check_text(raw: str, region: str | None) -> tuple[str, str | None]:
    """The text to search for, and its E.164 reading when it is a phone number; FieldError with one sentence when
    it is empty, shorter than 2 characters, longer than 200, or has line breaks or control characters."""
    text = " ".join(raw.split())
    if not text:
        raise FieldError(FIELD_TEXT, f"find needs the text to search for: {_WHAT}.")
    if any(unicodedata.category(char) in {"Cc", "Cf", "Cs", "Co", "Cn"} for char in text):
        raise FieldError(FIELD_TEXT, "the text to search for must be one line, without control characters.")
    if len(text) < TEXT_MIN:
        raise FieldError(
            FIELD_TEXT, f"the text to search for needs at least {TEXT_MIN} characters; got {quote_input(text)}."
        )
    if len(text) > TEXT_MAX:
        raise FieldError(FIELD_TEXT, f"the text to search for is too long: {len(text)} characters, at most {TEXT_MAX}.")
    try:
        number: str | None = parse_number(text, region)
    except FieldError:
        number = None
    return text, number


def _is_in(token: Token) -> bool:
    return token.key is None and not token.key_quoted and token.text.lower() == IN_WORD


def parse(args: list[Token], region: str | None) -> FindLeads:
    """`<text...> [in <list...>]`: the first bare `in` after the text starts the list (a quoted "in" is text)."""
    split = next((index for index, token in enumerate(args) if _is_in(token)), None)
    text_tokens, list_tokens = (args, []) if split is None else (args[:split], args[split + 1 :])
    if split is not None and not text_tokens:
        raise Refusal(f"find needs the text to search for before 'in <list>': {_WHAT}.", FIELD_TEXT)
    if split is not None and not list_tokens:
        raise Refusal(
            "find needs a list after 'in' (its name or id); to search for the word in, put it in double quotes.",
            FIELD_LIST,
        )
    for token in (*text_tokens, *list_tokens):
        if token.key is not None:
            raise Refusal(
                f"find takes the text to search for, not key=value pairs: search for "
                f"{quote_input(token.value or token.key)} alone, or put text with '=' in double quotes.",
                FIELD_TEXT,
            )
    text, number = check_text(" ".join(token.text for token in text_tokens), region)
    list_ref = " ".join(token.text.strip() for token in list_tokens).strip()
    if list_tokens and not list_ref:
        raise Refusal("list must not be empty; give the list's name or id.", FIELD_LIST)
    return FindLeads(text, list_ref, number)


def _written(command: FindLeads) -> registry.Written:
    words = [command.text] if not command.list_ref else [command.text, IN_WORD, command.list_ref]
    return words, {}, {}


def _progress(command: FindLeads) -> str:
    """The receipt ("Received: find “martin” in Spring leads"): what was asked, true before the answer and after."""
    where = f" in {command.list_ref}" if command.list_ref else ""
    return f"find “{shorten(command.text)}”{where}"


async def run(bot: Leadbot, command: FindLeads, request: Request, replace_original: bool) -> dict[str, Any]:
    report = await bot.finder.find(command)
    return find_message(report, replace_original=replace_original)


async def _precheck(service: LeadService, command: FindLeads) -> None:
    """Only a named list (the text was checked by its field)."""
    if command.list_ref:
        await service.resolve_list(command.list_ref)


# ---------------------------------------------------------------------------------------------------- the reply


class Hopper(StrEnum):
    """Where a match stands with the dialer, as far as one hopper read per campaign tells."""

    IN = "in"  # in the hopper at `position` of `size`
    OUT = "out"  # the list is dialled; the lead is not in the hopper
    NOT_DIALLED = "not_dialled"  # no active campaign dials the list
    UNKNOWN = "unknown"  # the campaigns or the hopper could not be read


@dataclass(frozen=True, slots=True)
class FoundLead:
    list_id: str
    list_name: str
    lead: IndexedLead
    hopper: Hopper
    position: int | None = None
    hopper_size: int | None = None


@dataclass(frozen=True, slots=True)
class FindReport:
    """What `/lead find` found, and what it could not search."""

    text: str
    matches: tuple[FoundLead, ...]  # at most SHOWN_MAX: exact id, uid or number matches first
    total: int
    searched: tuple[str, ...]  # names of the lists searched
    list_ref: str = ""  # the list named with `in`, if any
    left_out: int = 0  # lists not searched because of LEADBOT_FIND_MAX_LISTS
    max_lists: int = 0
    failed: tuple[tuple[str, str], ...] = ()  # (list name, why it could not be searched)
    without_data: tuple[str, ...] = ()  # searched lists whose export carried no data variables
    oldest_s: float | None = None  # age of the oldest export used, in seconds


def _plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def verdict(report: FindReport) -> str:
    """The first line, plain text: how many leads match, where."""
    quoted = f"“{shorten(report.text)}”"
    where = f" in list {report.list_ref}" if report.list_ref else ""
    if report.total:
        line = f"{_plural(report.total, 'lead matches', 'leads match')} {quoted}{where}"
    elif report.list_ref:
        line = f"No lead matches {quoted} in list {report.searched[0] if report.searched else report.list_ref}"
    else:
        line = f"No lead matches {quoted} in the {_plural(len(report.searched), 'list', 'lists')} searched"
    if report.failed:
        line += f"; {_plural(len(report.failed), 'list', 'lists')} could not be searched"
    if report.left_out:
        line += f"; {_plural(report.left_out, 'list was', 'lists were')} not searched"
    return line + "."


def match_line(found: FoundLead) -> str:
    """One match in mrkdwn: list · uid · number · rank · status · hopper · where the text was found."""
    lead = found.lead
    parts = [
        f"*{escape(found.list_name)}*",
        f"`{escape(lead.uid)}`" if lead.uid else f"lead id `{lead.id}`",
        escape(lead.number) if lead.number else "no number",
        f"rank {lead.rank}" if lead.rank is not None else "rank –",
        escape(lead.status) if lead.status else "status –",
    ]
    if found.hopper == Hopper.IN:
        parts.append(f"hopper {found.position} of {found.hopper_size}")
    elif found.hopper == Hopper.OUT:
        parts.append("not in the hopper")
    elif found.hopper == Hopper.NOT_DIALLED:
        parts.append("list not dialled")
    else:
        parts.append("hopper unknown")
    if lead.matched in {"id", "uid", "number"}:
        parts.append(f"_{lead.matched}_")
    elif lead.matched:
        parts.append(f"_data {escape(shorten(lead.matched))}_")
    return " · ".join(parts)[:_LINE_MAX]


def notes(report: FindReport) -> list[str]:
    """What the reader must know about what was searched (mrkdwn)."""
    lines = []
    if report.left_out:
        lines.append(
            f"{ICON_WARNING} Only {report.max_lists} of the account's {report.max_lists + report.left_out} lists were "
            "searched (LEADBOT_FIND_MAX_LISTS): lists an active campaign dials first, then by name. Add "
            "`in &lt;list&gt;` to search another one."
        )
    for name, why in report.failed[:5]:
        lines.append(f"{ICON_WARNING} *{escape(name)}* could not be searched: {escape(why)}")
    if len(report.failed) > 5:
        lines.append(f"{ICON_WARNING} … and {len(report.failed) - 5} more lists could not be searched.")
    if report.without_data and len(report.without_data) == len(report.searched):
        lines.append(
            f"{ICON_INFO} The lists' exports carry no data variables, so only uid, number and lead id were searched."
        )
    elif report.without_data:
        names = ", ".join(escape(name) for name in report.without_data[:5])
        more = f" and {len(report.without_data) - 5} more" if len(report.without_data) > 5 else ""
        lines.append(
            f"{ICON_INFO} {names}{more}: their exports carry no data variables, so only uid, number and lead id "
            "were searched there."
        )
    if report.searched:
        age = "" if report.oldest_s is None else f" (at most {_age(report.oldest_s)} old)"
        lines.append(
            f"{ICON_INFO} From the lists' exports{age}: rank and status may have moved since. Show reads the lead "
            "live; the hopper was read just now."
        )
    return lines


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min"


def find_message(report: FindReport, *, replace_original: bool = False) -> dict[str, Any]:
    """The reply: verdict, one line and Show button per match, "and N more", then notes. At most 14 blocks."""
    if not report.searched and report.failed:
        name, why = report.failed[0]
        return error_message(f"No list could be searched; {name}: {why}", replace_original=replace_original)
    head = verdict(report)
    blocks: list[Block] = [SectionBlock(block_id=BLOCK_FIND_VERDICT, text=MarkdownTextObject(text=f"*{escape(head)}*"))]
    for number, found in enumerate(report.matches[:SHOWN_MAX]):
        blocks.append(
            SectionBlock(
                block_id=BLOCK_FIND_MATCH.format(number),
                text=MarkdownTextObject(text=match_line(found)),
                accessory=ButtonElement(
                    text="Show", action_id=ACTION_SHOW_MATCH, value=f"{found.list_id}:{found.lead.id}"
                ),
            )
        )
    shown = min(len(report.matches), SHOWN_MAX)
    if report.total > shown:
        blocks.append(
            ContextBlock(
                block_id=BLOCK_FIND_MORE,
                elements=[
                    MarkdownTextObject(
                        text=f"… and {report.total - shown:,} more. Type more of the text, or add "
                        "`in &lt;list&gt;`, to narrow it."
                    )
                ],
            )
        )
    lines = notes(report)
    if lines:
        blocks.append(
            ContextBlock(block_id=BLOCK_FIND_NOTES, elements=[MarkdownTextObject(text=line) for line in lines[:10]])
        )
    plain = head + "".join(
        f" {found.list_name}: {found.lead.uid or found.lead.id}." for found in report.matches[:SHOWN_MAX]
    )
    return ephemeral(blocks, plain, replace_original=replace_original)


def show_value(value: str) -> tuple[str, str] | None:
    """(list id, lead id) from a Show button's value, or None when it is not ours."""
    list_id, sep, lead_id = value.partition(":")
    return (list_id, lead_id) if sep and list_id and lead_id else None


# ---------------------------------------------------------------------------------------------------- registration


def _text_field_parse(raw: str, region: str | None) -> tuple[str, str | None]:
    return check_text(raw, region)


TEXT_FIELD = FormField(
    FIELD_TEXT,
    "Search for",
    "Martin, +49 151 …, CRM-1234",
    hint="A name, a phone number in any spelling, a uid, a lead id or any data value (at least 2 characters)",
    required_message=f"Give the text to search for: {_WHAT}.",
    parse=_text_field_parse,
)
LIST_OPTIONAL_FIELD = FormField(
    FIELD_LIST, "In list", "Every list", hint="Leave empty to search every list the account has", optional=True
)


def _build(values: dict[str, Any]) -> FindLeads:
    text, number = values[FIELD_TEXT]
    return FindLeads(text, values.get(FIELD_LIST, ""), number)


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=FindLeads,
        summary="find a lead across the lists: by phone number, uid, lead id or any data value (a name, a CRM id)",
        usage="/lead find <text> [in <list>]",
        example='/lead find martin in "Spring leads"',
        tier=registry.Tier.READ,
        positionals=(FIELD_TEXT,),
        parse=parse,
        written=_written,
        progress=_progress,
        form=registry.Form(
            title="Find a lead",
            submit="Find",
            fields=(TEXT_FIELD, LIST_OPTIONAL_FIELD),
            build=_build,
        ),
        run=run,
        precheck=_precheck,
        log_ref=lambda command: command.text,
    )
)
