"""`/lead why`: parsing, and the chain of links as a pure function of the lead, the context and the standings."""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from babelforce.lookup import LeadStanding, ListStandings
from babelforce.models import Campaign, HopperEntry, Lead, LeadList
from commands import grammar
from commands.caveats import DialContext
from commands.why import Diagnosis, WhyLead, chain, why_message

LIST = LeadList(id="1" * 32, name="Spring leads")


def lid(n: int) -> str:
    return f"{n:032x}"


STANDINGS = ListStandings(
    [LeadStanding(lid(n), f"lead-{n}", n, "pending") for n in range(1, 51)], has_ranks=True, has_statuses=True
)
HOPPER = tuple(
    HopperEntry(id=lid(n), uid=f"lead-{n}", status="pending", order=str(i)) for i, n in enumerate(range(50, 30, -1), 1)
)


def campaign(order: str = "UP RANK", **changes: object) -> Campaign:
    values: dict[str, object] = {
        "id": "2" * 32,
        "name": "Spring outreach",
        "active": True,
        "listOrder": order,
        "leadList": {"id": LIST.id, "name": LIST.name},
    }
    values.update(changes)
    return Campaign.model_validate(values)


def lead(n: int, status: str = "pending", number: str = "+4916098119998") -> Lead:
    return Lead.model_validate({"id": lid(n), "uid": f"lead-{n}", "number": number, "rank": n, "status": status})


def diagnose(n: int, context: DialContext, **changes: str) -> tuple[list[tuple[bool, str]], str]:
    links, answer = chain(Diagnosis(LIST, lead(n, **changes), context, STANDINGS), None)
    return [(link.ok, link.text) for link in links], answer


DIALLING = DialContext(LIST.name, campaign(), HOPPER)


def test_parse_takes_a_list_and_a_lead() -> None:
    assert grammar.parse('why "Spring leads" lead-10') == WhyLead("Spring leads", "lead-10")
    assert isinstance(grammar.parse("why"), grammar.OpenModal)
    assert isinstance(grammar.parse('why "Spring leads"'), grammar.Invalid)


def test_a_lead_in_the_hopper_passes_every_link() -> None:
    links, answer = diagnose(40, DIALLING)
    assert all(ok for ok, _ in links) and len(links) == 5
    assert links[-1][1] == "In the hopper, position 11 of 20."
    assert answer == "lead-40 is loaded: it is dialled after the 10 leads ahead of it in the hopper."


def test_a_waiting_lead_says_its_queue_and_the_rank_that_would_move_it() -> None:
    links, answer = diagnose(10, DIALLING)
    assert links[-1][1].endswith("rank 31 would head the next batch.")
    assert "about 40 leads ahead of it (20 in the hopper, 20 waiting before it)" in links[-1][1]
    assert answer == "lead-10 is waiting to be loaded: about 40 leads ahead of it."


def test_rank_does_not_matter_under_up() -> None:
    links, _ = diagnose(10, DialContext(LIST.name, campaign("UP"), HOPPER))
    assert "rank does not matter: list order UP (last loaded first)" in links[-1][1]


def test_broken_links_are_crossed_and_the_first_gives_the_answer() -> None:
    links, answer = diagnose(10, DialContext(LIST.name))
    assert links[0] == (False, "No campaign dials *Spring leads*.")
    assert answer == "lead-10 is not dialled because no campaign dials Spring leads."
    links, answer = diagnose(10, DialContext(LIST.name, campaign(active=False)))
    assert (False, "*Spring outreach* is not active.") in links
    links, answer = diagnose(10, DIALLING, status="sale")
    assert (False, "Status *sale* is final: it is never dialled again.") in links
    assert answer == "lead-10 has the final status sale."
    links, answer = diagnose(10, DIALLING, status="no_answer")
    assert "recycling" in answer
    links, answer = diagnose(10, DIALLING, number="12")
    assert (False, "The number is not a valid E.164 number: the dialer cannot call it.") in links


def test_the_reply_is_verdict_first_and_within_slacks_limits() -> None:
    message = why_message(Diagnosis(LIST, lead(10), DIALLING, STANDINGS), None)
    for block in message["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
    assert message["blocks"][0]["text"]["text"] == "*lead-10 is waiting to be loaded: about 40 leads ahead of it*"
    assert message["blocks"][-1]["elements"][0]["text"].startswith("*Answer:* ")
