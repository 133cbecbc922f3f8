"""The registry of /lead subcommands: each subcommand module declares one `Subcommand` and registers it here.

Dispatch, help, forms, the audit trail's command text, the permission tier and the "did you mean" list are all read
from this registry, so a subcommand is added by writing one module (see docs/architecture.md, "Adding a
subcommand"). An unknown name is an error (`UnknownSubcommand`), never a silent fallback to another subcommand.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:  # the bot's types, for annotations only: commands/ is imported by bot/, never the reverse at run time
    from bot.pipeline import Leadbot, Request
    from bot.service import LeadService, Plan

    from .grammar import Token


class Tier(StrEnum):
    """Who may run a subcommand: LEADBOT_READERS (read) or LEADBOT_WRITERS (write)."""

    READ = "read"
    WRITE = "write"


class TargetsList(Protocol):
    """Every command but help names a list (by name or id, as the user typed it)."""

    @property
    def list_ref(self) -> str: ...


C = TypeVar("C", bound=TargetsList)

#: (positional values, lead field changes, data changes): a command written out, for the audit trail.
Written = tuple[list[str], dict[str, str], dict[str, str | None]]


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a subcommand's form. `name` is the block id and the field name in FieldErrors; `parse` turns
    the typed text into the command's value (`region`: LEADBOT_DEFAULT_REGION) or raises FieldError."""

    name: str
    label: str
    placeholder: str = ""
    hint: str | None = None
    optional: bool = False
    multiline: bool = False
    required_message: str | None = None  # said when a required field is left empty
    parse: Callable[[str, str | None], Any] = lambda raw, region: raw.strip()


@dataclass(frozen=True, slots=True)
class Form:
    """The modal a subcommand opens when typed without arguments. Its first input is always the list select;
    `build` makes the command from the parsed values ({field name: value}, optional fields only when filled), or
    returns {field name: error} for what is missing as a whole."""

    title: str
    submit: str
    fields: tuple[FormField, ...]
    build: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, eq=False)
class Subcommand(Generic[C]):
    """Everything about one subcommand, declared in its own module.

    Exactly one of `run` (its reply) and `plan` (a write: what the write pipeline sends, asks about and records)
    is given. A read has `run`. A write has `plan`, unless it has a flow of its own that records itself in the
    audit trail (undo): then `run`, and its tier is still WRITE, checked before it runs. `parse` reads the tokens
    after the subcommand's name and raises `FieldError` or `grammar.Refusal` with one sentence for the user; it
    never sees them empty when there is a form (no arguments open it), while a subcommand without a form reads
    its bare name itself (`/lead undo`: your latest change)."""

    name: str
    command_type: type[C]
    summary: str  # what it does, for help
    usage: str
    example: str
    tier: Tier
    positionals: tuple[str, ...]  # field names of the arguments taken by position, for "needs <x>" messages
    parse: Callable[[list[Token], str | None], C]
    written: Callable[[C], Written]
    progress: Callable[[C], str]  # what was asked, for the ack's "Received: …" line (it stays on screen for good)
    form: Form | None = None
    run: Callable[[Leadbot, C, Request, bool], Awaitable[dict[str, Any]]] | None = None
    plan: Callable[[LeadService, C], Awaitable[Plan]] | None = None
    # A form's field checks before it closes (raise UserFacingError with a field); None: the list, and the lead
    # when the command names one (bot.forms.precheck).
    precheck: Callable[[LeadService, C], Awaitable[None]] | None = None
    done_verb: str = "changed"  # how a finished change reads in history ("@alice · *changed* rank 40 → 45")
    # A write whose plan asks first (Plan.asks) may word its own question: (plan, held token, asked again because
    # the lead changed) -> message; None: "apply anyway?" (commands.blocks.confirmation_message).
    question: Callable[[Plan, str, bool], dict[str, Any]] | None = None
    log_ref: Callable[[C], str] = field(default=lambda command: getattr(command, "lead_ref", ""))

    def __post_init__(self) -> None:
        if (self.run is None) == (self.plan is None):
            raise ValueError(
                f"subcommand {self.name!r} must define exactly one of run (its own reply) and plan (a write)"
            )
        if self.plan is not None and self.tier != Tier.WRITE:
            raise ValueError(f"subcommand {self.name!r}: a plan is a write and needs Tier.WRITE")

    @property
    def writes(self) -> bool:
        return self.tier == Tier.WRITE

    @property
    def callback_id(self) -> str:
        """The form's callback id (part of the contract with Slack: forms open during a deploy keep working)."""
        return f"lead_{self.name}_form"


class UnknownSubcommand(LookupError):
    """A name or a command type that no module registered: a bug, never something to fall back from."""


#: Names that are not subcommands but are recorded in the audit trail or checked for permission as actions.
RESERVED = frozenset({"help", "apply", "undo_add", "undo_remove", "delete"})

_BY_NAME: dict[str, Subcommand[Any]] = {}
_BY_TYPE: dict[type, Subcommand[Any]] = {}


def register(subcommand: Subcommand[C]) -> Subcommand[C]:
    """Add a subcommand; a second one with the same name or command type is an error at import time."""
    name = subcommand.name
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"subcommand name {name!r} must be one lower-case word")
    if name in _BY_NAME or name in RESERVED:
        raise ValueError(f"subcommand {name!r} is registered twice or reserved")
    if subcommand.command_type in _BY_TYPE:
        raise ValueError(f"command type {subcommand.command_type.__name__} already belongs to a subcommand")
    _BY_NAME[name] = subcommand
    _BY_TYPE[subcommand.command_type] = subcommand
    return subcommand


def unregister(name: str) -> None:
    """Remove a subcommand (tests that register their own)."""
    subcommand = _BY_NAME.pop(name)
    del _BY_TYPE[subcommand.command_type]


def get(name: str) -> Subcommand[Any]:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownSubcommand(f"no subcommand is registered as {name!r}") from None


def find(name: str) -> Subcommand[Any] | None:
    return _BY_NAME.get(name)


def of(command: object) -> Subcommand[Any]:
    """The subcommand a parsed command belongs to."""
    try:
        return _BY_TYPE[type(command)]
    except KeyError:
        raise UnknownSubcommand(f"{type(command).__name__} is not a registered subcommand's command") from None


def by_callback(callback_id: str) -> Subcommand[Any] | None:
    return next((spec for spec in _BY_NAME.values() if spec.callback_id == callback_id), None)


def names() -> tuple[str, ...]:
    """Every subcommand's name in registration order, then help."""
    return (*_BY_NAME, "help")


def all_subcommands() -> Mapping[str, Subcommand[Any]]:
    return dict(_BY_NAME)


def usage(name: str | None) -> str:
    """The usage line of one subcommand (or of help), or every usage line (unknown or None)."""
    spec = _BY_NAME.get(name or "")
    if spec is not None:
        return spec.usage
    if name == "help":
        return HELP_USAGE
    return "\n".join([*(spec.usage for spec in _BY_NAME.values()), HELP_USAGE])


HELP_USAGE = "/lead help"


def is_write(name: str) -> bool:
    """Whether a subcommand (or a button's action, which is recorded under its own name) needs a writer."""
    spec = _BY_NAME.get(name)
    return spec.writes if spec is not None else name in WRITE_ACTIONS


#: Buttons that write; each is an action of its own in the audit trail.
WRITE_ACTIONS = frozenset({"undo", "apply", "undo_add", "undo_remove"})
