"""LEADBOT_AUDIT_RETENTION_DAYS: the audit trail keeps a record that many days (default 365, babelforce's own default
for its data), then `leadbot run` purges it: once shortly after start, then once a day.

Why here and not in the store: the store knows which records may go (`AuditStore.purge`: never an unsettled one,
never a change whose undo is kept); this says when, and tells the operator (one log line, no personal data) and the
metrics (`leadbot_audit_purged_total`). 0 keeps every record; expired "apply anyway?" questions and lead locks left
by a dead process are still cleared, as they are not the trail.

Several processes or replicas may each run it: the purge is a few DELETE ... WHERE statements, so whichever runs
first removes the rows and the others find nothing left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from . import metrics
from .audit import AuditError, AuditStore, Purged

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 365
#: "Shortly after start": after the start-up sweep of unconfirmed writes, out of the way of the first commands.
FIRST_PURGE_AFTER_S = 60.0
PURGE_EVERY_S = 24 * 60 * 60.0


class Retention:
    """The daily purge of one process's audit store (started by Leadbot.start_watching, stopped by aclose)."""

    def __init__(
        self,
        audit: AuditStore,
        days: int = DEFAULT_RETENTION_DAYS,
        *,
        first_after: float = FIRST_PURGE_AFTER_S,
        every: float = PURGE_EVERY_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if days < 0:
            raise ValueError("retention days must be 0 (keep every record) or more")
        self.audit = audit
        self.days = days
        self.first_after = first_after
        self.every = every
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def cutoff(self) -> datetime | None:
        """Records begun before this moment may go; None: every record is kept (LEADBOT_AUDIT_RETENTION_DAYS=0)."""
        return None if self.days == 0 else self._clock() - timedelta(days=self.days)

    async def purge(self) -> Purged | None:
        """One purge now: logged in one line and counted; None when the store failed (logged, counted, and the
        next day's purge tries again)."""
        try:
            purged = await self.audit.purge(self.cutoff())
        except AuditError as failure:
            metrics.audit_error("purge")
            log.warning("audit trail: the retention purge failed: %s", failure.message)
            return None
        metrics.audit_purged(purged.changes)
        kept = (
            "every record kept (LEADBOT_AUDIT_RETENTION_DAYS=0)"
            if self.days == 0
            else (
                f"{purged.changes} record(s) older than {self.days} days removed"
                + (f", {purged.kept} older one(s) kept (unsettled, or undone by a newer record)" if purged.kept else "")
            )
        )
        log.info(
            "audit trail: retention purge: %s; %d expired question(s) and %d stale lead lock(s) removed",
            kept,
            purged.confirmations,
            purged.lead_locks,
        )
        return purged

    def start(self) -> None:
        """Purge `first_after` seconds from now, then every `every` seconds, in the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="leadbot retention purge")

    async def _run(self) -> None:
        await asyncio.sleep(self.first_after)
        while True:
            try:
                await self.purge()
            except Exception:  # a bug must not end the daily purge for good
                log.exception("audit trail: the retention purge failed unexpectedly")
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
