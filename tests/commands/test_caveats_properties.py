"""Properties of change_caveats over random campaigns, hoppers and leads: it never fails, always says something, and
its first caveat follows the article's rules, with the right numbers in its text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from babelforce.models import RANK_MAX, RANK_MIN, Campaign, HopperEntry, Lead
from commands.caveat_text import caveat_text
from commands.caveats import Action, Caveat, CaveatKind, DialContext, change_caveats

SETTINGS = settings(deadline=None)

DIALABLE = ["pending", "new", "callback"]
FINAL = ["sale", "do_not_call", "not_interested"]
CALLED = ["no_answer", "busy", "voicemail"]  # called already, neither dialable nor final: recycling decides
ORDERS = [None, "UP", "DOWN", "UP RANK", "DOWN RANK"]
WEIGHTED_ORDERS = [*ORDERS, "UP RANK", "DOWN RANK"]  # the RANK orders have the most rules
RANK_ORDERS = ("UP RANK", "DOWN RANK")

ids = st.integers(min_value=0, max_value=16**32 - 1).map(lambda n: f"{n:032x}")
ranks = st.integers(min_value=RANK_MIN, max_value=RANK_MAX)
ranks_or_none = st.one_of(ranks, ranks, ranks, st.none())  # a rank is rarely missing
statuses = st.sampled_from([*DIALABLE, *DIALABLE, *FINAL, *CALLED, None])  # mostly dialable
# Names as babelforce or a user may spell them, markup characters included.
names = st.text(alphabet=st.sampled_from(list("Spring leads<>&*`_~\n")), min_size=1, max_size=20)
campaigns = st.builds(
    lambda campaign_id, name, active, order: Campaign(id=campaign_id, name=name, active=active, list_order=order),
    ids,
    names,
    st.sampled_from([True] * 8 + [False, None]),  # mostly active
    st.sampled_from(WEIGHTED_ORDERS),
)

POSITION = re.compile(r"position (-?\d+) of (-?\d+)")


@dataclass(frozen=True)
class Scenario:
    action: Action
    before: Lead | None
    after: Lead
    context: DialContext

    @property
    def hopper_ids(self) -> list[str]:
        return [entry.id for entry in self.context.hopper or ()]

    @property
    def dialling(self) -> bool:
        campaign = self.context.campaign
        return campaign is not None and campaign.active is True

    @property
    def order(self) -> str:
        campaign = self.context.campaign
        return (campaign.list_order if campaign else None) or "UP"

    @property
    def rank_changed(self) -> bool:
        return self.before is None or self.before.rank != self.after.rank

    @property
    def expected_position(self) -> int | None:
        """The position of the lead in the hopper, computed from the entries (ids are unique, orders 1..n)."""
        if self.context.hopper is None:
            return None
        for entry in self.context.hopper:
            if entry.id == self.after.id:
                return entry.order
        return None

    @property
    def ahead(self) -> bool:
        """Independent of DialContext.is_ahead_of_hopper: would the new rank be loaded before the hopper's last?"""
        last, rank = self.context.last_hopper_rank, self.after.rank
        if not self.context.hopper or last is None or rank is None:
            return False
        if self.order == "UP RANK":
            return rank > last
        if self.order == "DOWN RANK":
            return rank < last
        return False


@st.composite
def scenarios(draw: st.DrawFn, *, live_rank_order: bool = False) -> Scenario:
    """Any scenario; with `live_rank_order`, one where the hopper rules on rank apply: an active campaign under a
    RANK order, a known non-empty hopper, a dialable lead that is not in it (random scenarios rarely get there)."""
    action: Action = draw(st.sampled_from(["add", "rank", "set"]))
    if live_rank_order:
        campaign = Campaign(id=draw(ids), name=draw(names), active=True, list_order=draw(st.sampled_from(RANK_ORDERS)))
    else:
        campaign = draw(campaigns) if draw(st.sampled_from([True] * 9 + [False])) else None
    hopper_ids = draw(st.lists(ids, min_size=1 if live_rank_order else 0, max_size=30, unique=True))
    orders = draw(st.permutations(range(1, len(hopper_ids) + 1)))
    readable = live_rank_order or draw(st.sampled_from([True] * 9 + [False]))  # mostly readable
    hopper = (
        tuple(HopperEntry(id=i, order=str(o), status="pending") for i, o in zip(hopper_ids, orders, strict=True))
        if readable
        else None
    )
    hopper_error = None if readable else draw(st.sampled_from([None, "HTTP 503", "no answer in time"]))
    last_hopper_rank = draw(ranks if live_rank_order else ranks_or_none) if readable else None
    in_hopper = bool(hopper_ids) and not live_rank_order and draw(st.booleans())
    lead_id = draw(st.sampled_from(hopper_ids)) if in_hopper else draw(ids.filter(lambda i: i not in hopper_ids))
    after_status = draw(st.sampled_from(DIALABLE) if live_rank_order else statuses)
    after_rank = draw(ranks if live_rank_order else ranks_or_none)
    after = Lead(id=lead_id, uid="lead", rank=after_rank, status=after_status, data={"a": "2"})
    before = None
    if action != "add":
        before_rank = draw(st.one_of(st.just(after_rank), ranks))  # often a data-only change
        before_status = draw(st.one_of(st.just(after_status), statuses))
        before = Lead(id=lead_id, uid="lead", rank=before_rank, status=before_status, data={"a": "1"})
    list_name = draw(names)
    context = DialContext(list_name, campaign, hopper, hopper_error, last_hopper_rank)
    return Scenario(action, before, after, context)


#: Every property runs over both: the live RANK-order region is where NEXT_BATCH and NEW_LEAD_AFTER_BATCH live.
any_scenario = st.one_of(scenarios(), scenarios(live_rank_order=True))


def caveats_for(scenario: Scenario) -> tuple[Caveat, ...]:
    return change_caveats(scenario.action, scenario.before, scenario.after, scenario.context)


def kinds(caveats: tuple[Caveat, ...]) -> list[CaveatKind]:
    return [caveat.kind for caveat in caveats]


@SETTINGS
@given(any_scenario)
def test_never_raises_and_never_empty(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    assert isinstance(caveats, tuple)
    assert len(caveats) >= 1
    assert all(isinstance(caveat, Caveat) and isinstance(caveat.kind, CaveatKind) for caveat in caveats)


@SETTINGS
@given(any_scenario)
def test_every_text_is_non_empty_and_escaped(scenario: Scenario) -> None:
    for caveat in caveats_for(scenario):
        assert caveat_text(caveat).strip()
        assert "<" not in caveat_text(caveat)
        assert ">" not in caveat_text(caveat)


@SETTINGS
@given(any_scenario)
def test_not_dialling_comes_first(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    if not scenario.dialling:
        expected = [CaveatKind.NOT_DIALLED] + ([CaveatKind.FINAL_STATUS] if scenario.after.status in FINAL else [])
        assert kinds(caveats) == expected
    else:
        assert CaveatKind.NOT_DIALLED not in kinds(caveats)


@SETTINGS
@given(any_scenario)
def test_final_status_while_dialling_is_the_only_caveat(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    if scenario.dialling and scenario.after.status in FINAL:
        assert kinds(caveats) == [CaveatKind.FINAL_STATUS]
        if scenario.before is None or scenario.before.status == scenario.after.status:
            assert f"`{scenario.after.status}`" in caveat_text(caveats[0])
    elif CaveatKind.FINAL_STATUS in kinds(caveats):
        assert scenario.after.status in FINAL


@SETTINGS
@given(any_scenario)
def test_unreadable_hopper_while_dialling_is_hopper_unknown(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    if scenario.dialling and scenario.after.status not in FINAL and scenario.context.hopper is None:
        # the list order's caveat does not depend on the hopper, so it stays
        order = [CaveatKind.ORDER_IGNORES_RANK] if scenario.rank_changed and scenario.order not in RANK_ORDERS else []
        assert kinds(caveats) == [*order, CaveatKind.HOPPER_UNKNOWN]
        if scenario.context.hopper_error:
            assert f"({scenario.context.hopper_error})" in caveat_text(caveats[-1])
    else:
        assert CaveatKind.HOPPER_UNKNOWN not in kinds(caveats)


@SETTINGS
@given(any_scenario)
def test_lead_in_hopper_comes_first_with_its_position(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    position = scenario.expected_position
    if scenario.dialling and scenario.after.status not in FINAL and position is not None and scenario.action == "add":
        assert kinds(caveats) == [CaveatKind.LOADED_NOW]  # read after the add: it went straight in
        assert f"position {position} of {len(scenario.hopper_ids)}" in caveat_text(caveats[0])
    elif scenario.dialling and scenario.after.status not in FINAL and position is not None:
        assert caveats[0].kind == CaveatKind.IN_HOPPER
        assert f"position {position} of {len(scenario.hopper_ids)}" in caveat_text(caveats[0])
        follow = [CaveatKind.ORDER_IGNORES_RANK] if scenario.rank_changed and scenario.order not in RANK_ORDERS else []
        assert kinds(caveats)[1:] == follow
    else:
        assert CaveatKind.IN_HOPPER not in kinds(caveats)


@SETTINGS
@given(any_scenario)
def test_every_position_in_a_text_is_within_the_hopper(scenario: Scenario) -> None:
    for caveat in caveats_for(scenario):
        for position, size in POSITION.findall(caveat_text(caveat)):
            assert int(size) == len(scenario.hopper_ids)
            assert int(position) == scenario.expected_position
            assert 1 <= int(position) <= int(size)


@SETTINGS
@given(any_scenario)
def test_order_ignores_rank_only_when_rank_changed_under_up_or_down(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    if CaveatKind.ORDER_IGNORES_RANK in kinds(caveats):
        assert scenario.rank_changed
        assert scenario.order not in RANK_ORDERS
        (order_caveat,) = (caveat for caveat in caveats if caveat.kind == CaveatKind.ORDER_IGNORES_RANK)
        assert f"list order {scenario.order}" in caveat_text(order_caveat)


@SETTINGS
@given(any_scenario)
def test_next_batch_only_under_rank_orders_and_ahead_of_hopper(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    batch_kinds = {CaveatKind.NEXT_BATCH, CaveatKind.NEW_LEAD_AFTER_BATCH}
    found = batch_kinds & set(kinds(caveats))
    if found:
        assert scenario.order in RANK_ORDERS
        assert scenario.context.is_ahead_of_hopper(scenario.after.rank)
        assert scenario.ahead
        assert found == {CaveatKind.NEW_LEAD_AFTER_BATCH if scenario.action == "add" else CaveatKind.NEXT_BATCH}
        assert len(caveats) == 1
        assert f"rank {scenario.after.rank} " in caveat_text(caveats[0])
        count = len(scenario.hopper_ids)
        assert f"the {count} lead{'' if count == 1 else 's'} in the hopper" in caveat_text(caveats[0])


@SETTINGS
@given(any_scenario)
def test_next_refill_is_never_with_another_caveat(scenario: Scenario) -> None:
    caveats = caveats_for(scenario)
    if CaveatKind.NEXT_REFILL in kinds(caveats):
        assert len(caveats) == 1
        count = len(scenario.hopper_ids)
        assert f"({count} lead{'' if count == 1 else 's'} loaded)" in caveat_text(caveats[0])


@SETTINGS
@given(any_scenario)
def test_caveats_follow_the_article_rules_exactly(scenario: Scenario) -> None:
    """The whole decision, written out independently of the module: the expected kinds in order."""
    final = scenario.after.status in FINAL
    rank_order = scenario.order in RANK_ORDERS
    if not scenario.dialling:
        expected = [CaveatKind.NOT_DIALLED] + ([CaveatKind.FINAL_STATUS] if final else [])
    elif final:
        expected = [CaveatKind.FINAL_STATUS]
    elif scenario.context.hopper is None:
        expected = ([CaveatKind.ORDER_IGNORES_RANK] if scenario.rank_changed and not rank_order else []) + [
            CaveatKind.HOPPER_UNKNOWN
        ]
    elif scenario.expected_position is not None and scenario.action == "add":
        expected = [CaveatKind.LOADED_NOW]
    elif scenario.expected_position is not None:
        expected = [CaveatKind.IN_HOPPER]
        if scenario.rank_changed and not rank_order:
            expected.append(CaveatKind.ORDER_IGNORES_RANK)
    elif scenario.after.status in CALLED:
        expected = [CaveatKind.AWAITS_RECYCLING]
        if scenario.rank_changed and not rank_order:  # and rank will not count when it is called back either
            expected.append(CaveatKind.ORDER_IGNORES_RANK)
    elif scenario.rank_changed and not rank_order:
        expected = [CaveatKind.ORDER_IGNORES_RANK]
    elif scenario.rank_changed and scenario.ahead:
        expected = [CaveatKind.NEW_LEAD_AFTER_BATCH if scenario.action == "add" else CaveatKind.NEXT_BATCH]
    else:
        expected = [CaveatKind.NEXT_REFILL]
    assert kinds(caveats_for(scenario)) == expected
