"""bot.explain: every babelforce error type to the sentence a supervisor reads, from its type and attributes only.

The errors are built by hand, carrying the attributes the client sets (tests/babelforce/test_errors.py checks
that it does). Their own `message` is a decoy that the sentences must never quote.
"""

from __future__ import annotations

from typing import Any

import pytest

from babelforce import errors
from babelforce.models import Lead, LeadList
from bot.explain import UserFacingError, ambiguous_number, explain, list_is_gone, uid_taken, user_error
from commands.fields import FIELD_LEAD, FIELD_LIST, FIELD_UID

LIST_ID, OTHER_LIST_ID, LEAD_ID, CAMPAIGN_ID = "1" * 32, "2" * 32, "3" * 32, "4" * 32
SPRING = LeadList(id=LIST_ID, name="Spring leads")
LEAD = Lead(id=LEAD_ID, uid="lead-10", rank=10)
DECOY = "DECOY message with " + LIST_ID  # what a rewrite of the client's text would leak

ON_LEAD = {"list_id": LIST_ID, "lead_id": LEAD_ID}
STATUS = {"method": "PUT", "path": "/ignored"}


def failed(kind: type[errors.BabelforceError], **attributes: Any) -> errors.BabelforceError:
    return kind(DECOY, **attributes)


CASES: list[tuple[str, errors.BabelforceError, dict[str, Any], str, str | None, bool]] = [
    (
        "timeout on a read",
        failed(errors.APITimeoutError, operation="get_lead", timeout=20.0, **ON_LEAD),
        {},
        "babelforce did not answer in time; nothing was changed, try again in a moment.",
        None,
        False,
    ),
    (
        "timeout on a write",
        failed(errors.APITimeoutError, operation="update_lead", **ON_LEAD),
        {"write": True},
        "babelforce did not answer in time; the change may or may not have been applied, so check with /lead show "
        "before retrying.",
        None,
        True,
    ),
    (
        "connection never made, on a write",
        failed(errors.APIConnectionError, operation="update_lead", may_have_reached_server=False, **ON_LEAD),
        {"write": True},
        "Could not reach babelforce (the connection failed); nothing was changed.",
        None,
        False,
    ),
    (
        "connection dropped, on a write",
        failed(errors.APIConnectionError, operation="update_lead", **ON_LEAD),
        {"write": True},
        "Could not reach babelforce (the connection failed); the change may or may not have been applied, so check "
        "with /lead show.",
        None,
        True,
    ),
    (
        "429",
        failed(errors.RateLimitedError, operation="update_lead", status_code=429, retry_after=3, **STATUS),
        {"write": True},
        "babelforce is limiting requests right now, so nothing was changed; wait for 3 s and try again.",
        None,
        False,
    ),
    (
        "refused login",
        failed(errors.AuthenticationError, operation="token", status_code=400, reason="Wrong client_secret."),
        {},
        "babelforce refused leadbot's credentials; ask whoever runs leadbot to check the BABELFORCE_ settings.",
        None,
        False,
    ),
    (
        "401",
        failed(errors.UnauthorizedError, operation="list_lists", status_code=401, **STATUS),
        {},
        "babelforce refused leadbot's credentials; ask whoever runs leadbot to check the BABELFORCE_ settings.",
        None,
        False,
    ),
    (
        "403",
        failed(errors.PermissionDeniedError, operation="update_lead", status_code=403, **STATUS, **ON_LEAD),
        {"write": True},
        "babelforce does not allow leadbot's account to do this; ask a babelforce admin for the permission.",
        None,
        False,
    ),
    (
        "400 names the lead by uid and quotes babelforce's reason",
        failed(
            errors.InvalidRequestError,
            operation="update_lead",
            status_code=400,
            reason="rank must be between 0 and 32767.",
            **STATUS,
            **ON_LEAD,
        ),
        {"write": True, "lead": LEAD},
        "babelforce rejected the request to update lead lead-10: rank must be between 0 and 32767.",
        None,
        False,
    ),
    (
        "400 on an add names the uid and the list",
        failed(errors.InvalidRequestError, operation="add_lead", status_code=400, list_id=LIST_ID, uid="new-1"),
        {"write": True},
        "babelforce rejected the request to add lead 'new-1' to list Spring leads.",
        None,
        False,
    ),
    (
        "404 for this list",
        failed(errors.NotFoundError, operation="export_csv", status_code=404, resource="list", list_id=LIST_ID),
        {},
        "List Spring leads no longer exists in babelforce.",
        FIELD_LIST,
        False,
    ),
    (
        "404 for another list",
        failed(errors.NotFoundError, operation="get_list", status_code=404, resource="list", list_id=OTHER_LIST_ID),
        {},
        f"No list with id {OTHER_LIST_ID}.",
        None,
        False,
    ),
    (
        "404 for a lead",
        failed(errors.NotFoundError, operation="update_lead", status_code=404, resource="lead", **ON_LEAD),
        {"write": True, "lead": LEAD},
        f"Lead {LEAD.uid!r} is no longer in list Spring leads; it was removed meanwhile.",
        None,
        False,
    ),
    (
        "404 for a lead not read before",
        failed(errors.NotFoundError, operation="get_lead", status_code=404, resource="lead", **ON_LEAD),
        {},
        f"No lead with id {LEAD_ID} in list Spring leads.",
        None,
        False,
    ),
    (
        "a lookup of what the user typed found no lead",
        failed(errors.NotFoundError, operation="find_lead", status_code=404, resource="lead", list_id=LIST_ID),
        {"reference": "lead-999"},
        "No lead with uid, id or number 'lead-999' in list Spring leads.",
        FIELD_LEAD,
        False,
    ),
    (
        "404 for a campaign",
        failed(errors.NotFoundError, operation="get_hopper", status_code=404, resource="campaign", campaign_id="c1"),
        {},
        "No campaign with id c1.",
        None,
        False,
    ),
    (
        "409 on an add is the uid taken",
        failed(errors.ConflictError, operation="add_lead", status_code=409, list_id=LIST_ID, uid="lead-5"),
        {"write": True},
        "uid 'lead-5' already exists in list Spring leads — use /lead rank or /lead set to change that lead.",
        None,
        False,
    ),
    (
        "409 about something else quotes babelforce's reason",
        failed(
            errors.ConflictError, operation="delete_lead", status_code=409, reason="Lead is being dialled.", **ON_LEAD
        ),
        {"write": True, "lead": LEAD},
        "babelforce refused to delete lead lead-10: it conflicts: Lead is being dialled.",
        None,
        False,
    ),
    (
        "5xx",
        failed(errors.ServerError, operation="update_lead", status_code=503, reason="Simulated 503", **ON_LEAD),
        {"write": True, "lead": LEAD},
        "babelforce had a server error (HTTP 503) when asked to update lead lead-10; try again shortly.",
        None,
        False,
    ),
    (
        "an unreadable success",
        failed(errors.ServerError, operation="export_csv", status_code=200, list_id=LIST_ID),
        {},
        "babelforce sent an answer that could not be read when asked to export the leads of list Spring leads.",
        None,
        False,
    ),
    (
        "another status",
        failed(errors.APIStatusError, operation="list_campaigns", status_code=418),
        {},
        "babelforce answered HTTP 418 when asked to list the campaigns.",
        None,
        False,
    ),
    (
        "a list name shared by two lists",
        failed(errors.AmbiguousMatchError, candidates=["a", "b"], resource="list", reference="Spring leads"),
        {},
        "2 lists are named 'Spring leads'; use the list id instead.",
        FIELD_LIST,
        False,
    ),
    (
        "a lost add that created nothing",
        failed(
            errors.AddNotCreatedError,
            operation="add_lead",
            list_id=LIST_ID,
            uid="new-1",
            lost=errors.ServerError("x", status_code=503),
        ),
        {"write": True},
        "babelforce's answer to adding uid 'new-1' to list Spring leads was lost (HTTP 503) and the list has no lead "
        "with that uid, so nothing was created; try again.",
        None,
        False,
    ),
    (
        "a lost add whose check failed",
        failed(
            errors.AddOutcomeUnknownError,
            operation="add_lead",
            list_id=LIST_ID,
            uid="new-1",
            lost=errors.APIConnectionError("x"),
            check=errors.ServerError("x", status_code=502),
        ),
        {"write": True},
        "babelforce's answer to adding uid 'new-1' to list Spring leads was lost (the connection failed) and checking "
        "whether it was created failed too (HTTP 502), so look the lead up before adding it again.",
        None,
        True,
    ),
    (
        "a lost add whose check timed out",
        failed(
            errors.AddOutcomeUnknownError,
            operation="add_lead",
            list_id=LIST_ID,
            uid="new-1",
            lost=errors.APITimeoutError("x", timeout=20.0),
            check=errors.APITimeoutError("x", timeout=5.0),
        ),
        {"write": True},
        "babelforce's answer to adding uid 'new-1' to list Spring leads was lost (no answer in time) and it did not "
        "answer the check within 5 s either, so look the lead up before adding it again.",
        None,
        True,
    ),
]


@pytest.mark.parametrize(
    ("failure", "context", "sentence", "field", "uncertain"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_error_type_has_its_sentence(
    failure: errors.BabelforceError, context: dict[str, Any], sentence: str, field: str | None, uncertain: bool
) -> None:
    said = user_error(failure, SPRING, **context)
    assert (said.message, said.field, said.uncertain) == (sentence, field, uncertain)
    assert "DECOY" not in said.message


def test_an_error_with_nothing_but_its_sentence_is_said_as_it_is() -> None:
    failure = errors.ConfigurationError("Set BABELFORCE_BASE_URL, or BABELFORCE_ENV (e.g. services), to reach it.")
    assert explain(failure, SPRING) == failure.message


def test_a_list_is_gone_only_for_a_404_about_that_list() -> None:
    about = {"operation": "get_list", "status_code": 404, "list_id": LIST_ID}
    assert list_is_gone(errors.NotFoundError("x", resource="list", **about), SPRING)
    assert not list_is_gone(errors.NotFoundError("x", resource="lead", **about), SPRING)
    assert not list_is_gone(errors.NotFoundError("x", resource="list", **{**about, "list_id": OTHER_LIST_ID}), SPRING)
    assert not list_is_gone(errors.ServerError("x", status_code=503, list_id=LIST_ID), SPRING)


def test_the_uid_taken_and_shared_number_sentences() -> None:
    taken = uid_taken("lead-14", None, 14, hint="set")
    assert (taken.message, taken.field) == (
        "uid 'lead-14' already belongs to another lead in this list (rank 14); choose another uid.",
        FIELD_UID,
    )
    shared = errors.AmbiguousMatchError("x", candidates=["a", "b", "c"], resource="lead", list_id=LIST_ID)
    said = ambiguous_number(SPRING, "+4915100000040", shared, ["lead-40", "twin-40"])
    assert isinstance(said, UserFacingError) and said.field == FIELD_LEAD
    assert said.message == (
        "3 leads in list Spring leads have number '+4915100000040' (lead-40, twin-40 and 1 more); "
        "use the uid or the lead id instead."
    )
