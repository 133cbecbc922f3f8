"""The audit trail of every write attempt, and the pending "apply anyway?" confirmations: one interface
(`AuditStore`), two stores: a SQLite file (`AuditLog`, the embedded default) and PostgreSQL (`PostgresAuditLog`
in bot.audit_postgres, for replicas on several machines). `open_store(LEADBOT_DB)` picks one.

Why it exists: a change to babelforce is recorded (PENDING) before it is made and finished (ok, denied, failed,
unknown) before success is reported, so every write has a who/when/what; if the record cannot be written the change
is not made. The same table deduplicates deliveries: an attempt reserves its request id (the Slack retry, the
double-submitted modal and the double-clicked button all carry the same one), so at most one change results.

The rules live once, here, in `AuditStore`: every operation is a few SQL statements written in the subset both
databases speak (`?` placeholders, INSERT ... ON CONFLICT, UPDATE ... RETURNING), run in one transaction by the store's
`_execute`. A store adds only how it connects, how it locks a lead across processes and what its timestamps are.

SQLite: stdlib sqlite3 at LEADBOT_DB (default data/leadbot.db), WAL mode and a busy timeout so that several bot
processes may share the file. Timestamps are ISO-8601 UTC text of fixed width (so they also compare as text);
snapshots are JSON text. The schema comes from numbered SQL files (bot/migrations), recorded in schema_migrations.

Every storage failure surfaces as AuditError with one plain sentence; callers never see a driver's exceptions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

from . import migrations
from .tuning import WRITE_IN_FLIGHT_MAX_S

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = Path("data") / "leadbot.db"

#: A write never takes longer (bot.tuning): older pending attempts were interrupted.
INTERRUPTED_AFTER_S = WRITE_IN_FLIGHT_MAX_S
# How long a statement waits for another connection (or process) holding the write lock before it gives up with
# "database is locked". Writes here are single small rows, so a few seconds covers any honest contention.
BUSY_TIMEOUT_S = 5.0

# Expired confirmations are kept this long (for a late click to be told "expired" rather than "unknown"), then purged.
CONFIRMATION_RETENTION = timedelta(days=1)
#: The retention purge (`purge`) removes lead locks that expired this long ago: a lock lapses at its expiry anyway
#: (the next writer takes it over), so only rows left by a process that died remain; the margin covers clocks that
#: differ between machines (PostgreSQL judges a lock's expiry by the database's clock, the purge by this one's).
STALE_LOCK_AFTER = timedelta(hours=1)
#: The retention purge walks `changes` by id, this many records per transaction: a write waits at most one page.
PURGE_PAGE = 500

#: The SQLite schema version this leadbot brings a file to (the newest file in bot/migrations/sqlite). Files made
#: before the migrations table counted their version in PRAGMA user_version, which is still kept up to date.
SCHEMA_VERSION = migrations.latest("sqlite")

_HELD, _CLAIMED, _CANCELLED = "held", "claimed", "cancelled"
_ID_MAX = 2**63 - 1  # the largest id either database holds

#: LEADBOT_DB's URL forms; anything else with a scheme is refused rather than taken for a folder name.
POSTGRES_SCHEMES = ("postgresql", "postgres")
SQLITE_URL_PREFIX = "sqlite:///"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_INTERRUPTED = "interrupted: leadbot stopped before babelforce answered"
_BEGIN_COLUMNS = (
    "at, user_id, team_id, enterprise_id, channel_id, action, command, list_id, list_name, lead_id, lead_uid, "
    "before_json, before_uid, outcome, request_id, undo_of, reply_to, after_json, after_uid"
)
_BEGIN_NAMES = tuple(name.strip() for name in _BEGIN_COLUMNS.split(","))
#: Whether an attempt that did not fail holds the request id (parameter: the request id; NULL matches none).
_RESERVED = "EXISTS (SELECT 1 FROM changes WHERE request_id = ? AND outcome <> 'failed')"
#: Whether an attempt on the lead was recorded after the mark (parameters: list id, lead id, mark).
_WRITTEN_SINCE = "EXISTS (SELECT 1 FROM changes WHERE list_id = ? AND lead_id = ? AND id > ? AND outcome <> 'denied')"
_UNLOCK = "DELETE FROM lead_locks WHERE list_id = ? AND lead_id = ? AND holder = ?"

T = TypeVar("T")
StoreKind = Literal["sqlite", "postgresql"]
#: One SQL statement (`?` placeholders) and its parameters.
Statement = tuple[str, Sequence[Any]]


class AuditError(Exception):
    """The audit trail could not be read or written. `message` is one plain sentence, safe to show to a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Outcome(StrEnum):
    PENDING = "pending"
    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked, and where: the Slack ids of the record."""

    user_id: str
    team_id: str | None = None
    enterprise_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One recorded write attempt (or refusal), as stored."""

    id: int
    at: datetime
    finished_at: datetime | None
    actor: Actor
    action: str
    command: str
    list_id: str | None
    list_name: str | None
    lead_id: str | None
    lead_uid: str | None
    before: dict | None
    after: dict | None
    caveat: str | None
    outcome: Outcome
    detail: str | None
    request_id: str | None
    undo_of: int | None
    undone_by: int | None
    reply_to: dict | None = None  # where the user is told how an unconfirmed attempt ended (response_url, channel)


@dataclass(frozen=True, slots=True)
class Purged:
    """What one retention purge removed (`changes`: audit records), and how many older records it kept (unsettled,
    or undone by a record that is kept)."""

    changes: int
    kept: int
    confirmations: int
    lead_locks: int


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order. A naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _moment(value: str | datetime | None) -> datetime | None:
    """A stored moment: ISO text (SQLite) or a datetime (PostgreSQL), as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(value)


def _snapshot_uid(snapshot: dict | None) -> str | None:
    """The uid inside a lead snapshot, kept in its own column so that history finds a lead by its old and new uid."""
    if not isinstance(snapshot, dict) or snapshot.get("uid") is None:
        return None
    return str(snapshot["uid"])


def _sentence(exc: BaseException) -> str:
    """sqlite's own words ("database is locked", "database or disk is full") as the tail of a sentence."""
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text[:1].lower() + text[1:]


# ---------------------------------------------------------------------- LEADBOT_DB: which store


def store_kind(target: str | os.PathLike[str] | None) -> StoreKind:
    """Which store LEADBOT_DB names: a PostgreSQL URL, else SQLite (a path or sqlite:///path). ValueError, in one
    sentence naming only the scheme (a URL may carry a password), for any other URL."""
    if target is None or not isinstance(target, str):
        return "sqlite"
    scheme = _SCHEME.match(target)
    if scheme is None:
        return "sqlite"
    name = scheme.group(1).lower()
    if name in POSTGRES_SCHEMES:
        return "postgresql"
    if name == "sqlite" and target.startswith(SQLITE_URL_PREFIX) and len(target) > len(SQLITE_URL_PREFIX):
        return "sqlite"
    if name == "sqlite":
        raise ValueError("a SQLite URL is sqlite:///path/to/file.db (three slashes, then the file's path)")
    raise ValueError(
        f"must be a file path (SQLite) or a postgresql:// URL; {name}:// is not a database leadbot can use"
    )


def sqlite_path(target: str | os.PathLike[str] | None) -> str | os.PathLike[str]:
    """The file a SQLite LEADBOT_DB names (sqlite:///data/x.db is the relative data/x.db, sqlite:////srv/x.db the
    absolute /srv/x.db, as in SQLAlchemy)."""
    if target is None:
        return DEFAULT_DB_PATH
    if isinstance(target, str) and target.startswith(SQLITE_URL_PREFIX):
        return target[len(SQLITE_URL_PREFIX) :]
    return target


def open_store(
    target: str | os.PathLike[str] | None = None, *, clock: Callable[[], datetime] | None = None
) -> AuditStore:
    """The audit store LEADBOT_DB names (None: data/leadbot.db), created or migrated and ready; AuditError when it
    cannot be opened or the value is no store leadbot knows."""
    try:
        kind = store_kind(target)
    except ValueError as refused:
        raise AuditError(f"LEADBOT_DB {refused}.") from None
    clock = clock or _utc_now
    if kind == "postgresql":
        from .audit_postgres import PostgresAuditLog  # psycopg is imported only by those who use it

        assert isinstance(target, str)
        return PostgresAuditLog(target, clock=clock)
    return AuditLog(sqlite_path(target), clock=clock)


# ---------------------------------------------------------------------- the interface, and the rules of both stores


@dataclass(frozen=True, slots=True)
class Result:
    """What the last statement of a transaction left: its rows (RETURNING or SELECT) and how many rows it touched;
    `earlier`: what each statement before it left, in order."""

    rows: list[Any]
    count: int
    earlier: tuple[Result, ...] = ()

    def first(self) -> Any:
        return self.rows[0] if self.rows else None


@dataclass(frozen=True, slots=True)
class PostedAlert:
    """The last alert line posted about a campaign to an alert channel (bot.alerts), as the store keeps it."""

    campaign_id: str
    state: str
    line: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    """A write attempt to record (begin's fields): built once from a plan, recorded by `begin`, or by `take_lead`
    together with the lead's lock. Stamped when it is recorded."""

    actor: Actor
    action: str
    command: str
    request_id: str | None
    list_id: str | None = None
    list_name: str | None = None
    lead_id: str | None = None
    lead_uid: str | None = None
    before: dict | None = None
    undo_of: int | None = None
    reply_to: dict | None = None
    intended: dict | None = None


class RequestCheck(NamedTuple):
    """`check_request`'s answer: whether the request id is taken, and the newest record's id (the mark)."""

    reserved: bool
    mark: int


class LeadHolder(NamedTuple):
    """Who holds a lead's cross-process write lock: what `unlock_lead`, or `finish(unlock=...)`, releases."""

    list_id: str
    lead_id: str
    holder: str


@dataclass(frozen=True, slots=True)
class LeadTaken:
    """`take_lead`'s answer, all read after the lock was tried, in its transaction.

    `locked`: the lock is ours. `reserved`: an attempt (not failed) holds the request id (a repeated delivery
    another process took). `written`: an attempt on the lead was recorded after the mark, or there was no mark (plan
    again). `change_id`: the attempt recorded with the lock (only when locked, not reserved and not written)."""

    locked: bool
    reserved: bool
    written: bool
    change_id: int | None = None


class AuditStore(ABC):
    """The audit trail's interface and its rules, once for every database.

    A store implements `_execute` (statements in one transaction, writes serialised as its database allows; the
    results of each), `_execute_now` (the same, blocking: start-up only), `lock_lead` and `_lock_statements`,
    `try_lease`, `close` and `_stamp` (how a moment is stored).
    Everything else (what is recorded, deduplication, history, undo claims, confirmations) is written here once, so
    that SQLite and PostgreSQL cannot drift apart.

    A write's hot path is three calls (bot.pipeline): `check_request` (is the request taken? the mark), then
    `take_lead` (the lead's lock, the checks against the mark, and the record, one commit), then `finish` with
    `unlock` (the outcome and the lock's release, one commit).
    """

    kind: StoreKind

    def __init__(self, *, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        #: Store calls made, by operation: one transaction each (a round trip to PostgreSQL, a hop to a worker thread
        #: for SQLite). Tests count them per write so that a saving cannot silently regress.
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    def _count(self, operation: str) -> None:
        with self._calls_lock:
            self.calls[operation] += 1

    # -- what a store provides --------------------------------------------------------------------------------------

    @abstractmethod
    async def _execute(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        """Run the statements in one transaction (`write`: a write transaction): the last one's Result, with what each
        earlier one left in `earlier`; errors become AuditError. Ids of `changes` must follow commit order
        (check_request's mark and take_lead's "written since" rely on it)."""

    @abstractmethod
    def _execute_now(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        """`_execute`, blocking the calling thread (start-up, before any event loop runs)."""

    @abstractmethod
    def _stamp(self, moment: datetime) -> Any:
        """A moment as this database stores it."""

    @abstractmethod
    async def lock_lead(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> bool:
        """Take the lead's cross-process write lock for `holder` (True), or find it held by another (False). A lock
        older than its `ttl` (a crashed process's) is taken over."""

    @abstractmethod
    def _lock_statements(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> list[Statement]:
        """The statements that take the lead's lock for `holder` when it is free, expired or already `holder`'s
        (`lock_lead`'s, for `take_lead` to run in its own transaction)."""

    @abstractmethod
    def close(self) -> None:
        """Close the store (idempotent); later calls raise AuditError."""

    # -- plumbing ---------------------------------------------------------------------------------------------------

    async def _insert_attempt(self, row: Sequence[Any]) -> int | None:
        """Insert a new attempt: its id, or None when an attempt that did not fail holds its request id already
        (the partial unique index changes_request_id)."""
        insert = f"""
            INSERT INTO changes ({_BEGIN_COLUMNS}) VALUES ({", ".join("?" * len(row))})
            ON CONFLICT (request_id) WHERE outcome <> 'failed' DO NOTHING
            RETURNING id
        """
        inserted = (await self._execute("begin", [(insert, row)], write=True)).first()
        return None if inserted is None else int(inserted["id"])

    @staticmethod
    def _json(operation: str, field: str, value: Any) -> str | None:
        """JSON text of a snapshot; a value that is not JSON-able is the caller's bug, but still no stack trace."""
        if value is None:
            return None
        try:
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            log.warning("audit trail: %s: %s is not JSON-able (%s)", operation, field, type(exc).__name__)
            raise AuditError(
                "leadbot's audit trail (LEADBOT_DB) could not be written: the lead's record is not plain data."
            ) from None

    async def _changes(self, operation: str, sql: str, params: Sequence[Any]) -> list[Change]:
        result = await self._execute(operation, [(sql, params)], write=False)
        return [_change(row) for row in result.rows]

    async def _one_change(self, operation: str, sql: str, params: Sequence[Any]) -> Change | None:
        row = (await self._execute(operation, [(sql, params)], write=False)).first()
        return None if row is None else _change(row)

    # -- changes ----------------------------------------------------------------------------------------------------

    async def begin(
        self,
        *,
        actor: Actor,
        action: str,
        command: str,
        request_id: str | None,
        list_id: str | None = None,
        list_name: str | None = None,
        lead_id: str | None = None,
        lead_uid: str | None = None,
        before: dict | None = None,
        undo_of: int | None = None,
        reply_to: dict | None = None,
        intended: dict | None = None,
    ) -> int | None:
        """Record an attempt as PENDING before babelforce is touched; its id, or None for a duplicate delivery.

        The partial unique index reserves `request_id` for every attempt that has not FAILED, so the Slack retry,
        the double submit and the double click find it taken and make no change. `intended`: the values the write
        will leave (its after-state, kept until `finish` records what babelforce answered), so an attempt whose
        answer never came can be settled by comparing the lead with it.
        """
        attempt = Attempt(
            actor=actor,
            action=action,
            command=command,
            request_id=request_id,
            list_id=list_id,
            list_name=list_name,
            lead_id=lead_id,
            lead_uid=lead_uid,
            before=before,
            undo_of=undo_of,
            reply_to=reply_to,
            intended=intended,
        )
        return await self.record(attempt)

    async def record(self, attempt: Attempt) -> int | None:
        """`begin`, for an attempt built beforehand (bot.pipeline builds one from its plan)."""
        change_id = await self._insert_attempt(self._attempt_row(attempt))
        if change_id is None:
            log.info("audit trail: duplicate delivery of a %s request, no change", attempt.action)
        return change_id

    def _attempt_row(self, attempt: Attempt) -> tuple[Any, ...]:
        """An attempt as the values of _BEGIN_COLUMNS, stamped now, PENDING."""
        return (
            self._stamp(self._clock()),
            attempt.actor.user_id,
            attempt.actor.team_id,
            attempt.actor.enterprise_id,
            attempt.actor.channel_id,
            attempt.action,
            attempt.command,
            attempt.list_id,
            attempt.list_name,
            attempt.lead_id,
            attempt.lead_uid,
            self._json("begin", "before", attempt.before),
            _snapshot_uid(attempt.before),
            Outcome.PENDING.value,
            attempt.request_id,
            attempt.undo_of,
            self._json("begin", "reply_to", attempt.reply_to),
            self._json("begin", "intended", attempt.intended),
            _snapshot_uid(attempt.intended),
        )

    async def finish(
        self,
        change_id: int,
        *,
        outcome: Outcome,
        after: dict | None = None,
        lead_id: str | None = None,
        lead_uid: str | None = None,
        caveat: str | None = None,
        detail: str | None = None,
        unlock: LeadHolder | None = None,
    ) -> None:
        """Close an attempt: outcome and finish time, plus whichever fields are given (None keeps the stored value).

        FAILED releases the request id (nothing changed, a retry may run); OK and UNKNOWN keep it. `unlock`: release
        that lead lock in the same transaction (the write is done; one commit instead of two).
        """
        written = await self._finish(
            "finish",
            change_id,
            outcome,
            as_read=None,
            after=after,
            lead_id=lead_id,
            lead_uid=lead_uid,
            caveat=caveat,
            detail=detail,
            unlock=unlock,
        )
        if written != 1:
            log.warning("audit trail: finish of change %s, which is not recorded", change_id)
            raise AuditError("leadbot's audit trail (LEADBOT_DB) could not be written: the attempt is not in it.")

    async def settle(self, change: Change, *, outcome: Outcome, **fields: Any) -> bool:
        """`finish`, only while the record is as `change` was read (same outcome, same finish time): when several
        processes settle one record at once (replicas starting together, each sweeping), one records the outcome
        (True) and the others learn that it was settled meanwhile (False), so its user is told once."""
        as_read = (change.outcome.value, self._stamp(change.finished_at or change.at))
        return await self._finish("settle", change.id, outcome, as_read=as_read, **fields) == 1

    async def _finish(
        self,
        operation: str,
        change_id: int,
        outcome: Outcome,
        *,
        as_read: tuple[str, Any] | None,
        after: dict | None = None,
        lead_id: str | None = None,
        lead_uid: str | None = None,
        caveat: str | None = None,
        detail: str | None = None,
        unlock: LeadHolder | None = None,
    ) -> int:
        outcome = Outcome(outcome)
        after_json = self._json("finish", "after", after)
        # A failed write changed nothing: the values it meant to leave (kept since `begin`) are not its after-state.
        clear_intended = outcome == Outcome.FAILED and after is None
        params: tuple[Any, ...] = (
            outcome.value,
            self._stamp(self._clock()),
            clear_intended,
            after_json,
            clear_intended,
            after_json is None,
            _snapshot_uid(after),
            lead_id,
            lead_uid,
            caveat,
            detail,
            change_id,
        )
        update = """
            UPDATE changes SET outcome = ?, finished_at = ?,
                after_json = CASE WHEN ? THEN NULL ELSE COALESCE(?, after_json) END,
                after_uid = CASE WHEN ? THEN NULL WHEN ? THEN after_uid ELSE ? END,
                lead_id = COALESCE(?, lead_id), lead_uid = COALESCE(?, lead_uid),
                caveat = COALESCE(?, caveat), detail = COALESCE(?, detail)
            WHERE id = ?
        """
        if as_read is not None:
            update += " AND outcome = ? AND COALESCE(finished_at, at) = ?"
            params += as_read
        statements: list[Statement] = [(update, params)]
        if unlock is not None:  # before the update: the update's count is the transaction's answer
            statements.insert(0, (_UNLOCK, tuple(unlock)))
        return (await self._execute(operation, statements, write=True)).count

    async def denied(self, *, actor: Actor, action: str, command: str, reason: str, list_ref: str | None = None) -> int:
        """Record a refused request (no permission) as DENIED, finished at once; `list_ref` is kept as list_name."""
        now = self._stamp(self._clock())
        row = (
            now,
            now,
            actor.user_id,
            actor.team_id,
            actor.enterprise_id,
            actor.channel_id,
            action,
            command,
            list_ref,
            Outcome.DENIED.value,
            reason,
        )
        insert = """
            INSERT INTO changes (at, finished_at, user_id, team_id, enterprise_id, channel_id, action, command,
                                 list_name, outcome, detail)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            RETURNING id
        """
        inserted = (await self._execute("denied", [(insert, row)], write=True)).first()
        return int(inserted["id"]) if inserted is not None else 0

    def settle_interrupted(self, *, older_than: float = INTERRUPTED_AFTER_S) -> int:
        """At start-up: attempts still PENDING after `older_than` seconds belong to a leadbot that stopped before
        babelforce answered; mark them UNKNOWN (so history says so). Younger ones may be another process's, live.

        One UPDATE ... WHERE outcome = 'pending': replicas starting at once each settle a disjoint set (a record
        another one settled first no longer matches), so every record is settled once."""
        now = self._clock()
        update = """
            UPDATE changes SET outcome = 'unknown', finished_at = ?, detail = COALESCE(detail, ?)
            WHERE outcome = 'pending' AND at < ?
            RETURNING id
        """
        params = (self._stamp(now), _INTERRUPTED, self._stamp(now - timedelta(seconds=older_than)))
        settled = len(self._execute_now("settle interrupted", [(update, params)], write=True).rows)
        if settled:
            log.warning("audit trail: %d change(s) interrupted by a stop marked unknown; check them", settled)
        return settled

    async def reserved(self, request_id: str) -> bool:
        """Whether an attempt (pending, ok or unknown) already holds this request id: a repeated delivery that
        must neither write again nor answer again."""
        query = f"SELECT {_RESERVED} AS reserved"
        return bool((await self._execute("reserved", [(query, (request_id,))], write=False)).first()["reserved"])

    async def check_request(self, request_id: str | None) -> RequestCheck:
        """`reserved` (False for no request id) and the newest record's id (0 when there is none), in one read: the
        mark to ask later, with `take_lead`, whether the lead was written since."""
        query = f"SELECT {_RESERVED} AS reserved, (SELECT COALESCE(MAX(id), 0) FROM changes) AS last"
        row = (await self._execute("check request", [(query, (request_id,))], write=False)).first()
        return RequestCheck(bool(row["reserved"]), int(row["last"]))

    async def get(self, change_id: int) -> Change | None:
        """One change by id, or None."""
        if not 0 < change_id <= _ID_MAX:  # a forged button value; neither database can even bind it
            return None
        return await self._one_change("get", "SELECT * FROM changes WHERE id = ?", (change_id,))

    async def history(
        self,
        list_id: str,
        *,
        lead_id: str | None = None,
        lead_uid: str | None = None,
        limit: int = 10,
        unfinished_add_uid: str | None = None,
    ) -> list[Change]:
        """A lead's recent changes in a list, newest first, every outcome included.

        A change matches on its lead id, or on its uid as recorded, before or after: a uid change shows under the
        old uid and the new one. `unfinished_add_uid`: also an add of that uid that never learnt its lead's id (its
        answer was lost, or a crash interrupted it).
        """
        if lead_id is None and lead_uid is None:
            raise ValueError("history() needs lead_id or lead_uid")
        query = """
            SELECT * FROM changes
            WHERE list_id = ? AND (lead_id = ? OR lead_uid = ? OR before_uid = ? OR after_uid = ?
                OR (lead_id IS NULL AND action = 'add' AND lead_uid = ?))
            ORDER BY id DESC LIMIT ?
        """
        params = (list_id, lead_id, lead_uid, lead_uid, lead_uid, unfinished_add_uid, max(0, limit))
        return await self._changes("history", query, params)

    async def unsettled(self, *, older_than: float, limit: int = 200) -> list[Change]:
        """Write attempts whose outcome babelforce never confirmed (unknown), or that a crash left pending, begun at
        least `older_than` seconds ago: what the settler reads babelforce for. Oldest first."""
        cutoff = self._stamp(self._clock() - timedelta(seconds=older_than))
        query = "SELECT * FROM changes WHERE outcome IN ('pending', 'unknown') AND at <= ? ORDER BY id LIMIT ?"
        return await self._changes("unsettled", query, (cutoff, max(0, limit)))

    async def by_request_id(self, request_id: str) -> Change | None:
        """The latest attempt recorded for a request id (a repeated delivery is answered with its outcome)."""
        query = "SELECT * FROM changes WHERE request_id = ? ORDER BY id DESC LIMIT 1"
        return await self._one_change("by request id", query, (request_id,))

    async def later_changes(self, change: Change) -> list[Change]:
        """Attempts on the same lead recorded after `change`, oldest first (a late write may have overtaken them);
        for an add that never learnt its lead's id, the later attempts to add the same uid."""
        if change.lead_id is None:
            query = "SELECT * FROM changes WHERE list_id = ? AND action = ? AND lead_uid = ? AND id > ? ORDER BY id"
            params: tuple[object, ...] = (change.list_id, change.action, change.lead_uid, change.id)
        else:
            query = "SELECT * FROM changes WHERE list_id = ? AND lead_id = ? AND id > ? ORDER BY id"
            params = (change.list_id, change.lead_id, change.id)
        return await self._changes("later changes", query, params)

    async def unlock_lead(self, list_id: str, lead_id: str, holder: str) -> None:
        await self._execute("unlock lead", [(_UNLOCK, (list_id, lead_id, holder))], write=True)

    async def take_lead(
        self,
        list_id: str,
        lead_id: str,
        holder: str,
        *,
        ttl: float,
        request_id: str | None = None,
        mark: int | None = None,
        attempt: Attempt | None = None,
    ) -> LeadTaken:
        """`lock_lead`, and in the same transaction, read after the lock was tried: whether the request id is taken
        (`reserved`), whether an attempt on the lead was recorded after `mark` (`written`; True without a mark), and,
        when the lock is ours and neither is so, `attempt` recorded (PENDING, as `begin`; its request id is
        `request_id`): a write's lock, checks and record in one commit instead of five calls.

        The checks are statements after the lock's, so they see every record committed before the lock was free
        (a lock is released only after its holder's record committed): a write never goes ahead on a plan made
        before another process's write of the lead, nor runs a request another process took meanwhile. The insert
        checks again, itself: on SQLite all of it runs under the file's write lock, so the unique index is never hit
        (no AUTOINCREMENT id used up); on PostgreSQL the id trigger skips a request id taken since."""
        key = (list_id, lead_id)
        since = -1 if mark is None else mark  # no mark: every record counts (written is True below)
        facts = f"""
            SELECT EXISTS (SELECT 1 FROM lead_locks WHERE list_id = ? AND lead_id = ? AND holder = ?) AS locked,
                {_RESERVED} AS reserved,
                {_WRITTEN_SINCE} AS written
        """
        statements = [
            *self._lock_statements(list_id, lead_id, holder, ttl=ttl),
            (facts, (*key, holder, request_id, *key, since)),
        ]
        recording = attempt is not None and mark is not None
        if recording:
            assert attempt is not None
            row = self._attempt_row(attempt)
            values = ", ".join("CAST(? AS BIGINT)" if column == "undo_of" else "?" for column in _BEGIN_NAMES)
            insert = f"""
                INSERT INTO changes ({_BEGIN_COLUMNS})
                SELECT {values}
                WHERE EXISTS (SELECT 1 FROM lead_locks WHERE list_id = ? AND lead_id = ? AND holder = ?)
                    AND NOT {_RESERVED} AND NOT {_WRITTEN_SINCE}
                ON CONFLICT (request_id) WHERE outcome <> 'failed' DO NOTHING
                RETURNING id
            """
            statements.append((insert, (*row, *key, holder, attempt.request_id, *key, since)))
        result = await self._execute("take lead", statements, write=True)
        found = result.earlier[-1].first() if recording else result.first()
        inserted = result.first() if recording else None
        return LeadTaken(
            locked=bool(found["locked"]),
            reserved=bool(found["reserved"]),
            written=mark is None or bool(found["written"]),
            change_id=None if inserted is None else int(inserted["id"]),
        )

    async def latest_change_of(self, user_id: str, *, undoable: bool = False) -> Change | None:
        """The user's latest change that was or may have been applied (ok, unknown or pending), undos left out:
        what `/lead undo` without a number means. Failed and denied attempts changed nothing and are passed over;
        an unknown or pending one is not, so an older change is never undone in its place. Whether it is undone
        already, or can be, is the caller's to judge.

        `undoable`: the latest that undo could take back, as far as the record tells (ok, not undone)."""
        wanted = "outcome = 'ok' AND undone_by IS NULL" if undoable else "outcome IN ('ok', 'unknown', 'pending')"
        query = f"SELECT * FROM changes WHERE user_id = ? AND undo_of IS NULL AND {wanted} ORDER BY id DESC LIMIT 1"
        return await self._one_change("latest change", query, (user_id,))

    async def changes_of(self, user_id: str, *, limit: int = 10) -> list[Change]:
        """The user's own latest changes, newest first, every outcome but refusals (a denied request changed
        nothing): the Home tab's list, through the user_id index."""
        query = "SELECT * FROM changes WHERE user_id = ? AND outcome <> 'denied' ORDER BY id DESC LIMIT ?"
        return await self._changes("changes of a user", query, (user_id, max(0, limit)))

    async def mark_undone(self, change_id: int, undo_id: int) -> bool:
        """Claim a change for undo: True only for the first caller, so a double click undoes once."""
        update = "UPDATE changes SET undone_by = ? WHERE id = ? AND undone_by IS NULL"
        return (await self._execute("mark_undone", [(update, (undo_id, change_id))], write=True)).count == 1

    async def undos_of(self, change_id: int) -> list[Change]:
        """Every attempt to undo a change, oldest first (to tell a stuck attempt from a finished one)."""
        return await self._changes("undos_of", "SELECT * FROM changes WHERE undo_of = ? ORDER BY id", (change_id,))

    # -- retention (LEADBOT_AUDIT_RETENTION_DAYS; bot.retention runs it daily) ------------------------------------

    async def purge(self, older_than: datetime | None, *, page: int = PURGE_PAGE) -> Purged:
        """Remove the audit records begun before `older_than` (None: keep every record), the confirmations that
        expired over a day ago and the lead locks that lapsed long ago.

        A record is kept, however old, while it is unsettled (`pending`, or `unknown`: the settler and the start-up
        sweep still look at it, and an auditor needs it most) and while the undo that undid it is kept (an undo is
        always newer than its change, so a change and its undo go together: "undone by #N" never points at nothing).

        Safe with any number of processes purging at once: every step is a DELETE of rows that match its conditions
        when it runs, so a second purge finds nothing left to do. It walks the table by id (the primary key, no scan),
        `page` records per short transaction, and stops at the first page that holds nothing older than the cutoff:
        ids follow commit order, so the rest are newer (one recorded out of clock order waits for the next purge)."""
        now = self._clock()
        removed = kept = 0
        if older_than is not None:
            if older_than.tzinfo is None:
                older_than = older_than.replace(tzinfo=UTC)
            cutoff = self._stamp(older_than)
            unsettled = "('pending', 'unknown')"
            window = """
                SELECT COUNT(*) AS seen, MAX(id) AS last, MIN(at) AS oldest
                FROM (SELECT id, at FROM changes WHERE id > ? ORDER BY id LIMIT ?) AS page
            """
            delete = f"""
                DELETE FROM changes
                WHERE id > ? AND id <= ? AND at < ? AND outcome NOT IN {unsettled}
                    AND NOT EXISTS (
                        SELECT 1 FROM changes AS undo
                        WHERE undo.id = changes.undone_by AND (undo.at >= ? OR undo.outcome IN {unsettled})
                    )
            """
            left = "SELECT COUNT(*) AS kept FROM changes WHERE id > ? AND id <= ? AND at < ?"
            after = 0
            while True:
                seen = (await self._execute("purge", [(window, (after, max(1, page)))], write=False)).first()
                if seen is None or not seen["seen"]:
                    break
                oldest, last = _moment(seen["oldest"]), int(seen["last"])
                if oldest is None or oldest >= older_than:  # this page and everything after it is young enough
                    break
                removed += (await self._execute("purge", [(delete, (after, last, cutoff, cutoff))], write=True)).count
                remaining = (await self._execute("purge", [(left, (after, last, cutoff))], write=False)).first()
                kept += int(remaining["kept"])
                after = last
        confirmations = (
            await self._execute(
                "purge",
                [("DELETE FROM confirmations WHERE expires_at < ?", (self._stamp(now - CONFIRMATION_RETENTION),))],
                write=True,
            )
        ).count
        locks = (
            await self._execute(
                "purge",
                [("DELETE FROM lead_locks WHERE expires_at < ?", (self._stamp(now - STALE_LOCK_AFTER),))],
                write=True,
            )
        ).count
        return Purged(changes=removed, kept=kept, confirmations=confirmations, lead_locks=locks)

    # -- "apply anyway?" confirmations ------------------------------------------------------------------------------

    async def hold(self, *, token: str, actor: Actor, command: dict, expires_in: float = 900.0) -> None:
        """Keep a command awaiting the user's "apply anyway?" until it is claimed, cancelled or expires.

        Stored here rather than in memory so that a restart, or another bot process answering the click, still
        finds it. Confirmations that expired over a day ago are purged on the way.
        """
        command_json = self._json("hold", "command", command)
        now = self._clock()
        row = (
            token,
            actor.user_id,
            actor.team_id,
            actor.enterprise_id,
            actor.channel_id,
            command_json,
            self._stamp(now),
            self._stamp(now + timedelta(seconds=expires_in)),
            _HELD,
        )
        insert = """
            INSERT INTO confirmations (token, user_id, team_id, enterprise_id, channel_id, command_json, created_at,
                                       expires_at, state)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
        purge = ("DELETE FROM confirmations WHERE expires_at < ?", (self._stamp(now - CONFIRMATION_RETENTION),))
        await self._execute("hold", [purge, (insert, row)], write=True)

    async def claim(self, token: str, *, user_id: str) -> dict | None:
        """The held command, once, to the user who was asked, before expiry; otherwise None."""
        now = self._stamp(self._clock())
        update = """
            UPDATE confirmations SET state = ?, settled_at = ?
            WHERE token = ? AND user_id = ? AND state = ? AND expires_at > ?
            RETURNING command_json
        """
        row = (
            await self._execute("claim", [(update, (_CLAIMED, now, token, user_id, _HELD, now))], write=True)
        ).first()
        return None if row is None else json.loads(row["command_json"])

    async def cancel(self, token: str, *, user_id: str) -> bool:
        """Drop a held command: True when that user's confirmation was still held and unexpired."""
        now = self._stamp(self._clock())
        update = """
            UPDATE confirmations SET state = ?, settled_at = ?
            WHERE token = ? AND user_id = ? AND state = ? AND expires_at > ?
        """
        params = (_CANCELLED, now, token, user_id, _HELD, now)
        return (await self._execute("cancel", [(update, params)], write=True)).count == 1

    # -- once for every process: leases, and the campaign alerts' last posts (bot.alerts) ---------------------------

    @abstractmethod
    async def try_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        """Take the lease `name` for `holder` for `ttl` seconds, or renew it when `holder` holds it already: True
        while `holder` holds it, False while another holder's has not expired. Work that must be done once for every
        process sharing the store (on one machine or several) is done by the holder; a holder that dies without
        releasing its lease loses it at its expiry, and the next caller takes it over."""

    @abstractmethod
    async def renew_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        """Extend `holder`'s lease by `ttl` seconds from now, only while it has not expired: True when it was still
        held (so nobody else can have taken it meanwhile), False otherwise (take it again with try_lease)."""

    async def release_lease(self, name: str, holder: str) -> None:
        """Give the lease up (only `holder`'s): another process may take it at its next try."""
        delete = "DELETE FROM leases WHERE name = ? AND holder = ?"
        await self._execute("release lease", [(delete, (name, holder))], write=True)

    async def record_alert(self, channel_id: str, campaign_id: str, *, state: str, line: str, at: datetime) -> None:
        """Keep the alert line just posted about a campaign to a channel (the latest replaces the one before), so
        every process shows it and a watcher that takes over knows what the channel was told."""
        upsert = """
            INSERT INTO campaign_alerts (channel_id, campaign_id, state, line, posted_at) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (channel_id, campaign_id) DO UPDATE
            SET state = excluded.state, line = excluded.line, posted_at = excluded.posted_at
        """
        params = (channel_id, campaign_id, state, line, self._stamp(at))
        await self._execute("record alert", [(upsert, params)], write=True)

    async def last_alerts(self, channel_id: str) -> dict[str, PostedAlert]:
        """The last alert posted to a channel about each campaign, by campaign id."""
        query = "SELECT campaign_id, state, line, posted_at FROM campaign_alerts WHERE channel_id = ?"
        rows = (await self._execute("last alerts", [(query, (channel_id,))], write=False)).rows
        found = {}
        for row in rows:
            at = _moment(row["posted_at"])
            assert at is not None
            found[row["campaign_id"]] = PostedAlert(row["campaign_id"], row["state"], row["line"], at)
        return found


# ---------------------------------------------------------------------- SQLite


class AuditLog(AuditStore):
    """The SQLite store. One sqlite3 connection per AuditLog, used from worker threads under a lock.

    Why one shared connection rather than one per thread: ":memory:" (tests, console) is private to a connection,
    so per-thread connections would each see an empty store; SQLite admits one writer at a time anyway, so a lock
    costs nothing in throughput; and it keeps compare-and-set simple. Each call runs in `asyncio.to_thread`, so the
    event loop never waits on the disk or on another process's lock. Across processes, WAL mode, BEGIN IMMEDIATE for
    every write and the busy timeout make concurrent commands queue instead of failing.
    """

    kind: StoreKind = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_DB_PATH,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        super().__init__(clock=clock)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        memory = os.fspath(path) == ":memory:"
        try:
            if not memory:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                os.fspath(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except OSError as exc:  # the data folder cannot be created (a file in the way, no permission)
            log.warning("audit trail: cannot create the folder of LEADBOT_DB %s: %s", path, type(exc).__name__)
            raise AuditError(
                "leadbot's audit trail (LEADBOT_DB) could not be opened: its folder cannot be created."
            ) from None
        except sqlite3.Error as exc:
            log.warning("audit trail: cannot open LEADBOT_DB %s: %s", path, _sentence(exc))
            raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be opened: {_sentence(exc)}.") from None
        try:
            self._prepare(conn, memory=memory, now=_iso(clock()))
        except sqlite3.Error as exc:
            conn.close()
            log.warning("audit trail: cannot prepare LEADBOT_DB %s: %s", path, _sentence(exc))
            raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be opened: {_sentence(exc)}.") from None
        except AuditError:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        self._conn = conn
        # The file as opened: a write checks it is still that file (deleted or replaced -> refused, fail closed).
        self._path = None if memory else Path(path)
        self._identity = None if memory else _identity(Path(path))
        self._lost_reported = False

    @staticmethod
    def _prepare(conn: sqlite3.Connection, *, memory: bool, now: str) -> None:
        """WAL, then create or migrate the schema in one write transaction, which also proves the file is writable.

        BEGIN IMMEDIATE takes the file's write lock before the versions are read, so processes starting at once
        apply each migration once: the second waits, then finds them recorded."""
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if not memory:
            _use_wal(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            steps = migrations.migrations("sqlite")
            # PRAGMA user_version: the version of a file made before the migrations table, and kept up to date since
            # (so that a newer file is recognised by any leadbot, old or new).
            counted = conn.execute("PRAGMA user_version").fetchone()[0]
            if max(applied | {counted}) > SCHEMA_VERSION:
                raise AuditError(
                    "leadbot's audit trail (LEADBOT_DB) was written by a newer leadbot; "
                    "upgrade leadbot or point LEADBOT_DB at another file."
                )
            if not applied:  # a file from before the migrations table: the files up to its version are in
                for step in steps[:counted]:
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (step.version, step.name, now),
                    )
                    applied.add(step.version)
            for step in steps:
                if step.version in applied:
                    continue
                for statement in step.statements():
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (step.version, step.name, now),
                )
                log.info("audit trail: schema migration %04d_%s applied", step.version, step.name)
            # Written even when unchanged: a read-only file fails here, at start-up, not at the first command; and a
            # leadbot from before the migrations table refuses a file newer than it knows.
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn, "start-up")
            raise

    def _stamp(self, moment: datetime) -> str:
        return _iso(moment)

    async def _insert_attempt(self, row: Sequence[Any]) -> int | None:
        """As the base's, but a plain INSERT whose unique-index refusal means "duplicate": ON CONFLICT DO NOTHING
        would use up an AUTOINCREMENT id each time (change numbers users see would skip one per duplicate
        delivery), and this is the cheapest insert SQLite has (the hot path of every write)."""
        insert = f"INSERT INTO changes ({_BEGIN_COLUMNS}) VALUES ({', '.join('?' * len(row))})"

        def work(conn: sqlite3.Connection) -> int | None:
            try:
                return conn.execute(insert, row).lastrowid
            except sqlite3.IntegrityError as exc:
                if "request_id" not in str(exc):
                    raise
                return None

        return await asyncio.to_thread(self._run, "begin", work, write=True)

    def _check_file(self, operation: str) -> None:
        """Refuse a write when LEADBOT_DB is no longer the file this process opened (deleted, or replaced by
        another): SQLite would go on writing to the unlinked inode, and every record would vanish at restart while
        other processes open a new, empty file. Tells the operator once, at ERROR, what to do."""
        if self._path is None:
            return
        try:
            now = _identity(self._path)
        except OSError:
            now = None
        if now == self._identity:
            return
        if not self._lost_reported:
            self._lost_reported = True
            log.error(
                "audit trail: LEADBOT_DB %s was %s while leadbot runs; every change is refused until leadbot is "
                "restarted (restore the file from a backup first if it was deleted by mistake)",
                self._path,
                "deleted" if now is None else "replaced by another file",
            )
        raise AuditError(
            f"leadbot's audit file (LEADBOT_DB) was {'deleted' if now is None else 'replaced'} while leadbot runs, "
            "so nothing can be recorded."
        )

    def _execute_now(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        return self._run(operation, lambda conn: _sqlite_results(conn, statements), write=write)

    def _run(self, operation: str, work: Callable[[sqlite3.Connection], T], *, write: bool) -> T:
        """Run `work` under the lock (in a BEGIN IMMEDIATE transaction when it writes); sqlite3 errors ->
        AuditError."""
        verb = "written" if write else "read"
        self._count(operation)
        with self._lock:
            conn = self._conn
            if conn is None:
                log.warning("audit trail: %s after close()", operation)
                raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be {verb}: it is closed.")
            try:
                if not write:
                    return work(conn)
                self._check_file(operation)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = work(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn, operation)
                    raise
                return result
            except sqlite3.Error as exc:
                log.warning("audit trail: %s failed (%s): %s", operation, type(exc).__name__, _sentence(exc))
                raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be {verb}: {_sentence(exc)}.") from None

    async def _execute(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        # SQLite admits one writer at a time: ids follow commit order without more ado.
        return await asyncio.to_thread(self._execute_now, operation, statements, write=write)

    def _lock_statements(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> list[Statement]:
        now = self._clock()
        key = (list_id, lead_id)
        return [
            ("DELETE FROM lead_locks WHERE list_id = ? AND lead_id = ? AND expires_at <= ?", (*key, _iso(now))),
            (
                "INSERT OR IGNORE INTO lead_locks (list_id, lead_id, holder, expires_at) VALUES (?, ?, ?, ?)",
                (*key, holder, _iso(now + timedelta(seconds=ttl))),
            ),
        ]

    async def lock_lead(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> bool:
        statements = [
            *self._lock_statements(list_id, lead_id, holder, ttl=ttl),
            ("SELECT holder FROM lead_locks WHERE list_id = ? AND lead_id = ?", (list_id, lead_id)),
        ]
        row = (await self._execute("lock lead", statements, write=True)).first()
        return row is not None and row["holder"] == holder

    async def try_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        # Expiry by this process's clock: every process sharing the file is on this machine, so on one clock.
        now = self._clock()
        upsert = """
            INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
            RETURNING holder
        """
        params = (name, holder, _iso(now + timedelta(seconds=ttl)), _iso(now))
        return bool((await self._execute("try lease", [(upsert, params)], write=True)).rows)

    async def renew_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        now = self._clock()
        update = "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at > ?"
        params = (_iso(now + timedelta(seconds=ttl)), name, holder, _iso(now))
        return (await self._execute("renew lease", [(update, params)], write=True)).count == 1

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                log.warning("audit trail: close failed (%s): %s", type(exc).__name__, _sentence(exc))


def _sqlite_results(conn: sqlite3.Connection, statements: Sequence[Statement]) -> Result:
    results = []
    for sql, params in statements:
        cursor = conn.execute(sql, params)
        if cursor.description is None:
            results.append(Result([], cursor.rowcount))
        else:
            rows = cursor.fetchall()
            results.append(Result(rows, len(rows)))
    *earlier, last = results
    return Result(last.rows, last.count, tuple(earlier))


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL. The switch needs the file to itself and SQLite does not wait for that (no busy
    handler), so processes opening a new file at once would get "database is locked": try again within the busy
    timeout. A file already in WAL mode answers at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as busy:
            if "locked" not in str(busy) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _identity(path: Path) -> tuple[int, int]:
    """Which file a path names now (device and inode)."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _rollback(conn: sqlite3.Connection, operation: str) -> None:
    """Undo an open transaction after a failure; a failing rollback is logged, the original failure still raised."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.warning("audit trail: rollback after %s failed (%s): %s", operation, type(exc).__name__, _sentence(exc))


def _change(row: Any) -> Change:
    """A stored row (sqlite3.Row or a dict) as a Change; timestamps are text in SQLite and datetimes in PostgreSQL."""
    at = _moment(row["at"])
    assert at is not None
    return Change(
        id=row["id"],
        at=at,
        finished_at=_moment(row["finished_at"]),
        actor=Actor(
            user_id=row["user_id"],
            team_id=row["team_id"],
            enterprise_id=row["enterprise_id"],
            channel_id=row["channel_id"],
        ),
        action=row["action"],
        command=row["command"],
        list_id=row["list_id"],
        list_name=row["list_name"],
        lead_id=row["lead_id"],
        lead_uid=row["lead_uid"],
        before=None if row["before_json"] is None else json.loads(row["before_json"]),
        after=None if row["after_json"] is None else json.loads(row["after_json"]),
        caveat=row["caveat"],
        outcome=Outcome(row["outcome"]),
        detail=row["detail"],
        request_id=row["request_id"],
        undo_of=row["undo_of"],
        undone_by=row["undone_by"],
        reply_to=None if row["reply_to"] is None else json.loads(row["reply_to"]),
    )
