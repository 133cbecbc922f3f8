"""`/lead undo [#change]`: put back a change made through leadbot, by command, so it outlasts the ephemeral reply
whose Undo button Slack drops on reload or on another device (writers).

Without a number it is the user's own latest change; with one (`12` or `#12`, as /lead history shows it), any
change, as the Undo button allows any writer. Both go the button's way (bot/undo.py): refused when the lead was
changed since, done once however often it is asked, recorded in the audit trail as "undo" (or "undo_add").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import registry
from .fields import FIELD_CHANGE, change_ref, parse_change_ref, quote_input
from .grammar import Refusal, Token

if TYPE_CHECKING:
    from bot.pipeline import Leadbot, Request

NAME = "undo"


@dataclass(frozen=True, slots=True)
class UndoChange:
    """Undo the recorded change `change_id`, or (None) the user's own latest change."""

    change_id: int | None = None

    @property
    def list_ref(self) -> str:
        """An undo names a change, not a list: the change's record knows its list."""
        return ""


def parse(args: list[Token], region: str | None) -> UndoChange:
    """No arguments: the user's latest change; else exactly one change's number (`12` or `#12`)."""
    if not args:
        return UndoChange()
    first, *extra = args
    if extra:
        raise Refusal(f"undo takes one change's number; {quote_input(extra[0].text)} is one too many.", FIELD_CHANGE)
    return UndoChange(parse_change_ref(first.text))


async def run(bot: Leadbot, command: UndoChange, request: Request, replace_original: bool) -> dict[str, Any]:
    return await bot.undo_command(command.change_id, request=request, replace_original=replace_original)


def _shown(command: UndoChange) -> str:
    return "your latest change" if command.change_id is None else f"change {change_ref(command.change_id)}"


SUBCOMMAND = registry.register(
    registry.Subcommand(
        name=NAME,
        command_type=UndoChange,
        summary=(
            "put back a change made through leadbot, once, unless the lead was changed since. "
            "`/lead undo` alone (no form) undoes your own latest change; with a change's number from "
            "/lead history, any writer can undo anyone's change, as with the Undo button"
        ),
        usage="/lead undo [#change]",
        example="/lead undo #12",
        tier=registry.Tier.WRITE,
        positionals=(FIELD_CHANGE,),
        parse=parse,
        written=lambda command: ([] if command.change_id is None else [change_ref(command.change_id)], {}, {}),
        progress=lambda command: f"undo {_shown(command)}",
        run=run,
        done_verb="undid a change:",  # as the button's undos always read in history (an add's undo: "deleted")
        log_ref=lambda command: "latest" if command.change_id is None else change_ref(command.change_id),
    )
)
