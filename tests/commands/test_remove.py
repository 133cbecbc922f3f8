"""`/lead remove`: its parsing, its registration, the dialer's facts about a removed lead and their sentences, and
the Block Kit of its question and its reply. Pure: no server (the end-to-end tests are tests/bot/test_remove_e2e.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from babelforce.models import Campaign, HopperEntry, Lead, LeadList
from commands import registry
from commands.blocks import (
    ACTION_CANCEL,
    ACTION_REMOVE,
    ACTION_UNDO,
    BLOCK_ACTIONS,
    BLOCK_CAVEAT,
    BLOCK_HISTORY,
    BLOCK_LEAD_HEADER,
    BLOCK_NOTICE,
    HistoryEntry,
    LeadReport,
    help_message,
    history_message,
    lead_message,
    removal_question,
)
from commands.caveat_text import caveat_text, describe
from commands.caveats import Caveat, CaveatKind, DialContext, Subject, removal_caveat
from commands.fields import FIELD_LEAD, FIELD_LIST
from commands.grammar import Help, Invalid, OpenModal, command_text, parse
from commands.modals import FormOrigin, form_view, read_form
from commands.remove import WHY_DELETE, RemoveLead, call_history, undo_note

LIST = LeadList(id="cfd395e2301b45f78a0f6abddbe15a4e", name="Spring leads", count=50)
CAMPAIGN = Campaign(id="3d468d1a3f184c51abad810f65bfca4b", name="Spring outreach", active=True, list_order="UP RANK")
PAUSED = CAMPAIGN.model_copy(update={"active": False})
LEAD_40 = f"{40:032x}"  # hopper entry ids are lead ids: lead-50 … lead-31, so lead-40 is at position 11
HOPPER = tuple(
    HopperEntry(id=f"{rank:032x}", order=str(position)) for position, rank in enumerate(range(50, 30, -1), 1)
)
WITHOUT_40 = tuple(entry for entry in HOPPER if entry.id != LEAD_40)
LOADED = DialContext(LIST.name, CAMPAIGN, HOPPER)
UNLOADED = DialContext(LIST.name, CAMPAIGN, WITHOUT_40)
NO_CAMPAIGN = DialContext(LIST.name)
NOT_ACTIVE = DialContext(LIST.name, PAUSED)
HOPPER_FAILED = DialContext(LIST.name, CAMPAIGN, hopper_error="HTTP 503")
CAMPAIGN_FAILED = DialContext(LIST.name, campaign_error="timed out")
NASTY = "<@U123> & *bold*"


def make_lead(**fields: Any) -> Lead:
    values: dict[str, Any] = {
        "id": LEAD_40,
        "uid": "lead-40",
        "number": "+4915100000040",
        "rank": 40,
        "status": "no_answer",
        "call_count": 2,
        "last_updated": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "data": {"city": "Berlin"},
    }
    values.update(fields)
    return Lead(**values)


def report(caveat: Caveat, lead: Lead | None = None, **fields: Any) -> LeadReport:
    return LeadReport("remove", fields.pop("lead_list", LIST), lead or make_lead(), LOADED, (caveat,), **fields)


def by_id(message: dict[str, Any], block_id: str) -> dict[str, Any]:
    (found,) = [b for b in message["blocks"] if b.get("block_id") == block_id]
    return found


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {element["action_id"]: element for element in by_id(message, BLOCK_ACTIONS)["elements"]}


def valid_blocks(message: dict[str, Any]) -> None:
    """Every block parses back into slack_sdk's models and passes their limit checks."""
    for raw in message["blocks"]:
        parsed = Block.parse(raw)
        assert parsed is not None
        parsed.validate_json()


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('remove "Spring leads" lead-40', RemoveLead("Spring leads", "lead-40")),
        (f"remove {LIST.id} {LEAD_40}", RemoveLead(LIST.id, LEAD_40)),
        ("/lead remove Autumn +49 151", None),  # a number typed with a space: one too many
        ('remove Autumn "+49 151 000 000 40"', RemoveLead("Autumn", "+49 151 000 000 40")),
        ("REMOVE Autumn u1", RemoveLead("Autumn", "u1")),
    ],
)
def test_remove_parses_a_list_and_a_lead(text: str, expected: RemoveLead | None) -> None:
    result = parse(text)
    if expected is None:
        assert isinstance(result, Invalid) and result.subcommand == "remove"
    else:
        assert result == expected


@pytest.mark.parametrize(
    ("text", "message", "field"),
    [
        ("remove Autumn", "remove needs <lead> (the lead's uid, id or number) after the list.", FIELD_LEAD),
        ("remove Autumn u1 u2", "remove takes 2 arguments (<list> <lead>) but got 3, so 'u2' is one too many", None),
        ("remove Autumn u1 reason=asked", "remove takes no key=value pairs; 'reason=asked' is one too many.", None),
        ('remove "" u1', "list must not be empty; give the list's name or id.", FIELD_LIST),
        ("remove Autumn lead=u1", "remove takes <lead> after the list by position, without 'lead='.", FIELD_LEAD),
    ],
)
def test_bad_input_is_one_sentence_naming_the_field_with_the_usage(text: str, message: str, field: str | None) -> None:
    result = parse(text)
    assert isinstance(result, Invalid), result
    assert result.message.startswith(message)
    assert (result.field, result.subcommand, result.usage) == (field, "remove", "/lead remove <list> <lead>")


def test_no_arguments_open_the_form_and_help_is_a_topic() -> None:
    assert parse("remove") == OpenModal("remove")
    assert parse("remove help") == Help("remove") == parse("help remove")


def test_the_command_writes_itself_out_and_parses_back() -> None:
    command = RemoveLead("Spring leads", "lead 40")
    assert command_text(command) == '/lead remove "Spring leads" "lead 40"'
    assert parse(command_text(command)) == command


# ---------------------------------------------------------------------- registration


def test_remove_is_a_write_with_help_a_form_and_its_history_verb() -> None:
    spec = registry.get("remove")
    assert spec.tier == registry.Tier.WRITE and registry.is_write("remove")
    assert spec.plan is not None and spec.question is not None and spec.run is None
    assert spec.done_verb == "removed"
    assert parse(spec.example) == RemoveLead("Spring leads", "lead-40")
    assert spec.progress(RemoveLead("Spring leads", "lead-40")) == "remove lead-40 from Spring leads"
    shown = str(help_message("remove"))
    assert "/lead remove &lt;list&gt; &lt;lead&gt;" in shown and spec.example in shown


def test_undo_remove_is_a_reserved_write_action() -> None:
    assert "undo_remove" in registry.RESERVED and registry.is_write("undo_remove")
    spec = registry.get("remove")
    with pytest.raises(ValueError, match="reserved"):
        registry.register(registry.Subcommand(**{**spec.__dict__, "name": "undo_remove"}))


def test_the_form_asks_for_the_list_and_the_lead() -> None:
    view = form_view("remove", FormOrigin())
    assert view["callback_id"] == "lead_remove_form"
    assert [block["block_id"] for block in view["blocks"]] == [FIELD_LIST, FIELD_LEAD]
    assert view["submit"]["text"] == "Review"  # nothing is removed by the form itself
    values = {
        FIELD_LIST: {"list_select": {"selected_option": {"value": LIST.id}}},
        FIELD_LEAD: {"lead_input": {"value": " lead-40 "}},
    }
    assert read_form("remove", values, default_region=None) == RemoveLead(LIST.id, "lead-40")
    assert read_form("remove", {}, default_region=None) == {
        FIELD_LIST: "Pick a list.",
        FIELD_LEAD: "Give the lead's uid or id.",
    }


# ---------------------------------------------------------------------- the dialer's facts


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (LOADED, Caveat(CaveatKind.STILL_LOADED, position=11, hopper_size=20)),
        (UNLOADED, Caveat(CaveatKind.NOT_LOADED, hopper_size=19, list_name=LIST.name, campaign_name=CAMPAIGN.name)),
        (NO_CAMPAIGN, Caveat(CaveatKind.NOT_LOADED, list_name=LIST.name)),
        (NOT_ACTIVE, Caveat(CaveatKind.NOT_LOADED, list_name=LIST.name, campaign_name=CAMPAIGN.name)),
        (
            HOPPER_FAILED,
            Caveat(CaveatKind.REMOVAL_UNKNOWN, list_name=LIST.name, campaign_name=CAMPAIGN.name, reason="HTTP 503"),
        ),
        (CAMPAIGN_FAILED, Caveat(CaveatKind.REMOVAL_UNKNOWN, list_name=LIST.name, reason="timed out")),
    ],
    ids=["loaded", "not loaded", "no campaign", "campaign not active", "hopper unknown", "campaign unknown"],
)
def test_before_the_delete_the_fact_is_where_the_lead_stands(context: DialContext, expected: Caveat) -> None:
    assert removal_caveat(LEAD_40, context) == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (LOADED, LOADED, Caveat(CaveatKind.STILL_LOADED, Subject.REMOVED, position=11, hopper_size=20)),
        (
            LOADED,
            UNLOADED,
            Caveat(
                CaveatKind.NOT_LOADED,
                Subject.REMOVED,
                position=11,
                hopper_size=19,
                list_name=LIST.name,
                campaign_name=CAMPAIGN.name,
            ),
        ),
        (
            UNLOADED,
            UNLOADED,
            Caveat(
                CaveatKind.NOT_LOADED, Subject.REMOVED, hopper_size=19, list_name=LIST.name, campaign_name=CAMPAIGN.name
            ),
        ),
        (
            LOADED,
            HOPPER_FAILED,
            Caveat(
                CaveatKind.REMOVAL_UNKNOWN,
                Subject.REMOVED,
                position=11,
                hopper_size=20,
                list_name=LIST.name,
                campaign_name=CAMPAIGN.name,
                reason="HTTP 503",
            ),
        ),
        (
            UNLOADED,
            CAMPAIGN_FAILED,
            Caveat(
                CaveatKind.REMOVAL_UNKNOWN, Subject.REMOVED, hopper_size=19, list_name=LIST.name, reason="timed out"
            ),
        ),
    ],
    ids=["still loaded", "taken out", "never loaded", "unknown after, loaded before", "unknown after, not before"],
)
def test_after_the_delete_the_hopper_read_again_decides(
    before: DialContext, after: DialContext, expected: Caveat
) -> None:
    assert removal_caveat(LEAD_40, after, before=before) == expected


def test_only_a_lead_no_hopper_holds_is_good_news() -> None:
    assert removal_caveat(LEAD_40, LOADED).is_warning
    assert removal_caveat(LEAD_40, HOPPER_FAILED, before=UNLOADED).is_warning
    assert not removal_caveat(LEAD_40, UNLOADED, before=LOADED).is_warning
    assert not removal_caveat(LEAD_40, NO_CAMPAIGN).is_warning


# ---------------------------------------------------------------------- the sentences


@pytest.mark.parametrize(
    ("before", "after", "sentence"),
    [
        (
            None,
            LOADED,
            "*Loaded in the current batch* (position 11 of 20): babelforce's API cannot take a lead out of a loaded "
            "batch, so this batch may still call it after the removal; no later batch will.",
        ),
        (None, UNLOADED, "*Not in the hopper* (19 leads loaded): once removed, no batch will call it."),
        (None, NO_CAMPAIGN, "*Not dialled*: no campaign dials list *Spring leads*, so no batch will call it."),
        (
            None,
            NOT_ACTIVE,
            "*Not dialled*: campaign *Spring outreach* that dials *Spring leads* is not active, so no batch will call "
            "it.",
        ),
        (
            None,
            HOPPER_FAILED,
            "*Hopper unknown*: could not read the hopper of *Spring outreach* (HTTP 503). If the lead is loaded, "
            "babelforce's API cannot take a lead out of a loaded batch, so that batch may still call it after the "
            "removal; no later batch will.",
        ),
        (
            LOADED,
            LOADED,
            "*It is still loaded in the current batch* (position 11 of 20): babelforce's API cannot take a lead out "
            "of a loaded batch, so this batch may still call it.",
        ),
        (
            LOADED,
            UNLOADED,
            "*Out of the hopper*: it was loaded at position 11 just before the delete and is gone from the hopper now "
            "(19 leads loaded), so no batch will call it.",
        ),
        (
            UNLOADED,
            UNLOADED,
            "*Not in the hopper* (read again after the delete, 19 leads loaded): no batch will call it.",
        ),
        (
            LOADED,
            HOPPER_FAILED,
            "*Hopper unknown after the delete*: could not read the hopper of *Spring outreach* (HTTP 503). The lead "
            "was loaded at position 11 of 20 just before, and babelforce's API cannot take a lead out of a loaded "
            "batch, so this batch may still call it; no later batch will.",
        ),
        (
            UNLOADED,
            CAMPAIGN_FAILED,
            "*Hopper unknown after the delete*: could not read the campaign that dials list *Spring leads* (timed "
            "out). The lead was not loaded when leadbot read the hopper just before the delete, and no later batch "
            "will call it.",
        ),
        (
            CAMPAIGN_FAILED,
            CAMPAIGN_FAILED,
            "*Hopper unknown*: could not read the campaign that dials list *Spring leads* (timed out), so leadbot "
            "cannot say whether the current batch holds the lead; if it does, babelforce's API cannot take a lead "
            "out of a loaded batch, so that batch may still call it. No later batch will.",
        ),
    ],
)
def test_each_fact_reads_as_one_honest_sentence(before: DialContext | None, after: DialContext, sentence: str) -> None:
    assert caveat_text(removal_caveat(LEAD_40, after, before=before)) == sentence


def test_names_from_babelforce_are_escaped_in_the_sentences() -> None:
    context = DialContext(NASTY, CAMPAIGN.model_copy(update={"name": NASTY}), hopper_error="x")
    text = caveat_text(removal_caveat(LEAD_40, context)) + caveat_text(removal_caveat(LEAD_40, DialContext(NASTY)))
    assert "<@U123>" not in text and "&lt;@U123&gt; &amp;" in text


def test_call_history_and_the_undo_note() -> None:
    assert call_history("busy", 1) == "its call history (status busy, 1 call)"
    assert call_history(None, None) == "its call history (status –, 0 calls)"
    assert undo_note("no_answer", 2) == (
        "Undo adds it back as a new lead with the same uid, number, rank and data; its call history (status "
        "no_answer, 2 calls) does not come back."
    )


# ---------------------------------------------------------------------- the question


def test_the_question_shows_the_card_the_warning_first_and_a_confirmed_remove_button() -> None:
    asked = report(removal_caveat(LEAD_40, LOADED), notes=(WHY_DELETE,))

    message = removal_question(asked, "tok-1")

    valid_blocks(message)
    assert by_id(message, BLOCK_LEAD_HEADER)["text"]["text"] == "Remove lead lead-40 from Spring leads?"
    ids = [block.get("block_id") for block in message["blocks"]]
    assert ids[:2] == [BLOCK_LEAD_HEADER, BLOCK_CAVEAT] and ids[-1] == BLOCK_ACTIONS
    remove, keep = buttons(message)[ACTION_REMOVE], buttons(message)[ACTION_CANCEL]
    assert (remove["text"]["text"], remove["style"], remove["value"]) == ("Remove lead", "danger", "tok-1")
    assert (keep["text"]["text"], keep["value"]) == ("Keep it", "tok-1")
    dialog = remove["confirm"]
    assert dialog["title"]["text"] == "Remove this lead?"
    assert dialog["text"]["text"] == (
        "leadbot deletes lead lead-40 from list Spring leads in babelforce, so no later batch calls it. Undo can add "
        "it back only as a new lead, without its call history."
    )
    assert (dialog["confirm"]["text"], dialog["deny"]["text"], dialog["style"]) == ("Remove it", "Keep it", "danger")
    assert message["text"].startswith("Remove lead lead-40 from Spring leads? Loaded in the current batch (position 11")
    assert message["text"].endswith("Nothing is removed until you click Remove lead.")
    assert "replace_original" not in message  # the pipeline decides that


def test_a_question_asked_again_says_the_lead_changed() -> None:
    message = removal_question(report(removal_caveat(LEAD_40, UNLOADED)), "tok-2", changed=True)
    assert message["blocks"][1]["block_id"] == BLOCK_NOTICE
    assert "The lead changed since you were asked" in message["blocks"][1]["text"]["text"]


def test_the_question_escapes_names_and_stays_within_slacks_limits() -> None:
    lead = make_lead(uid=NASTY * 40)
    asked = report(removal_caveat(LEAD_40, LOADED), lead, lead_list=LIST.model_copy(update={"name": NASTY * 40}))

    message = removal_question(asked, "tok-3")

    valid_blocks(message)
    dialog = buttons(message)[ACTION_REMOVE]["confirm"]
    assert len(dialog["text"]["text"]) <= 300 and "<@U123>" not in dialog["text"]["text"]


# ---------------------------------------------------------------------- the reply after the delete


@pytest.mark.parametrize(
    ("before", "after", "title"),
    [
        (LOADED, LOADED, "Removed: lead-40 will not be dialled by later batches"),
        (LOADED, UNLOADED, "Removed: lead-40 will not be dialled"),
        (UNLOADED, UNLOADED, "Removed: lead-40 will not be dialled"),
        (NO_CAMPAIGN, NO_CAMPAIGN, "Removed: lead-40 will not be dialled"),
        (UNLOADED, HOPPER_FAILED, "Removed: lead-40 will not be dialled by later batches"),
    ],
)
def test_the_reply_leads_with_the_verdict_then_why(before: DialContext, after: DialContext, title: str) -> None:
    caveat = removal_caveat(LEAD_40, after, before=before)
    done = report(caveat, notes=(undo_note("no_answer", 2),))

    message = lead_message(done, replace_original=True, undo_id=7)

    valid_blocks(message)
    assert message["replace_original"] is True
    assert message["blocks"][0]["text"]["text"] == title
    assert message["blocks"][1]["block_id"] == BLOCK_CAVEAT  # why, right under the verdict
    assert message["text"] == f"{title}. {describe((caveat,))}"


def test_the_undo_of_a_remove_asks_before_adding_the_lead_back() -> None:
    done = report(removal_caveat(LEAD_40, LOADED, before=LOADED))

    undo = buttons(lead_message(done, undo_id=7))[ACTION_UNDO]

    assert undo["value"] == "7"
    assert undo["confirm"]["title"]["text"] == "Add this lead back?"
    assert undo["confirm"]["text"]["text"] == (
        "Undo adds lead lead-40 back to list Spring leads as a new lead (same uid, number, rank and data) that the "
        "dialer may call again; its call history does not come back."
    )
    assert (undo["confirm"]["confirm"]["text"], undo["confirm"]["deny"]["text"]) == ("Add it back", "Keep it removed")


def test_the_undo_reply_says_the_lead_is_back_as_a_new_lead() -> None:
    back = LeadReport(
        "undo_remove",
        LIST,
        make_lead(id="b" * 32, status="pending", call_count=0),
        LOADED,
        (Caveat(CaveatKind.NEXT_REFILL, Subject.NEW_LEAD, hopper_size=20),),
        notes=("It has a new id and starts as a new lead: its call history (status busy, 3 calls) did not come back.",),
    )

    message = lead_message(back)

    assert message["blocks"][0]["text"]["text"] == "Undone: lead-40 is back in Spring leads as a new lead"
    assert "its call history (status busy, 3 calls) did not come back" in str(message["blocks"])
    assert ACTION_UNDO not in str(message)  # an undo cannot be undone


def test_history_reads_remove_and_its_undo() -> None:
    at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    entries = [
        HistoryEntry(at, "U0ALICE", "undo_remove", "uid lead-40, number +49…, rank 40 as a new lead", "ok"),
        HistoryEntry(at, "U0ALICE", "remove", "uid lead-40 (status busy, 3 calls)", "ok", undone=True),
        HistoryEntry(at, "U0BOB", "remove", "/lead remove L lead-40", "denied", detail="not a writer"),
    ]
    lines = [
        found["text"]["text"]
        for found in history_message(LIST.name, "lead-40", entries)["blocks"]
        if found.get("block_id", "").startswith(f"{BLOCK_HISTORY}_")
    ]
    assert "*added back* uid lead-40" in lines[0]
    assert "*removed* uid lead-40 (status busy, 3 calls) _(undone)_" in lines[1]
    assert "*tried to remove:* /lead remove L lead-40 — *denied* (not a writer)" in lines[2]
