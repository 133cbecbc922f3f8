"""The sandbox's in-memory world: lead-lists, leads, campaigns with live hoppers, and OAuth tokens.

No HTTP here. Every public method takes `lock` (a re-entrant lock) so tests may inspect or change the state from
their own thread while the server's event loop serves requests. Errors are `SandboxError`s carrying the HTTP
status and the one-sentence message the API answers with.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.hopper import DIALABLE_STATUSES, LIST_ORDERS, HopperEntry, is_dialable, refill

DIAL_STATUSES = (
    "pending",
    "new",
    "callback_hold",
    "answering_machine_auto",
    "busy_auto",
    "no_answer_auto",
    "disconnected_number_auto",
    "dropped",
    "in_call",
    "unknown",
    "picked_up",
    "voicemail",
    "agent_error",
    "not_viable",
    "queued",
    "dispo",
    "no_answer",
    "disconnected_number",
    "busy",
    "callback",
    "answering_machine",
    "not_interested",
    "do_not_call",
    "sale",
)

#: How the CSV export can be written (`leadbot sandbox --csv-dialect`): babelforce's spec says only `text/csv`, so
#: the sandbox can serve each shape a real tenant might send. "comma" is what it always sent: UTF-8, CRLF. "excel" is
#: what Excel's "CSV" save gives in a German locale, behind a server that puts a UTF-8 BOM first anyway: the BOM, a
#: `sep=;` line, semicolons, CRLF, and an ISO-8859-1 body (declared in the Content-Type).
CSV_DIALECTS = ("comma", "semicolon", "tab", "excel")
#: Header names of the export (`--csv-headers`): babelforce's own field names, or names other systems use.
CSV_HEADER_STYLES = ("babelforce", "alias")

__all__ = [
    "CSV_DIALECTS",
    "CSV_HEADER_STYLES",
    "DIALABLE_STATUSES",
    "DIAL_STATUSES",
    "LIST_ORDERS",
    "AgentSession",
    "Campaign",
    "Conflict",
    "Invalid",
    "Lead",
    "LeadList",
    "NotFound",
    "SandboxError",
    "SandboxState",
    "TokenStore",
    "is_dashed_uuid",
    "new_id",
    "normalize_id",
    "now_rfc3339",
]

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_DASHED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class SandboxError(Exception):
    """A request the API refuses; `status` and `message` become the error response."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(SandboxError):
    status = 400


class NotFound(SandboxError):
    status = 404


class Conflict(SandboxError):
    status = 409


class _Unset:
    """Marks a field a partial update did not send (None is a real value for some)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def new_id() -> str:
    return uuid.uuid4().hex


def normalize_id(raw: str) -> str | None:
    """The id as stored (32 lowercase hex digits) when `raw` is 32 hex digits in any case; None otherwise.

    The dashed uuid spelling is not an id here, so it answers 404 like an unknown id: babelforce's own Go SDK
    (github.com/babelforce/manager-sdk-go, ids.go) says the API does not match the hyphenated form and rewrites
    such ids before sending, "instead of 404ing". leadbot's client sends the compact form; this keeps it honest.
    """
    if _HEX32.fullmatch(raw):
        return raw.lower()
    return None


def is_dashed_uuid(raw: str) -> bool:
    """The uuid spelling with dashes, which the real API does not match (see `normalize_id`)."""
    return _DASHED.fullmatch(raw) is not None


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Lead:
    id: str
    uid: str
    list_id: str
    number: str
    rank: int
    seq: int  # global insertion counter: defines UP/DOWN order and breaks rank ties
    data: dict[str, Any]
    date_created: str
    last_updated: str
    status: str = "pending"
    call_count: int = 0
    duration: int = 0
    called_since_reset: bool = False
    date_called: str | None = None


@dataclass(slots=True)
class LeadList:
    id: str
    name: str
    campaign_id: str | None = None
    leads: dict[str, Lead] = field(default_factory=dict)  # insertion order is list order
    ids_by_uid: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class AgentSession:
    """An agent's login to a campaign (the sandbox has no real agents: /sandbox/campaigns/{id}/agents logs them in
    and out, and a dial may name the agent who took its calls). Times are Unix seconds."""

    agent: str
    login_at: float
    logout_at: float | None = None
    talk_s: int = 0
    calls: int = 0

    def wait_s(self, now: float) -> int:
        """Logged in and not talking (the sandbox knows no pauses)."""
        end = self.logout_at if self.logout_at is not None else now
        return max(0, int(end - self.login_at) - self.talk_s)


@dataclass(slots=True)
class Campaign:
    id: str
    name: str
    active: bool
    test_mode: bool
    display_number: str
    list_order: str
    call_ratio: float
    list_id: str | None = None
    hopper: list[HopperEntry] = field(default_factory=list)
    calls: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # dial status -> calls that ended with it
    agents: dict[str, AgentSession] = field(default_factory=dict)  # the latest session of each agent


@dataclass
class TokenStore:
    """Bearer access tokens with a ttl, and single-use refresh tokens (rotated on every refresh)."""

    ttl: int
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.monotonic)
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> client_id

    def issue(self, client_id: str, with_refresh: bool) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        self.access[token] = time.monotonic() + self.ttl
        grant: dict[str, Any] = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": self.ttl,
            "scope": "*",
            "client_id": client_id,
        }
        if with_refresh:
            refresh_token = secrets.token_urlsafe(32)
            self.refresh[refresh_token] = client_id
            grant["refresh_token"] = refresh_token
        return grant

    def is_valid(self, token: str) -> bool:
        expiry = self.access.get(token)
        return expiry is not None and time.monotonic() < expiry

    def redeem_refresh(self, refresh_token: str) -> str | None:
        """Consume a refresh token, returning its client_id; None if unknown or already used."""
        return self.refresh.pop(refresh_token, None)

    def expire_all(self) -> int:
        """Make every access token issued so far expired; refresh tokens stay valid."""
        expired = time.monotonic() - 1
        for token in self.access:
            self.access[token] = expired
        return len(self.access)


class SandboxState:
    """Lists, leads, campaigns and tokens, with the hopper kept up to date after every change that matters."""

    def __init__(
        self, hopper_size: int = 20, token_ttl: int = 3600, csv_dialect: str = "comma", csv_headers: str = "babelforce"
    ) -> None:
        if hopper_size < 1:
            raise ValueError("hopper_size must be at least 1")
        self.lock = threading.RLock()
        self.hopper_size = hopper_size
        self.csv_dialect = "comma"
        self.csv_headers = "babelforce"
        try:
            self.set_export_shape(csv_dialect, csv_headers)
        except Invalid as bad:
            raise ValueError(bad.message) from None
        self.lists: dict[str, LeadList] = {}
        self.campaigns: dict[str, Campaign] = {}
        self.tokens = TokenStore(token_ttl)
        self._seq = itertools.count(1)

    def set_export_shape(self, dialect: str | None = None, headers: str | None = None) -> None:
        """How the CSV export is written from now on (None keeps that part); Invalid names the choices."""
        if dialect is not None and dialect not in CSV_DIALECTS:
            raise Invalid(f"dialect must be one of {', '.join(CSV_DIALECTS)}.")
        if headers is not None and headers not in CSV_HEADER_STYLES:
            raise Invalid(f"headers must be one of {', '.join(CSV_HEADER_STYLES)}.")
        with self.lock:
            self.csv_dialect = dialect or self.csv_dialect
            self.csv_headers = headers or self.csv_headers

    # ---- lead-lists -------------------------------------------------------------------------------------

    def create_list(self, name: str, list_id: str | None = None) -> LeadList:
        with self.lock:
            self._check_list_name_free(name)
            lead_list = LeadList(id=list_id or new_id(), name=name)
            self.lists[lead_list.id] = lead_list
            return lead_list

    def get_list(self, list_id: str) -> LeadList:
        with self.lock:
            lead_list = self.lists.get(list_id)
            if lead_list is None:
                raise NotFound(f"Lead-list {list_id} not found.")
            return lead_list

    def rename_list(self, list_id: str, name: str) -> LeadList:
        with self.lock:
            lead_list = self.get_list(list_id)
            self._check_list_name_free(name, except_id=list_id)
            lead_list.name = name
            return lead_list

    def delete_list(self, list_id: str) -> LeadList:
        """Remove the list and its leads, and take it off the campaign dialling it."""
        with self.lock:
            lead_list = self.get_list(list_id)
            if lead_list.campaign_id is not None:
                self.set_campaign_list(lead_list.campaign_id, None)
            del self.lists[list_id]
            return lead_list

    def _check_list_name_free(self, name: str, except_id: str | None = None) -> None:
        wanted = name.casefold()
        for other in self.lists.values():
            if other.id != except_id and other.name.casefold() == wanted:
                raise Conflict(f"A lead-list named {name!r} already exists.")

    # ---- leads ------------------------------------------------------------------------------------------

    def add_lead(
        self,
        list_id: str,
        uid: str,
        number: str,
        rank: int,
        data: dict[str, Any] | None = None,
        lead_id: str | None = None,
    ) -> Lead:
        with self.lock:
            lead_list = self.get_list(list_id)
            if uid in lead_list.ids_by_uid:
                raise Conflict(f"A lead with uid {uid} already exists in this list.")
            now = now_rfc3339()
            lead = Lead(lead_id or new_id(), uid, list_id, number, rank, next(self._seq), dict(data or {}), now, now)
            lead_list.leads[lead.id] = lead
            lead_list.ids_by_uid[uid] = lead.id
            self._refill_list(lead_list)
            return lead

    def add_leads_unchecked(self, list_id: str, rows: Iterable[tuple[str, str, str, int, dict[str, Any]]]) -> int:
        """Bulk insert for seeding: rows of (id, uid, number, rank, data), uids assumed unique. One refill."""
        with self.lock:
            lead_list = self.get_list(list_id)
            now = now_rfc3339()
            seq = self._seq
            leads, ids_by_uid = lead_list.leads, lead_list.ids_by_uid
            added = 0
            for lead_id, uid, number, rank, data in rows:
                leads[lead_id] = Lead(lead_id, uid, list_id, number, rank, next(seq), data, now, now)
                ids_by_uid[uid] = lead_id
                added += 1
            self._refill_list(lead_list)
            return added

    def get_lead(self, list_id: str, lead_id: str) -> Lead:
        with self.lock:
            lead = self.get_list(list_id).leads.get(lead_id)
            if lead is None:
                raise NotFound(f"Lead {lead_id} not found in lead-list {list_id}.")
            return lead

    def update_lead(
        self,
        list_id: str,
        lead_id: str,
        uid: str = UNSET,
        number: str = UNSET,
        rank: int = UNSET,
        data: dict[str, Any] = UNSET,
    ) -> Lead:
        """Partial update: only given fields change; `data` keys merge and a key set to None is deleted.

        A lead already in a hopper keeps its entry and place: the update is not seen by the current batch.
        """
        with self.lock:
            lead_list = self.get_list(list_id)
            lead = self.get_lead(list_id, lead_id)
            if uid is not UNSET and uid != lead.uid:
                if uid in lead_list.ids_by_uid:
                    raise Conflict(f"A lead with uid {uid} already exists in this list.")
                del lead_list.ids_by_uid[lead.uid]
                lead_list.ids_by_uid[uid] = lead.id
                lead.uid = uid
            if number is not UNSET:
                lead.number = number
            if rank is not UNSET:
                lead.rank = rank
            if data is not UNSET:
                for key, value in data.items():
                    if value is None:
                        lead.data.pop(key, None)
                    else:
                        lead.data[key] = value
            lead.last_updated = now_rfc3339()
            return lead

    def delete_lead(self, list_id: str, lead_id: str) -> None:
        with self.lock:
            lead = self.get_lead(list_id, lead_id)
            self._remove_leads(self.lists[list_id], [lead])

    def delete_leads(self, list_id: str, ids: Iterable[str] = (), uids: Iterable[str] = ()) -> int:
        """Bulk delete by ids and/or uids; unknown ones are skipped. Returns how many were deleted."""
        with self.lock:
            lead_list = self.get_list(list_id)
            found: dict[str, Lead] = {}
            for lead_id in ids:
                lead = lead_list.leads.get(lead_id)
                if lead is not None:
                    found[lead.id] = lead
            for uid in uids:
                uid_lead_id = lead_list.ids_by_uid.get(uid)
                if uid_lead_id is not None:
                    found[uid_lead_id] = lead_list.leads[uid_lead_id]
            self._remove_leads(lead_list, list(found.values()))
            return len(found)

    def clear_list(self, list_id: str) -> LeadList:
        with self.lock:
            lead_list = self.get_list(list_id)
            lead_list.leads = {}
            lead_list.ids_by_uid = {}
            if lead_list.campaign_id is not None:
                self.campaigns[lead_list.campaign_id].hopper = []
            return lead_list

    def _remove_leads(self, lead_list: LeadList, leads: list[Lead]) -> None:
        """Delete leads from the list. A lead already loaded keeps its hopper entry until it is dialled: the
        conservative model (babelforce's spec does not say; its API offers no way to take a lead out of a loaded
        batch), so a client must never promise that deleting a loaded lead stops this batch from calling it.
        The hopper stays as full as it was, so nothing is refilled."""
        for lead in leads:
            del lead_list.leads[lead.id]
            del lead_list.ids_by_uid[lead.uid]

    def iter_leads(self, list_id: str | None = None, status: str | None = None) -> Iterator[Lead]:
        """Leads in list order (lists in creation order when account-wide), optionally of one status.

        Callers iterate while holding `lock`.
        """
        lists = [self.get_list(list_id)] if list_id is not None else list(self.lists.values())
        for lead_list in lists:
            if status is None:
                yield from lead_list.leads.values()
            else:
                yield from (lead for lead in lead_list.leads.values() if lead.status == status)

    def campaign_id_of_list(self, list_id: str) -> str | None:
        lead_list = self.lists.get(list_id)
        return lead_list.campaign_id if lead_list else None

    # ---- campaigns and the hopper -----------------------------------------------------------------------

    def create_campaign(
        self,
        name: str,
        active: bool,
        test_mode: bool,
        display_number: str,
        list_order: str,
        call_ratio: float = 1,
        campaign_id: str | None = None,
    ) -> Campaign:
        with self.lock:
            campaign = Campaign(
                id=campaign_id or new_id(),
                name=name,
                active=active,
                test_mode=test_mode,
                display_number=display_number,
                list_order=list_order,
                call_ratio=call_ratio,
            )
            self.campaigns[campaign.id] = campaign
            return campaign

    def get_campaign(self, campaign_id: str) -> Campaign:
        with self.lock:
            campaign = self.campaigns.get(campaign_id)
            if campaign is None:
                raise NotFound(f"Campaign {campaign_id} not found.")
            return campaign

    def update_campaign(self, campaign_id: str, **changes: Any) -> Campaign:
        """Partial update by attribute name. Deactivating empties the hopper; (re)activating refills it."""
        with self.lock:
            campaign = self.get_campaign(campaign_id)
            for name, value in changes.items():
                if not hasattr(campaign, name) or name in {"id", "list_id", "hopper", "calls", "outcomes", "agents"}:
                    raise ValueError(f"not a campaign setting: {name}")
                setattr(campaign, name, value)
            if not campaign.active:
                campaign.hopper = []
            self._refill(campaign)
            return campaign

    def delete_campaign(self, campaign_id: str) -> Campaign:
        with self.lock:
            campaign = self.get_campaign(campaign_id)
            self.set_campaign_list(campaign_id, None)
            del self.campaigns[campaign_id]
            return campaign

    def set_campaign_list(self, campaign_id: str, list_id: str | None) -> Campaign:
        """Point the campaign at a list (or none). A list is dialled by one campaign: it moves if taken."""
        with self.lock:
            campaign = self.get_campaign(campaign_id)
            new_list = self.get_list(list_id) if list_id is not None else None
            if campaign.list_id == list_id:
                return campaign
            if campaign.list_id is not None and campaign.list_id in self.lists:
                self.lists[campaign.list_id].campaign_id = None
            if new_list is not None and new_list.campaign_id is not None:
                self.set_campaign_list(new_list.campaign_id, None)
            campaign.list_id = list_id
            campaign.hopper = []
            if new_list is not None:
                new_list.campaign_id = campaign.id
            self._refill(campaign)
            return campaign

    def hopper(self, campaign_id: str) -> list[HopperEntry]:
        with self.lock:
            return list(self.get_campaign(campaign_id).hopper)

    def dial(
        self, campaign_id: str, count: int = 1, status: str = "no_answer", agent: str | None = None, talk_s: int = 0
    ) -> list[Lead]:
        """Simulate the dialer: call the first `count` hopper entries, record the outcome, then refill."""
        return self.dial_batch(campaign_id, count, status, agent=agent, talk_s=talk_s)[0]

    def dial_batch(
        self, campaign_id: str, count: int = 1, status: str = "no_answer", agent: str | None = None, talk_s: int = 0
    ) -> tuple[list[Lead], list[HopperEntry]]:
        """`dial`, also returning the entries whose lead was deleted after it was loaded: the batch still calls
        their number (as loaded), but there is no lead left to record the outcome on. `agent`, who must be logged in
        to the campaign, took the calls, each lasting `talk_s` seconds."""
        with self.lock:
            campaign = self.get_campaign(campaign_id)
            session = None
            if agent is not None:
                session = campaign.agents.get(agent)
                if session is None or session.logout_at is not None:
                    raise Invalid(f"agent {agent!r} is not logged in to campaign {campaign.name!r}.")
            batch, campaign.hopper = campaign.hopper[:count], campaign.hopper[count:]
            lead_list = self.lists[campaign.list_id] if campaign.list_id is not None else None
            now = now_rfc3339()
            dialled: list[Lead] = []
            orphans: list[HopperEntry] = []
            for entry in batch:
                lead = lead_list.leads.get(entry.lead_id) if lead_list is not None else None
                if lead is None:  # deleted after it was loaded: called all the same, nothing to update
                    orphans.append(entry)
                    continue
                lead.status = status
                lead.call_count += 1
                lead.duration += talk_s
                lead.called_since_reset = True
                lead.date_called = now
                lead.last_updated = now
                dialled.append(lead)
            campaign.calls += len(batch)
            campaign.outcomes[status] += len(batch)
            if session is not None:
                session.calls += len(batch)
                session.talk_s += talk_s * len(batch)
            self._refill(campaign)
            return dialled, orphans

    def set_agents(self, campaign_id: str, agents: Iterable[str], now: float | None = None) -> list[AgentSession]:
        """Exactly `agents` are logged in to the campaign from now on: the others are logged out, newcomers (and
        agents coming back) start a new session. Returns every agent's latest session."""
        with self.lock:
            campaign = self.get_campaign(campaign_id)
            moment = time.time() if now is None else now
            wanted = set(agents)
            for name, session in campaign.agents.items():
                if name not in wanted and session.logout_at is None:
                    session.logout_at = moment
            for name in sorted(wanted):
                latest = campaign.agents.get(name)
                if latest is None or latest.logout_at is not None:
                    campaign.agents[name] = AgentSession(name, moment)
            return list(campaign.agents.values())

    def campaign_status(self, campaign_id: str) -> dict[str, Any]:
        """The figures of the campaign's real-time status, from this state: leads (by status, dialable, in the
        hopper), calls made by `dial` and their outcomes, agents logged in."""
        with self.lock:
            campaign = self.get_campaign(campaign_id)
            leads = self.lists[campaign.list_id].leads.values() if campaign.list_id else ()
            by_status = Counter(lead.status for lead in leads)
            return {
                "lead_stats": {**self.lead_stats(campaign_id), "byStatus": dict(sorted(by_status.items()))},
                "call_stats": {"calls": campaign.calls, "outcomes": dict(sorted(campaign.outcomes.items()))},
                "agent_stats": {
                    "loggedIn": sum(1 for session in campaign.agents.values() if session.logout_at is None)
                },
            }

    def agent_sessions(
        self, campaign_id: str, since: float | None = None, until: float | None = None
    ) -> list[AgentSession]:
        """The agents' latest sessions that overlap [since, until] (either bound open), by login time."""
        with self.lock:
            sessions = [
                session
                for session in self.get_campaign(campaign_id).agents.values()
                if (until is None or session.login_at <= until)
                and (since is None or session.logout_at is None or session.logout_at >= since)
            ]
            return sorted(sessions, key=lambda session: (session.login_at, session.agent))

    def lead_stats(self, campaign_id: str) -> dict[str, int]:
        with self.lock:
            campaign = self.get_campaign(campaign_id)
            leads = self.lists[campaign.list_id].leads.values() if campaign.list_id else ()
            total = dialable = 0
            for lead in leads:
                total += 1
                dialable += is_dialable(lead)
            return {"total": total, "dialable": dialable, "inHopper": len(campaign.hopper)}

    def _refill_list(self, lead_list: LeadList) -> None:
        if lead_list.campaign_id is not None:
            self._refill(self.campaigns[lead_list.campaign_id])

    def _refill(self, campaign: Campaign) -> None:
        if not campaign.active or campaign.list_id is None:
            return
        leads = self.lists[campaign.list_id].leads.values()
        campaign.hopper = refill(campaign.hopper, leads, campaign.list_order, self.hopper_size)
