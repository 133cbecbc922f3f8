"""`/lead undo [#change]` as text: no number is the user's latest change, `12` and `#12` are change 12, anything
else is one sentence naming the field; the registry entry is a write with its own flow, no form, and help says so."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands import registry
from commands.blocks import help_message
from commands.fields import FIELD_CHANGE, change_ref, parse_change_ref
from commands.grammar import Help, Invalid, OpenModal, command_text, parse
from commands.undo import UndoChange
from tests.support import texts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("undo", UndoChange()),
        ("UNDO  ", UndoChange()),
        ("/lead undo", UndoChange()),
        ("undo 123", UndoChange(123)),
        ("undo #123", UndoChange(123)),
        ('undo "#7"', UndoChange(7)),
        ("undo #000042", UndoChange(42)),
        ("undo 999999999999999999", UndoChange(999_999_999_999_999_999)),
    ],
)
def test_undo_reads_no_number_or_one_number(text: str, expected: UndoChange) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "typed"),
    [
        ("undo abc", "abc"),
        ("undo #", "#"),
        ("undo ##12", "##12"),
        ("undo 12a", "12a"),
        ("undo -3", "-3"),
        ("undo 0", "0"),
        ("undo #0", "#0"),
        ("undo 1.5", "1.5"),
        ("undo １２", "１２"),  # fullwidth digits are not ASCII digits
        ("undo 1234567890123456789", "1234567890123456789"),  # beyond SQLite's integers
        ("undo change=12", "change=12"),
        ('undo ""', ""),
    ],
)
def test_junk_is_one_sentence_naming_the_change(text: str, typed: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid)
    assert result.message == (f"change must be a change's number from /lead history, like #12; '{typed}' is not one.")
    assert (result.field, result.subcommand, result.usage) == (FIELD_CHANGE, "undo", "/lead undo [#change]")
    assert result.message.count(". ") == 0  # one sentence


def test_more_than_one_number_is_refused_naming_the_extra_one() -> None:
    result = parse("undo 12 13")
    assert isinstance(result, Invalid)
    assert result.message == "undo takes one change's number; '13' is one too many."
    assert result.field == FIELD_CHANGE


def test_undo_has_no_form_but_has_help() -> None:
    assert not isinstance(parse("undo"), OpenModal)
    assert parse("undo help") == Help("undo") == parse("help undo")


@given(st.integers(min_value=1, max_value=10**18 - 1))
def test_a_ref_as_shown_parses_back_and_the_command_writes_itself_out(change_id: int) -> None:
    assert parse_change_ref(change_ref(change_id)) == change_id == parse_change_ref(str(change_id))
    command = UndoChange(change_id)
    assert command_text(command) == f"/lead undo #{change_id}"
    assert parse(command_text(command)) == command


def test_the_bare_command_writes_itself_out() -> None:
    assert command_text(UndoChange()) == "/lead undo"


def test_undo_is_a_write_with_its_own_flow_and_no_form() -> None:
    spec = registry.get("undo")
    assert spec.tier == registry.Tier.WRITE and registry.is_write("undo")
    assert spec.run is not None and spec.plan is None and spec.form is None
    assert spec.progress(UndoChange()) == "undo your latest change"
    assert spec.progress(UndoChange(12)) == "undo change #12"


def test_help_shows_the_example_and_says_the_bare_command_needs_no_form() -> None:
    shown = texts(help_message("undo"))
    assert "`/lead undo [#change]`" in shown and "Example: `/lead undo #12`" in shown
    assert "`/lead undo` alone (no form) undoes your own latest change" in shown
    assert "any writer can undo anyone's change" in shown
    assert "`/lead undo` alone undoes your own latest change instead" in texts(help_message())


def test_a_plan_still_needs_the_write_tier_and_exactly_one_of_run_and_plan() -> None:
    spec = registry.get("undo")

    async def plan(service: object, command: object) -> object:
        raise AssertionError

    with pytest.raises(ValueError, match=r"needs Tier\.WRITE"):
        registry.Subcommand(**{**spec.__dict__, "run": None, "plan": plan, "tier": registry.Tier.READ})
    with pytest.raises(ValueError, match="exactly one of run"):
        registry.Subcommand(**{**spec.__dict__, "plan": plan})
    with pytest.raises(ValueError, match="exactly one of run"):
        registry.Subcommand(**{**spec.__dict__, "run": None})
