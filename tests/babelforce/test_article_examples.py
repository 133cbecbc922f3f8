"""The help-center article's two hopper examples, end to end through the client and the sandbox."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


async def spring_setup(client):
    spring = await client.find_list("Spring leads")
    campaign = await client.find_campaign_for_list(spring.id)
    return spring, campaign


async def test_updating_a_lead_already_in_the_hopper_does_not_move_it(client):
    spring, campaign = await spring_setup(client)
    before = {entry.uid: entry.order for entry in await client.get_hopper(campaign.id)}
    assert before["lead-40"] == 11  # ranks 50..31 fill positions 1..20
    lead = await client.find_lead(spring.id, "lead-40")
    updated = await client.update_lead(spring.id, lead.id, rank=1)
    assert updated.rank == 1
    after = {entry.uid: entry.order for entry in await client.get_hopper(campaign.id)}
    assert after == before


async def test_a_lead_ranked_to_the_top_waits_for_the_next_batch(client, control):
    spring, campaign = await spring_setup(client)
    lead = await client.find_lead(spring.id, "lead-10")
    await client.update_lead(spring.id, lead.id, rank=100)
    hopper = await client.get_hopper(campaign.id)
    assert "lead-10" not in {entry.uid for entry in hopper}
    assert len(hopper) == 20

    control.dial(campaign.id, 20)
    next_batch = await client.get_hopper(campaign.id)
    assert next_batch[0].uid == "lead-10" and next_batch[0].order == 1
    assert [entry.uid for entry in next_batch[1:4]] == ["lead-30", "lead-29", "lead-28"]


async def test_a_new_lead_with_a_high_rank_is_not_compared_with_the_hopper(client, control):
    spring, campaign = await spring_setup(client)
    await client.add_lead(spring.id, uid="vip", number="+4915100000999", rank=30000)
    assert "vip" not in {entry.uid for entry in await client.get_hopper(campaign.id)}
    control.dial(campaign.id, 1)  # the hopper falls below its minimum, so it is refilled: vip comes in
    hopper = await client.get_hopper(campaign.id)
    assert len(hopper) == 20
    assert hopper[-1].uid == "vip"  # loaded with the refill, behind the 19 leads already waiting
