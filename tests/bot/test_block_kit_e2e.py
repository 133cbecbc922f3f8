"""Every message the bot sends a user (acks and response_url replies) is Block Kit that slack_sdk's block models
accept and that respects Slack's limits, for a representative set of commands and errors, and for a lead whose
data is far larger than a message can hold."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, SectionBlock

from commands.blocks import BLOCK_LEAD_DATA
from sandbox.seed import DEMO_LIST_ID
from tests.subcommands import EXAMPLES
from tests.support import VALIDATION_ERRORS, Bot, block, caveat, final_answer, header, shared_bot, texts

MESSAGE_MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
CONTEXT_ELEMENTS_MAX = 10


def assert_valid_message(message: dict[str, Any]) -> None:
    text = message.get("text")
    assert isinstance(text, str) and text.strip(), "a message needs a non-empty fallback text"
    raw_blocks = message.get("blocks")
    assert isinstance(raw_blocks, list) and 0 < len(raw_blocks) <= MESSAGE_MAX_BLOCKS, len(raw_blocks or [])
    for raw in raw_blocks:
        parsed = Block.parse(raw)
        assert parsed is not None, f"slack_sdk does not know this block: {raw}"
        parsed.validate_json()
        if isinstance(parsed, HeaderBlock):
            assert parsed.text is not None and 0 < len(parsed.text.text) <= HEADER_MAX
        if isinstance(parsed, SectionBlock):
            assert parsed.text is not None or parsed.fields
            if parsed.text is not None:
                assert 0 < len(parsed.text.text) <= SECTION_TEXT_MAX
            fields = parsed.fields or []
            assert len(fields) <= FIELDS_MAX
            assert all(0 < len(field.text) <= FIELD_TEXT_MAX for field in fields)
        if isinstance(parsed, ContextBlock):
            assert 0 < len(parsed.elements) <= CONTEXT_ELEMENTS_MAX


@pytest.fixture(scope="module")
def shared() -> Iterator[Bot]:
    """One bot for the module; each command below touches leads no other one looks at."""
    yield from shared_bot()


REPRESENTATIVE = [
    'show "Spring leads" lead-40',
    'show "Spring leads" +4915100000041',
    'rank "Spring leads" lead-10 100',
    'rank "Spring leads" lead-11 11',  # unchanged
    'rank "Autumn leads" autumn-1 7',
    EXAMPLES["add"].removeprefix("/lead "),
    EXAMPLES["set"].removeprefix("/lead "),
    'set "Spring leads" lead-13 uid=lead-13b number=+4915199990013 rank=300 city=null nickname="<b>&"',
    'set "Spring leads" lead-14 missing=null',
    "help",
    "",
    "help rank",
    'rank "Spring leads" lead-999 5',
    'show "Winter leads" lead-40',
    'add "Spring leads" lead-5 +4915199990005 7',
    *(case[1] for case in VALIDATION_ERRORS),
]


@pytest.mark.parametrize("text", REPRESENTATIVE)
def test_every_message_of_a_command_is_valid_block_kit(shared: Bot, text: str) -> None:
    _, messages = final_answer(shared, text)

    for message in messages:
        assert_valid_message(message)


def test_api_error_reply_is_valid_block_kit(shared: Bot) -> None:
    shared.control.faults({"method": "GET", "path": r"/leads/[^/]+$", "status": 503, "times": None})
    try:
        final, messages = final_answer(shared, 'rank "Spring leads" lead-15 100')
    finally:
        shared.control.clear_faults()

    assert "HTTP 503" in texts(final)
    for message in messages:
        assert_valid_message(message)


def test_lead_with_huge_data_and_long_uid_still_gets_a_valid_card(shared: Bot) -> None:
    uid = "u" * 255
    data = {f"key {n} <&> *bold* ~strike~": f"<!channel> {n} " + "v&<>" * 600 for n in range(300)}
    shared.sandbox.state.add_lead(DEMO_LIST_ID, uid, "+4915199990999", 3, data=data)

    shown, shown_messages = final_answer(shared, f'show "Spring leads" {uid}')
    changed, changed_messages = final_answer(
        shared, f'set "Spring leads" {uid} "key 1 <&> *bold* ~strike~"=null rank=4 {uid[:200]}=new'
    )

    assert header(shown).startswith("Lead uuuu")
    assert "Takes effect at the next hopper refill" in caveat(changed)
    assert shared.lead(uid).rank == 4
    for message in shown_messages + changed_messages:
        assert_valid_message(message)
        assert "<!channel>" not in str(message.get("blocks"))  # babelforce's text is escaped, never a mention


def test_card_of_a_lead_with_more_data_than_fits_counts_the_variables_it_leaves_out(shared: Bot) -> None:
    data = {f"var{n:03d}": "x" * 250 for n in range(300)}
    shared.sandbox.state.add_lead(DEMO_LIST_ID, "many-vars", "+4915199990998", 3, data=data)

    reply = shared.ask('show "Spring leads" many-vars')

    lines = block(reply, BLOCK_LEAD_DATA)["text"]["text"].splitlines()[1:]  # after the "*data*" title
    counted = re.fullmatch(r"… and (\d+) more", lines[-1])
    assert counted is not None, lines[-1][-80:]
    assert len(lines) - 1 + int(counted[1]) == len(data)


def test_set_with_many_new_keys_still_gets_a_valid_card(shared: Bot) -> None:
    pairs = " ".join(f'"extra key {n}"="value {n} with some words"' for n in range(60))

    final, messages = final_answer(shared, f'set "Spring leads" lead-16 {pairs}')

    assert len(shared.lead("lead-16").data) == 62
    assert header(final) == "Lead lead-16 updated"
    for message in messages:
        assert_valid_message(message)
