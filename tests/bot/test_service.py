"""LeadService against the real sandbox: directory sharing, lookups in every spelling, and errors in words."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from babelforce import BabelforceClient, ClientCredentials, RetryPolicy, Timeouts
from bot.pipeline import plan
from bot.service import LeadService, UserFacingError
from commands.rank import RankLead
from sandbox import SandboxServer
from sandbox.seed import AUTUMN_LIST_ID, DEMO_LIST_ID
from tests.support import SandboxControl

pytestmark = pytest.mark.anyio


@pytest.fixture
async def service(sandbox: SandboxServer) -> AsyncIterator[LeadService]:
    client = BabelforceClient(
        base_url=sandbox.base_url,
        credentials=ClientCredentials("sandbox", SecretStr("sandbox")),
        retry=RetryPolicy(max_retries=0),
        timeouts=Timeouts(connect=1.0, read=1.0, deadline=1.0),
    )
    async with client:
        yield LeadService(client, default_region="DE")


async def test_waiting_commands_share_one_failed_directory_load(service: LeadService, control: SandboxControl) -> None:
    """Six commands arriving while the list directory is stalled fail together, after one deadline, not six."""
    control.faults({"method": "GET", "path": r"/outbound/lists$", "stall_s": 5, "times": None})
    started = time.monotonic()
    results = await asyncio.gather(*(service.show("Spring leads", "lead-40") for _ in range(6)), return_exceptions=True)
    elapsed = time.monotonic() - started
    assert all(isinstance(result, UserFacingError) for result in results), results
    assert elapsed < 2.5, elapsed
    assert control.count("GET /api/v2/outbound/lists") == 1


async def test_concurrent_commands_share_one_directory_load(service: LeadService, control: SandboxControl) -> None:
    await asyncio.gather(*(service.show("Spring leads", f"lead-{n}") for n in range(1, 11)))
    assert control.count("GET /api/v2/outbound/lists") == 1
    assert control.count("GET /api/v2/outbound/campaigns") == 1


@pytest.mark.parametrize("typed", ["004915100000040", "0151 00000040", "+49 151 000 000 40", "4915100000040"])
async def test_a_number_finds_its_lead_however_it_is_written(service: LeadService, typed: str) -> None:
    report = await service.show("Spring leads", typed)
    assert report.lead.uid == "lead-40"


async def test_a_shared_number_names_the_leads_that_have_it(service: LeadService, sandbox: SandboxServer) -> None:
    sandbox.state.add_lead(DEMO_LIST_ID, "twin-40", "+4915100000040", 1)
    with pytest.raises(UserFacingError) as failure:
        await service.show("Spring leads", "+4915100000040")
    assert "2 leads in list Spring leads have number '+4915100000040'" in failure.value.message
    assert "lead-40" in failure.value.message and "twin-40" in failure.value.message


async def test_a_typo_in_a_list_name_gets_a_suggestion(service: LeadService) -> None:
    with pytest.raises(UserFacingError) as failure:
        await service.show("Sprng leads", "lead-40")
    assert failure.value.message == "No list named 'Sprng leads'; did you mean 'Spring leads'?"


async def test_a_campaign_name_given_as_a_list_is_pointed_at_its_list(service: LeadService) -> None:
    with pytest.raises(UserFacingError) as failure:
        await service.show("spring outreach", "lead-40")
    assert (
        failure.value.message == "'spring outreach' is a campaign; it dials list 'Spring leads': use that list's name."
    )


async def test_a_list_deleted_after_it_was_cached_is_said_to_be_gone(
    service: LeadService, sandbox: SandboxServer
) -> None:
    await service.show("Autumn leads", "autumn-1")  # lists cached, index built
    sandbox.state.delete_list(AUTUMN_LIST_ID)
    with pytest.raises(UserFacingError) as failure:
        await service.apply(await plan(service, RankLead("Autumn leads", "autumn-2", 5)))
    assert failure.value.message == "List Autumn leads no longer exists in babelforce."


async def test_a_failed_write_names_the_lead_by_uid_not_by_id(service: LeadService, control: SandboxControl) -> None:
    control.faults({"method": "PUT", "status": 400, "times": 1})
    with pytest.raises(UserFacingError) as failure:
        await service.apply(await plan(service, RankLead("Spring leads", "lead-10", 100)))
    assert "lead-10" in failure.value.message
    lead_id = (await service.client.find_lead(DEMO_LIST_ID, "lead-10")).id
    assert lead_id not in failure.value.message
