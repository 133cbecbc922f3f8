"""Settings resolution, model tolerance and the retry arithmetic: pure functions, no server needed."""

from __future__ import annotations

import random

import httpx
import pytest

from babelforce import (
    BabelforceSettings,
    Campaign,
    ConfigurationError,
    HopperEntry,
    Lead,
    LeadList,
    RateLimitedError,
    RetryPolicy,
)
from babelforce.auth import ClientCredentials, PasswordLogin, StaticToken, credentials_from_settings
from babelforce.client import BabelforceClient, _Op, _retry_after, _status_error
from babelforce.ids import normalize_id
from babelforce.models import Token

BLANK_ENV = {
    name: ""
    for name in (
        "BABELFORCE_BASE_URL",
        "BABELFORCE_ENV",
        "BABELFORCE_CLIENT_ID",
        "BABELFORCE_CLIENT_SECRET",
        "BABELFORCE_USERNAME",
        "BABELFORCE_PASSWORD",
        "BABELFORCE_ACCESS_TOKEN",
    )
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment and a working directory without a .env file."""
    monkeypatch.chdir(tmp_path)
    for name, value in BLANK_ENV.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_base_url_from_env_name(env):
    env.setenv("BABELFORCE_ENV", "services")
    assert BabelforceSettings().resolved_base_url() == "https://services.babelforce.com"


def test_explicit_base_url_wins_and_loses_its_trailing_slash(env):
    env.setenv("BABELFORCE_ENV", "services")
    env.setenv("BABELFORCE_BASE_URL", "http://127.0.0.1:8765/")
    assert BabelforceSettings().resolved_base_url() == "http://127.0.0.1:8765"


def test_missing_base_url_names_both_variables(env):
    with pytest.raises(ConfigurationError, match=r"BABELFORCE_BASE_URL.*BABELFORCE_ENV"):
        BabelforceSettings().resolved_base_url()


def test_client_credentials_password_and_static_token_are_chosen_from_env(env):
    env.setenv("BABELFORCE_CLIENT_ID", "sandbox")
    env.setenv("BABELFORCE_CLIENT_SECRET", "s3cret")
    assert isinstance(credentials_from_settings(BabelforceSettings()), ClientCredentials)
    env.setenv("BABELFORCE_USERNAME", "demo")
    env.setenv("BABELFORCE_PASSWORD", "pw")
    env.setenv("BABELFORCE_CLIENT_ID", "")
    env.setenv("BABELFORCE_CLIENT_SECRET", "")
    login = credentials_from_settings(BabelforceSettings())
    assert isinstance(login, PasswordLogin) and login.client_id == "manager"
    env.setenv("BABELFORCE_ACCESS_TOKEN", "tok")
    assert isinstance(credentials_from_settings(BabelforceSettings()), StaticToken)


def test_half_a_credential_pair_is_named(env):
    env.setenv("BABELFORCE_USERNAME", "demo")
    with pytest.raises(ConfigurationError, match="BABELFORCE_PASSWORD"):
        BabelforceSettings().auth_mode()
    env.setenv("BABELFORCE_USERNAME", "")
    env.setenv("BABELFORCE_CLIENT_ID", "x")
    with pytest.raises(ConfigurationError, match="BABELFORCE_CLIENT_SECRET"):
        BabelforceSettings().auth_mode()


def test_no_credentials_lists_the_choices(env):
    with pytest.raises(ConfigurationError, match="BABELFORCE_ACCESS_TOKEN"):
        BabelforceSettings().auth_mode()


def test_secrets_never_show_in_settings_repr(env):
    env.setenv("BABELFORCE_CLIENT_SECRET", "very-secret-value")
    env.setenv("BABELFORCE_PASSWORD", "very-secret-password")
    text = repr(BabelforceSettings()) + str(BabelforceSettings().model_dump())
    assert "very-secret-value" not in text and "very-secret-password" not in text


def test_ids_in_both_spellings_normalise_to_32_lowercase_hex():
    compact = "ee369f62c0c04c8993e4b3921c506c45"
    assert normalize_id("EE369F62-C0C0-4C89-93E4-B3921C506C45") == compact
    assert normalize_id(compact) == compact
    assert normalize_id("lead-40") is None
    assert normalize_id("ee369f62c0c04c8993e4b3921c506c4") is None


def test_lead_tolerates_null_status_unknown_fields_dashed_ids_and_string_data():
    lead = Lead.model_validate(
        {
            "id": "EE369F62-C0C0-4C89-93E4-B3921C506C45",
            "listId": "cfd395e2301b45f78a0f6abddbe15a4e",
            "uid": "2",
            "number": "12692333",
            "status": None,
            "data": "{}",
            "somethingNew": {"x": 1},
            "lastUpdated": "2020-04-16 22:21:38+00:00",
        }
    )
    assert lead.id == "ee369f62c0c04c8993e4b3921c506c45"
    assert lead.status is None and lead.data == {} and not lead.is_final
    assert lead.last_updated is not None and lead.last_updated.year == 2020


def test_lead_tolerates_loosely_filled_optional_fields():
    """Shapes a PHP-style API sends: {} serialised as [], numeric uids as numbers, dates never set as ''."""
    lead = Lead.model_validate(
        {
            "id": "a" * 32,
            "uid": 48213,
            "number": 4916098119998,
            "data": [],
            "dateCreated": "",
            "lastUpdated": "0000-00-00 00:00:00",
            "dateCalled": None,
            "callback": [],
        }
    )
    assert (lead.uid, lead.number, lead.data) == ("48213", "4916098119998", {})
    assert lead.date_created is None and lead.last_updated is None and lead.callback is None


def test_campaign_without_a_list_reads_as_none_in_any_spelling():
    base = {"id": "a" * 32, "name": "c", "listOrder": None}
    for empty in ({}, [], None, {"id": None}):
        assert Campaign.model_validate({**base, "leadList": empty}).lead_list is None
    dialling = Campaign.model_validate({**base, "leadList": {"id": "B" * 32, "name": "l"}})
    assert dialling.lead_list is not None and dialling.lead_list.id == "b" * 32


def test_token_lifetime_may_be_fractional():
    assert Token.model_validate({"access_token": "t", "expires_in": 3599.5}).expires_in == 3599.5


@pytest.mark.parametrize(("order", "expected"), [("3", 3), (" 3 ", 3), ("", None), ("--3", None), ("²", None)])
def test_hopper_entry_strings_become_numbers(order, expected):
    entry = HopperEntry.model_validate({"id": "a" * 32, "order": order, "count": "", "uid": "lead-48"})
    assert entry.order == expected and entry.count is None


def test_list_count_sent_as_a_float_is_whole():
    assert LeadList.model_validate({"id": "a" * 32, "name": "x", "count": 50.0, "number": 50}).count == 50


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), ("nan", None), ("inf", None), ("1e999", None)],
)
def test_retry_after_in_seconds(header, expected):
    assert _retry_after(httpx.Response(429, headers={"Retry-After": header})) == expected


def test_retry_after_as_an_http_date():
    import time
    from email.utils import formatdate

    header = formatdate(time.time() + 30, usegmt=True)
    wait = _retry_after(httpx.Response(503, headers={"Retry-After": header}))
    assert wait is not None and 25 <= wait <= 31


def test_retry_after_as_a_date_without_a_zone_is_read_as_gmt(monkeypatch):
    import time
    from email.utils import formatdate

    monkeypatch.setenv("TZ", "America/New_York")  # a naive date read as local time would be hours off here
    time.tzset()

    header = formatdate(time.time() + 30, usegmt=True).replace("GMT", "-0000")  # parses to a naive datetime
    try:
        wait = _retry_after(httpx.Response(503, headers={"Retry-After": header}))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert wait is not None and 25 <= wait <= 31


@pytest.mark.parametrize(
    ("header", "said"), [("0.4", "try again in 1 s."), ("0", "try again in a moment."), ("5", "in 5 s.")]
)
def test_rate_limit_message_never_says_zero_seconds(header, said):
    response = httpx.Response(429, headers={"Retry-After": header})
    error = _status_error(response, "GET", "/x", _Op("list_lists", "list the lead-lists"), True)
    assert isinstance(error, RateLimitedError) and str(error).endswith(said)


def test_backoff_is_full_jitter_within_the_exponential_bound_and_the_cap():
    client = BabelforceClient(
        base_url="http://127.0.0.1:1",
        credentials=StaticToken(__import__("pydantic").SecretStr("t")),
        retry=RetryPolicy(backoff_base=0.25, backoff_cap=10.0),
        rng=random.Random(7),
    )
    for attempt, bound in ((0, 0.25), (1, 0.5), (2, 1.0), (10, 10.0)):
        delays = [client._backoff(attempt, None) for _ in range(200)]
        assert all(0 <= delay <= bound for delay in delays)
        assert max(delays) > bound * 0.8  # spread over the whole range, not a fixed step
    assert client._backoff(0, 4.0) == 4.0
    assert client._backoff(0, 99.0) == 10.0
