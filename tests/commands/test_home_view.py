"""The Home tab's view as a pure function: Slack's limits for a view, escaping, and what each part says."""

from __future__ import annotations

from datetime import UTC, datetime

from babelforce.models import Campaign
from commands.campaign import CampaignRow, Part
from commands.home_view import HomeCampaign, HomeChange, change_line, home_denied, home_view

AT = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def campaign(name: str, **changes: object) -> Campaign:
    values: dict[str, object] = {
        "id": "ee369f62c0c04c8993e4b3921c506c45",
        "name": name,
        "active": True,
        "leadList": {"id": "0123456789abcdef0123456789abcdef", "name": "Spring leads"},
    }
    values.update(changes)
    return Campaign.model_validate(values)


def change(ref: int, **changes: object) -> HomeChange:
    values: dict[str, object] = {
        "ref": ref,
        "at": AT,
        "action": "rank",
        "outcome": "ok",
        "lead_name": "lead-40",
        "list_name": "Spring leads",
        "summary": "rank 40 → 45",
    }
    values.update(changes)
    return HomeChange(**values)  # type: ignore[arg-type]


def test_the_view_is_a_home_view_within_slacks_limits() -> None:
    campaigns = [HomeCampaign(CampaignRow(campaign(f"C{n} " + "x" * 100), Part(n))) for n in range(1000)]
    changes = [change(n, undoable=True) for n in range(30)]
    view = home_view(campaigns=campaigns, changes=changes, alerts_on=True, notice="n" * 5000, now=AT)
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    assert all(len(block.get("text", {}).get("text", "")) <= 3000 for block in view["blocks"])
    assert sum(1 for block in view["blocks"] if block.get("block_id", "").startswith("home_change_")) == 10
    assert any("… and" in block.get("text", {}).get("text", "") for block in view["blocks"])  # campaigns cut


def test_a_campaign_line_and_its_last_alert() -> None:
    row = CampaignRow(campaign("<Spring>"), Part(3))
    view = home_view(
        campaigns=[HomeCampaign(row, "Spring: hopper low, 3 loaded", AT)], changes=[], alerts_on=True, now=AT
    )
    [line] = [b["text"]["text"] for b in view["blocks"] if b.get("block_id") == "home_campaigns_1"]
    assert line.startswith("*&lt;Spring&gt;* · active · hopper 3 loaded · last alert: Spring: hopper low, 3 loaded (")
    stopped = CampaignRow(campaign("Renewals", active=False))
    view = home_view(campaigns=[HomeCampaign(stopped)], changes=[], alerts_on=True)
    assert "*Renewals* · _not active_ · not dialling · no alert" in str(view)


def test_parts_that_could_not_be_read_are_said_so() -> None:
    view = home_view(campaigns=None, changes=None, campaigns_error="babelforce is down.", changes_error="disk full.")
    shown = str(view)
    assert "The campaigns could not be read: babelforce is down." in shown
    assert "Your changes could not be read: disk full." in shown


def test_change_lines() -> None:
    assert change_line(change(12)).startswith("`#12` · <!date^")
    assert "*changed* lead-40 in Spring leads: rank 40 → 45" in change_line(change(12))
    assert "tried to rank:" in change_line(change(3, outcome="failed")) and "failed, nothing changed" in change_line(
        change(3, outcome="failed")
    )
    assert change_line(change(4, undone=True)).endswith("_(undone)_")
    assert "*undid a change:*" in change_line(change(5, action="undo"))


def test_only_undoable_changes_get_a_button_and_an_add_asks_first() -> None:
    view = home_view(campaigns=[], changes=[change(1, undoable=True, action="add"), change(2)])
    buttons = [b.get("accessory") for b in view["blocks"] if b.get("block_id", "").startswith("home_change_")]
    assert buttons[0]["value"] == "1" and buttons[0]["confirm"]["title"]["text"] == "Delete this lead?"
    assert buttons[1] is None


def test_the_denied_view_says_why_only() -> None:
    view = home_denied("Only leadbot readers can use leadbot; ask … LEADBOT_READERS.")
    assert [block["type"] for block in view["blocks"]] == ["header", "section"]
    assert "LEADBOT_READERS" in view["blocks"][1]["text"]["text"]
