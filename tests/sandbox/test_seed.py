"""The demo seed: deterministic ids, the article's list, and size scaling."""

from __future__ import annotations

import pytest

from sandbox import SandboxState
from sandbox import seed as seeds


def test_demo_seed_ids_are_deterministic_and_independent_of_lead_count() -> None:
    first, second = SandboxState(), SandboxState()
    seeds.seed_demo(first)
    seeds.seed_demo(second, leads=7)
    assert set(first.lists) == set(second.lists) == {seeds.DEMO_LIST_ID, seeds.AUTUMN_LIST_ID, seeds.RENEWALS_LIST_ID}
    assert set(first.campaigns) == {seeds.DEMO_CAMPAIGN_ID, seeds.RENEWALS_CAMPAIGN_ID}
    assert first.lists[seeds.AUTUMN_LIST_ID].ids_by_uid == second.lists[seeds.AUTUMN_LIST_ID].ids_by_uid
    again = SandboxState()
    seeds.seed_demo(again)
    assert again.lists[seeds.DEMO_LIST_ID].ids_by_uid == first.lists[seeds.DEMO_LIST_ID].ids_by_uid
    assert all(len(lead_id) == 32 for lead_id in first.lists[seeds.DEMO_LIST_ID].leads)


def test_demo_seed_contents() -> None:
    state = SandboxState()
    seeds.seed_demo(state)
    spring = state.lists[seeds.DEMO_LIST_ID]
    assert spring.name == seeds.DEMO_LIST
    assert [(lead.uid, lead.rank) for lead in spring.leads.values()][:2] == [("lead-1", 1), ("lead-2", 2)]
    assert spring.leads[spring.ids_by_uid["lead-42"]].number == "+4915100000042"
    assert set(spring.leads[spring.ids_by_uid["lead-1"]].data) == {"firstName", "city"}
    campaign = state.campaigns[seeds.DEMO_CAMPAIGN_ID]
    assert (campaign.name, campaign.list_order, campaign.active, campaign.list_id) == (
        seeds.DEMO_CAMPAIGN,
        "UP RANK",
        True,
        seeds.DEMO_LIST_ID,
    )
    assert state.lists[seeds.AUTUMN_LIST_ID].campaign_id is None
    assert [lead.uid for lead in state.lists[seeds.AUTUMN_LIST_ID].leads.values()][-1] == "autumn-10"
    renewals = state.campaigns[seeds.RENEWALS_CAMPAIGN_ID]
    assert (renewals.list_order, renewals.list_id) == ("UP", seeds.RENEWALS_LIST_ID)
    assert [entry.uid for entry in renewals.hopper][:2] == ["renewal-10", "renewal-9"]


def test_demo_seed_scales_to_100000_leads() -> None:
    state = SandboxState()
    seeds.seed_demo(state, leads=100_000)
    spring = state.lists[seeds.DEMO_LIST_ID]
    assert len(spring.leads) == 100_000
    assert [entry.uid for entry in state.hopper(seeds.DEMO_CAMPAIGN_ID)][:2] == ["lead-100000", "lead-99999"]


def test_empty_seed_is_empty_and_refuses_a_lead_count() -> None:
    state = SandboxState()
    seeds.seed(state, "empty")
    assert state.lists == {} and state.campaigns == {}
    with pytest.raises(ValueError, match="demo"):
        seeds.seed(state, "empty", leads=3)
    with pytest.raises(ValueError, match="unknown seed"):
        seeds.seed(state, "big")
