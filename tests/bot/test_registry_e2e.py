"""A subcommand defined only here, registered by a fixture, works end to end without editing any other module:
it parses, shows in help, opens its form, is dispatched, is recorded in the audit trail under its own name and is
checked against the writer policy. And what no module registered fails loudly, never as another subcommand."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.permissions import Requester
from bot.pipeline import Request, command_from_payload
from commands import registry
from commands.blocks import help_message
from commands.fields import FIELD_LEAD, FIELD_LIST
from commands.grammar import Invalid, Refusal, Token, command_text, parse, ref, split_arguments
from commands.modals import LEAD_FIELD, LIST_FIELD, form_view, read_form
from sandbox import SandboxServer
from tests.support import Bot, error_text, start_bot, texts

if TYPE_CHECKING:
    from bot.service import LeadService, Plan

NOTE = "note"


@dataclass(frozen=True, slots=True)
class TouchLead:
    list_ref: str
    lead_ref: str
    note: str


def _parse(args: list[Token], region: str | None) -> TouchLead:
    (list_token, lead_token, note), extra = split_arguments("touch", args)
    if extra:
        raise Refusal("touch takes no key=value pairs.")
    return TouchLead(ref(list_token, FIELD_LIST), ref(lead_token, FIELD_LEAD), note.text)


async def _plan(service: LeadService, command: TouchLead) -> Plan:
    return await service.plan_update(command, action="set", lead_ref=command.lead_ref, data={"touched": command.note})


TOUCH = registry.Subcommand(
    name="touch",
    command_type=TouchLead,
    summary="mark a lead as touched (a test-only subcommand)",
    usage="/lead touch <list> <lead> <note>",
    example='/lead touch "Spring leads" lead-5 called-back',
    tier=registry.Tier.WRITE,
    positionals=(FIELD_LIST, FIELD_LEAD, NOTE),
    parse=_parse,
    written=lambda command: ([command.list_ref, command.lead_ref, command.note], {}, {}),
    progress=lambda command: f"Touching {command.lead_ref}…",
    form=registry.Form(
        title="Touch a lead",
        submit="Touch",
        fields=(LIST_FIELD, LEAD_FIELD, registry.FormField(NOTE, "Note", "called-back")),
        build=lambda values: TouchLead(values[FIELD_LIST], values[FIELD_LEAD], values[NOTE]),
    ),
    plan=_plan,
)


@pytest.fixture
def touch() -> Iterator[registry.Subcommand[TouchLead]]:
    registry.register(TOUCH)
    try:
        yield TOUCH
    finally:
        registry.unregister(TOUCH.name)


@pytest.fixture
def audited(sandbox: SandboxServer, tmp_path: Path, touch: registry.Subcommand[TouchLead]) -> Iterator[Bot]:
    """A bot started after the registration, writing its audit trail to a file the test reads."""
    yield from start_bot(sandbox, audit_path=tmp_path / "audit.db")


def _records(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM changes ORDER BY id")]


def test_the_registered_subcommand_parses_and_writes_itself_out(touch: registry.Subcommand[TouchLead]) -> None:
    command = parse('touch "Spring leads" lead-5 called-back')
    assert command == TouchLead("Spring leads", "lead-5", "called-back")
    assert command_text(command) == '/lead touch "Spring leads" lead-5 called-back'
    assert parse(command_text(command)) == command
    assert registry.is_write("touch")


def test_bad_input_for_it_gets_its_own_usage(touch: registry.Subcommand[TouchLead]) -> None:
    refused = parse('touch "Spring leads" lead-5')
    assert isinstance(refused, Invalid)
    assert (refused.message, refused.usage) == ("touch needs <note> (its note) after the lead.", TOUCH.usage)


def test_a_typo_suggests_it(touch: registry.Subcommand[TouchLead]) -> None:
    refused = parse("tuoch x y z")
    assert isinstance(refused, Invalid)
    assert "did you mean touch?" in refused.message and refused.usage == TOUCH.usage


def test_help_lists_it_and_has_a_topic_for_it(touch: registry.Subcommand[TouchLead]) -> None:
    everything = texts(help_message())
    assert "*touch* — mark a lead as touched" in everything and TOUCH.example in everything
    assert parse("help touch") == parse("touch help")
    topic = help_message("touch")
    assert [
        block.get("block_id", "") for block in topic["blocks"] if block.get("block_id", "").startswith("help_")
    ] == [
        "help_touch",
        "help_notes",
    ]


def test_its_form_opens_and_reads_back(touch: registry.Subcommand[TouchLead]) -> None:
    from commands.modals import FormOrigin

    view = form_view("touch", FormOrigin())
    assert view["callback_id"] == "lead_touch_form"
    assert [block["block_id"] for block in view["blocks"]] == [FIELD_LIST, FIELD_LEAD, NOTE]
    values = {
        FIELD_LIST: {"list_select": {"selected_option": {"value": "Spring leads"}}},
        FIELD_LEAD: {"lead_input": {"value": "lead-5"}},
        NOTE: {"note_input": {"value": "hi"}},
    }
    assert read_form("touch", values, default_region=None) == TouchLead("Spring leads", "lead-5", "hi")
    assert read_form("touch", {}, default_region=None) == {
        FIELD_LIST: "Pick a list.",
        FIELD_LEAD: "Give the lead's uid or id.",
        NOTE: "note must not be empty.",
    }


def test_it_is_dispatched_and_audited_under_its_own_name(audited: Bot, tmp_path: Path) -> None:
    card = audited.ask('touch "Spring leads" lead-5 called-back')

    assert "lead-5" in texts(card)
    assert audited.lead("lead-5").data["touched"] == "called-back"
    (record,) = _records(tmp_path / "audit.db")
    assert (record["action"], record["outcome"]) == ("touch", "ok")
    assert record["command"] == '/lead touch "Spring leads" lead-5 called-back'


def test_its_form_submission_is_dispatched(audited: Bot, tmp_path: Path) -> None:
    interaction = audited.command("touch")
    view = audited.driver.opened_view(interaction)
    assert view["callback_id"] == "lead_touch_form"

    submitted = audited.driver.submit(
        None, {FIELD_LIST: "Spring leads", FIELD_LEAD: "lead-6", NOTE: "from-form"}, interaction=interaction
    )

    assert submitted.status == 200
    audited.driver.replies(submitted, count=1, timeout=15)
    assert audited.lead("lead-6").data["touched"] == "from-form"
    (record,) = _records(tmp_path / "audit.db")
    assert (record["action"], record["command"]) == ("touch", '/lead touch "Spring leads" lead-6 from-form (form)')


def test_its_write_tier_is_enforced(sandbox: SandboxServer, touch: registry.Subcommand[TouchLead]) -> None:
    for bot in start_bot(sandbox, allow_writes=False):
        denied = bot.ask('touch "Spring leads" lead-5 x')
        assert error_text(denied).startswith(":x: Only leadbot writers can change leads")
        assert "touched" not in bot.lead("lead-5").data


def test_a_held_question_comes_back_as_its_own_command(touch: registry.Subcommand[TouchLead]) -> None:
    held = {"kind": "touch", "list_ref": "L", "lead_ref": "l1", "note": "n"}
    assert command_from_payload(held) == TouchLead("L", "l1", "n")


# ---------------------------------------------------------------------- what no module registered


@dataclass(frozen=True)
class Stray:
    list_ref: str = "Spring leads"


def test_an_unregistered_command_is_an_error_not_another_subcommand() -> None:
    with pytest.raises(registry.UnknownSubcommand):
        command_text(Stray())
    with pytest.raises(registry.UnknownSubcommand):
        read_form("delete", {}, default_region=None)
    with pytest.raises(registry.UnknownSubcommand):
        command_from_payload({"kind": "delete", "list_ref": "L"})
    assert not registry.is_write("delete") and registry.find("delete") is None


def test_execute_answers_an_unregistered_command_with_a_sentence(bot: Bot) -> None:
    request = Request(Requester(user_id="U1", team_id="T1", enterprise_id=None, channel_id="C1"))
    reply = asyncio.run(bot.leadbot.execute(Stray(), request=request, replace_original=False))
    assert reply is not None and "Something went wrong inside leadbot" in texts(reply)


def test_a_name_cannot_be_registered_twice_or_take_a_reserved_name(touch: registry.Subcommand[TouchLead]) -> None:
    with pytest.raises(ValueError, match="twice or reserved"):
        registry.register(TOUCH)
    for reserved in ("help", "apply", "undo_add"):
        with pytest.raises(ValueError, match="twice or reserved"):
            registry.register(
                registry.Subcommand(**{**TOUCH.__dict__, "name": reserved, "command_type": type(reserved, (), {})})
            )
