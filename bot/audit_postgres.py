"""The audit store on PostgreSQL (LEADBOT_DB=postgresql://…): the same records and rules as the SQLite file
(bot.audit.AuditStore holds them once), shared by leadbot processes on any number of machines.

Where a call runs: on the caller's own event loop, on connections kept for that loop (`LoopConnections`): an async
connection belongs to the loop that made it, and leadbot's callers live on several (uvicorn's, the console's, a
test's `asyncio.run`), so each loop gets its own, made on its first call and closed at close() (or when the next
loop starts after it ended). The serving loop awaits the network, never blocks on it. A thread with a loop of its
own remains for what is not called from a loop: opening (the migrations) and the start-up sweep (`_execute_now`),
on a psycopg pool. Calls used to be handed to that thread and back; two thread wake-ups per call cost about a third
of a millisecond, a write's worth of them over a millisecond (docs/performance.md).

What PostgreSQL adds to SQLite's rules, and why:
- ids follow commit order: the schema's trigger on `changes` takes a transaction-scoped advisory lock before it
  draws a row's id (SQLite admits one writer at a time anyway), so "what was recorded after id N" (check_request's
  mark, take_lead's "written since") never misses a record whose transaction committed late with a smaller id;
- one round trip per call: a single statement runs as its own transaction (autocommit, most calls); several
  (take_lead, finish with unlock) are sent at once in pipeline mode, BEGIN to COMMIT, each prepared once per
  connection and seeing what was committed before it began (READ COMMITTED), which take_lead's checks rely on;
- the per-lead write lock is the `lead_locks` row of SQLite, taken by one INSERT ... ON CONFLICT DO UPDATE that
  succeeds only when the row is free, expired or already ours; expiry is judged by the database's clock, so
  machines whose clocks differ still agree. A row rather than an advisory lock because the lock is held across a
  babelforce call (up to a minute): an advisory lock would pin one pooled connection per write in flight (a burst
  would exhaust the pool) or keep a transaction open across the call; the row names its holder and lapses at its
  expiry when a process dies, as before;
- a lease (try_lease: work done once for all replicas, such as watching the campaign alerts) is such a row too,
  judged by the database's clock;
- migrations run under an advisory lock, so replicas starting at once apply each file once;
- lock waits give up after BUSY_TIMEOUT_S ("database is locked", as SQLite says), and a database that stops
  answering fails an operation after OPERATION_TIMEOUT_S: the change is refused, never made unrecorded.

The URL's password never reaches a log line or a message (bot.masking.mask_url).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import audit, migrations
from .audit import AuditError, AuditStore, Result, Statement, StoreKind, _utc_now
from .masking import mask_url

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Connections kept open (at least, at most): a burst of writes queues for a free one for up to BUSY_TIMEOUT_S.
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
#: How long connecting may take, at start-up and for each new pooled connection.
CONNECT_TIMEOUT_S = 5
#: A loop's idle connection is not reused after this long unused: less than the idle timeouts of common NATs and load
#: balancers (4 minutes and up), which forget a connection without telling either end. Nor any connection after
#: LIFETIME_MAX_S in all (psycopg_pool's max_lifetime): new connections follow a failover.
IDLE_MAX_S = 180.0
LIFETIME_MAX_S = 3600.0
#: One operation's limit, end to end (a free connection, lock waits, the statements): a database that stops
#: answering fails the operation, and so refuses the change, instead of holding it up for ever.
OPERATION_TIMEOUT_S = 15.0

SCHEMA_VERSION = migrations.latest("postgresql")

# The advisory lock (per database) that the migrations at start-up are applied under.
_MIGRATIONS_LOCK = "SELECT pg_advisory_xact_lock(hashtext('leadbot.audit.migrations'))"
_USER_PASSWORD = re.compile(r"(?<=://)[^/@:]*:([^/]*)@")


def database_sentence(exc: BaseException, secret: str | None) -> str:
    """The database's own words as the tail of a sentence, with nothing of the URL's password (`secret`); a lock
    wait given up on reads "database is locked", as with SQLite."""
    if isinstance(exc, PoolTimeout):
        return "no connection to the database was available in time (it is down, unreachable or busy)"
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return "database is locked"
    lines = str(exc).strip().splitlines()
    primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
    text = primary or (lines[0] if lines else "") or type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    text = mask_url(text).strip().rstrip(".")
    return text[:1].lower() + text[1:]


class PostgresAuditLog(AuditStore):
    """The PostgreSQL store: an async connection pool on the store's own event loop thread."""

    kind: StoreKind = "postgresql"

    def __init__(self, url: str, *, clock: Callable[[], datetime] = _utc_now, pool_size: int = POOL_MAX_SIZE) -> None:
        super().__init__(clock=clock)
        self._url = url
        self._shown = mask_url(url)
        password = _USER_PASSWORD.search(url)
        self._secret = password.group(1) if password and password.group(1) else None
        self._pool: AsyncConnectionPool | None = None  # the store loop's: opening, and blocking calls
        self._pool_size = pool_size
        # each event loop's own connections (uvicorn's, a test's asyncio.run): its calls need no thread hop
        self._by_loop: dict[asyncio.AbstractEventLoop, LoopConnections] = {}
        self._by_loop_lock = threading.Lock()
        self._closed = False
        self._close_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="leadbot-audit-postgres", daemon=True)
        self._thread.start()
        try:
            self._submit(self._open(pool_size)).result()
        except BaseException:
            self._closed = True
            self._stop_loop()
            raise
        atexit.register(self.close)  # a store left open at exit still says goodbye to its server

    # -- opening: connect, migrate, pool ----------------------------------------------------------------------------

    async def _open(self, pool_size: int) -> None:
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            raise self._unopened("connect to", exc) from None
        try:
            await self._migrate(conn)
        except psycopg.Error as exc:
            raise self._unopened("prepare", exc) from None
        finally:
            await conn.close()
        pool = AsyncConnectionPool(
            self._url,
            min_size=min(POOL_MIN_SIZE, pool_size),
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure,
            timeout=audit.BUSY_TIMEOUT_S,
            name="leadbot-audit",
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except PoolTimeout:
            await pool.close()
            log.warning("audit trail: LEADBOT_DB %s: the connection pool could not be filled", self._shown)
            raise AuditError(
                "leadbot's audit trail (LEADBOT_DB) could not be opened: no connection could be made in time."
            ) from None
        self._pool = pool
        log.info("audit trail: PostgreSQL at %s, schema version %d", self._shown, SCHEMA_VERSION)

    @staticmethod
    async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
        """Apply the migrations not yet recorded, in one transaction under an advisory lock (replicas starting at
        once wait for each other, then find them recorded), and prove the store writable."""
        async with conn.transaction():
            await conn.execute(_MIGRATIONS_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            cursor = await conn.execute("SELECT version FROM schema_migrations")
            applied = {row[0] for row in await cursor.fetchall()}
            if applied and max(applied) > SCHEMA_VERSION:
                raise AuditError(
                    "leadbot's audit trail (LEADBOT_DB) was written by a newer leadbot; "
                    "upgrade leadbot or point LEADBOT_DB at another database."
                )
            for step in migrations.migrations("postgresql"):
                if step.version in applied:
                    continue
                await conn.execute(step.sql.encode())  # the whole file at once (bytes: no placeholders to parse)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (step.version, step.name)
                )
                log.info("audit trail: schema migration %04d_%s applied", step.version, step.name)
            # Writable, by this user, and not a read-only standby: fails here, at start-up, not at the first command.
            await conn.execute("LOCK TABLE changes, confirmations, lead_locks IN ROW EXCLUSIVE MODE")
            cursor = await conn.execute("SHOW transaction_read_only")
            row = await cursor.fetchone()
            if row is not None and row[0] == "on":
                raise AuditError("leadbot's audit trail (LEADBOT_DB) could not be opened: the database is read-only.")

    # -- the store loop ---------------------------------------------------------------------------------------------

    def _submit(self, work: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()

    def _refuse_closed(self, operation: str, *, write: bool) -> AuditError:
        log.warning("audit trail: %s after close()", operation)
        return AuditError(
            f"leadbot's audit trail (LEADBOT_DB) could not be {'written' if write else 'read'}: it is closed."
        )

    async def _execute(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        if self._closed:
            raise self._refuse_closed(operation, write=write)
        loop = asyncio.get_running_loop()
        connections = self._by_loop.get(loop) or self._connections_of(loop)
        work = loop.create_task(self._transaction(connections.connection, operation, statements, write=write))
        connections.running.add(work)  # kept until done: a shielded task nobody awaits must not be collected
        work.add_done_callback(connections.running.discard)
        # Shielded: a caller that stops waiting (a time budget) does not roll back a record on its way, as with SQLite.
        return await asyncio.shield(work)

    def _execute_now(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        if self._closed:
            raise self._refuse_closed(operation, write=write)
        pool = self._pool
        if pool is None:
            raise self._refuse_closed(operation, write=write)
        return self._submit(self._transaction(pool.connection, operation, statements, write=write)).result()

    def _connections_of(self, loop: asyncio.AbstractEventLoop) -> LoopConnections:
        """The connections of the caller's event loop, made on its first call; those of loops closed since (a
        finished `asyncio.run`) are closed on the way."""
        with self._by_loop_lock:
            if self._closed:  # close() has taken the loops' connections already: none are made after it
                raise self._refuse_closed("a call", write=False)
            connections = self._by_loop.get(loop)
            if connections is None:
                for ended in [other for other in self._by_loop if other.is_closed()]:
                    self._by_loop.pop(ended).close()
                connections = self._by_loop[loop] = LoopConnections(self._connect, self._pool_size)
            return connections

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        """A new connection for a loop's own use, set up as the pool's are."""
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S
        )
        try:
            await _configure(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _transaction(
        self,
        connection: Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]],
        operation: str,
        statements: Sequence[Statement],
        *,
        write: bool,
    ) -> Result:
        """The statements on one connection (the caller loop's, or the store loop's pool), in one transaction."""
        verb = "written" if write else "read"
        if self._closed:
            raise self._refuse_closed(operation, write=write)
        self._count(operation)
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S), connection() as conn:
                if len(statements) == 1:  # one statement is a transaction of its own (autocommit): one round trip
                    sql, params = statements[0]
                    return await _result(await conn.execute(_placeholders(sql), params))
                # Several: BEGIN, the statements and COMMIT sent at once (pipeline mode, one round trip), each statement
                # prepared once per connection and seeing what was committed before it began (READ COMMITTED).
                try:
                    async with conn.pipeline():
                        await conn.execute(b"BEGIN")
                        cursors = [await conn.execute(_placeholders(sql), params) for sql, params in statements]
                        await conn.execute(b"COMMIT")
                except psycopg.Error:  # a statement failed: the rest, COMMIT included, did not run
                    await _roll_back(conn)
                    raise
                *earlier, last = [await _result(cursor) for cursor in cursors]
                return Result(last.rows, last.count, tuple(earlier))
        except (psycopg.Error, TimeoutError) as exc:
            sentence = "the database did not answer in time" if isinstance(exc, TimeoutError) else self._sentence(exc)
            log.warning("audit trail: %s failed (%s): %s", operation, type(exc).__name__, sentence)
            raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be {verb}: {sentence}.") from None

    def _sentence(self, exc: BaseException) -> str:
        return database_sentence(exc, self._secret)

    def _unopened(self, doing: str, exc: BaseException) -> AuditError:
        """The start-up error for a database leadbot could not `doing` (connect to, prepare), logged once."""
        log.warning("audit trail: cannot %s LEADBOT_DB %s: %s", doing, self._shown, self._sentence(exc))
        return AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be opened: {self._sentence(exc)}.")

    # -- what differs from SQLite -----------------------------------------------------------------------------------

    def _stamp(self, moment: datetime) -> datetime:
        return moment

    def _lock_statements(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> list[Statement]:
        upsert = """
            INSERT INTO lead_locks (list_id, lead_id, holder, expires_at)
            VALUES (?, ?, ?, clock_timestamp() + make_interval(secs => ?))
            ON CONFLICT (list_id, lead_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE lead_locks.expires_at <= clock_timestamp() OR lead_locks.holder = EXCLUDED.holder
            RETURNING holder
        """
        return [(upsert, (list_id, lead_id, holder, float(ttl)))]

    async def lock_lead(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> bool:
        statements = self._lock_statements(list_id, lead_id, holder, ttl=ttl)
        return bool((await self._execute("lock lead", statements, write=True)).rows)

    async def try_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        # Expiry by the database's clock, as lead_locks: replicas on machines whose clocks differ still agree.
        upsert = """
            INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, clock_timestamp() + make_interval(secs => ?))
            ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE leases.expires_at <= clock_timestamp() OR leases.holder = EXCLUDED.holder
            RETURNING holder
        """
        result = await self._execute("try lease", [(upsert, (name, holder, float(ttl)))], write=True)
        return bool(result.rows)

    async def renew_lease(self, name: str, holder: str, *, ttl: float) -> bool:
        update = """
            UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => ?)
            WHERE name = ? AND holder = ? AND expires_at > clock_timestamp()
        """
        result = await self._execute("renew lease", [(update, (float(ttl), name, holder))], write=True)
        return result.count == 1

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        with self._by_loop_lock:
            by_loop, self._by_loop = self._by_loop, {}
        for connections in by_loop.values():
            connections.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                self._submit(pool.close(timeout=2)).result(timeout=5)
            except Exception as exc:  # noqa: BLE001 - closing is best effort; the database drops the connections
                log.warning("audit trail: close failed (%s)", type(exc).__name__)
        self._stop_loop()


class LoopConnections:
    """The connections of one event loop, reused by its calls: a call runs on the caller's loop, with no hop to the
    store's thread and back (two thread wake-ups, about a third of a millisecond per call).

    Why not a psycopg_pool pool per loop: such a pool keeps tasks of its own on the loop, which die with a loop
    that ends (a test's `asyncio.run`) and cannot be closed from another one. These are plain connections: made on
    demand (at most `size` at once; a call waits BUSY_TIMEOUT_S for one, as for the pool), kept while idle, dropped
    when they come back broken or mid-transaction (a cancelled call), and not reused after IDLE_MAX_S unused or
    LIFETIME_MAX_S in all. `close` closes the idle ones at once, from any thread; one in use is closed by its user
    when it comes back. Its loop's thread alone takes and returns connections; the lock guards the idle list against
    `close`."""

    def __init__(self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]], size: int) -> None:
        self._connect = connect
        self._free = asyncio.Semaphore(size)
        self._idle: list[_Kept] = []  # the most recently used last
        self._lock = threading.Lock()
        self._closed = False
        self.running: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._free.locked():  # all in use: wait for one as long as for a lock
            try:
                async with asyncio.timeout(audit.BUSY_TIMEOUT_S):
                    await self._free.acquire()
            except TimeoutError:
                raise PoolTimeout("no connection free in time") from None
        else:
            await self._free.acquire()
        kept = None
        try:
            kept = self._take()
            if kept is None:
                made = time.monotonic()
                kept = _Kept(await self._connect(), born=made, used=made)
            yield kept.conn
        finally:
            if kept is not None:
                self._give_back(kept)
            self._free.release()

    def _take(self) -> _Kept | None:
        """The most recently used idle connection that is still fresh; stale ones are closed on the way."""
        now = time.monotonic()
        stale = []
        try:
            with self._lock:
                if self._closed:
                    raise psycopg.OperationalError("the store is closed")
                while self._idle:
                    kept = self._idle.pop()
                    if now - kept.used < IDLE_MAX_S and now - kept.born < LIFETIME_MAX_S:
                        return kept
                    stale.append(kept)
                return None
        finally:
            for old in stale:
                _close_now(old.conn)

    def _give_back(self, kept: _Kept) -> None:
        conn = kept.conn
        reusable = not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
        with self._lock:
            if reusable and not self._closed:
                kept.used = time.monotonic()
                self._idle.append(kept)
                return
        _close_now(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for kept in idle:
            _close_now(kept.conn)


@dataclass(slots=True)
class _Kept:
    """A loop's connection, with when it was made and last given back (time.monotonic)."""

    conn: psycopg.AsyncConnection[Any]
    born: float
    used: float


def _close_now(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close a connection nobody is using, from any thread and with no event loop (what AsyncConnection.close does:
    the libpq connection says goodbye and its socket closes)."""
    if not conn.closed:
        conn.pgconn.finish()


async def _roll_back(conn: psycopg.AsyncConnection[Any]) -> None:
    """End the transaction a failed statement left open, so that its connection can be used again; one that cannot
    (or that a timeout or cancellation left mid-way: no ROLLBACK is awaited from a database that stopped answering)
    is dropped when it is given back, as it is not idle."""
    if conn.closed or conn.info.transaction_status not in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        return
    with contextlib.suppress(psycopg.Error):
        await conn.execute(b"ROLLBACK")


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Each pooled connection gives up a lock wait as SQLite's busy timeout does."""
    await conn.execute(f"SET lock_timeout = {int(audit.BUSY_TIMEOUT_S * 1000)}".encode())


async def _result(cursor: psycopg.AsyncCursor[Any]) -> Result:
    """What the last statement left (rows it returned, rows it touched)."""
    if cursor.description is None:
        return Result([], cursor.rowcount)
    rows = await cursor.fetchall()
    return Result(rows, len(rows))


@lru_cache(maxsize=128)
def _placeholders(sql: str) -> str:
    """The stores' shared SQL (`?` placeholders) in psycopg's style (%s, and a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")
