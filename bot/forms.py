"""Form checks: the field errors a submitted form can show in place, within Slack's 3 s."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from commands import registry

from .service import UserFacingError

if TYPE_CHECKING:
    from .pipeline import Leadbot

log = logging.getLogger(__name__)


async def precheck(bot: Leadbot, command: Any, *, budget: float | None = None) -> dict[str, str]:
    """Field errors a form can show in place (unknown lead, duplicate uid, unknown list), within the budget
    (default: the whole form budget; a listener passes what its permission check left). What is checked is the
    subcommand's own `precheck`, else: the list, and the lead when the command names one.

    Only answers about a field become field errors. A check that takes longer, or a babelforce failure, is
    dropped: the form closes and the command itself runs and reports whatever happens.
    """
    budget = bot.form_check_budget if budget is None else budget
    if budget <= 0:
        return {}
    spec = registry.of(command)
    try:
        async with asyncio.timeout(budget):
            if spec.precheck is not None:
                await spec.precheck(bot.service, command)
            elif isinstance(getattr(command, "lead_ref", None), str):
                await bot.service.check_lead_exists(command.list_ref, command.lead_ref)
            else:
                await bot.service.resolve_list(command.list_ref)
    except TimeoutError:
        log.info("form pre-check took over %.1f s; the command will report instead", budget)
    except UserFacingError as failure:
        if failure.field:
            return {failure.field: failure.message}
        log.info("form pre-check could not ask babelforce (%s); the command will report", failure.message)
    except Exception:  # a bug in a check must not block the form: the command itself will report
        log.exception("form pre-check failed unexpectedly")
    return {}
