"""Seed data for the sandbox. `demo` reproduces the help article's example; `empty` is no call at all.

Demo ids are deterministic (random.Random(2026)), so docs and tests can quote them: the campaign and list ids
are drawn first and do not depend on `leads`. Leads created later through the API get uuid4 ids.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sandbox.state import SandboxState

SEEDS = ("demo", "empty")

DEMO_CAMPAIGN = "Spring outreach"
DEMO_LIST = "Spring leads"
DEMO_LIST_ORDER = "UP RANK"
DEMO_DISPLAY_NUMBER = "+4930000000000"
DEMO_LEADS = 50
AUTUMN_LIST = "Autumn leads"
AUTUMN_LEADS = 10
RENEWALS_CAMPAIGN = "Renewals"
RENEWALS_LIST = "Renewals"
RENEWALS_LEADS = 10
SEED_RANDOM = 2026

_FIRST_NAMES = ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Jonas", "Lena", "Max", "Mia")
_CITIES = ("Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Leipzig", "Dresden", "Bremen")


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _fixed_ids() -> tuple[str, str, str, str, str]:
    rng = random.Random(SEED_RANDOM)
    return (_hex_id(rng), _hex_id(rng), _hex_id(rng), _hex_id(rng), _hex_id(rng))


DEMO_CAMPAIGN_ID, DEMO_LIST_ID, AUTUMN_LIST_ID, RENEWALS_CAMPAIGN_ID, RENEWALS_LIST_ID = _fixed_ids()


def demo_number(n: int) -> str:
    """lead-n's number: a German mobile number, +49151 followed by n in 8 digits."""
    return f"+49151{n:08d}"


def _rows(rng: random.Random, prefix: str, count: int, number_prefix: str) -> list[tuple[str, str, str, int, Any]]:
    return [
        (
            _hex_id(rng),
            f"{prefix}-{n}",
            f"{number_prefix}{n:08d}",
            n,
            {"firstName": _FIRST_NAMES[n % len(_FIRST_NAMES)], "city": _CITIES[n % len(_CITIES)]},
        )
        for n in range(1, count + 1)
    ]


def seed_demo(state: SandboxState, leads: int = DEMO_LEADS) -> None:
    """Campaign "Spring outreach" (UP RANK) dialling "Spring leads" (lead-n has rank n), plus "Autumn leads"
    (not dialled) and campaign "Renewals" (UP) dialling list "Renewals"."""
    if leads < 0:
        raise ValueError("leads must not be negative")
    rng = random.Random(SEED_RANDOM)
    for _ in range(5):  # the five fixed campaign/list ids above come first
        _hex_id(rng)
    autumn_rows = _rows(rng, "autumn", AUTUMN_LEADS, "+49160")
    renewal_rows = _rows(rng, "renewal", RENEWALS_LEADS, "+49170")
    spring_rows = _rows(rng, "lead", leads, "+49151")
    with state.lock:
        state.create_list(DEMO_LIST, list_id=DEMO_LIST_ID)
        state.add_leads_unchecked(DEMO_LIST_ID, spring_rows)
        state.create_campaign(
            DEMO_CAMPAIGN,
            active=True,
            test_mode=False,
            display_number=DEMO_DISPLAY_NUMBER,
            list_order=DEMO_LIST_ORDER,
            call_ratio=1,
            campaign_id=DEMO_CAMPAIGN_ID,
        )
        state.set_campaign_list(DEMO_CAMPAIGN_ID, DEMO_LIST_ID)
        state.create_list(AUTUMN_LIST, list_id=AUTUMN_LIST_ID)
        state.add_leads_unchecked(AUTUMN_LIST_ID, autumn_rows)
        state.create_list(RENEWALS_LIST, list_id=RENEWALS_LIST_ID)
        state.add_leads_unchecked(RENEWALS_LIST_ID, renewal_rows)
        state.create_campaign(
            RENEWALS_CAMPAIGN,
            active=True,
            test_mode=False,
            display_number="+4930000000001",
            list_order="UP",
            call_ratio=1,
            campaign_id=RENEWALS_CAMPAIGN_ID,
        )
        state.set_campaign_list(RENEWALS_CAMPAIGN_ID, RENEWALS_LIST_ID)


def seed(state: SandboxState, name: str, leads: int | None = None) -> None:
    """Apply a named seed; `leads` only applies to demo."""
    if name == "demo":
        seed_demo(state, DEMO_LEADS if leads is None else leads)
    elif name == "empty":
        if leads is not None:
            raise ValueError("leads only applies to the demo seed")
    else:
        raise ValueError(f"unknown seed {name!r} (choose from {', '.join(SEEDS)})")


#: Ranks of a sized list cycle through this many values, so every rank stays inside babelforce's -32768..32767.
SIZED_RANKS = 30_000


def seed_sized_list(
    state: SandboxState,
    name: str,
    leads: int,
    *,
    campaign: str | None = None,
    number_prefix: str = "+49152",
    data: Callable[[int], dict[str, Any]] | None = None,
) -> tuple[str, str | None]:
    """A list `name` of `leads` leads (uid `{name-slug}-n`, number `{number_prefix}` + n in 8 digits, rank
    n % 30 000), dialled by an active `UP RANK` campaign `campaign` when given. Returns (list id, campaign id).

    For benchmarks and big-list tests: 100 000 leads take about a second. Ids are random (uuid-like hex). `data`
    gives lead n's data variables (default firstName Anna for all).
    """
    if leads < 0:
        raise ValueError("leads must not be negative")
    slug = "-".join(name.lower().split())
    rng = random.Random(f"{SEED_RANDOM}:{name}")
    rows = [
        (
            _hex_id(rng),
            f"{slug}-{n}",
            f"{number_prefix}{n:08d}",
            n % SIZED_RANKS,
            data(n) if data else {"firstName": "Anna"},
        )
        for n in range(1, leads + 1)
    ]
    with state.lock:
        lead_list = state.create_list(name)
        state.add_leads_unchecked(lead_list.id, rows)
        campaign_id = None
        if campaign is not None:
            created = state.create_campaign(
                campaign,
                active=True,
                test_mode=False,
                display_number="+4930000000009",
                list_order=DEMO_LIST_ORDER,
                call_ratio=1,
            )
            state.set_campaign_list(created.id, lead_list.id)
            campaign_id = created.id
    return lead_list.id, campaign_id


#: Mobile prefixes for find lists, one per list, so a number is in one list only.
FIND_NUMBER_PREFIXES = (
    "+49151",
    "+49152",
    "+49155",
    "+49157",
    "+49159",
    "+49160",
    "+49162",
    "+49163",
    "+49170",
    "+49171",
)
_LAST_NAMES = ("Martin", "Schmidt", "Meyer", "Weber", "Wagner", "Becker", "Hoffmann", "Koch")


def find_data(list_number: int) -> Callable[[int], dict[str, Any]]:
    """Data for /lead find benchmarks: names that repeat across a list, and a CRM id unique in the account."""

    def data(n: int) -> dict[str, Any]:
        return {
            "firstName": _FIRST_NAMES[n % len(_FIRST_NAMES)],
            "lastName": _LAST_NAMES[n % len(_LAST_NAMES)],
            "crmId": f"CRM-{list_number}-{n:07d}",
        }

    return data


def seed_find_lists(state: SandboxState, count: int, leads: int, *, name: str = "Find") -> list[tuple[str, str | None]]:
    """`count` lists "{name} 1" … of `leads` leads each (uids `{name}-i-n`), with find_data; the odd ones are dialled
    by an active campaign. For /lead find benchmarks across many lists."""
    made = []
    for i in range(1, count + 1):
        made.append(
            seed_sized_list(
                state,
                f"{name} {i}",
                leads,
                campaign=f"{name} {i} campaign" if i % 2 else None,
                number_prefix=FIND_NUMBER_PREFIXES[(i - 1) % len(FIND_NUMBER_PREFIXES)],
                data=find_data(i),
            )
        )
    return made
