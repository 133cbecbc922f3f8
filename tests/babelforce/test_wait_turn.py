"""The client's `wait_turn` hook (leadbot lets Slack's acks go first with it): awaited around a request, but
never while the caller builds a list's index, which other lookups, some of them on Slack's 3 s, wait for."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.anyio


async def test_the_hook_holds_a_request_back_but_not_an_index_build_others_wait_for(sandbox, make_client) -> None:
    client = make_client()
    spring = await client.find_list("Spring leads")
    index = await client.lead_index(spring.id)
    lead_id = index.id_for_uid("lead-1")
    assert lead_id is not None
    released = asyncio.Event()
    held: list[str] = []

    async def hold_back() -> None:  # work that waits its turn until something else is done (an ack)
        held.append("held")
        await released.wait()

    client.wait_turn = hold_back
    # building the index (a fresh export) under the list's lock: a lookup waiting for the lock must not wait
    # for this caller's turn as well, so the build asks nobody
    rebuilt = await asyncio.wait_for(client.lead_index(spring.id, max_age=0), 5)
    assert rebuilt is not index and held == []
    # any other request waits for the hook
    reading = asyncio.ensure_future(client.get_lead(spring.id, lead_id))
    await asyncio.sleep(0.05)
    assert held == ["held"] and not reading.done()
    released.set()
    assert (await asyncio.wait_for(reading, 5)).uid == "lead-1"


async def test_a_read_waits_its_turn_again_before_its_answer_is_read_a_write_does_not(sandbox, make_client) -> None:
    """Reading a GET's answer (JSON, its model) waits a turn, as sending it did; a write's answer is read at once
    (it says what was changed, and nothing may come between)."""
    client = make_client()
    spring = await client.find_list("Spring leads")
    index = await client.lead_index(spring.id)
    lead_id = index.id_for_uid("lead-2")
    assert lead_id is not None
    turns: list[str] = []

    async def count_turn() -> None:
        turns.append("turn")

    client.wait_turn = count_turn
    await client.get_lead(spring.id, lead_id)
    assert turns == ["turn", "turn"]  # before the GET leaves, and before its answer is read
    turns.clear()
    await client.update_lead(spring.id, lead_id, rank=7)
    assert turns == ["turn"]  # before the PUT leaves only
