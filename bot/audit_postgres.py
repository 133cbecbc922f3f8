"""The audit store on PostgreSQL (LEADBOT_DB=postgresql://…): the same records and rules as the SQLite file
(bot.audit.AuditStore holds them once), shared by leadbot processes on any number of machines.

Why a store of its own thread: psycopg's async pool belongs to the event loop that opened it, while leadbot's
callers live on several loops (uvicorn's, the console's, a test's `asyncio.run`). So the pool lives on one private
loop in a daemon thread, and every call is handed to it and awaited from the caller's loop, as the SQLite store hands
its calls to worker threads. The serving loop never waits on the network to the database.

What PostgreSQL adds to SQLite's rules, and why:
- ids follow commit order: the schema's trigger on `changes` takes a transaction-scoped advisory lock before it
  draws a row's id (SQLite admits one writer at a time anyway), so "what was recorded after id N" (last_id,
  written_since) never misses a record whose transaction committed late with a smaller id;
- a single statement runs as its own transaction (autocommit): one round trip per call, most calls;
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
import logging
import re
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
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
#: One operation's limit, end to end (a free connection, lock waits, the statements): a database that stops
#: answering fails the operation, and so refuses the change, instead of holding it up for ever.
OPERATION_TIMEOUT_S = 15.0

SCHEMA_VERSION = migrations.latest("postgresql")

# The advisory lock (per database) that the migrations at start-up are applied under.
_MIGRATIONS_LOCK = "SELECT pg_advisory_xact_lock(hashtext('leadbot.audit.migrations'))"
_USER_PASSWORD = re.compile(r"(?<=://)[^/@:]*:([^/]*)@")


class PostgresAuditLog(AuditStore):
    """The PostgreSQL store: an async connection pool on the store's own event loop thread."""

    kind: StoreKind = "postgresql"

    def __init__(self, url: str, *, clock: Callable[[], datetime] = _utc_now, pool_size: int = POOL_MAX_SIZE) -> None:
        super().__init__(clock=clock)
        self._url = url
        self._shown = mask_url(url)
        password = _USER_PASSWORD.search(url)
        self._secret = password.group(1) if password and password.group(1) else None
        self._pool: AsyncConnectionPool | None = None
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
            log.warning("audit trail: cannot connect to LEADBOT_DB %s: %s", self._shown, self._sentence(exc))
            raise AuditError(
                f"leadbot's audit trail (LEADBOT_DB) could not be opened: {self._sentence(exc)}."
            ) from None
        try:
            await self._migrate(conn)
        except psycopg.Error as exc:
            log.warning("audit trail: cannot prepare LEADBOT_DB %s: %s", self._shown, self._sentence(exc))
            raise AuditError(
                f"leadbot's audit trail (LEADBOT_DB) could not be opened: {self._sentence(exc)}."
            ) from None
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
        future = self._submit(self._transaction(operation, statements, write=write))
        # Shielded: a caller that stops waiting (a time budget) does not roll back a record on its way, as with SQLite.
        return await asyncio.shield(asyncio.wrap_future(future))

    def _execute_now(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        if self._closed:
            raise self._refuse_closed(operation, write=write)
        return self._submit(self._transaction(operation, statements, write=write)).result()

    async def _transaction(self, operation: str, statements: Sequence[Statement], *, write: bool) -> Result:
        """On the store loop: the statements on one pooled connection, in one transaction."""
        verb = "written" if write else "read"
        pool = self._pool
        if pool is None or self._closed:
            raise self._refuse_closed(operation, write=write)
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT_S), pool.connection() as conn:
                if len(statements) == 1:  # one statement is a transaction of its own (autocommit): one round trip
                    sql, params = statements[0]
                    return await _result(await conn.execute(_placeholders(sql), params))
                async with conn.transaction():
                    *before, (sql, params) = statements
                    for earlier, earlier_params in before:
                        await conn.execute(_placeholders(earlier), earlier_params)
                    return await _result(await conn.execute(_placeholders(sql), params))
        except (psycopg.Error, TimeoutError) as exc:
            sentence = "the database did not answer in time" if isinstance(exc, TimeoutError) else self._sentence(exc)
            log.warning("audit trail: %s failed (%s): %s", operation, type(exc).__name__, sentence)
            raise AuditError(f"leadbot's audit trail (LEADBOT_DB) could not be {verb}: {sentence}.") from None

    def _sentence(self, exc: BaseException) -> str:
        """The database's own words as the tail of a sentence, with nothing of the URL's password; a lock wait given
        up on reads "database is locked", as with SQLite."""
        if isinstance(exc, PoolTimeout):
            return "no connection to the database was available in time (it is down, unreachable or busy)"
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return "database is locked"
        lines = str(exc).strip().splitlines()
        primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
        text = primary or (lines[0] if lines else "") or type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        text = mask_url(text).strip().rstrip(".")
        return text[:1].lower() + text[1:]

    # -- what differs from SQLite -----------------------------------------------------------------------------------

    def _stamp(self, moment: datetime) -> datetime:
        return moment

    async def lock_lead(self, list_id: str, lead_id: str, holder: str, *, ttl: float) -> bool:
        upsert = """
            INSERT INTO lead_locks (list_id, lead_id, holder, expires_at)
            VALUES (?, ?, ?, clock_timestamp() + make_interval(secs => ?))
            ON CONFLICT (list_id, lead_id) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE lead_locks.expires_at <= clock_timestamp() OR lead_locks.holder = EXCLUDED.holder
            RETURNING holder
        """
        result = await self._execute("lock lead", [(upsert, (list_id, lead_id, holder, float(ttl)))], write=True)
        return bool(result.rows)

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
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                self._submit(pool.close(timeout=2)).result(timeout=5)
            except Exception as exc:  # noqa: BLE001 - closing is best effort; the database drops the connections
                log.warning("audit trail: close failed (%s)", type(exc).__name__)
        self._stop_loop()


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
