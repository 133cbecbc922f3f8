"""Block Kit replies: every block is one slack_sdk accepts, within Slack's limits, whatever the input; the lead card
shows what changed; help and error replies carry the usage and examples."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from babelforce.models import Campaign, HopperEntry, Lead, LeadList
from commands import grammar
from commands.add import AddLead
from commands.blocks import (
    ACTION_APPLY_ANYWAY,
    ACTION_CANCEL,
    ACTION_UNDO,
    BLOCK_ACTIONS,
    BLOCK_CAMPAIGN,
    BLOCK_CAVEAT,
    BLOCK_CONFIRM,
    BLOCK_ERROR,
    BLOCK_HISTORY,
    BLOCK_LEAD_DATA,
    BLOCK_LEAD_FIELDS,
    BLOCK_LEAD_HEADER,
    BLOCK_PROGRESS,
    BLOCK_UNDO_QUESTION,
    BLOCK_USAGE,
    DATA_SHOWN_MAX,
    ICON_INFO,
    ICON_OK,
    ICON_WARNING,
    HistoryEntry,
    LeadReport,
    change_summary,
    confirmation_message,
    error_message,
    help_message,
    history_message,
    lead_message,
    notice_message,
    progress_message,
    slack_date,
    undo_add_question,
)
from commands.campaign import ShowCampaign
from commands.caveat_text import caveat_text, escape
from commands.caveats import Caveat, CaveatKind, DialContext, change_caveats, lead_state
from commands.find import FindLeads
from commands.history import LeadHistory
from commands.hopper import ShowHopper
from commands.rank import RankLead
from commands.remove import RemoveLead
from commands.set import SetLead
from commands.show import ShowLead
from commands.undo import UndoChange
from commands.why import WhyLead
from tests import subcommands

LEAD_ID = "ee369f62c0c04c8993e4b3921c506c45"
LIST = LeadList(id="cfd395e2301b45f78a0f6abddbe15a4e", name="Spring leads", count=50)
CAMPAIGN = Campaign(id="3d468d1a3f184c51abad810f65bfca4b", name="Spring calls", active=True, list_order="UP RANK")
HOPPER = tuple(
    HopperEntry(id=f"{rank:032x}", order=str(position)) for position, rank in enumerate(range(50, 30, -1), 1)
)
CONTEXT = DialContext(LIST.name, CAMPAIGN, HOPPER, None, 31)
NASTY = "<@U123> & <!channel> *bold* `code` _it_ ~st~\n> quote <https://x.example|x>"
SUBCOMMANDS = ("add", "rank", "show", "find", "set", "history", "remove", "undo", "campaign", "hopper", "why")
ENTITY = re.compile(r"&(amp|lt|gt);")
# Slack's date formatting, the one control sequence the bot writes around escaped text (a moment, never user text)
SLACK_DATE = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC>")


def make_lead(**fields: Any) -> Lead:
    values: dict[str, Any] = {
        "id": LEAD_ID,
        "uid": "lead-10",
        "number": "+4916098119998",
        "rank": 10,
        "status": "pending",
        "call_count": 2,
        "last_updated": datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        "data": {"address": "martin mendalde", "old data": "gone soon"},
    }
    values.update(fields)
    return Lead(**values)


def report(action: str, before: Lead | None, after: Lead, **extra: Any) -> LeadReport:
    context = extra.pop("context", CONTEXT)
    caveats = extra.pop("caveats", None)
    if caveats is None:
        caveats = (lead_state(after, context),) if action == "show" else change_caveats(action, before, after, context)  # type: ignore[arg-type]
    lead_list = extra.pop("lead_list", LIST)
    return LeadReport(action, lead_list, after, context, caveats, before=before, **extra)  # type: ignore[arg-type]


def hostile_lead(char: str, **fields: Any) -> Lead:
    data = {f"key{i}{NASTY}": ((char + NASTY) * 20)[:1000] for i in range(500)}  # 500 keys, 1000-char values
    return make_lead(uid=char * 5000, number=NASTY, status=NASTY, data=data, **fields)


def hostile_report(char: str) -> LeadReport:
    before = hostile_lead(char, rank=-32768)
    after = hostile_lead(">" if char == "<" else "<", rank=32767)
    after = after.model_copy(update={"data": {k: v for i, (k, v) in enumerate(after.data.items()) if i % 2}})
    lead_list = LeadList(id=LIST.id, name=NASTY * 200)
    campaign = Campaign(id=CAMPAIGN.id, name=NASTY * 200, active=True, list_order="UP RANK")
    context = DialContext(lead_list.name, campaign, HOPPER, "HTTP 503", 31)
    notes = tuple(f"note {i} {NASTY * 300}" for i in range(12))
    return report("set", before, after, context=context, lead_list=lead_list, notes=notes, recovered=True)


IN_HOPPER_CAVEATS = (Caveat(CaveatKind.IN_HOPPER, position=11, hopper_size=20),)
HOSTILE_CAVEATS = tuple(Caveat(CaveatKind.FINAL_STATUS, status=NASTY * 300) for _ in range(14))
AT = datetime(2026, 11, 26, 18, 40, tzinfo=UTC)
HISTORY = [
    HistoryEntry(AT, "U0SUPERVISOR", "undo", "rank 45 → 40", "ok", ref=14),
    HistoryEntry(AT - timedelta(minutes=1), "U0SUPERVISOR", "rank", "rank 40 → 45", "ok", undone=True, ref=13),
    HistoryEntry(AT - timedelta(minutes=2), "U0OTHER", "set", "/lead set x y a=b", "failed", "HTTP 503", ref=12),
    HistoryEntry(AT - timedelta(minutes=3), "U0OTHER", "set", "city Bonn → Kiel", "ok", ref=11, undoable=True),
    HistoryEntry(AT - timedelta(days=400), "U0OTHER", "add", "uid lead-10, number +491, rank 10", "ok", ref=3),
]
HISTORY_ADD_UNDOABLE = [HistoryEntry(AT, "U0OTHER", "add", "uid lead-10", "ok", ref=3, undoable=True)]
HOSTILE_HISTORY = [
    HistoryEntry(AT, NASTY, NASTY, NASTY * 40, "unknown", NASTY * 40, undone=True, ref=2**62, undoable=True)
    for _ in range(40)
]


# Every kind of message the bot sends, ordinary and hostile, by name.
MESSAGES: dict[str, Callable[[], dict]] = {
    "card-add": lambda: lead_message(report("add", None, make_lead(rank=500, data={"new data": "new"}))),
    "card-rank": lambda: lead_message(report("rank", make_lead(), make_lead(rank=100))),
    "card-show": lambda: lead_message(report("show", None, make_lead())),
    "card-set": lambda: lead_message(
        report("set", make_lead(), make_lead(uid="lead-11", data={"address": "x", "new data": "new"}))
    ),
    "card-unchanged": lambda: lead_message(report("set", make_lead(), make_lead(), unchanged=True)),
    "card-recovered": lambda: lead_message(report("add", None, make_lead(), recovered=True), replace_original=True),
    "card-no-campaign": lambda: lead_message(report("rank", make_lead(), make_lead(rank=1), context=DialContext("x"))),
    "card-hostile-lt": lambda: lead_message(hostile_report("<")),
    "card-hostile-amp": lambda: lead_message(hostile_report("&")),
    "card-hostile-gt": lambda: lead_message(hostile_report(">")),
    "card-empty-lead": lambda: lead_message(report("show", None, Lead(id=LEAD_ID))),
    "error": lambda: error_message("lead 'lead-99' is not in list Spring leads."),
    "error-usage": lambda: error_message("rank must be a whole number.", subcommands.USAGE["rank"]),
    "error-all-usage": lambda: error_message("/lead has no command 'ad'.", subcommands.ALL_USAGE),
    "error-hostile": lambda: error_message(NASTY * 1000, NASTY * 100),
    "help": lambda: help_message(),
    **{f"help-{name}": (lambda name=name: help_message(name)) for name in (*subcommands.SUBCOMMANDS, "nonsense")},
    "progress": lambda: progress_message("change the rank of lead-10 in Spring leads to 60"),
    "progress-hostile": lambda: progress_message(NASTY * 1000),
    "card-undo": lambda: lead_message(report("rank", make_lead(), make_lead(rank=100)), undo_id=7),
    "card-add-undo": lambda: lead_message(report("add", None, make_lead()), undo_id=8),
    "card-undone": lambda: lead_message(report("undo", make_lead(rank=100), make_lead())),
    "card-undo-hostile": lambda: lead_message(hostile_report("<"), undo_id=2**62),
    "question": lambda: confirmation_message(
        "Change the rank of lead-10 from 10 to 100", IN_HOPPER_CAVEATS, "tok-1", replace_original=True
    ),
    "question-hostile": lambda: confirmation_message(NASTY * 200, HOSTILE_CAVEATS, "t" * 200, replace_original=False),
    "notice": lambda: notice_message("Cancelled: nothing was changed.", replace_original=True),
    "notice-hostile": lambda: notice_message(NASTY * 1000),
    "history": lambda: history_message("Spring leads", "lead-10", HISTORY),
    "history-empty": lambda: history_message("Spring leads", "lead-10", []),
    "history-hostile": lambda: history_message(NASTY * 50, NASTY * 50, HOSTILE_HISTORY),
    "history-add-undoable": lambda: history_message("Spring leads", "lead-10", HISTORY_ADD_UNDOABLE),
    "undo-add-question": lambda: undo_add_question(3, "lead-10", "Spring leads"),
    "undo-add-question-hostile": lambda: undo_add_question(2**62, NASTY * 200, NASTY * 200),
}
HOSTILE = [name for name in MESSAGES if "hostile" in name]


def mrkdwn_texts(block: dict) -> Iterator[str]:
    """Every mrkdwn text in a block: section text and fields, context elements."""
    for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
        if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
            yield obj["text"]


def all_mrkdwn(message: dict) -> list[str]:
    return [text for block in message["blocks"] for text in mrkdwn_texts(block)]


def block(message: dict, block_id: str) -> dict:
    (found,) = [b for b in message["blocks"] if b.get("block_id") == block_id]
    return found


def field_values(message: dict) -> dict[str, str]:
    """The lead card's fields as {label: value}."""
    fields = {}
    for field in block(message, BLOCK_LEAD_FIELDS)["fields"]:
        label, _, value = field["text"].partition("\n")
        fields[label.strip("*")] = value
    return fields


@pytest.mark.parametrize("name", list(MESSAGES))
def test_every_block_parses_and_validates(name: str) -> None:
    message = MESSAGES[name]()
    assert message["blocks"]
    for raw in message["blocks"]:
        parsed = Block.parse(raw)
        assert parsed is not None, raw
        parsed.validate_json()
        assert parsed.to_dict() == raw


@pytest.mark.parametrize("name", list(MESSAGES))
def test_message_is_within_slack_limits(name: str) -> None:
    message = MESSAGES[name]()
    assert message["text"].strip()
    assert len(message["text"]) <= 3000
    assert message["response_type"] == "ephemeral"
    assert 1 <= len(message["blocks"]) <= 50
    block_ids = [b["block_id"] for b in message["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    for raw in message["blocks"]:
        if raw["type"] == "header":
            assert 1 <= len(raw["text"]["text"]) <= 150
        elif raw["type"] == "section":
            assert 1 <= len(raw["text"]["text"]) <= 3000
            assert len(raw.get("fields", [])) <= 10
            assert all(1 <= len(field["text"]) <= 2000 for field in raw.get("fields", []))
        elif raw["type"] == "context":
            assert 1 <= len(raw["elements"]) <= 10
            assert all(1 <= len(element["text"]) <= 3000 for element in raw["elements"])
        elif raw["type"] == "actions":
            assert 1 <= len(raw["elements"]) <= 25
            for button in raw["elements"]:
                assert button["type"] == "button" and 1 <= len(button["text"]["text"]) <= 75
                assert len(button["action_id"]) <= 255 and 1 <= len(button["value"]) <= 2000
        else:
            assert raw["type"] == "divider"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_has_no_raw_angle_brackets(name: str) -> None:
    texts = all_mrkdwn(MESSAGES[name]())
    assert any("&lt;" in text for text in texts)
    assert any("&amp;" in text for text in texts)
    for text in texts:
        text = SLACK_DATE.sub("", text)
        assert "<" not in text
        assert ">" not in text


@pytest.mark.parametrize("name", ["card-hostile-lt", "card-hostile-amp"])
def test_hostile_input_every_ampersand_is_an_entity(name: str) -> None:
    for text in all_mrkdwn(MESSAGES[name]()):
        assert "&" not in ENTITY.sub("", text), text[-20:]


def test_ordinary_names_are_escaped_on_the_card() -> None:
    lead_list = LeadList(id=LIST.id, name="R&D <west>")
    context = DialContext(lead_list.name, CAMPAIGN, HOPPER, None, 31)
    after = make_lead(uid="a<b", data={"k&": "<v>"})
    message = lead_message(report("show", None, after, context=context, lead_list=lead_list))
    assert "List *R&amp;D &lt;west&gt;*" in block(message, BLOCK_LEAD_FIELDS)["text"]["text"]
    assert field_values(message)["uid"] == "a&lt;b"
    assert "k&amp;: &lt;v&gt;" in block(message, BLOCK_LEAD_DATA)["text"]["text"]
    assert block(message, BLOCK_LEAD_HEADER)["text"]["text"] == "Lead a<b"  # plain text: not escaped


# --- the lead card ---------------------------------------------------------------------------------------------------


def test_rank_change_shows_old_and_new_rank() -> None:
    message = lead_message(report("rank", make_lead(), make_lead(rank=100)))
    assert block(message, BLOCK_LEAD_HEADER)["text"]["text"] == "Rank of lead-10: 10 → 100"
    assert field_values(message)["rank"] == "10 → *100*"
    assert field_values(message)["uid"] == "lead-10"  # unchanged: no arrow
    assert message["text"].startswith("Applied: heads the next batch, not the current one. Rank of lead-10: 10 → 100. ")


def test_set_shows_old_and_new_uid_and_number() -> None:
    before = make_lead()
    after = make_lead(uid="lead-11", number="+4915100000040")
    message = lead_message(report("set", before, after))
    fields = field_values(message)
    assert fields["uid"] == "lead-10 → *lead-11*"
    assert fields["number"] == "+4916098119998 → *+4915100000040*"
    assert fields["rank"] == "10"
    assert block(message, BLOCK_LEAD_HEADER)["text"]["text"] == "Lead lead-11 updated"


def test_set_marks_changed_new_and_deleted_data() -> None:
    before = make_lead(data={"address": "old street", "old data": "x", "kept": "same"})
    after = make_lead(data={"address": "martin mendalde", "new data": "new", "kept": "same"})
    text = block(lead_message(report("set", before, after)), BLOCK_LEAD_DATA)["text"]["text"]
    assert text.splitlines() == [
        "*data*",
        "address: old street → *martin mendalde*",
        "kept: same",
        "new data: *new* (added)",
        "~old data: x~ (deleted)",
    ]


def test_show_lists_data_without_change_marks() -> None:
    text = block(lead_message(report("show", None, make_lead())), BLOCK_LEAD_DATA)["text"]["text"]
    assert text == "*data*\naddress: martin mendalde\nold data: gone soon"


def test_lead_without_data_has_no_data_block() -> None:
    message = lead_message(report("show", None, make_lead(data={})))
    assert BLOCK_LEAD_DATA not in [b.get("block_id") for b in message["blocks"]]


def test_many_data_keys_are_counted_beyond_the_shown_ones() -> None:
    data = {f"k{i:03}": "v" for i in range(DATA_SHOWN_MAX + 7)}
    text = block(lead_message(report("show", None, make_lead(data=data))), BLOCK_LEAD_DATA)["text"]["text"]
    assert len(text.splitlines()) == 1 + DATA_SHOWN_MAX + 1
    assert text.endswith("\n… and 7 more")


def test_missing_values_show_a_dash_and_time_is_utc() -> None:
    lead = make_lead(
        uid=None,
        status=None,
        call_count=None,
        last_updated=datetime(2024, 5, 1, 14, 30, tzinfo=timezone(timedelta(hours=2))),
    )
    message = lead_message(report("show", None, lead))
    fields = field_values(message)
    assert fields["status"] == "–"
    assert fields["calls"] == "–"
    assert fields["last updated"] == "<!date^1714566600^{date_short_pretty} {time}|2024-05-01 12:30 UTC>"
    assert block(message, BLOCK_LEAD_HEADER)["text"]["text"] == f"Lead {LEAD_ID}"  # no uid: the id


@pytest.mark.parametrize(
    ("action", "before", "after", "icon"),
    [
        ("rank", make_lead(rank=10), make_lead(rank=100), ICON_WARNING),  # NEXT_BATCH
        ("rank", make_lead(rank=10), make_lead(rank=20), ICON_OK),  # NEXT_REFILL
        ("show", None, make_lead(rank=10), ICON_INFO),  # NOT_IN_HOPPER
    ],
)
def test_caveat_icon_says_warning_or_good_news(action: str, before: Lead | None, after: Lead, icon: str) -> None:
    message = lead_message(report(action, before, after))
    (element,) = block(message, BLOCK_CAVEAT)["elements"]
    assert element["text"].startswith(f"{icon} *")


def test_caveats_then_notes_are_shown_and_capped_at_ten() -> None:
    caveats = (
        Caveat(CaveatKind.IN_HOPPER, position=1, hopper_size=2),
        Caveat(CaveatKind.ORDER_IGNORES_RANK, list_order="UP"),
    )
    notes = tuple(f"note {i}" for i in range(12))
    message = lead_message(report("set", make_lead(), make_lead(rank=1), caveats=caveats, notes=notes, unchanged=True))
    texts = [element["text"] for element in block(message, BLOCK_CAVEAT)["elements"]]
    assert len(texts) == 10
    assert texts[:2] == [f"{ICON_WARNING} {caveat_text(caveat)}" for caveat in caveats]
    assert texts[2:] == [f"{ICON_INFO} note {i}" for i in range(8)]


def test_unchanged_rank_says_so_in_the_title() -> None:
    message = lead_message(report("rank", make_lead(rank=20), make_lead(rank=20), unchanged=True))
    assert block(message, BLOCK_LEAD_HEADER)["text"]["text"] == "No change: lead-10 already has rank 20"


def test_recovered_add_says_so() -> None:
    message = lead_message(report("add", None, make_lead(), recovered=True))
    assert "looked the lead up: it was created once" in block(message, BLOCK_CAVEAT)["elements"][-1]["text"]


def test_card_ends_with_the_campaign_line() -> None:
    message = lead_message(report("show", None, make_lead()))
    assert message["blocks"][-1]["block_id"] == BLOCK_CAMPAIGN
    (element,) = message["blocks"][-1]["elements"]
    assert (
        element["text"]
        == "Campaign *Spring calls* (active) · list order UP RANK (highest rank first) · hopper 20 leads"
    )


def test_replace_original_is_set_only_when_asked() -> None:
    card = report("show", None, make_lead())
    assert lead_message(card, replace_original=True)["replace_original"] is True
    assert "replace_original" not in lead_message(card)


# --- help, error, progress -------------------------------------------------------------------------------------------


def unescape(text: str) -> str:
    return ENTITY.sub(lambda match: {"amp": "&", "lt": "<", "gt": ">"}[match.group(1)], text)


def help_examples(message: dict) -> dict[str, str]:
    examples = {}
    for raw in message["blocks"]:
        if raw.get("block_id", "").startswith("help_") and raw["block_id"] != "help_notes":
            (example,) = re.findall(r"^Example: `(.*)`$", raw["text"]["text"], flags=re.MULTILINE)
            examples[raw["block_id"].removeprefix("help_")] = unescape(example)
    return examples


def test_help_has_one_example_per_command_equal_to_grammar_examples() -> None:
    assert help_examples(help_message()) == {name: subcommands.EXAMPLES[name] for name in SUBCOMMANDS}


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_example_parses_to_its_command(name: str) -> None:
    expected = {
        "add": AddLead,
        "rank": RankLead,
        "show": ShowLead,
        "set": SetLead,
        "history": LeadHistory,
        "find": FindLeads,
        "remove": RemoveLead,
        "undo": UndoChange,
        "campaign": ShowCampaign,
        "hopper": ShowHopper,
        "why": WhyLead,
    }
    (example,) = help_examples(help_message(name)).values()
    result = grammar.parse(example)
    assert not isinstance(result, grammar.Invalid), result
    assert isinstance(result, expected[name])


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_on_a_topic_shows_only_that_command(name: str) -> None:
    message = help_message(name)
    assert list(help_examples(message)) == [name]
    assert f"`{escape(subcommands.USAGE[name])}`" in block(message, f"help_{name}")["text"]["text"]
    assert message["text"] == escape(f"leadbot: {subcommands.USAGE[name]}")


@pytest.mark.parametrize("topic", [None, "help", "nonsense"])
def test_help_without_a_command_topic_shows_all_commands(topic: str | None) -> None:
    assert list(help_examples(help_message(topic))) == list(SUBCOMMANDS)


def test_help_texts_have_no_raw_angle_brackets() -> None:
    for text in all_mrkdwn(help_message()):
        assert "<" not in text and ">" not in text, text


@pytest.mark.parametrize("usage", [subcommands.USAGE["add"], subcommands.USAGE["set"], subcommands.ALL_USAGE])
def test_error_message_contains_the_usage_line(usage: str) -> None:
    message = error_message("rank must be a whole number.", usage)
    assert block(message, BLOCK_ERROR)["text"]["text"] == ":x: rank must be a whole number."
    (element,) = block(message, BLOCK_USAGE)["elements"]
    for line in usage.splitlines():
        assert f"`{escape(line)}`" in element["text"]
    assert element["text"].startswith("Usage: `/lead ")
    assert message["text"] == escape(f"rank must be a whole number. Usage: {usage}")


def test_error_message_without_usage_is_one_block() -> None:
    message = error_message("babelforce is limiting requests right now.")
    assert [raw["block_id"] for raw in message["blocks"]] == [BLOCK_ERROR]
    assert message["text"] == "babelforce is limiting requests right now."


def test_error_message_escapes_the_message() -> None:
    message = error_message("list '<b>&' not found")
    assert block(message, BLOCK_ERROR)["text"]["text"] == ":x: list '&lt;b&gt;&amp;' not found"


def test_progress_message_is_one_escaped_context_line() -> None:
    message = progress_message("show <lead> & co")
    assert [raw["block_id"] for raw in message["blocks"]] == [BLOCK_PROGRESS]
    (element,) = message["blocks"][0]["elements"]
    assert element["text"] == "Received: show &lt;lead&gt; &amp; co"
    assert message["text"] == "Received: show &lt;lead&gt; &amp; co"  # top-level text is mrkdwn too: escaped


@pytest.mark.parametrize("asked", ["Touching lead-10…", "Touching lead-10...", "Touching lead-10"])
def test_the_ack_line_reads_true_for_good_no_ellipsis_no_hourglass(asked: str) -> None:
    """Slack never replaces a command's ack: it stays above the answer, so it must not claim work in progress."""
    message = progress_message(asked)
    assert message["text"] == "Received: Touching lead-10"
    assert "…" not in str(message) and "hourglass" not in str(message)


# ---------------------------------------------------------------------- undo, "apply anyway?", history


def test_a_recorded_change_carries_an_undo_button_with_its_record_id() -> None:
    message = lead_message(report("rank", make_lead(), make_lead(rank=100)), undo_id=41)
    (button,) = block(message, BLOCK_ACTIONS)["elements"]
    assert (button["action_id"], button["value"], button["text"]["text"]) == (ACTION_UNDO, "41", "Undo")
    assert "confirm" not in button  # undoing a rank change deletes nothing: no dialog


def test_undo_of_an_add_asks_before_deleting_the_lead() -> None:
    message = lead_message(report("add", None, make_lead()), undo_id=5)
    (button,) = block(message, BLOCK_ACTIONS)["elements"]
    confirm = button["confirm"]
    assert confirm["title"]["text"] == "Delete this lead?"
    assert "lead-10" in confirm["text"]["text"] and "Spring leads" in confirm["text"]["text"]
    assert confirm["style"] == "danger"


def test_cards_without_a_record_have_no_buttons() -> None:
    for message in (lead_message(report("show", None, make_lead())), MESSAGES["card-undone"]()):
        assert all(b["type"] != "actions" for b in message["blocks"])


def test_the_question_names_the_change_its_caveats_and_offers_apply_or_cancel_with_the_token() -> None:
    message = MESSAGES["question"]()
    assert "Change the rank of lead-10 from 10 to 100" in block(message, BLOCK_CONFIRM)["text"]["text"]
    assert "*Not applied yet:*" in block(message, BLOCK_CONFIRM)["text"]["text"]
    assert "position 11 of 20" in " ".join(mrkdwn_texts(block(message, BLOCK_CAVEAT)))
    buttons = block(message, BLOCK_ACTIONS)["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [(ACTION_APPLY_ANYWAY, "tok-1"), (ACTION_CANCEL, "tok-1")]
    assert message["replace_original"] is True
    assert "Apply anyway?" in message["text"]


def history_sections(message: dict) -> list[dict]:
    return [b for b in message["blocks"] if b.get("block_id", "").startswith(f"{BLOCK_HISTORY}_")]


def test_history_lists_number_when_who_what_and_how_it_ended_newest_first_one_section_each() -> None:
    message = MESSAGES["history"]()
    lines = [section["text"]["text"] for section in history_sections(message)]
    when = "<!date^{}^{{date_short_pretty}} {{time}}|{}>"
    assert lines == [
        f"`#14` · {when.format(1795718400, '2026-11-26 18:40 UTC')} · <@U0SUPERVISOR> · *undid a change:* rank 45 → 40",
        f"`#13` · {when.format(1795718340, '2026-11-26 18:39 UTC')} · <@U0SUPERVISOR> · *changed* rank 40 → 45 "
        "_(undone)_",
        f"`#12` · {when.format(1795718280, '2026-11-26 18:38 UTC')} · <@U0OTHER> · *tried to set:* "
        "/lead set x y a=b — *failed*, nothing changed (HTTP 503)",
        f"`#11` · {when.format(1795718220, '2026-11-26 18:37 UTC')} · <@U0OTHER> · *changed* city Bonn → Kiel",
        f"`#3` · {when.format(1761158400, '2025-10-22 18:40 UTC')} · <@U0OTHER> · *added* uid lead-10, number +491, "
        "rank 10",
    ]
    assert [b["block_id"] for b in history_sections(message)] == [f"{BLOCK_HISTORY}_{n}" for n in range(1, 6)]
    assert message["text"].startswith("History of lead-10 in Spring leads: #14 2026-11-26 18:40 UTC undo rank 45 → 40")


def test_history_gives_an_undo_button_only_to_entries_marked_undoable() -> None:
    sections = history_sections(MESSAGES["history"]())
    buttons = {s["block_id"]: s["accessory"] for s in sections if "accessory" in s}
    assert list(buttons) == [f"{BLOCK_HISTORY}_4"]  # #11 only: #14 is an undo, #13 undone, #12 failed, #3 not marked
    button = buttons[f"{BLOCK_HISTORY}_4"]
    assert (button["action_id"], button["value"], button["text"]["text"]) == (ACTION_UNDO, "11", "Undo")
    assert "confirm" not in button
    note = texts_of(MESSAGES["history"]())[-1]
    assert "times in your time zone" in note and "Undo one by its number too: `/lead undo #11`." in note


def test_history_undo_of_an_add_has_the_same_confirm_dialog_as_the_card() -> None:
    (section,) = history_sections(MESSAGES["history-add-undoable"]())
    from_history = section["accessory"]
    (from_card,) = block(MESSAGES["card-add-undo"](), BLOCK_ACTIONS)["elements"]
    assert from_history["confirm"] == from_card["confirm"]
    assert (from_history["action_id"], from_history["value"]) == (ACTION_UNDO, "3")


def test_history_without_undoable_entries_shows_no_button_and_no_undo_hint() -> None:
    entries = [HistoryEntry(AT, "U0OTHER", "rank", "rank 1 → 2", "ok", ref=5)]
    message = history_message("Spring leads", "lead-1", entries)
    assert all("accessory" not in s for s in history_sections(message))
    assert "/lead undo" not in texts_of(message)[-1]


def test_history_without_changes_says_so() -> None:
    message = MESSAGES["history-empty"]()
    assert "No changes through leadbot" in block(message, BLOCK_HISTORY)["text"]["text"]


def test_history_of_hostile_entries_escapes_user_text_but_keeps_the_mention_and_stays_in_limits() -> None:
    message = MESSAGES["history-hostile"]()
    sections = history_sections(message)
    assert len(sections) == 15 and len(message["blocks"]) == 17  # header, 15 lines, the note: Slack allows 50
    for section in sections:
        text = section["text"]["text"]
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text
        assert len(text) <= 600 and text.endswith("…")
        assert section["accessory"]["value"] == str(2**62)
    assert "15 shown; older ones are left out." in texts_of(message)[-1]


def test_slack_date_is_slacks_syntax_with_a_utc_fallback() -> None:
    assert slack_date(AT) == "<!date^1795718400^{date_short_pretty} {time}|2026-11-26 18:40 UTC>"
    local = datetime(2026, 11, 26, 19, 40, tzinfo=timezone(timedelta(hours=1)))
    assert slack_date(local) == slack_date(AT)
    assert slack_date(AT.replace(tzinfo=None)) == slack_date(AT)  # naive means UTC, never the machine's zone
    assert slack_date(None) == "–"


def test_undo_of_an_add_by_command_asks_with_the_undo_button_of_that_change() -> None:
    message = MESSAGES["undo-add-question"]()
    text = block(message, BLOCK_UNDO_QUESTION)["text"]["text"]
    assert text == (
        ":warning: Undoing #3 deletes lead lead-10 from list Spring leads in babelforce. Nothing is deleted unless "
        "you click Delete lead."
    )
    (button,) = block(message, BLOCK_ACTIONS)["elements"]
    assert (button["action_id"], button["value"], button["text"]["text"], button["style"]) == (
        ACTION_UNDO,
        "3",
        "Delete lead",
        "danger",
    )
    assert message["replace_original"] is True


def texts_of(message: dict) -> list[str]:
    return all_mrkdwn(message)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, {"uid": "u1", "number": "+491", "rank": 5, "data": {}}, "uid u1, number +491, rank 5"),
        (
            None,
            {"uid": "u1", "number": "+491", "rank": 5, "data": {"plan": "gold", "note": ""}},
            "uid u1, number +491, rank 5; note=(empty); plan=gold",
        ),
        ({"uid": "u", "rank": 40, "data": {}}, {"uid": "u", "rank": 45, "data": {}}, "rank 40 → 45"),
        (
            {"uid": "a", "number": "+1", "rank": 1, "data": {"city": "Berlin", "old": "x", "same": "s"}},
            {"uid": "b", "number": "+2", "rank": 1, "data": {"city": "Bonn", "new": "", "same": "s"}},
            "uid a → b; number +1 → +2; city Berlin → Bonn; +new=(empty); −old (was x)",
        ),
        ({"uid": "u", "rank": 1, "data": {}}, {"uid": "u", "rank": 1, "data": {}}, "no values changed"),
        ({"uid": "u", "data": {}}, None, "(no result recorded)"),
    ],
)
def test_change_summary(before: dict | None, after: dict | None, expected: str) -> None:
    assert change_summary(before, after) == expected


def test_a_long_data_value_is_cut_before_its_markup_and_says_so() -> None:
    long_value = "x" * 5000
    message = lead_message(report("set", make_lead(), make_lead(data={"notes": long_value})))
    (line,) = [line for line in block(message, BLOCK_LEAD_DATA)["text"]["text"].splitlines() if "notes" in line]
    assert line.endswith("… (cut: 5000 characters in all)* (added)")
    assert line.count("*") == 2  # the bold value is closed: no stray marker


def test_the_top_level_text_escapes_user_values_as_the_blocks_do() -> None:
    message = lead_message(report("set", make_lead(uid="<!channel> & co"), make_lead(uid="<!channel> & co", rank=1)))
    assert "<!channel>" not in message["text"] and "&lt;!channel&gt; &amp; co" in message["text"]
