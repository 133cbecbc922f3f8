"""`/lead hopper`: parsing, the next batch's order (a pure function) and the reply within Slack's limits."""

from __future__ import annotations

import pytest
from slack_sdk.models.blocks import Block

from babelforce.lookup import LeadStanding, ListStandings
from babelforce.models import Campaign, HopperEntry, Lead, LeadList
from commands import grammar
from commands.caveats import DialContext
from commands.hopper import (
    ACTION_HOPPER_REFRESH,
    HOPPER_MINIMUM_NOTE,
    NEXT_SHOWN_MAX,
    HopperView,
    ShowHopper,
    hopper_message,
    hopper_verdict,
)
from commands.queue import InLine, next_batch, queue_position, queue_text, waiting_count

LIST = LeadList(id="1" * 32, name="Spring leads")


def lid(n: int) -> str:
    return f"{n:032x}"


def standings(*rows: tuple[int, int | None, str | None]) -> ListStandings:
    leads = [LeadStanding(lid(n), f"lead-{n}", rank, status) for n, rank, status in rows]
    return ListStandings(leads, has_ranks=True, has_statuses=True)


def campaign(order: str | None = "UP RANK", **changes: object) -> Campaign:
    values: dict[str, object] = {
        "id": "2" * 32,
        "name": "Spring outreach",
        "active": True,
        "listOrder": order,
        "leadList": {"id": LIST.id, "name": LIST.name},
    }
    values.update(changes)
    return Campaign.model_validate(values)


def hopper(*numbers: int) -> tuple[HopperEntry, ...]:
    return tuple(
        HopperEntry(id=lid(n), uid=f"lead-{n}", status="pending", order=str(i)) for i, n in enumerate(numbers, 1)
    )


ROWS = standings(
    (1, 5, "pending"),
    (2, 9, "pending"),
    (3, 7, "sale"),
    (4, 9, "pending"),
    (5, 1, "no_answer"),
    (6, 8, "pending"),
    (7, None, "pending"),
)


@pytest.mark.parametrize("text", ['hopper "Spring outreach"', "hopper Spring outreach", "HOPPER spring leads"])
def test_parse_takes_the_words_as_one_name(text: str) -> None:
    result = grammar.parse(text)
    assert isinstance(result, ShowHopper)
    assert result.target.casefold() in {"spring outreach", "spring leads"}


def test_parse_refuses_pairs_and_opens_a_form_without_arguments() -> None:
    refused = grammar.parse("hopper a=b")
    assert isinstance(refused, grammar.Invalid) and "key=value" in refused.message
    assert isinstance(grammar.parse("hopper"), grammar.OpenModal)


def test_next_batch_up_rank_is_highest_rank_first_ties_by_row_unranked_last() -> None:
    batch = next_batch(ROWS, hopper(6), "UP RANK", LIST.id)
    assert [lead.uid for lead in batch] == ["lead-2", "lead-4", "lead-1", "lead-7"]


def test_next_batch_down_rank_is_lowest_rank_first() -> None:
    batch = next_batch(ROWS, hopper(6), "DOWN RANK", LIST.id)
    assert [lead.uid for lead in batch] == ["lead-1", "lead-2", "lead-4", "lead-7"]


def test_next_batch_up_and_down_follow_the_export_rows() -> None:
    assert [lead.uid for lead in next_batch(ROWS, hopper(2), "UP")] == ["lead-7", "lead-6", "lead-4", "lead-1"]
    assert [lead.uid for lead in next_batch(ROWS, hopper(2), "DOWN")] == ["lead-1", "lead-4", "lead-6", "lead-7"]


def test_next_batch_knows_entries_by_uid_when_they_have_no_id() -> None:
    entries = (HopperEntry(uid="lead-2", list_id=LIST.id, order="1"),)
    assert "lead-2" not in [lead.uid for lead in next_batch(ROWS, entries, "UP RANK", LIST.id)]


def make_lead(n: int, rank: int | None, status: str | None = "pending") -> Lead:
    return Lead.model_validate(
        {"id": lid(n), "uid": f"lead-{n}", "number": "+4916098119998", "rank": rank, "status": status}
    )


def test_queue_position_counts_the_hopper_and_the_better_ranks() -> None:
    context = DialContext(LIST.name, campaign(), hopper(6))
    queue = queue_position(make_lead(1, 5), context, ROWS)
    assert (queue.where, queue.hopper_size, queue.waiting_ahead, queue.ahead) == (InLine.WAITING, 1, 2, 3)
    assert (
        queue_text(queue) == "Queue: waiting: about 3 leads ahead of it (1 in the hopper, 2 waiting with higher rank)."
    )


def test_queue_position_in_the_hopper_final_recycling_and_not_dialled() -> None:
    context = DialContext(LIST.name, campaign(), hopper(6, 2))
    assert queue_text(queue_position(make_lead(2, 9), context, ROWS)) == "Queue: in the hopper, position 2 of 2."
    assert queue_position(make_lead(3, 7, "sale"), context, ROWS).where == InLine.FINAL
    assert queue_position(make_lead(5, 1, "no_answer"), context, ROWS).where == InLine.RECYCLING
    stopped = DialContext(LIST.name, campaign(active=False))
    assert queue_position(make_lead(1, 5), stopped, ROWS).where == InLine.NOT_DIALLED


def test_queue_position_under_up_counts_the_rows_loaded_after_it() -> None:
    context = DialContext(LIST.name, campaign("UP"), hopper(6))
    queue = queue_position(make_lead(2, 9), context, ROWS)
    assert (queue.waiting_ahead, queue.rank_based) == (2, False)  # lead-7 and lead-4 were loaded after it
    assert "loaded after it (list order UP)" in queue_text(queue)


def test_queue_position_without_standings_says_only_the_hopper() -> None:
    context = DialContext(LIST.name, campaign(), hopper(6))
    queue = queue_position(make_lead(1, 5), context, None)
    assert queue.ahead is None and "the rest is not known" in queue_text(queue)


def validate(message: dict) -> None:
    for block in message["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    assert len(message["blocks"]) <= 50


def test_the_reply_has_verdict_first_lines_next_batch_and_refresh() -> None:
    view = HopperView(LIST, DialContext(LIST.name, campaign(), hopper(6, 2)), ROWS)
    message = hopper_message(view)
    validate(message)
    assert message["blocks"][0]["text"]["text"] == "*Spring outreach: 2 loaded, dialling by highest rank first*"
    lines = next(b for b in message["blocks"] if b["block_id"] == "hopper_lines_1")["text"]["text"].splitlines()
    assert lines[1:] == ["`1` lead-6 · rank 8 · pending", "`2` lead-2 · rank 9 · pending"]
    following = next(b for b in message["blocks"] if b["block_id"] == "hopper_next_1")["text"]["text"].splitlines()
    assert following[1] == "`1` lead-4 · rank 9 · pending"
    button = message["blocks"][-1]["elements"][0]
    assert (button["action_id"], button["value"]) == (ACTION_HOPPER_REFRESH, "2" * 32)


def test_long_hoppers_and_batches_are_cut_within_slacks_limits() -> None:
    many = ListStandings(
        [LeadStanding(lid(n), "x" * 120 + str(n), n % 500, "pending") for n in range(1, 5001)],
        has_ranks=True,
        has_statuses=True,
    )
    entries = tuple(
        HopperEntry(id=lid(n), uid="x" * 120 + str(n), status="pending", order=str(n)) for n in range(1, 2001)
    )
    message = hopper_message(HopperView(LIST, DialContext(LIST.name, campaign(), entries), many))
    validate(message)
    shown = "\n".join(b["text"]["text"] for b in message["blocks"] if b["block_id"].startswith("hopper_lines"))
    assert "… and " in shown and "more" in shown
    following = next(b for b in message["blocks"] if b["block_id"] == "hopper_next_1")["text"]["text"]
    assert f"… and {3000 - NEXT_SHOWN_MAX} more" in following


def test_verdicts_when_not_dialling() -> None:
    assert hopper_verdict(HopperView(LIST, DialContext(LIST.name), None)) == (
        "No campaign dials Spring leads: nothing is loaded"
    )
    stopped = HopperView(LIST, DialContext(LIST.name, campaign(active=False)), None)
    assert hopper_verdict(stopped) == "Spring outreach is not active: nothing is being dialled"
    validate(hopper_message(stopped))


@pytest.mark.parametrize("order", ["UP RANK", "DOWN RANK", "UP", "DOWN"])
def test_the_first_n_of_the_next_batch_are_the_whole_batchs_first_n(order: str) -> None:
    rows = standings(*((n, (n * 7) % 5 if n % 6 else None, "pending" if n % 4 else "sale") for n in range(1, 40)))
    whole = next_batch(rows, hopper(3, 9), order, LIST.id)
    for limit in (0, 1, 5, 25, 100):
        assert next_batch(rows, hopper(3, 9), order, LIST.id, limit=limit) == whole[:limit]
    assert waiting_count(rows, hopper(3, 9), LIST.id) == len(whole)


def test_queue_position_places_the_lead_by_its_values_now_not_by_its_standings_row() -> None:
    """A write's reply passes standings read before the write: the lead's own row still has its old rank."""
    context = DialContext(LIST.name, campaign(), hopper(6))
    moved_up = queue_position(make_lead(1, 10), context, ROWS)  # its row says rank 5
    assert (moved_up.waiting_ahead, moved_up.ahead) == (0, 1)
    new = queue_position(make_lead(99, 9), context, ROWS)  # not in the standings at all (just added)
    assert new.waiting_ahead == 0  # lead-2 and lead-4 have rank 9 too: not ahead of it by rank


def test_under_up_and_down_a_lead_the_standings_do_not_have_was_loaded_last() -> None:
    up = DialContext(LIST.name, campaign("UP"), hopper(6))
    down = DialContext(LIST.name, campaign("DOWN"), hopper(6))
    assert queue_position(make_lead(99, 1), up, ROWS).waiting_ahead == 0  # last loaded: first under UP
    assert queue_position(make_lead(99, 1), down, ROWS).waiting_ahead == 4  # lead-1, 2, 4 and 7 before it


def test_under_down_the_row_counts_even_when_the_export_had_another_status() -> None:
    """lead-5 was no_answer in the export and is pending again now (recycled): its row still orders it."""
    context = DialContext(LIST.name, campaign("DOWN"), hopper(6))
    queue = queue_position(make_lead(5, 1, "pending"), context, ROWS)
    assert (queue.where, queue.waiting_ahead) == (InLine.WAITING, 3)  # lead-1, lead-2 and lead-4 were loaded first


def test_the_reply_says_the_api_gives_no_hopper_minimum() -> None:
    message = hopper_message(HopperView(LIST, DialContext(LIST.name, campaign(), hopper(6, 2)), ROWS))
    note = next(b for b in message["blocks"] if b["block_id"] == "hopper_note")["elements"][0]["text"]
    assert HOPPER_MINIMUM_NOTE in note
