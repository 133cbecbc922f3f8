"""Block Kit to console text: table-driven over representative blocks."""

from __future__ import annotations

from typing import Any

import pytest

from slackstub import render_blocks, render_message, render_view
from slackstub.render import DIVIDER, mrkdwn


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def md(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def button(label: str, action_id: str = "go") -> dict[str, Any]:
    return {"type": "button", "text": plain(label), "action_id": action_id}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*bold* and _italic_", "bold and italic"),
        ("~old rank~ new rank", "-old rank- new rank"),
        ("`uuid_100` stays as *is*", "uuid_100 stays as is"),
        ("see <https://babelforce.com/docs|the docs>", "see the docs"),
        ("<https://babelforce.com>", "https://babelforce.com"),
        ("asked by <@U0SUPERVISOR> in <#C0CAMPAIGN|spring-campaign>", "asked by @U0SUPERVISOR in #spring-campaign"),
        ("<!here> heads up", "@here heads up"),
        ("rank &lt; 10 &amp;&amp; score &gt; 2", "rank < 10 && score > 2"),
        (":warning: :white_check_mark: :hourglass_flowing_sand: :x:", "⚠ ✅ ⏳ ❌"),
        (":information_source: :arrow_right: :telephone_receiver:", "ℹ → 📞"),
        (":rocket: stays", ":rocket: stays"),
        ("lead_id and snake_case_names", "lead_id and snake_case_names"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("```\n*raw* <block>\n```", "*raw* <block>"),
        # Slack's date formatting shows each viewer their own time zone; the console shows the fallback
        ("at <!date^1714566600^{date_short_pretty} {time}|2024-05-01 12:30 UTC> by", "at 2024-05-01 12:30 UTC by"),
        ("<!date^1392734382^{date_short}^https://example.com/|Feb 18, 2014 PST>", "Feb 18, 2014 PST"),
        ("<!date^1714566600^{date_num}>", "[date 2024-05-01 12:30 UTC, no fallback]"),
        ("<!date^soon^{date_num}>", "[date soon]"),
        ("", ""),
    ],
)
def test_mrkdwn_cleanup(text: str, expected: str) -> None:
    assert mrkdwn(text) == expected


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"type": "header", "text": plain("Lead added")}, "Lead added\n=========="),
        ({"type": "header", "text": plain(":warning: Hopper")}, "⚠ Hopper\n========"),
        ({"type": "section", "text": md("*lead-40* is in the _hopper_")}, "lead-40 is in the hopper"),
        (
            {
                "type": "section",
                "fields": [md("*Rank*\n500"), md("*Phone number*\n+4916098119998"), md("no label here")],
            },
            "Rank          500\nPhone number  +4916098119998\nno label here",
        ),
        (
            {"type": "section", "fields": [md("*Data*\naddress: somewhere\nnote: call after 5")]},
            "Data  address: somewhere\n      note: call after 5",
        ),
        (
            {"type": "section", "text": md("Move lead-40?"), "accessory": button("Move")},
            "Move lead-40?\n[Move]",
        ),
        (
            {"type": "context", "elements": [md(":hourglass_flowing_sand: next refill"), plain("a minute ago")]},
            "  · ⏳ next refill\n  · a minute ago",
        ),
        ({"type": "divider"}, DIVIDER),
        (
            {
                "type": "actions",
                "elements": [
                    button("Yes", "yes"),
                    button("No", "no"),
                    {"type": "static_select", "placeholder": plain("Pick a list"), "action_id": "list"},
                ],
            },
            "[Yes]  [No]  <Pick a list ▾>",
        ),
        ({"type": "image", "image_url": "https://x/chart.png", "alt_text": "hopper chart"}, "[image: hopper chart]"),
        (
            {
                "type": "rich_text",
                "elements": [
                    {
                        "type": "rich_text_section",
                        "elements": [
                            {"type": "emoji", "name": "warning"},
                            {"type": "text", "text": " Not dialled yet: "},
                            {"type": "link", "url": "https://x", "text": "why"},
                        ],
                    },
                    {
                        "type": "rich_text_list",
                        "style": "bullet",
                        "elements": [
                            {"type": "rich_text_section", "elements": [{"type": "text", "text": "hopper is full"}]},
                            {"type": "rich_text_section", "elements": [{"type": "user", "user_id": "U1"}]},
                        ],
                    },
                ],
            },
            "⚠ Not dialled yet: why\n• hopper is full\n• @U1",
        ),
        ({"type": "video", "title": plain("demo")}, "[video block]"),
        ({"type": "section", "fields": [{"type": "mrkdwn", "text": None}]}, "[section block]"),
        ("not even a dict", "[unknown block]"),
    ],
)
def test_blocks(block: Any, expected: str) -> None:
    assert render_blocks([block]) == expected


def test_blocks_render_one_after_another() -> None:
    blocks = [{"type": "header", "text": plain("Hopper")}, {"type": "divider"}, {"type": "section", "text": md("1.")}]
    assert render_blocks(blocks) == f"Hopper\n======\n{DIVIDER}\n1."
    assert render_blocks([]) == ""


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": "*lead-40* added"}, "lead-40 added"),
        ({"text": "fallback", "blocks": [{"type": "section", "text": md("from _blocks_")}]}, "from blocks"),
        ({"text": "fallback", "blocks": []}, "fallback"),
        ({"text": "done", "replace_original": True}, "done\n(replaces the previous message)"),
        ({"text": "done", "replace_original": False}, "done"),
        ({"text": "hi all", "response_type": "in_channel"}, "hi all\n(visible to everyone in the channel)"),
        ({"text": "just me", "response_type": "ephemeral"}, "just me"),
        (
            {"text": "x", "response_type": "in_channel", "replace_original": True},
            "x\n(replaces the previous message)\n(visible to everyone in the channel)",
        ),
        ({}, ""),
    ],
)
def test_messages(payload: dict[str, Any], expected: str) -> None:
    assert render_message(payload) == expected


def test_view_shows_the_title_then_the_blocks_that_are_not_inputs() -> None:
    view = {
        "type": "modal",
        "title": plain("Add a lead"),
        "blocks": [
            {"type": "section", "text": md("Adds to *spring leads*.")},
            {"type": "input", "label": plain("Number"), "element": {"type": "plain_text_input"}},
            {"type": "context", "elements": [md(":information_source: ranks 1–999")]},
        ],
    }
    assert render_view(view) == "Add a lead\n==========\nAdds to spring leads.\n  · ℹ ranks 1–999"
    assert render_view({"type": "modal", "blocks": []}) == ""
