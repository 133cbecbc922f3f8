"""Pydantic models of babelforce's outbound objects.

Wire names are the spec's camelCase (`callCount`); attributes are Pythonic (`call_count`). Reads are tolerant:
unknown fields are ignored, `status: null` is accepted, and ids in either spelling are normalised to 32 hex
digits, so a model never fails on a harmless change in babelforce's responses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationError, WrapValidator, field_validator
from pydantic.alias_generators import to_camel

from .ids import lenient_id

Id = Annotated[str, BeforeValidator(lenient_id)]


def _none_if_unreadable(value: object, handler: Any) -> object:
    """Optional fields babelforce fills loosely ('' or '0000-00-00 00:00:00' for a date never set): unreadable is
    unknown, not a reason to refuse the whole lead."""
    try:
        return handler(value)
    except ValidationError:
        return None


Lenient = WrapValidator(_none_if_unreadable)


class ListOrder(StrEnum):
    """A campaign's dial order. Rank only matters for the two RANK orders."""

    UP = "UP"  # last loaded first
    DOWN = "DOWN"  # first loaded first
    UP_RANK = "UP RANK"  # highest rank first
    DOWN_RANK = "DOWN RANK"  # lowest rank first


RANK_ORDERS = frozenset({ListOrder.UP_RANK, ListOrder.DOWN_RANK})

#: Statuses the dialer still loads into the hopper (DOMAIN.md: pending, new, a due callback).
DIALABLE_STATUSES = frozenset({"pending", "new", "callback"})
#: Final outcomes: a lead with one of these is never dialled again, so changing it changes nothing.
FINAL_STATUSES = frozenset({"sale", "do_not_call", "not_interested"})

RANK_MIN = -32768
RANK_MAX = 32767


class WireModel(BaseModel):
    # coerce_numbers_to_str: a numeric uid or number may arrive as a JSON number; it is still the same text.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True, coerce_numbers_to_str=True
    )


class Lead(WireModel):
    id: Id
    uid: str | None = None
    list_id: Id | None = None
    campaign_id: Id | None = None
    number: str | None = None
    number2: str | None = None
    number3: str | None = None
    caller_id: str | None = None
    status: str | None = None
    rank: int | None = None
    call_count: int | None = None
    duration: int | None = None
    called_since_reset: bool | None = None
    date_created: Annotated[datetime | None, Lenient] = None
    last_updated: Annotated[datetime | None, Lenient] = None
    date_called: Annotated[datetime | None, Lenient] = None
    data: dict[str, Any] = {}
    callback: Annotated[dict[str, Any] | None, Lenient] = None

    @field_validator("data", mode="before")
    @classmethod
    def _data_object(cls, value: object) -> object:
        """The spec's add/update example sends data as a JSON string ('{}'); accept both."""
        if value is None:
            return {}
        if isinstance(value, str):
            try:
                parsed = json.loads(value) if value.strip() else {}
            except ValueError:
                return {}
            return parsed if isinstance(parsed, dict) else {}
        return value if isinstance(value, dict) else {}  # e.g. [] : an empty object serialised as a list

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class LeadList(WireModel):
    id: Id
    name: str
    campaign_id: Id | None = None
    count: int | None = None

    @field_validator("count", mode="before")
    @classmethod
    def _whole_count(cls, value: object) -> object:
        """OutboundList.count is a JSON number in the spec; it counts leads, so keep it whole."""
        return int(value) if isinstance(value, float) else value


class ListRef(WireModel):
    id: Id
    name: str | None = None


class Campaign(WireModel):
    id: Id
    name: str
    active: bool | None = None
    test_mode: bool | None = None
    display_number: str | None = None
    lead_list: Annotated[ListRef | None, Lenient] = None  # {} or [] when no list is set reads as none
    list_order: str | None = None
    call_ratio: float | None = None

    @property
    def ranks_matter(self) -> bool:
        return self.list_order in RANK_ORDERS


class HopperEntry(WireModel):
    """A live hopper entry; the dialer sends every value as a string, `order` is the 1-based position.

    The spec makes every field optional and does not say what `id` is. leadbot reads `id` as the lead's id when the
    entry has one (the sandbox and the help article's examples do), else recognises the lead by its list id + uid (a
    uid is unique within its list): see `is_lead`. An entry with neither still counts for the hopper's size and the
    positions after it, but matches no lead (`identifies_a_lead` is False).
    """

    id: Id | None = None
    uid: str | None = None
    list_id: Id | None = None
    number: str | None = None
    status: str | None = None
    order: int | None = None
    count: int | None = None
    source: str | None = None

    @field_validator("order", "count", mode="before")
    @classmethod
    def _int_or_none(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return None
        return value

    @field_validator("id", "uid", "list_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        """An empty string names nothing: it must not pass for an id or a uid."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def identifies_a_lead(self) -> bool:
        return self.id is not None or (self.list_id is not None and self.uid is not None)

    def is_lead(self, lead_id: str, list_id: str | None, uids: Iterable[str | None] = ()) -> bool:
        """Whether this entry is that lead: by id when the entry has one; else by list id + uid, where `uids` are
        the lead's uids that the entry may carry (an entry keeps the values the lead had when it was loaded)."""
        if self.id is not None:
            return self.id == lead_id
        return self.list_id is not None and self.list_id == list_id and self.uid is not None and self.uid in uids


class Pagination(WireModel):
    current: int | None = None
    pages: int | None = None
    total: int | None = None
    max: int | None = None
    max_results: int | None = None
    next: str | None = None


class LeadPage(WireModel):
    items: list[Lead]
    pagination: Pagination | None = None


class Token(BaseModel):
    """OAuth token response (snake_case on the wire already); the secrets are SecretStr so they never print."""

    model_config = ConfigDict(extra="ignore")

    access_token: SecretStr
    token_type: str = "bearer"
    expires_in: float | None = None
    refresh_token: SecretStr | None = None
    scope: str | None = None
    client_id: str | None = None
