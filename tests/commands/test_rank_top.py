"""`/lead rank … top` and signed ranks, the pure parts: parsing `top` / `+10` / `-5` (text and form), the command
text the audit trail keeps, the refusal sentence of a signed rank, the rank `top` works out (and why it refuses),
and the sentences of the look-alike warnings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from babelforce.lookup import LeadStanding, ListStandings
from babelforce.models import RANK_MAX, RANK_MIN, Campaign, HopperEntry, Lead
from commands.caveat_text import caveat_text, describe, top_refusal_text
from commands.caveats import WARNINGS, Caveat, CaveatKind, DialContext, Subject, TopBasis, TopRefusal, top_rank
from commands.fields import relative_rank_refusal
from commands.grammar import Invalid, command_text, parse
from commands.modals import BLOCK_LEAD, BLOCK_LIST, BLOCK_RANK, read_form
from commands.rank import RankLead, parse_target
from commands.set import SetLead

SPRING = "Spring leads"
LIST_ID = "cfd395e2301b45f78a0f6abddbe15a4e"
CAMPAIGN_ID = "3d468d1a3f184c51abad810f65bfca4b"


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize("word", ["top", "TOP", "Top", "tOp"])
def test_top_in_any_case_is_a_rank_target_not_a_number(word: str) -> None:
    assert parse(f'rank "Spring leads" lead-5 {word}') == RankLead(SPRING, "lead-5", None, top=True)


def test_plus_ten_is_parsed_as_relative_so_the_plan_can_refuse_it_with_the_leads_rank() -> None:
    assert parse('rank "Spring leads" lead-5 +10') == RankLead(SPRING, "lead-5", 10, relative=True)
    assert parse('rank "Spring leads" lead-5 "+10"') == RankLead(SPRING, "lead-5", 10, relative=True)


@pytest.mark.parametrize(("typed", "rank"), [("-5", -5), ("5", 5), ("-0", 0), ("0", 0), ("-32768", RANK_MIN)])
def test_unsigned_and_negative_ranks_stay_absolute(typed: str, rank: int) -> None:
    assert parse(f'rank "Spring leads" lead-5 {typed}') == RankLead(SPRING, "lead-5", rank)


def test_a_word_that_is_neither_a_rank_nor_top_is_refused_naming_both() -> None:
    result = parse('rank "Spring leads" lead-5 first')
    assert isinstance(result, Invalid)
    assert "rank must be a whole number from -32768 to 32767, or top; got 'first'." in result.message


@pytest.mark.parametrize("typed", ["+32768", "99999", "-32769"])
def test_out_of_range_ranks_are_refused_as_before(typed: str) -> None:
    result = parse(f'rank "Spring leads" lead-5 {typed}')
    assert isinstance(result, Invalid)
    assert "out of range" in result.message


def test_parse_target() -> None:
    assert parse_target(" top ") == (None, True, False)
    assert parse_target("+0") == (0, False, True)
    assert parse_target("-5") == (-5, False, False)


def test_set_rank_plus_ten_is_relative_and_rank_top_points_to_lead_rank() -> None:
    assert parse('set "Spring leads" lead-5 rank=+10') == SetLead(SPRING, "lead-5", rank=10, relative_rank=True)
    assert parse('set "Spring leads" lead-5 rank=-5') == SetLead(SPRING, "lead-5", rank=-5)
    refused = parse('set "Spring leads" lead-5 rank=top')
    assert isinstance(refused, Invalid)
    assert "rank=top works with /lead rank only" in refused.message


def _rank_form(rank: str) -> object:
    values = {
        BLOCK_LIST: {"list_select": {"selected_option": {"value": LIST_ID}}},
        BLOCK_LEAD: {"lead_input": {"value": "lead-5"}},
        BLOCK_RANK: {"rank_input": {"value": rank}},
    }
    return read_form("rank", values, default_region=None)


def test_rank_form_reads_top_plus_and_minus_like_the_text_command() -> None:
    assert _rank_form("Top") == RankLead(LIST_ID, "lead-5", None, top=True)
    assert _rank_form("+10") == RankLead(LIST_ID, "lead-5", 10, relative=True)
    assert _rank_form("-5") == RankLead(LIST_ID, "lead-5", -5)
    assert _rank_form("soon") == {BLOCK_RANK: "rank must be a whole number from -32768 to 32767, or top; got 'soon'."}


def test_set_form_marks_a_plus_rank_relative() -> None:
    values = {
        BLOCK_LIST: {"list_select": {"selected_option": {"value": LIST_ID}}},
        BLOCK_LEAD: {"lead_input": {"value": "lead-5"}},
        BLOCK_RANK: {"rank_input": {"value": "+10"}},
    }
    assert read_form("set", values, default_region=None) == SetLead(LIST_ID, "lead-5", rank=10, relative_rank=True)


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (RankLead(SPRING, "lead-5", None, top=True), '/lead rank "Spring leads" lead-5 top'),
        (RankLead(SPRING, "lead-5", 10, relative=True), '/lead rank "Spring leads" lead-5 +10'),
        (RankLead(SPRING, "lead-5", -5), '/lead rank "Spring leads" lead-5 -5'),
    ],
)
def test_command_text_writes_top_and_signs_back_as_typed(command: RankLead, text: str) -> None:
    assert command_text(command) == text
    assert parse(command_text(command).removeprefix("/lead ")) == command


def test_a_worked_out_top_is_recorded_as_top_not_as_its_number() -> None:
    """The audit record's command text keeps what was asked; its before/after hold the numbers."""
    assert command_text(RankLead(SPRING, "lead-5", 31, top=True)) == '/lead rank "Spring leads" lead-5 top'


# ---------------------------------------------------------------------- the signed rank's refusal


def test_relative_refusal_names_the_current_rank_and_the_absolute_value() -> None:
    assert relative_rank_refusal("lead-5", 5, 10) == (
        "rank is absolute: lead-5 has rank 5; write 15 to raise it by 10, or 10 to set rank 10."
    )
    assert relative_rank_refusal("lead-5", 5, 10, spelled="rank=") == (
        "rank is absolute: lead-5 has rank 5; write rank=15 to raise it by 10, or rank=10 to set rank 10."
    )


def test_relative_refusal_at_the_limit_and_for_plus_zero() -> None:
    assert "would pass the highest rank, 32767; write 32767 for the highest" in relative_rank_refusal(
        "lead-5", 32760, 10
    )
    assert relative_rank_refusal("lead-5", 5, 0) == "rank is absolute: lead-5 has rank 5; write 0 to set rank 0."
    assert "has no rank yet" in relative_rank_refusal("lead-5", None, 3)


# ---------------------------------------------------------------------- top_rank: the dialer's rule


SAME = object()  # a lead's rank is its number unless given


def _rank(n: int, rank: object) -> int | None:
    value = n if rank is SAME else rank
    assert value is None or isinstance(value, int)
    return value


def lead(n: int, rank: object = SAME, status: str = "pending") -> Lead:
    return Lead(id=f"{n:032x}", uid=f"lead-{n}", list_id=LIST_ID, rank=_rank(n, rank), status=status)


def standing(n: int, rank: object = SAME, status: str | None = "pending") -> LeadStanding:
    return LeadStanding(f"{n:032x}", f"lead-{n}", _rank(n, rank), status)


def article_standings(**changed: tuple[int | None, str | None]) -> ListStandings:
    """lead-1 … lead-50 with rank n, all pending; `changed` maps 'lead_7' to (rank, status)."""
    leads = []
    for n in range(1, 51):
        rank, status = changed.get(f"lead_{n}", (n, "pending"))
        leads.append(standing(n, rank, status))
    return ListStandings(leads, has_ranks=True, has_statuses=True)


def hopper(ranks: range | list[int]) -> tuple[HopperEntry, ...]:
    return tuple(HopperEntry(id=f"{n:032x}", uid=f"lead-{n}", order=str(i)) for i, n in enumerate(ranks, start=1))


def context(order: str | None = "UP RANK", *, active: bool = True, hopper_ranks: range | None = None) -> DialContext:
    campaign = Campaign(id=CAMPAIGN_ID, name="Spring outreach", active=active, list_order=order)
    loaded = hopper(hopper_ranks if hopper_ranks is not None else range(50, 30, -1))
    return DialContext(SPRING, campaign, loaded if active else None)


def test_up_rank_top_is_one_above_the_highest_waiting_lead() -> None:
    choice = top_rank(lead(5), context(), article_standings())
    assert choice == Caveat(
        CaveatKind.TOP_RANK,
        rank=31,
        others=("lead-30",),
        other_rank=30,
        list_order="UP RANK",
        basis=TopBasis.WAITING,
    )
    assert describe([choice]) == (
        "Top: rank 31, one above the highest waiting lead (lead-30, rank 30): the rank that heads the next batch."
    )


def test_down_rank_top_is_one_below_the_lowest_waiting_lead() -> None:
    choice = top_rank(lead(40), context("DOWN RANK", hopper_ranks=range(1, 21)), article_standings())
    assert (choice.kind, choice.rank, choice.others, choice.other_rank) == (CaveatKind.TOP_RANK, 20, ("lead-21",), 21)
    assert "one below the lowest waiting lead (lead-21, rank 21)" in caveat_text(choice)


def test_leads_that_are_not_dialable_or_already_loaded_are_not_rivals() -> None:
    """lead-30 was called (no_answer) and lead-29 sold: the highest waiting lead is lead-28."""
    standings = article_standings(lead_30=(30, "no_answer"), lead_29=(29, "sale"), lead_27=(27, "callback"))
    choice = top_rank(lead(5), context(), standings)
    assert (choice.rank, choice.others) == (29, ("lead-28",))


def test_the_lead_itself_is_not_its_own_rival() -> None:
    choice = top_rank(lead(30), context(), article_standings())
    assert (choice.kind, choice.rank, choice.others) == (CaveatKind.ALREADY_TOP, 30, ("lead-29",))
    assert "Rank 30 is already the top" in caveat_text(choice) and "so the rank stays" in caveat_text(choice)


def test_a_tie_is_not_enough_the_rank_goes_one_beyond() -> None:
    choice = top_rank(lead(5, rank=30), context(), article_standings())
    assert (choice.kind, choice.rank) == (CaveatKind.TOP_RANK, 31)


def test_no_other_waiting_lead_keeps_the_rank() -> None:
    standings = ListStandings([standing(5)], has_ranks=True, has_statuses=True)
    choice = top_rank(lead(5), context(), standings)
    assert (choice.kind, choice.rank, choice.others) == (CaveatKind.ALREADY_TOP, 5, ())
    assert "no other waiting lead is there to beat" in caveat_text(choice)


@pytest.mark.parametrize(("order", "limit"), [("UP RANK", RANK_MAX), ("DOWN RANK", RANK_MIN)])
def test_at_the_smallint_limit_top_refuses_and_says_so(order: str, limit: int) -> None:
    standings = article_standings(lead_7=(limit, "pending"))
    choice = top_rank(lead(5), context(order, hopper_ranks=range(0)), standings)
    assert (choice.kind, choice.refusal, choice.others, choice.other_rank) == (
        CaveatKind.TOP_REFUSED,
        TopRefusal.AT_LIMIT,
        ("lead-7",),
        limit,
    )
    text = top_refusal_text(choice)
    assert f"{limit} is the {'highest' if limit > 0 else 'lowest'} rank babelforce stores" in text
    assert "nothing was changed" in text


@pytest.mark.parametrize(("order", "meaning"), [("UP", "last loaded first"), ("DOWN", "first loaded first")])
def test_under_up_or_down_rank_does_not_matter(order: str, meaning: str) -> None:
    choice = top_rank(lead(5), context(order), article_standings())
    assert choice.refusal == TopRefusal.ORDER_IGNORES_RANK
    assert top_refusal_text(choice) == (
        f"rank does not matter: campaign Spring outreach dials in list order {order} ({meaning}), so no rank puts a "
        "lead first; nothing was changed."
    )


def test_no_campaign_no_active_campaign_and_an_unknown_campaign_refuse() -> None:
    none = top_rank(lead(5), DialContext(SPRING), article_standings())
    assert top_refusal_text(none).startswith("top needs a campaign dialling by rank, but no campaign dials list Spring")
    paused = top_rank(lead(5), context(active=False), article_standings())
    assert "campaign Spring outreach that dials list Spring leads is not active" in top_refusal_text(paused)
    unknown = top_rank(lead(5), DialContext(SPRING, campaign_error="timed out"), article_standings())
    assert "Could not read the campaign that dials list Spring leads (timed out)" in top_refusal_text(unknown)


def test_an_export_without_ranks_refuses_rather_than_guessing() -> None:
    no_column = ListStandings([standing(1, None)], has_ranks=False, has_statuses=True)
    choice = top_rank(lead(5), context(), no_column)
    assert choice.refusal == TopRefusal.RANKS_UNKNOWN
    assert "has no rank column" in top_refusal_text(choice)
    blank = article_standings(lead_3=(None, "pending"), lead_4=(None, "new"))
    assert "gives no rank for 2 leads waiting to be loaded" in top_refusal_text(top_rank(lead(5), context(), blank))


def test_unknown_hopper_or_statuses_widen_the_comparison_and_say_so() -> None:
    no_hopper = DialContext(SPRING, Campaign(id=CAMPAIGN_ID, name="S", active=True, list_order="UP RANK"))
    choice = top_rank(lead(5), no_hopper, article_standings())
    assert (choice.rank, choice.basis) == (51, TopBasis.DIALABLE)  # lead-50, in the hopper, now counts
    assert "dialable lead, loaded or not (the hopper could not be read)" in caveat_text(choice)
    no_status = ListStandings(article_standings(lead_30=(30, "sale")).leads, has_ranks=True, has_statuses=False)
    choice = top_rank(lead(5), context(), no_status)
    assert (choice.rank, choice.basis) == (31, TopBasis.NOT_IN_HOPPER)  # lead-30 counts: its status is unknown
    assert "lead not in the hopper (the export has no statuses)" in caveat_text(choice)


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(RANK_MIN, RANK_MAX), st.sampled_from(["pending", "new", "callback", "sale", "no_answer"])
        ),
        max_size=30,
    ),
    st.integers(RANK_MIN, RANK_MAX),
    st.sampled_from(["UP RANK", "DOWN RANK"]),
    st.integers(0, 10),
)
def test_top_beats_every_waiting_lead_by_exactly_one_or_refuses_at_the_limit(
    rows: list[tuple[int, str]], own_rank: int, order: str, loaded: int
) -> None:
    standings = ListStandings(
        [standing(n, rank, status) for n, (rank, status) in enumerate(rows, start=100)],
        has_ranks=True,
        has_statuses=True,
    )
    loaded_ids = range(100, 100 + loaded)
    campaign = Campaign(id=CAMPAIGN_ID, name="S", active=True, list_order=order)
    dial = DialContext(SPRING, campaign, hopper(list(loaded_ids)))
    choice = top_rank(lead(1, own_rank), dial, standings)
    up = order == "UP RANK"
    rivals = [
        rank
        for n, (rank, status) in enumerate(rows, start=100)
        if status in {"pending", "new", "callback"} and n not in loaded_ids
    ]
    if not rivals:
        assert (choice.kind, choice.rank) == (CaveatKind.ALREADY_TOP, own_rank)
        return
    best = max(rivals) if up else min(rivals)
    if (own_rank > best) if up else (own_rank < best):
        assert (choice.kind, choice.rank) == (CaveatKind.ALREADY_TOP, own_rank)
    elif best == (RANK_MAX if up else RANK_MIN):
        assert choice.refusal == TopRefusal.AT_LIMIT
    else:
        assert choice.kind == CaveatKind.TOP_RANK
        assert choice.rank == (best + 1 if up else best - 1)
        assert RANK_MIN <= choice.rank <= RANK_MAX
        assert all(choice.rank > rank if up else choice.rank < rank for rank in rivals)


# ---------------------------------------------------------------------- the look-alike warnings, in words


def test_duplicate_number_names_the_other_lead_for_an_add_and_a_change() -> None:
    added = Caveat(CaveatKind.DUPLICATE_NUMBER, Subject.NEW_LEAD, number="+4915100000007", others=("lead-7",))
    assert caveat_text(added) == (
        "*Number already in the list*: lead lead-7 has +4915100000007 too; babelforce keeps both leads, so this "
        "number can be called twice."
    )
    changed = Caveat(CaveatKind.DUPLICATE_NUMBER, number="+4915100000007", others=("lead-7", "lead-8"))
    assert "leads lead-7, lead-8 have +4915100000007 too; after this change both leads have it" in caveat_text(changed)
    assert added.is_warning and changed.is_warning and CaveatKind.SIMILAR_UID in WARNINGS


def test_similar_uid_names_the_existing_uid() -> None:
    added = Caveat(CaveatKind.SIMILAR_UID, Subject.NEW_LEAD, uid="LEAD-5", others=("lead-5",))
    assert caveat_text(added) == (
        "*Similar uid*: lead lead-5 is already in the list, and LEAD-5 differs only by case or spaces; babelforce "
        "treats them as different uids, so LEAD-5 is added as a second lead rather than changing that one."
    )
    renamed = Caveat(CaveatKind.SIMILAR_UID, uid="Lead 5", others=("lead-5",))
    assert "so the list would hold two leads that read alike" in caveat_text(renamed)
    hostile = Caveat(CaveatKind.SIMILAR_UID, Subject.NEW_LEAD, uid="<!here>", others=("&x",))
    assert "&lt;!here&gt;" in caveat_text(hostile) and "&amp;x" in caveat_text(hostile)
