"""The one babelforce client every leadbot command uses (async, one pooled httpx connection set).

What it guarantees, so callers need not:
- auth: tokens fetched lazily, refreshed before expiry and single-flight; a 401 refreshes once and retries once;
- retries in one place: GET/PUT/DELETE on 429/502/503/504 and connection errors, at most `max_retries`, full-jitter
  exponential backoff, `Retry-After` honoured up to the cap;
- a deadline per call (retries included) that a trickling server cannot defeat;
- an add (POST) is never replayed once it may have reached babelforce: a lost answer is settled by looking the
  uid up, so one add never makes two leads;
- every failure is one error from `babelforce.errors`, worded for a supervisor, without secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import json
import logging
import math
import queue
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from . import errors
from .auth import Credentials, TokenManager, credentials_from_settings
from .config import BabelforceSettings, RetryPolicy, Timeouts
from .ids import normalize_id
from .lookup import (
    BATCH_ROWS,
    ExportShape,
    ExportUnusable,
    IndexCache,
    LeadIndex,
    ListStandings,
    decode_export,
    number_key,
    uid_key,
)
from .models import AgentStatistics, Campaign, CampaignStatus, HopperEntry, Lead, LeadList, LeadPage, Token
from .observe import CallObserver
from .standings import StandingsCache
from .transport import ShardedTransport

log = logging.getLogger(__name__)

#: True while the running task holds a list's index lock (one export shared by every lookup waiting for it): its
#: requests skip `wait_turn`, since whoever waits for the lock (a request with a deadline of its own, such as
#: a form's check before Slack's 3 s) would wait for the caller's turn too, and the caller's turn may wait for it.
_HOLDS_INDEX_LOCK: contextvars.ContextVar[bool] = contextvars.ContextVar("babelforce_holds_index_lock", default=False)

OUTBOUND = "/api/v2/outbound"
TOKEN_PATH = "/oauth/token"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: After an add timed out, the look-up of its uid gets this share of the deadline (babelforce is likely stalled).
LOST_ADD_CHECK_SHARE = 0.25
#: Failures where not one byte of the request left this machine, so even a POST may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_UNSET: Any = object()
M = TypeVar("M", bound=BaseModel)
#: Shorter digit strings are uids, not phone numbers (E.164 numbers have at least 6 digits here).
MIN_NUMBER_DIGITS = 6
#: Requests in flight to babelforce at once, over keep-alive connections in shards of CONNECTIONS_PER_SHARD (see
#: transport.py). More wait their turn in an asyncio queue, which costs nothing per waiting request.
MAX_CONNECTIONS = 128
CONNECTIONS_PER_SHARD = 8
#: Leads this client read or wrote most recently, kept for `get_lead(..., max_age=s)` callers.
RECENT_LEADS = 256
#: A lead export's body may take this many call deadlines to arrive (a 1 000 000-lead list is ~150 MB).
EXPORT_DEADLINE_FACTOR = 10
#: The lists' indexes kept at once: at most this many lists, and this many leads in all (~100 bytes a lead).
INDEX_LISTS = 64
INDEX_LEADS = 2_000_000
#: What the export is asked for as (the spec's `text/csv`; the client's default Accept is JSON).
EXPORT_ACCEPT = "text/csv"
#: Leads asked for per page when a list's export cannot be used and its leads are paged instead.
FALLBACK_PAGE_SIZE = 1000
#: Answers to the export that mean "not this way" rather than "not now" or "not at all": lookups page the JSON API.
#: 401, 404, 429 and the 5xx (501 aside) stay errors, as for any call: our credentials, a missing list, babelforce
#: in trouble (paging a big list then would only add load).
EXPORT_REFUSALS = frozenset({400, 403, 405, 406, 409, 410, 415, 422, 501})
#: How much of an answer that is not CSV is read to quote babelforce's reason.
_REFUSAL_READ = 256 * 1024


@dataclass(slots=True)
class _Progress:
    """How far one call got: `dispatched` once its request (not just a token fetch) was handed to httpx."""

    dispatched: bool = False


@dataclass(frozen=True, slots=True)
class _Op:
    """One call as its errors describe it: the operation's name, a phrase for messages ("get lead …"), the ids
    involved, what a 404 to it means is missing, and the sentence for a 409 (None: babelforce's own reason)."""

    name: str
    what: str
    list_id: str | None = None
    lead_id: str | None = None
    campaign_id: str | None = None
    uid: str | None = None
    missing: errors.Resource | None = None
    conflict: str | None = None

    def context(self) -> dict[str, Any]:
        """The attributes every error raised for this call carries."""
        return {
            "operation": self.name,
            "list_id": self.list_id,
            "lead_id": self.lead_id,
            "campaign_id": self.campaign_id,
            "uid": self.uid,
        }

    def not_found(self) -> str:
        if self.missing == "lead":
            return f"No lead with id {self.lead_id} in list {self.list_id}."
        if self.missing == "list":
            return f"No list with id {self.list_id}."
        if self.missing == "campaign":
            return f"No campaign with id {self.campaign_id}."
        return f"babelforce found nothing to {self.what}."


_TOKEN = _Op("token", "log in")


@dataclass(frozen=True, slots=True)
class SimilarLeads:
    """Leads of a list that look like a lead being written: the same number's digits, a uid equal to it once case
    and spaces are ignored, or the very same uid (which babelforce refuses). Each one confirmed by a GET; at most
    `SIMILAR_SHOWN` of each."""

    same_number: list[Lead] = field(default_factory=list)
    similar_uid: list[Lead] = field(default_factory=list)
    same_uid: list[Lead] = field(default_factory=list)


#: Leads confirmed (one GET each) per kind of likeness: enough to name them in a warning.
SIMILAR_SHOWN = 5


@dataclass(frozen=True, slots=True)
class AddResult:
    """The created lead; `recovered` is True when babelforce's answer was lost and a lookup confirmed the add."""

    lead: Lead
    recovered: bool = False


class BabelforceClient:
    """Async client for babelforce's outbound API. Use as `async with BabelforceClient.from_settings() as bf:`."""

    def __init__(
        self,
        *,
        base_url: str,
        credentials: Credentials,
        http_client: httpx.AsyncClient | None = None,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        index_lists: int = INDEX_LISTS,
        index_leads: int = INDEX_LEADS,
        rng: random.Random | None = None,
        max_connections: int = MAX_CONNECTIONS,
        observer: CallObserver | None = None,
        wait_turn: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        #: told about every request, retry and token fetch (babelforce.observe); None: nobody listens
        self.observer = observer
        #: awaited before each request is sent (each retry too, before it takes a connection) and before a GET's answer
        #: is handed back to be read: a caller's chance to let more urgent work of its own go first (leadbot lets
        #: Slack's acks go first); None: never waits. Not awaited while building a list's index, which other lookups
        #: wait for (_HOLDS_INDEX_LOCK), nor for a streamed answer (read in chunks as it arrives)
        self.wait_turn = wait_turn
        self._base_url = base_url.rstrip("/")
        self._host = urlsplit(self._base_url).hostname or self._base_url
        self._timeouts = timeouts or Timeouts()
        self._retry = retry or RetryPolicy()
        self._owns_http = http_client is None
        shards = max(1, math.ceil(max_connections / CONNECTIONS_PER_SHARD))
        # httpx honours HTTP(S)_PROXY / NO_PROXY only with its own transport: behind a proxy, keep it.
        sharded = (
            None if _behind_proxy(self._base_url) else ShardedTransport(shards, math.ceil(max_connections / shards))
        )
        self._http = http_client or httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeouts.read, connect=self._timeouts.connect),
            transport=sharded,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            headers={"User-Agent": "leadbot/0.1", "Accept": "application/json"},
        )
        # At most this many requests are handed to httpx at once, so no connection pool ever queues.
        self._slots = asyncio.Semaphore(max_connections)
        self._tokens = TokenManager(credentials)
        self._indexes = IndexCache(index_lists, index_leads)
        self._standings = StandingsCache()  # every lead's rank and status, per index, kept in step with writes
        self._index_locks: dict[str, asyncio.Lock] = {}
        self._lookup_sources: dict[str, tuple[str, str]] = {}  # list id -> (source, why) last logged
        self._recent: OrderedDict[tuple[str, str], tuple[float, Lead]] = OrderedDict()
        self._rng = rng or random.Random()

    @classmethod
    def from_settings(
        cls,
        settings: BabelforceSettings | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        observer: CallObserver | None = None,
    ) -> BabelforceClient:
        settings = settings or BabelforceSettings()
        return cls(
            base_url=settings.resolved_base_url(),
            credentials=credentials_from_settings(settings),
            http_client=http_client,
            timeouts=settings.timeouts(),
            retry=settings.retry_policy(),
            observer=observer,
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> BabelforceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def log_in(self) -> None:
        """Obtain a token now rather than with the first call, so that a refused login is told apart from a refused
        call (`leadbot doctor`). A static token (BABELFORCE_ACCESS_TOKEN) is not checked here: no request is made."""
        await self._tokens.get(self._fetch_token)

    # ------------------------------------------------------------------ lists

    async def list_lists(self) -> list[LeadList]:
        return await self._items(LeadList, "GET", f"{OUTBOUND}/lists", _Op("list_lists", "list the lead-lists"))

    async def get_list(self, list_id: str) -> LeadList:
        list_id = _require_id(list_id, "list", "get_list")
        op = _Op("get_list", f"get list {list_id}", list_id=list_id, missing="list")
        return await self._item(LeadList, "GET", f"{OUTBOUND}/lists/{list_id}", op)

    async def find_list(self, name_or_id: str) -> LeadList:
        """A list by id (either spelling) or by name, case-insensitively."""
        wanted = name_or_id.strip()
        if not wanted:
            raise errors.NotFoundError(**_lookup_failure("A list name or id is needed.", "find_list", "list"))
        lists = await self.list_lists()
        found = match_list(lists, wanted)
        if found is not None:
            return found
        names = sorted(_one_line(lead_list.name) for lead_list in lists)
        known = ", ".join(names[:10]) + (", …" if len(names) > 10 else "") if names else "there are none"
        raise errors.NotFoundError(
            **_lookup_failure(f"No list named {wanted!r}; the lists are: {known}.", "find_list", "list")
        )

    # ------------------------------------------------------------------ leads

    async def get_lead(self, list_id: str, lead_id: str, *, max_age: float | None = None) -> Lead:
        """The lead, read live; with `max_age`, the copy this client last read or wrote is good enough when it is
        at most that many seconds old (no request then). Only for details where a few seconds of age are fine."""
        list_id = _require_id(list_id, "list", "get_lead")
        lead_id = _require_id(lead_id, "lead", "get_lead", list_id=list_id)
        if max_age is not None:
            recent = self._recent.get((list_id, lead_id))
            if recent is not None and time.monotonic() - recent[0] <= max_age:
                return recent[1]
        sent_at = time.monotonic()
        op = _Op("get_lead", f"get lead {lead_id}", list_id=list_id, lead_id=lead_id, missing="lead")
        lead = await self._item(Lead, "GET", f"{OUTBOUND}/lists/{list_id}/leads/{lead_id}", op)
        self._keep(list_id, lead, sent_at)
        return lead

    async def add_lead(
        self, list_id: str, *, uid: str, number: str, rank: int, data: Mapping[str, Any] | None = None
    ) -> AddResult:
        """Create a lead. Never sent twice: if the answer is lost after sending, the uid is looked up instead."""
        list_id = _require_id(list_id, "list", "add_lead", uid=uid)
        payload: dict[str, Any] = {"uid": uid, "number": number, "rank": rank}
        if data:
            payload["data"] = dict(data)  # not in the spec's request schema, but the API takes it (article)
        op = _Op(
            "add_lead",
            f"add lead {uid!r} to list {list_id}",
            list_id=list_id,
            uid=uid,
            missing="list",
            conflict=f"uid {uid!r} already exists in list {list_id}.",
        )
        try:
            # Parsed inside the try: a 2xx whose body cannot be read is a lost answer too (the add probably happened).
            lead = await self._item(Lead, "POST", f"{OUTBOUND}/lists/{list_id}/leads", op, json_body=payload)
        except (errors.APIConnectionError, errors.ServerError) as lost:
            if isinstance(lost, errors.APIConnectionError) and not lost.may_have_reached_server:
                raise
            return await self._settle_lost_add(list_id, payload, lost)
        self._remember(list_id, lead)
        return AddResult(lead)

    async def update_lead(
        self,
        list_id: str,
        lead_id: str,
        *,
        uid: str = _UNSET,
        number: str = _UNSET,
        rank: int = _UNSET,
        data: Mapping[str, Any] | None = None,
    ) -> Lead:
        """Partial update: only the fields given are sent; `data` keys are set, a key given as None is deleted."""
        new_uid = uid if uid is not _UNSET else None
        list_id = _require_id(list_id, "list", "update_lead", uid=new_uid)
        lead_id = _require_id(lead_id, "lead", "update_lead", list_id=list_id, uid=new_uid)
        payload: dict[str, Any] = {}
        for name, value in (("uid", uid), ("number", number), ("rank", rank)):
            if value is not _UNSET:
                payload[name] = value
        if data:
            payload["data"] = dict(data)
        if not payload:
            raise ValueError("update_lead needs at least one field to change")
        self._recent.pop((list_id, lead_id), None)  # the copy from before the write is stale, whatever happens
        sent_at = time.monotonic()
        op = _Op(
            "update_lead",
            f"update lead {lead_id}",
            list_id=list_id,
            lead_id=lead_id,
            uid=new_uid,
            missing="lead",
            conflict=f"uid {uid!r} already exists in list {list_id}." if new_uid is not None else None,
        )
        lead = await self._item(Lead, "PUT", f"{OUTBOUND}/lists/{list_id}/leads/{lead_id}", op, json_body=payload)
        self._remember(list_id, lead, sent_at)  # an old uid/number entry may stay: hits are confirmed, it only misses
        return lead

    async def delete_lead(self, list_id: str, lead_id: str) -> None:
        """Delete one lead. The spec gives the answer no shape (`{}`): only a JSON body saying `"success": false`
        is read, as babelforce refusing."""
        list_id = _require_id(list_id, "list", "delete_lead")
        lead_id = _require_id(lead_id, "lead", "delete_lead", list_id=list_id)
        self._recent.pop((list_id, lead_id), None)
        op = _Op("delete_lead", f"delete lead {lead_id}", list_id=list_id, lead_id=lead_id, missing="lead")
        path = f"{OUTBOUND}/lists/{list_id}/leads/{lead_id}"
        response = await self._call("DELETE", path, op)
        if _is_json(response) and response.content.strip():
            try:
                said = response.json()
            except ValueError:
                said = None
            if isinstance(said, dict) and said.get("success") is False:
                raise _refused(response, "DELETE", path, op)
        index = self._indexes.get(list_id)
        if index is not None:
            index.discard(lead_id)  # /lead find and the standings made from the index no longer show it

    async def iter_leads(self, list_id: str, *, page_size: int = 100) -> AsyncIterator[Lead]:
        """Every lead of a list, in list order, through the documented paging: `GET /api/v2/outbound/leads` with
        `listId`, `page` (1-based) and `max` (slow on big lists; lookups use the index).

        Stops at `pagination.pages`, at an empty page, or when a page starts with the lead the last one started with
        (a server that ignores `page`); a lead of another list (a server that ignores `listId`) is left out."""
        list_id = _require_id(list_id, "list", "list_leads")
        page = 1
        path = f"{OUTBOUND}/leads"
        op = _Op("list_leads", f"list the leads of list {list_id}", list_id=list_id, missing="list")
        first_of_last_page: str | None = None
        while True:
            params = {"listId": list_id, "page": page, "max": page_size}
            response = await self._call("GET", path, op, params=params)
            result = _read(LeadPage, _body(response, "GET", path, op), response, "GET", path, op)
            if not result.items or result.items[0].id == first_of_last_page:
                return
            first_of_last_page = result.items[0].id
            for lead in result.items:
                if lead.list_id is None or lead.list_id == list_id:
                    yield lead
            pages = result.pagination.pages if result.pagination else None
            if pages is not None and page >= pages:
                return
            page += 1

    async def export_leads_csv(self, list_id: str) -> str:
        """The list's CSV export as text, decoded as lookups decode it (BOM, charset, UTF-8 else cp1252)."""
        response = await self._export(list_id)
        return decode_export(response.content, response.headers.get("Content-Type"))

    async def _export(self, list_id: str) -> httpx.Response:
        list_id = _require_id(list_id, "list", "export_csv")
        op = _Op("export_csv", f"export the leads of list {list_id}", list_id=list_id, missing="list")
        path = f"{OUTBOUND}/lists/{list_id}/leads"
        response = await self._call("GET", path, op, params={"format": "csv"}, headers={"Accept": EXPORT_ACCEPT})
        if _is_json(response):
            _body(response, "GET", path, op)  # raises when babelforce says "success": false instead of exporting
        return response

    async def inspect_export(self, list_id: str) -> ExportShape:
        """The shape of the list's CSV export, read once to the end (see `babelforce.lookup.inspect_export`); a usable
        export is kept as the list's lookup index, so the lookups that follow need no second export."""
        list_id = _require_id(list_id, "list", "export_csv")
        async with self._index_lock(list_id):
            try:
                index = await self._index_from_export(list_id, time.monotonic())
            except ExportUnusable as unusable:
                return unusable.shape
            self._indexes.put(list_id, index)
        assert index.shape is not None
        return index.shape

    def is_indexed(self, list_id: str) -> bool:
        """Whether a lookup index of the list is at hand (a lookup then needs no export)."""
        compact = normalize_id(list_id)
        return compact is not None and self._indexes.get(compact) is not None

    async def lead_standings(self, list_id: str) -> ListStandings:
        """Every lead's rank and status, from one fresh CSV export (never one GET per lead); the list's lookup
        index is rebuilt from the same export on the way."""
        list_id = _require_id(list_id, "list", "export_csv")
        index = await self._index(list_id, fresher_than=time.monotonic())
        return await self._standings.of(list_id, index)

    async def cached_standings(self, list_id: str, *, max_age: float) -> ListStandings:
        """Every lead's rank and status from the list's lookup index when it is at most `max_age` s old, else
        from one fresh export (which rebuilds the index): at most one export per `max_age` for queue positions.
        Built once per index and kept in step with this client's writes (babelforce.standings)."""
        list_id = _require_id(list_id, "list", "export_csv")
        index = await self._index(list_id, fresher_than=time.monotonic() - max_age)
        return await self._standings.of(list_id, index)

    async def standings_at_hand(self, list_id: str, *, max_age: float, build_up_to: int = 0) -> ListStandings | None:
        """The standings `cached_standings` would give, but never a request: None when the list's index is missing
        or older than `max_age` s, or its standings are not built yet and it has more than `build_up_to` rows (a
        write's reply does not wait for a big build)."""
        compact = normalize_id(list_id)
        index = self._indexes.get(compact) if compact is not None else None
        if index is None or index.built_at < time.monotonic() - max_age:
            return None
        assert compact is not None
        kept = self._standings.get(compact, index)
        if kept is not None or len(index) > build_up_to:
            return kept
        return await self._standings.of(compact, index)

    async def similar_leads(
        self,
        list_id: str,
        *,
        uid: str | None = None,
        number: str | None = None,
        max_age: float,
        exclude: str | None = None,
    ) -> SimilarLeads:
        """Leads that share `number`'s digits, or whose uid is `uid` or differs from it only by case or spaces, per
        the index (rebuilt from one export when older than `max_age` s; a hit costs one GET, a miss nothing).
        `exclude`: the lead being changed. A lead added outside this client in the last `max_age` s may be missed."""
        list_id = _require_id(list_id, "list", "find_lead")
        if uid is None and number is None:
            return SimilarLeads()
        index = await self._index(list_id, fresher_than=time.monotonic() - max_age)
        by_number = index.ids_for_number(number) if number and number_key(number) else []
        by_uid = index.ids_for_uid_key(uid) if uid else []
        skip = {exclude} if exclude else set()
        wanted = [lead_id for lead_id in dict.fromkeys([*by_number, *by_uid]) if lead_id not in skip]
        found = await asyncio.gather(*(self.get_lead(list_id, lead_id) for lead_id in wanted), return_exceptions=True)
        for failure in found:
            if isinstance(failure, BaseException) and not isinstance(failure, errors.NotFoundError):
                raise failure
        leads = [lead for lead in found if isinstance(lead, Lead) and lead.id not in skip]
        key = number_key(number) if number else None
        return SimilarLeads(
            same_number=[lead for lead in leads if key and lead.number and number_key(lead.number) == key][
                :SIMILAR_SHOWN
            ],
            similar_uid=[
                lead
                for lead in leads
                if uid and lead.uid is not None and lead.uid != uid and uid_key(lead.uid) == uid_key(uid)
            ][:SIMILAR_SHOWN],
            same_uid=[lead for lead in leads if uid and lead.uid == uid][:SIMILAR_SHOWN],
        )

    async def find_lead_by_id(self, list_id: str, lead_id: str) -> Lead:
        return await self.get_lead(list_id, lead_id)

    async def find_lead_by_uid(self, list_id: str, uid: str, *, fresh: bool = False) -> Lead:
        """The lead with this uid. Warm: 1 request (GET by id from the index); cold or stale: export + GET."""
        list_id = _require_id(list_id, "list", "find_lead", uid=uid)
        found = await self._resolve(list_id, lambda index: self._confirmed_uid(list_id, index, uid), fresh=fresh)
        if not found:
            raise errors.NotFoundError(
                **_lookup_failure(
                    f"No lead with uid {uid!r} in list {list_id}.", "find_lead", "lead", list_id=list_id, uid=uid
                )
            )
        return found[0]

    async def find_leads_by_number(self, list_id: str, number: str) -> list[Lead]:
        """Every lead whose number has these digits (a number can repeat in a list)."""
        list_id = _require_id(list_id, "list", "find_lead")
        if not number_key(number):
            raise errors.NotFoundError(
                **_lookup_failure(f"{number!r} is not a phone number.", "find_lead", "lead", list_id=list_id)
            )
        found = await self._resolve(list_id, lambda index: self._confirmed_numbers(list_id, index, number))
        if not found:
            raise errors.NotFoundError(
                **_lookup_failure(
                    f"No lead with number {_one_line(number)} in list {list_id}.", "find_lead", "lead", list_id=list_id
                )
            )
        return found

    async def find_lead(self, list_id: str, reference: str) -> Lead:
        """A lead by id (either spelling), uid, or phone number, tried in that order."""
        list_id = _require_id(list_id, "list", "find_lead")
        reference = reference.strip()
        lead_id = normalize_id(reference)
        if lead_id is not None:
            try:
                return await self.get_lead(list_id, lead_id)
            except errors.NotFoundError:
                pass  # an id-shaped uid is possible; fall through to the index

        async def uid_then_number(index: LeadIndex) -> list[Lead]:
            by_uid = await self._confirmed_uid(list_id, index, reference)
            if by_uid or len(number_key(reference)) < MIN_NUMBER_DIGITS:
                return by_uid
            return await self._confirmed_numbers(list_id, index, reference)

        found = await self._resolve(list_id, uid_then_number)
        if not found:
            raise errors.NotFoundError(
                **_lookup_failure(
                    f"No lead with id, uid or number {reference!r} in list {list_id}.",
                    "find_lead",
                    "lead",
                    list_id=list_id,
                )
            )
        if len(found) > 1:
            raise errors.AmbiguousMatchError(
                f"{len(found)} leads in list {list_id} have number {_one_line(reference)}; use a uid or lead id.",
                candidates=[lead.id for lead in found],
                resource="lead",
                reference=reference,
                operation="find_lead",
                list_id=list_id,
            )
        return found[0]

    # ------------------------------------------------------------------ campaigns

    async def list_campaigns(self) -> list[Campaign]:
        return await self._items(Campaign, "GET", f"{OUTBOUND}/campaigns", _Op("list_campaigns", "list the campaigns"))

    async def get_campaign(self, campaign_id: str) -> Campaign:
        campaign_id = _require_id(campaign_id, "campaign", "get_campaign")
        op = _Op("get_campaign", f"get campaign {campaign_id}", campaign_id=campaign_id, missing="campaign")
        return await self._item(Campaign, "GET", f"{OUTBOUND}/campaigns/{campaign_id}", op)

    async def find_campaign_for_list(self, list_id: str) -> Campaign | None:
        """The campaign dialling this list (an active one first), or None when no campaign dials it."""
        list_id = _require_id(list_id, "list", "list_campaigns")
        dialling = [c for c in await self.list_campaigns() if c.lead_list is not None and c.lead_list.id == list_id]
        dialling.sort(key=lambda campaign: not campaign.active)
        return dialling[0] if dialling else None

    async def get_hopper(self, campaign_id: str) -> list[HopperEntry]:
        """The live hopper, sorted by position (1 = dialled next).

        Every entry is kept, even one that names no lead (neither an id nor a list id + uid, or not even an object):
        it still takes a place in the hopper. Such entries are logged once per read, as a warning, and match no
        lead (HopperEntry.is_lead); they never make the whole hopper unreadable.
        """
        campaign_id = _require_id(campaign_id, "campaign", "get_hopper")
        op = _Op("get_hopper", f"get the hopper of campaign {campaign_id}", campaign_id=campaign_id, missing="campaign")
        path = f"{OUTBOUND}/campaigns/{campaign_id}/hopper"
        response = await self._call("GET", path, op)
        body = _body(response, "GET", path, op)
        items = body.get("items") or []
        if "items" not in body or not isinstance(items, list):  # garbage must not read as "the hopper is empty"
            raise _unreadable(response, "GET", path, op)
        entries = [_hopper_entry(item) for item in items]
        unnamed = sum(not entry.identifies_a_lead for entry in entries)
        if unnamed:
            log.warning(
                "%d of the %d entries in the hopper of campaign %s name no lead (no id, and no list id + uid): "
                "they are skipped when looking for a lead in the hopper",
                unnamed,
                len(entries),
                campaign_id,
            )
        return sorted(entries, key=lambda entry: entry.order if entry.order is not None else 1 << 30)

    async def get_campaign_status(self, campaign_id: str) -> CampaignStatus:
        """The campaign's real-time status: dial method and level, list order, and babelforce's lead, call and
        agent figures (free-form objects, kept as sent)."""
        campaign_id = _require_id(campaign_id, "campaign", "get_campaign_status")
        op = _Op(
            "get_campaign_status",
            f"get the status of campaign {campaign_id}",
            campaign_id=campaign_id,
            missing="campaign",
        )
        return await self._item(CampaignStatus, "GET", f"{OUTBOUND}/campaigns/{campaign_id}/status", op)

    async def get_campaign_statistics(
        self, campaign_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[AgentStatistics]:
        """Per-agent figures (login, talk, wait, pause) for agents working the campaign between `since` and `until`
        (babelforce's `from`/`to`, Unix seconds; either may be left open)."""
        campaign_id = _require_id(campaign_id, "campaign", "get_campaign_statistics")
        op = _Op(
            "get_campaign_statistics",
            f"get the statistics of campaign {campaign_id}",
            campaign_id=campaign_id,
            missing="campaign",
        )
        params = {
            name: int(moment.timestamp()) for name, moment in (("from", since), ("to", until)) if moment is not None
        }
        path = f"{OUTBOUND}/campaigns/{campaign_id}/statistics"
        return await self._items(AgentStatistics, "GET", path, op, params=params or None)

    # ------------------------------------------------------------------ lookup index

    def _keep(self, list_id: str, lead: Lead, sent_at: float | None = None) -> None:
        """Remember the lead as read or written by a request sent at `sent_at`, for `get_lead(..., max_age=...)`;
        a copy from a request sent earlier than the one remembered (a slow GET overtaken by a write) is dropped."""
        key = (list_id, lead.id)
        sent_at = time.monotonic() if sent_at is None else sent_at
        known = self._recent.get(key)
        if known is not None and known[0] > sent_at:
            return
        self._recent[key] = (sent_at, lead)
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT_LEADS:
            self._recent.popitem(last=False)

    def _remember(self, list_id: str, lead: Lead, sent_at: float | None = None) -> None:
        self._keep(list_id, lead, sent_at)
        index = self._indexes.get(list_id)
        if index is not None:  # /lead find shows it as written; the standings made from the index follow it
            index.upsert(lead.id, lead.uid, lead.number, rank=lead.rank, status=lead.status, data=lead.data)

    @contextlib.asynccontextmanager
    async def _index_lock(self, list_id: str) -> AsyncIterator[None]:
        """The list's index lock (one build at a time), its holder's requests never waiting for `wait_turn`."""
        async with self._index_locks.setdefault(list_id, asyncio.Lock()):
            holding = _HOLDS_INDEX_LOCK.set(True)
            try:
                yield
            finally:
                _HOLDS_INDEX_LOCK.reset(holding)

    async def _index(self, list_id: str, *, fresher_than: float | None = None) -> LeadIndex:
        """The list's index, built from one CSV export when missing or older than `fresher_than`.

        Single-flight per list: concurrent lookups that all miss wait for one export, not one each.
        """
        index = self._indexes.get(list_id)
        if index is not None and (fresher_than is None or index.built_at >= fresher_than):
            return index
        async with self._index_lock(list_id):
            index = self._indexes.get(list_id)
            if index is not None and (fresher_than is None or index.built_at >= fresher_than):
                return index
            index = await self._build_index(list_id, time.monotonic())
            self._indexes.put(list_id, index)
            log.debug("indexed list %s: %d leads", list_id, index.exported)
            return index

    async def _build_index(self, list_id: str, built_at: float) -> LeadIndex:
        """The list's index from its CSV export or, when the export cannot be used (ExportUnusable: not CSV, no id,
        uid or number column, refused with a 4xx that is not about the list or our credentials), from paging the
        JSON API. Which of the two, and why, is logged once per list (again when that changes)."""
        try:
            index = await self._index_from_export(list_id, built_at)
        except ExportUnusable as unusable:
            self._log_lookup_source(list_id, "paging", unusable.shape.problem or "")
            return await self._index_from_paging(list_id, built_at, unusable.shape)
        assert index.shape is not None
        self._log_lookup_source(list_id, "export", index.shape.describe())
        return index

    def _log_lookup_source(self, list_id: str, source: str, why: str) -> None:
        if self._lookup_sources.get(list_id) == (source, why):
            return
        self._lookup_sources[list_id] = (source, why)
        if source == "export":
            log.info("lookups in list %s read its CSV export (%s)", list_id, why)
        else:
            log.warning(
                "lookups in list %s page GET %s/leads?listId=… instead of reading its CSV export: %s",
                list_id,
                OUTBOUND,
                why,
            )

    async def _index_from_export(self, list_id: str, built_at: float) -> LeadIndex:
        """One CSV export, parsed in a worker thread while it downloads: the export is never held whole (a
        1 000 000-lead export is ~150 MB), and parsing overlaps the transfer. The answer must start within the
        deadline; the whole body gets EXPORT_DEADLINE_FACTOR deadlines (each read still has the read timeout).

        ExportUnusable when lookups cannot use what babelforce answered (see _build_index)."""
        path = f"{OUTBOUND}/lists/{list_id}/leads"
        op = _Op("export_csv", f"export the leads of list {list_id}", list_id=list_id, missing="list")
        try:
            response = await self._call(
                "GET", path, op, params={"format": "csv"}, headers={"Accept": EXPORT_ACCEPT}, stream=True
            )
        except errors.APIStatusError as refused:
            if refused.status_code not in EXPORT_REFUSALS:
                raise
            reason = f": {refused.reason.rstrip('.')}" if refused.reason else ""
            raise ExportUnusable(
                ExportShape(problem=f"babelforce answered the export with HTTP {refused.status_code}{reason}.")
            ) from None
        try:
            content_type = response.headers.get("Content-Type")
            budget = self._timeouts.deadline * EXPORT_DEADLINE_FACTOR
            try:
                async with asyncio.timeout(budget):
                    problem = await _not_csv(response, content_type)
                    if problem is not None:
                        raise ExportUnusable(ExportShape(problem=problem, content_type=content_type))
                    return await _parse_streamed(response, content_type, built_at)
            except TimeoutError:
                raise errors.APITimeoutError(
                    f"babelforce's lead export for list {list_id} did not finish within {budget:g} s.",
                    may_have_reached_server=True,
                    timeout=budget,
                    **op.context(),
                ) from None
            except httpx.TransportError as failure:
                raise _connection_error(failure, self._host, op, True, self._timeouts) from None
            except ExportUnusable:
                raise
            except ValueError as bad_export:  # never in practice: every unreadable export is ExportUnusable
                raise errors.ServerError(
                    f"babelforce's lead export for list {list_id} could not be read ({bad_export}).",
                    status_code=response.status_code,
                    method="GET",
                    path=path,
                    **op.context(),
                ) from None
        finally:
            await response.aclose()

    async def _index_from_paging(self, list_id: str, built_at: float, shape: ExportShape) -> LeadIndex:
        """The list's index from its leads as the JSON API pages them (the export could not be used: `shape`)."""
        index = LeadIndex(
            built_at, has_data=True, columns=("id", "uid", "number", "rank", "status", "data"), source="paging"
        )
        index.shape = shape
        batch: list[Lead] = []
        async for lead in self.iter_leads(list_id, page_size=FALLBACK_PAGE_SIZE):
            batch.append(lead)
            if len(batch) >= BATCH_ROWS:
                index.append_leads(batch)
                batch = []
        index.append_leads(batch)
        return index

    async def lead_index(self, list_id: str, *, max_age: float | None = None) -> LeadIndex:
        """The list's index (for /lead find): the cached one when at most `max_age` seconds old, else a new export.
        Lookups by uid or number share it, so a list is exported once per period for both."""
        list_id = _require_id(list_id, "list", "export_csv")
        fresher_than = None if max_age is None else time.monotonic() - max_age
        return await self._index(list_id, fresher_than=fresher_than)

    async def _resolve(
        self, list_id: str, confirm: Callable[[LeadIndex], Awaitable[list[Lead]]], *, fresh: bool = False
    ) -> list[Lead]:
        """Look in the cached index; when that finds nothing confirmed, rebuild the index once and look again."""
        started = time.monotonic()
        index = await self._index(list_id, fresher_than=started if fresh else None)
        found = await confirm(index)
        if not found and index.built_at < started:
            found = await confirm(await self._index(list_id, fresher_than=started))
        return found

    async def _confirmed_uid(self, list_id: str, index: LeadIndex, uid: str) -> list[Lead]:
        lead_id = index.id_for_uid(uid)
        if lead_id is None:
            return []
        try:
            lead = await self.get_lead(list_id, lead_id)
        except errors.NotFoundError:
            return []
        return [lead] if lead.uid == uid else []

    async def _confirmed_numbers(self, list_id: str, index: LeadIndex, number: str) -> list[Lead]:
        key = number_key(number)
        found = []
        for lead_id in index.ids_for_number(key):
            try:
                lead = await self.get_lead(list_id, lead_id)
            except errors.NotFoundError:
                continue
            if lead.number is not None and number_key(lead.number) == key:
                found.append(lead)
        return found

    async def _settle_lost_add(self, list_id: str, payload: dict[str, Any], lost: errors.BabelforceError) -> AddResult:
        """The add may or may not have happened: look, rather than send it again."""
        uid = payload["uid"]
        context = {"operation": "add_lead", "list_id": list_id, "uid": uid}
        reason = errors.short_reason(lost)
        log.warning("answer to add of uid %r in list %s was lost (%s); looking it up", uid, list_id, reason)
        # After a timeout babelforce is probably stalled: look only briefly, so the user hears within about
        # 1.25 deadlines (25 s by default) rather than waiting a second full deadline for the lookup.
        budget = self._timeouts.deadline * LOST_ADD_CHECK_SHARE if isinstance(lost, errors.APITimeoutError) else None
        try:
            async with asyncio.timeout(budget):
                lead = await self.find_lead_by_uid(list_id, uid, fresh=True)
        except errors.NotFoundError:
            raise errors.AddNotCreatedError(
                f"babelforce's answer to adding uid {uid!r} to list {list_id} was lost ({reason}) and the list has "
                "no lead with that uid, so nothing was created; try again.",
                lost=lost,
                **context,
            ) from lost
        except errors.BabelforceError as lookup_failed:
            raise errors.AddOutcomeUnknownError(
                f"babelforce's answer to adding uid {uid!r} to list {list_id} was lost ({reason}) and checking "
                f"whether it was created failed too ({errors.short_reason(lookup_failed)}), so look the lead up before "
                "adding it again.",
                lost=lost,
                check=lookup_failed,
                **context,
            ) from lost
        except TimeoutError:
            assert budget is not None  # only a budget makes the check time out here; the client's own is an error
            check = errors.APITimeoutError(
                f"babelforce did not answer within {budget:g} s when asked to find lead uid {uid!r} in list {list_id}.",
                timeout=budget,
                operation="find_lead",
                list_id=list_id,
                uid=uid,
            )
            raise errors.AddOutcomeUnknownError(
                f"babelforce's answer to adding uid {uid!r} to list {list_id} was lost ({reason}) and it did not "
                f"answer the check within {budget:g} s either, so look the lead up before adding it again.",
                lost=lost,
                check=check,
                **context,
            ) from lost
        same_number = lead.number is not None and number_key(lead.number) == number_key(payload["number"])
        if not (same_number and lead.rank == payload["rank"]):
            raise errors.ConflictError(
                f"uid {uid!r} already exists in list {list_id} with other values; the add was not applied.",
                status_code=409,
                method="POST",
                path=f"{OUTBOUND}/lists/{list_id}/leads",
                **{**context, "lead_id": lead.id},
            ) from lost
        return AddResult(lead, recovered=True)

    # ------------------------------------------------------------------ transport

    async def _item(self, model: type[M], method: str, path: str, op: _Op, **kwargs: Any) -> M:
        """The `item` of a `{"item": ...}` answer as `model`; an answer without one is a ServerError."""
        response = await self._call(method, path, op, **kwargs)
        body = _body(response, method, path, op)
        return _read(model, body.get("item"), response, method, path, op)

    async def _items(self, model: type[M], method: str, path: str, op: _Op, **kwargs: Any) -> list[M]:
        response = await self._call(method, path, op, **kwargs)
        body = _body(response, method, path, op)
        items = body.get("items") or []
        if "items" not in body or not isinstance(items, list):  # garbage must not read as "there are none"
            raise _unreadable(response, method, path, op)
        return [_read(model, item, response, method, path, op) for item in items]

    async def _call(
        self,
        method: str,
        path: str,
        op: _Op,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One API call under the deadline: token, retries, 401 refresh, and error mapping.

        `stream`: a successful answer's body is not read yet (the caller reads it, then closes the response); the
        deadline then covers the answer's start only."""
        deadline = self._timeouts.deadline
        progress = _Progress()
        try:
            async with asyncio.timeout(deadline):
                response = await self._send(
                    method,
                    path,
                    op,
                    params=params,
                    json_body=json_body,
                    headers=headers,
                    progress=progress,
                    stream=stream,
                )
        except TimeoutError:
            raise errors.APITimeoutError(
                f"babelforce did not answer within {deadline:g} s when asked to {op.what}.",
                may_have_reached_server=progress.dispatched,  # False when the time went on logging in
                timeout=deadline,
                **op.context(),
            ) from None
        if response.is_success:
            return response
        raise _status_error(response, method, path, op, self._tokens.can_refresh)

    async def _send(
        self,
        method: str,
        path: str,
        op: _Op,
        *,
        params: Mapping[str, Any] | None,
        json_body: Any,
        progress: _Progress,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        idempotent = method in IDEMPOTENT_METHODS
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self._timeouts.deadline
        refreshed = False
        attempt = 0
        while True:
            if self.wait_turn is not None and not _HOLDS_INDEX_LOCK.get():
                await self.wait_turn()
            try:
                async with self._slots:
                    # the token is taken once a slot is free, so a request that waited meets a refreshed one
                    token = await self._tokens.get(self._observed_fetch_token)
                    progress.dispatched = True
                    request = self._http.build_request(
                        method,
                        self._base_url + path,
                        params=params,
                        json=json_body,
                        headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                    )
                    response = await self._timed(op.name, self._http.send(request, stream=stream))
                    if stream and not response.is_success:
                        await response.aread()  # an error's body is small: read it, as an unstreamed answer is
            except httpx.TransportError as failure:
                sent = not isinstance(failure, _NOT_SENT)
                delay = self._backoff(attempt, None)
                if (idempotent or not sent) and attempt < self._retry.max_retries and loop.time() + delay < ends_at:
                    attempt += 1
                    self._tell("on_retry", op.name, _unanswered(failure))
                    log.warning("%s %s failed (%s); retry %d in %.2f s", method, path, _kind(failure), attempt, delay)
                    await asyncio.sleep(delay)
                    continue
                raise _connection_error(failure, self._host, op, sent, self._timeouts) from None
            except httpx.DecodingError:
                raise errors.APIConnectionError(
                    f"babelforce sent an answer that could not be decoded when asked to {op.what}.", **op.context()
                ) from None
            if response.status_code == 401 and not refreshed and self._tokens.invalidate(token):
                refreshed = True
                self._tell("on_retry", op.name, "401")
                log.info("babelforce answered 401 to %s %s; refreshing the token once", method, path)
                continue
            if idempotent and response.status_code in self._retry.statuses and attempt < self._retry.max_retries:
                delay = self._backoff(attempt, _retry_after(response))
                if loop.time() + delay < ends_at:
                    attempt += 1
                    self._tell("on_retry", op.name, str(response.status_code))
                    log.warning(
                        "%s %s answered %d; retry %d in %.2f s", method, path, response.status_code, attempt, delay
                    )
                    await asyncio.sleep(delay)
                    continue
            if self.wait_turn is not None and method == "GET" and not stream and not _HOLDS_INDEX_LOCK.get():
                # reading a read's answer (JSON, its model) is work too: after any pending ack (a write's answer is
                # read at once: it tells what was changed, and nothing may come between)
                await self.wait_turn()
            return response

    async def _fetch_token(self, form: dict[str, str]) -> Token:
        """POST /oauth/token (form-encoded, no bearer). Retried like a GET: a repeated token request is harmless."""
        attempt = 0
        while True:
            try:
                # no slot: requests holding every slot may be waiting for this very token
                response = await self._timed(_TOKEN.name, self._http.post(self._base_url + TOKEN_PATH, data=form))
            except httpx.TransportError as failure:
                if attempt < self._retry.max_retries:
                    attempt += 1
                    self._tell("on_retry", _TOKEN.name, _unanswered(failure))
                    await asyncio.sleep(self._backoff(attempt - 1, None))
                    continue
                sent = not isinstance(failure, _NOT_SENT)
                error = _connection_error(failure, self._host, _TOKEN, sent, self._timeouts)
                error.may_have_reached_server = False  # the caller's own request never left: even an add is safe
                raise error from None
            if response.status_code in self._retry.statuses and attempt < self._retry.max_retries:
                attempt += 1
                self._tell("on_retry", _TOKEN.name, str(response.status_code))
                await asyncio.sleep(self._backoff(attempt - 1, _retry_after(response)))
                continue
            break
        if response.is_success:
            try:
                return Token.model_validate(response.json())
            except ValueError:
                raise errors.AuthenticationError(
                    "babelforce's token endpoint sent an unreadable answer.",
                    operation=_TOKEN.name,
                    status_code=response.status_code,
                ) from None
        if response.status_code in {400, 401, 403}:
            code = _oauth_error_code(response)
            grant = form.get("grant_type", "?")
            raise errors.AuthenticationError(
                f"babelforce refused to log in ({code}, grant {grant}); check the BABELFORCE_* credentials.",
                operation=_TOKEN.name,
                status_code=response.status_code,
                reason=_server_reason(response),
            )
        raise _status_error(response, "POST", TOKEN_PATH, _TOKEN, True)

    async def _observed_fetch_token(self, form: dict[str, str]) -> Token:
        """`_fetch_token`, with its grant type and result told to the observer (never the form's values)."""
        grant = form.get("grant_type", "unknown")
        try:
            token = await self._fetch_token(form)
        except errors.AuthenticationError:
            self._tell("on_token", grant, "refused")
            raise
        except errors.BabelforceError:
            self._tell("on_token", grant, "error")
            raise
        self._tell("on_token", grant, "ok")
        return token

    async def _timed(self, operation: str, sending: Awaitable[httpx.Response]) -> httpx.Response:
        """One HTTP request, its status and duration told to the observer (sending to the answer's headers)."""
        if self.observer is None:
            return await sending
        started, status = time.monotonic(), "error"
        try:
            response = await sending
            status = str(response.status_code)
            return response
        except httpx.TransportError as failure:
            status = _unanswered(failure)
            raise
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            self._tell("on_response", operation, status, time.monotonic() - started)

    def _tell(self, event: str, *details: str | float) -> None:
        """Call the observer's `event` method; an observer that fails is logged, never the call's problem."""
        observer = self.observer
        if observer is None:
            return
        try:
            getattr(observer, event)(*details)
        except Exception:
            log.exception("the babelforce client's observer failed on %s", event)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter: uniform(0, min(cap, base * 2^attempt)); a server's Retry-After wins, up to the cap."""
        cap = self._retry.backoff_cap
        if retry_after is not None:
            return min(max(retry_after, 0.0), cap)
        return self._rng.uniform(0, min(cap, self._retry.backoff_base * (2**attempt)))


#: Chunks of an export waiting to be parsed: the download runs this far ahead of the parser at most (~4 MB).
EXPORT_QUEUE_CHUNKS = 64
_END = b""


async def _not_csv(response: httpx.Response, content_type: str | None) -> str | None:
    """Why an export answer is no CSV by its type (JSON, HTML, XML), reading a JSON one for babelforce's reason;
    None for any other type (text/csv, text/plain, an attachment's octet-stream, none): its body is sniffed."""
    media = (content_type or "").split(";")[0].strip().lower()
    if _is_json(response):
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > _REFUSAL_READ:
                break
        try:
            said = json.loads(bytes(body))
        except ValueError:
            said = None
        if isinstance(said, dict) and said.get("success") is False:
            reason = _redacted(_reason_in(said), response)
            return "babelforce refused the export" + (f": {reason.rstrip('.')}." if reason else ".")
        return f"babelforce answered the export with JSON ({media}), not CSV."
    if media in ("text/html", "application/xhtml+xml") or media.endswith(("/xml", "+xml")):
        return f"babelforce answered the export with a page of type {media}, not CSV."
    return None


async def _parse_streamed(response: httpx.Response, content_type: str | None, built_at: float) -> LeadIndex:
    """Feed the body's chunks to LeadIndex.from_export in a worker thread through a bounded queue."""
    chunks: queue.Queue[bytes] = queue.Queue(EXPORT_QUEUE_CHUNKS)
    stop = threading.Event()  # the download failed: the parser must give up, not wait for more

    def feed() -> Iterator[bytes]:
        while True:
            try:
                chunk = chunks.get(timeout=0.5)
            except queue.Empty:
                if stop.is_set():
                    raise ValueError("the download stopped") from None
                continue
            if chunk is _END:
                return
            yield chunk

    parsing = asyncio.ensure_future(
        asyncio.to_thread(LeadIndex.from_export, feed(), built_at=built_at, content_type=content_type)
    )

    async def put(chunk: bytes) -> None:
        while not parsing.done():
            try:
                chunks.put_nowait(chunk)
                return
            except queue.Full:
                await asyncio.sleep(0.002)  # the parser is behind: let it catch up

    try:
        async for chunk in response.aiter_bytes():
            if chunk:
                await put(chunk)
            if parsing.done():  # it failed (bad CSV): its error is the answer
                break
        await put(_END)
    except BaseException:
        stop.set()
        with contextlib.suppress(Exception):
            await parsing
        raise
    return await parsing


def _hopper_entry(item: Any) -> HopperEntry:
    """One hopper entry as read; an item that cannot be read at all is an entry naming no lead, not an error."""
    try:
        return HopperEntry.model_validate(item)
    except ValidationError:
        return HopperEntry()


def _require_id(value: str, resource: errors.Resource, operation: str, **context: Any) -> str:
    """The id normalized; one that is no id is a NotFoundError for `resource` (its id attribute then None)."""
    normalized = normalize_id(value)
    if normalized is None:
        message = f"{value!r} is not a valid {resource} id."
        raise errors.NotFoundError(**_lookup_failure(message, operation, resource, **context))
    return normalized


def _lookup_failure(message: str, operation: str, resource: errors.Resource, **context: Any) -> dict[str, Any]:
    """The arguments of a NotFoundError for a lookup that found nothing (no request of its own answered 404)."""
    return {
        "message": message,
        "status_code": 404,
        "method": "GET",
        "path": "",
        "operation": operation,
        "resource": resource,
        **context,
    }


def _body(response: httpx.Response, method: str, path: str, op: _Op) -> dict[str, Any]:
    """The JSON envelope of a 2xx answer; one that says `"success": false` is babelforce refusing (see _refused)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise _unreadable(response, method, path, op)
    if body.get("success") is False:
        raise _refused(response, method, path, op)
    return body


def _refused(response: httpx.Response, method: str, path: str, op: _Op) -> errors.InvalidRequestError:
    """A 2xx answer whose envelope says `"success": false`: babelforce did not do what it was asked (the spec's
    envelopes all carry `success`; DefaultV2MessageResponse: "Whether or not the request was successful"). Its
    reason is the body's message / detail; status_code stays the 2xx it came with, so nobody reads it as a 4xx."""
    reason = _server_reason(response)
    detail = f": {reason.rstrip('.')}" if reason else ""
    return errors.InvalidRequestError(
        f"babelforce answered that it could not {op.what}{detail}.",
        status_code=response.status_code,
        method=method,
        path=path,
        reason=reason,
        **op.context(),
    )


def _is_json(response: httpx.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


def _read(model: type[M], value: Any, response: httpx.Response, method: str, path: str, op: _Op) -> M:
    """Validate `value` as `model`; a shape we cannot read (no item, no id) is babelforce's fault, not a crash."""
    try:
        return model.model_validate(value)
    except ValidationError:
        raise _unreadable(response, method, path, op) from None


def _unreadable(response: httpx.Response, method: str, path: str, op: _Op) -> errors.ServerError:
    return errors.ServerError(
        f"babelforce sent an answer that could not be read when asked to {op.what}.",
        answered=False,
        status_code=response.status_code,
        method=method,
        path=path,
        **op.context(),
    )


def _one_line(text: str, limit: int = 80) -> str:
    """Text from a server or a user, fit to quote in a one-line message."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def match_list(lists: Sequence[LeadList], name_or_id: str) -> LeadList | None:
    """The list with this id (either spelling) or this name (case-insensitive) among `lists`, or None.

    Pure, so a caller with its own cached copy of the lists (the bot) matches exactly as `find_list` does.
    Raises AmbiguousMatchError when several lists share the name.
    """
    wanted = name_or_id.strip()
    list_id = normalize_id(wanted)
    if list_id is not None:
        for lead_list in lists:
            if lead_list.id == list_id:
                return lead_list
    matches = [lead_list for lead_list in lists if lead_list.name.casefold() == wanted.casefold()]
    if len(matches) > 1:
        raise errors.AmbiguousMatchError(
            f"{len(matches)} lists are named {_one_line(wanted)!r}; use the list id instead.",
            candidates=[match.id for match in matches],
            resource="list",
            reference=wanted,
            operation="find_list",
        )
    return matches[0] if matches else None


def _kind(failure: httpx.TransportError) -> str:
    return type(failure).__name__


def _unanswered(failure: httpx.TransportError) -> str:
    """A failure without an answer, in the observer's few words."""
    if isinstance(failure, httpx.TimeoutException):
        return "timeout"
    if isinstance(failure, httpx.ConnectError):
        return "connect_error"
    return "network_error"


def _behind_proxy(base_url: str) -> bool:
    """Whether the environment routes requests to `base_url` through a proxy (HTTP(S)_PROXY, not NO_PROXY)."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    return parts.scheme in proxies and not urllib.request.proxy_bypass(parts.hostname or "")


def _connection_error(
    failure: httpx.TransportError, host: str, op: _Op, sent: bool, timeouts: Timeouts
) -> errors.APIConnectionError:
    what, context = op.what, op.context()
    if isinstance(failure, httpx.ConnectTimeout):
        return errors.APITimeoutError(
            f"Could not connect to babelforce at {host} within {timeouts.connect:g} s to {what}.",
            may_have_reached_server=False,
            timeout=timeouts.connect,
            **context,
        )
    if isinstance(failure, httpx.TimeoutException):
        return errors.APITimeoutError(
            f"babelforce went silent for {timeouts.read:g} s when asked to {what}.",
            may_have_reached_server=sent,
            timeout=timeouts.read,
            **context,
        )
    if not sent:
        return errors.APIConnectionError(
            f"Could not connect to babelforce at {host} to {what}.", may_have_reached_server=False, **context
        )
    return errors.APIConnectionError(f"The connection to babelforce dropped when asked to {what}.", **context)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None  # 'nan' and 'inf' parse as floats too
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT; a '-0000' zone parses naive and would read as local
    return max(when.timestamp() - time.time(), 0.0)


#: Fields of an error body that hold babelforce's reason, most telling first.
_REASON_FIELDS = ("message", "detail", "error_description", "error")
#: Fields of a token request whose values are secret.
_SECRET_FORM_FIELDS = ("password", "client_secret", "refresh_token")
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")
REASON_MAX = 200


def _json_object(response: httpx.Response) -> bool:
    """Whether an answer is babelforce's own JSON (an object), not a gateway's page or a cut-off body."""
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def _server_reason(response: httpx.Response) -> str | None:
    """babelforce's own reason for an error answer: one line, at most REASON_MAX characters, and without any
    credential this request carried (a server that echoes our token or password must not put it in a message)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    return _redacted(_reason_in(body), response)


def _redacted(reason: str | None, response: httpx.Response) -> str | None:
    """A reason from babelforce as one line of at most REASON_MAX characters, without the credentials sent."""
    if reason is None:
        return None
    for secret in _sent_secrets(response):
        reason = reason.replace(secret, "[redacted]")
    line = _BEARER.sub("Bearer [redacted]", " ".join(reason.split()))
    return (line[:REASON_MAX] + "…") if len(line) > REASON_MAX else line


def _reason_in(body: dict[str, Any]) -> str | None:
    """The reason an error body gives: its message, followed by its `detail` when that says more (a generic
    "Validation failed" plus the field at fault); else the first of detail / error_description / error.

    `detail` is read in the shapes APIs give it: text, a list of texts or of objects with `msg` / `message`
    (one per field at fault), or an object with `message` / `msg` / `title`."""
    message, detail = _reason_text(body.get("message")), _reason_text(body.get("detail"))
    if message and detail and detail.rstrip(".").casefold() not in message.casefold():
        return f"{message.rstrip('.')}: {detail}"
    if message or detail:
        return message or detail
    return next((text for key in _REASON_FIELDS if (text := _reason_text(body.get(key)))), None)


def _reason_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        return next((text for key in ("message", "msg", "title") if (text := _reason_text(value.get(key)))), None)
    if isinstance(value, list):
        texts = [text for text in map(_reason_text, value[:5]) if text]
        return "; ".join(texts) or None
    return None


def _sent_secrets(response: httpx.Response) -> list[str]:
    """The bearer token and the secret form fields of the request this response answers."""
    try:
        request = response.request
    except RuntimeError:  # a response built by hand has no request
        return []
    secrets = []
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        secrets.append(token.strip())
    if request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        try:
            form = urllib.parse.parse_qs(request.content.decode("utf-8", "replace"))
        except httpx.RequestNotRead:
            form = {}
        secrets.extend(value for name in _SECRET_FORM_FIELDS for value in form.get(name, ()))
    return sorted((secret for secret in secrets if secret), key=len, reverse=True)


def _oauth_error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code.replace("_", "").isalnum() else f"HTTP {response.status_code}"


def _status_error(
    response: httpx.Response, method: str, path: str, op: _Op, refreshable: bool
) -> errors.APIStatusError:
    status, what = response.status_code, op.what
    server = _server_reason(response)
    fields: dict[str, Any] = {"status_code": status, "method": method, "path": path, "reason": server, **op.context()}
    detail = f": {server.rstrip('.')}" if server else ""
    if status in {400, 422}:
        return errors.InvalidRequestError(f"babelforce rejected the request to {what}{detail}.", **fields)
    if status == 401:
        hint = "check the BABELFORCE_* credentials" if refreshable else "BABELFORCE_ACCESS_TOKEN is expired or revoked"
        return errors.UnauthorizedError(f"babelforce refused our credentials when asked to {what}; {hint}.", **fields)
    if status == 403:
        return errors.PermissionDeniedError(f"The babelforce account is not allowed to {what}.", **fields)
    if status == 404:
        return errors.NotFoundError(op.not_found(), resource=op.missing, **fields)
    if status == 409:
        return errors.ConflictError(op.conflict or f"babelforce refused to {what}: it conflicts{detail}.", **fields)
    if status == 429:
        wait = _retry_after(response)
        when = f"in {math.ceil(wait)} s" if wait else "in a moment"  # 0.4 s is "in 1 s", never "in 0 s"
        return errors.RateLimitedError(
            f"babelforce is limiting how fast we call it; try again {when}.", retry_after=wait, **fields
        )
    if status >= 500:
        return errors.ServerError(
            f"babelforce had a server error (HTTP {status}) when asked to {what}; try again shortly.",
            answered=_json_object(response),
            **fields,
        )
    return errors.APIStatusError(f"babelforce answered HTTP {status} when asked to {what}.", **fields)
