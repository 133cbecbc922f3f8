"""The hopper caveats in words: the dialer's facts (commands/caveats.py) as Slack mrkdwn, one or two plain
sentences with the numbers. Every kind has its sentence here (mypy checks that no kind is left out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from babelforce.models import RANK_MAX, RANK_MIN, ListOrder

from .caveats import ORDER_MEANING, Caveat, CaveatKind, DialContext, Kept, Subject, TopBasis, TopRefusal


def escape(text: str) -> str:
    """Escape the three characters Slack requires escaped in mrkdwn text (user and babelforce text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """mrkdwn text back to plain words (for a message's top-level text, which `blocks.ephemeral` escapes itself)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def caveat_text(caveat: Caveat) -> str:
    """One caveat as mrkdwn: a bold verdict, then what it means for this dial."""
    kind, subject, size = caveat.kind, caveat.subject, caveat.hopper_size or 0
    shown, new_lead = subject == Subject.SHOWN, subject == Subject.NEW_LEAD
    match kind:
        case CaveatKind.IN_HOPPER:
            if shown:
                return (
                    f"*In the hopper* at position {caveat.position} of {size}: it is dialled in this batch with the "
                    "values it was loaded with; a change now does not reach this dial."
                )
            kept = "; ".join(_kept(caveat, item) for item in caveat.kept) or (
                "it is dialled with the values it was loaded with"
            )
            return (
                f"*Already in the hopper* (position {caveat.position} of {size}): this change is not taken into "
                f"account for this dial; {kept}."
            )
        case CaveatKind.NEXT_BATCH:
            return (
                f"*Not in the current batch*: rank {caveat.rank} puts it before the hopper's last lead "
                f"{_bound(caveat)}, but the dialer does not reload a loaded batch. It will be first of the next batch, "
                f"after the {_leads(size)} in the hopper (unless another waiting lead ranks higher)."
            )
        case CaveatKind.ORDER_IGNORES_RANK:
            order = caveat.list_order or ""
            meaning = ORDER_MEANING.get(order)
            how = f" ({meaning})" if meaning else ""
            name = escape(caveat.campaign_name) if caveat.campaign_name else "The campaign"
            return (
                f"*Rank does not change the dial order*: campaign *{name}* dials in list order {order}{how}, so rank "
                "is not used at all."
            )
        case CaveatKind.NOT_DIALLED:
            list_name = escape(caveat.list_name or "")
            if caveat.campaign_name is None:
                why = f"no campaign dials list *{list_name}*"
            else:
                why = f"campaign *{escape(caveat.campaign_name)}* that dials *{list_name}* is not active"
            then = (
                "It is called once a campaign dials this list."
                if shown
                else "The rank applies when a campaign dials this list."
                if new_lead
                else "The change applies when a campaign dials this list."
            )
            return f"*Not dialled now*: {why}. {then}"
        case CaveatKind.FINAL_STATUS:
            return (
                f"*Will not be dialled again*: its status is `{escape(str(caveat.status))}`, a final outcome, so the "
                "dialer never loads it again, whatever is changed."
            )
        case CaveatKind.NEW_LEAD_AFTER_BATCH:
            return (
                f"*Called after the current batch*: rank {caveat.rank} puts it before the hopper's last lead "
                f"{_bound(caveat)}, but the dialer does not compare a new lead with leads already loaded; it is called "
                f"after the {_leads(size)} in the hopper."
            )
        case CaveatKind.HOPPER_UNKNOWN:
            name = escape(caveat.campaign_name) if caveat.campaign_name else "the campaign"
            reason = f" ({caveat.reason})" if caveat.reason else ""
            if shown:
                then = "It may already be loaded."
            elif new_lead:
                then = "leadbot cannot say when the new lead is loaded."
            else:
                then = "If the lead is already loaded, this change waits for the next batch."
            return f"*Hopper unknown*: could not read the hopper of *{name}*{reason}. {then}"
        case CaveatKind.NEXT_REFILL:
            then = (
                "The dialer loads the new lead at a later refill."
                if new_lead
                else "The dialer uses the new values when it next loads this lead."
            )
            return (
                f"*Takes effect at the next hopper refill*: the lead is not in the hopper ({_leads(size)} loaded). "
                f"{then}"
            )
        case CaveatKind.NOT_IN_HOPPER:
            return (
                f"*Not in the hopper* ({_leads(size)} loaded): changes to it take effect when the dialer next loads "
                "leads."
            )
        case CaveatKind.AWAITS_RECYCLING:
            then = "" if shown else " The change counts from then."
            return (
                f"*Waits for recycling*: its last outcome is `{escape(str(caveat.status))}`, so the dialer loads it "
                f"again only if the campaign's recycling rules call it back.{then}"
            )
        case CaveatKind.LOADED_NOW:
            return (
                f"*Loaded at once*: the hopper was below its minimum, so the new lead went straight in at position "
                f"{caveat.position} of {size}; it is dialled in this batch."
            )
        case CaveatKind.CAMPAIGN_UNKNOWN:
            return (
                f"*Dialer state unknown*: could not read the campaign that dials list "
                f"*{escape(caveat.list_name or '')}* ({caveat.reason}), so leadbot cannot say when this takes effect."
            )
        case CaveatKind.STILL_LOADED | CaveatKind.NOT_LOADED | CaveatKind.REMOVAL_UNKNOWN:
            return removal_text(caveat)
        case CaveatKind.DUPLICATE_NUMBER:
            then = (
                "babelforce keeps both leads, so this number can be called twice."
                if new_lead
                else "after this change both leads have it, so it can be called twice."
            )
            return (
                f"*Number already in the list*: {_named(caveat.others)} {_has(caveat.others)} "
                f"{escape(str(caveat.number))} too; {then}"
            )
        case CaveatKind.SIMILAR_UID:
            uid = escape(str(caveat.uid))
            then = (
                f"so {uid} is added as a second lead rather than changing that one"
                if new_lead
                else "so the list would hold two leads that read alike"
            )
            return (
                f"*Similar uid*: {_named(caveat.others)} {_is(caveat.others)} already in the list, and {uid} differs "
                f"only by case or spaces; babelforce treats them as different uids, {then}."
            )
        case CaveatKind.TOP_RANK:
            return f"*Top: rank {caveat.rank}*, {_beyond(caveat)}: the rank that heads the next batch."
        case CaveatKind.ALREADY_TOP:
            if not caveat.others:
                return (
                    f"*Rank {caveat.rank} is already the top*: no other {_group(caveat)} is there to beat, so the rank "
                    "stays."
                )
            best = "highest" if caveat.list_order == ListOrder.UP_RANK else "lowest"
            return (
                f"*Rank {caveat.rank} is already the top*: it beats the {best} {_group(caveat)} "
                f"({escape(caveat.others[0])}, rank {caveat.other_rank}), so the rank stays."
            )
        case CaveatKind.TOP_REFUSED:
            return escape(top_refusal_text(caveat))
        case _:
            assert_never(kind)


def verdict(caveat: Caveat, done: str) -> str:
    """The first line of a reply: what happened, then what it means for dialling, in a few words a stressed
    supervisor reads at a glance. `done` is what was done ("Applied", "Added", "Undone"); a lead as it stands
    (/lead show) gets its state alone."""
    kind, size = caveat.kind, caveat.hopper_size or 0
    if caveat.subject == Subject.SHOWN:
        return _shown_verdict(caveat)
    match kind:
        case CaveatKind.NEXT_REFILL:
            return (
                f"{done}: loaded at a later refill"
                if caveat.subject == Subject.NEW_LEAD
                else (f"{done}: dialled with the new values from the next refill")
            )
        case CaveatKind.IN_HOPPER:
            return f"{done}, but not dialled now: already in the hopper ({caveat.position} of {size})"
        case CaveatKind.NEXT_BATCH:
            return f"{done}: heads the next batch, not the current one"
        case CaveatKind.ORDER_IGNORES_RANK:
            return f"{done}, but rank changes nothing: list order {caveat.list_order}"
        case CaveatKind.NOT_DIALLED:
            return f"{done}, but not dialled now: no active campaign dials this list"
        case CaveatKind.FINAL_STATUS:
            return f"{done}, but never dialled again: final status {caveat.status}"
        case CaveatKind.NEW_LEAD_AFTER_BATCH:
            return f"{done}: called after the current batch"
        case CaveatKind.HOPPER_UNKNOWN:
            return f"{done}; the hopper could not be read, so when it is dialled is unknown"
        case CaveatKind.NOT_IN_HOPPER:
            return f"{done}: not in the hopper ({size} loaded)"
        case CaveatKind.AWAITS_RECYCLING:
            return f"{done}: dialled again only if the campaign recycles it ({caveat.status})"
        case CaveatKind.LOADED_NOW:
            return f"{done} and loaded at once: position {caveat.position} of {size}, dialled in this batch"
        case CaveatKind.CAMPAIGN_UNKNOWN:
            return f"{done}; the dialer's state could not be read, so when it is dialled is unknown"
        case CaveatKind.STILL_LOADED | CaveatKind.NOT_LOADED | CaveatKind.REMOVAL_UNKNOWN:
            return _removal_verdict(caveat)
        case CaveatKind.DUPLICATE_NUMBER:
            return f"{done}; another lead of the list has the same number"
        case CaveatKind.SIMILAR_UID:
            return f"{done}; another lead's uid differs only by case or spaces"
        case CaveatKind.TOP_RANK:
            return f"{done}: rank {caveat.rank} heads the next batch"
        case CaveatKind.ALREADY_TOP:
            return f"No change: rank {caveat.rank} already heads the next batch"
        case CaveatKind.TOP_REFUSED:
            return "Not applied: no rank can make it head the next batch"
        case _:
            assert_never(kind)


def _removal_verdict(caveat: Caveat) -> str:
    """A remove: after the delete, whether any batch may still call it; before it (the question), not yet."""
    removed = caveat.subject == Subject.REMOVED
    match caveat.kind:
        case CaveatKind.STILL_LOADED:
            where = f"still loaded in the current batch ({caveat.position} of {caveat.hopper_size or 0})"
            return f"Removed, but {where}: this batch may still call it" if removed else f"Not removed yet: {where}"
        case CaveatKind.NOT_LOADED:
            return "Removed: no batch will call it" if removed else "Not removed yet: no loaded batch holds it"
        case _:
            return (
                "Removed; whether the current batch still holds it is unknown"
                if removed
                else "Not removed yet; whether the current batch holds it is unknown"
            )


def _shown_verdict(caveat: Caveat) -> str:
    kind, size = caveat.kind, caveat.hopper_size or 0
    match kind:
        case CaveatKind.IN_HOPPER:
            return f"In the hopper ({caveat.position} of {size}): dialled in this batch"
        case CaveatKind.NOT_IN_HOPPER | CaveatKind.NEXT_REFILL:
            return f"Waiting: not in the hopper ({size} loaded)"
        case CaveatKind.NOT_DIALLED:
            return "Not dialled now: no active campaign dials this list"
        case CaveatKind.FINAL_STATUS:
            return f"Will not be dialled again: final status {caveat.status}"
        case CaveatKind.AWAITS_RECYCLING:
            return f"Waits for recycling: last outcome {caveat.status}"
        case CaveatKind.HOPPER_UNKNOWN:
            return "Hopper unknown: it may already be loaded"
        case CaveatKind.CAMPAIGN_UNKNOWN:
            return "Dialer state unknown: the campaign could not be read"
        case (
            CaveatKind.NEXT_BATCH
            | CaveatKind.ORDER_IGNORES_RANK
            | CaveatKind.NEW_LEAD_AFTER_BATCH
            | CaveatKind.LOADED_NOW
            | CaveatKind.STILL_LOADED
            | CaveatKind.NOT_LOADED
            | CaveatKind.REMOVAL_UNKNOWN
            | CaveatKind.DUPLICATE_NUMBER
            | CaveatKind.SIMILAR_UID
            | CaveatKind.TOP_RANK
            | CaveatKind.ALREADY_TOP
            | CaveatKind.TOP_REFUSED
        ):  # facts of a change, never of a lead as it stands
            return caveat_text(caveat).split(":", 1)[0].strip("*")
        case _:
            assert_never(kind)


def _bound(caveat: Caveat) -> str:
    """What a rank "ahead of the hopper" was compared with: only the hopper's last lead is read."""
    return f"(rank {caveat.bound_rank})" if caveat.bound_rank is not None else "(its rank was not read)"


def removal_text(caveat: Caveat) -> str:
    """A remove's caveat: can the lead still be called? Before the delete (the question) or after it."""
    removed, size = caveat.subject == Subject.REMOVED, caveat.hopper_size or 0
    cannot = "babelforce's API cannot take a lead out of a loaded batch"
    if caveat.kind == CaveatKind.STILL_LOADED:
        if removed:
            return (
                f"*It is still loaded in the current batch* (position {caveat.position} of {size}): {cannot}, so "
                "this batch may still call it."
            )
        return (
            f"*Loaded in the current batch* (position {caveat.position} of {size}): {cannot}, so this batch may "
            "still call it after the removal; no later batch will."
        )
    if caveat.kind == CaveatKind.NOT_LOADED:
        list_name = escape(caveat.list_name or "")
        if caveat.hopper_size is None:  # no active campaign dials the list
            if caveat.campaign_name is None:
                why = f"no campaign dials list *{list_name}*"
            else:
                why = f"campaign *{escape(caveat.campaign_name)}* that dials *{list_name}* is not active"
            return f"*Not dialled*: {why}, so no batch will call it."
        if not removed:
            return f"*Not in the hopper* ({_leads(size)} loaded): once removed, no batch will call it."
        if caveat.position is not None:
            return (
                f"*Out of the hopper*: it was loaded at position {caveat.position} just before the delete and is gone "
                f"from the hopper now ({_leads(size)} loaded), so no batch will call it."
            )
        return f"*Not in the hopper* (read again after the delete, {_leads(size)} loaded): no batch will call it."
    if caveat.campaign_name is not None:
        what = f"could not read the hopper of *{escape(caveat.campaign_name)}*"
    else:
        what = f"could not read the campaign that dials list *{escape(caveat.list_name or '')}*"
    what += f" ({caveat.reason})" if caveat.reason else ""
    if not removed:
        return (
            f"*Hopper unknown*: {what}. If the lead is loaded, {cannot}, so that batch may still call it after the "
            "removal; no later batch will."
        )
    if caveat.position is not None:
        return (
            f"*Hopper unknown after the delete*: {what}. The lead was loaded at position {caveat.position} of "
            f"{caveat.hopper_size} just before, and {cannot}, so this batch may still call it; no later batch will."
        )
    if caveat.hopper_size is not None:
        return (
            f"*Hopper unknown after the delete*: {what}. The lead was not loaded when leadbot read the hopper just "
            "before the delete, and no later batch will call it."
        )
    return (
        f"*Hopper unknown*: {what}, so leadbot cannot say whether the current batch holds the lead; if it does, "
        f"{cannot}, so that batch may still call it. No later batch will."
    )


def top_refusal_text(caveat: Caveat) -> str:
    """Why `/lead rank … top` changes nothing (TOP_REFUSED), as one plain sentence (an error message: no markup)."""
    refusal = caveat.refusal
    if refusal is None:
        raise ValueError(f"a {caveat.kind} fact is no refusal of top")
    instead = "give a number instead."
    match refusal:
        case TopRefusal.ORDER_IGNORES_RANK:
            order = caveat.list_order or ""
            meaning = ORDER_MEANING.get(order)
            how = f" ({meaning})" if meaning else ""
            name = f"campaign {caveat.campaign_name}" if caveat.campaign_name else "the campaign"
            return (
                f"rank does not matter: {name} dials in list order {order}{how}, so no rank puts a lead first; "
                "nothing was changed."
            )
        case TopRefusal.NOT_DIALLED:
            if caveat.campaign_name is None:
                why = f"no campaign dials list {caveat.list_name}"
            else:
                why = f"campaign {caveat.campaign_name} that dials list {caveat.list_name} is not active"
            return f"top needs a campaign dialling by rank, but {why}; nothing was changed: {instead}"
        case TopRefusal.CAMPAIGN_UNKNOWN:
            return (
                f"Could not read the campaign that dials list {caveat.list_name} ({caveat.reason}), so leadbot cannot "
                f"tell which rank heads the next batch; nothing was changed: try again, or {instead}"
            )
        case TopRefusal.AT_LIMIT:
            up = caveat.list_order == ListOrder.UP_RANK
            limit, word, way = (RANK_MAX, "highest", "above") if up else (RANK_MIN, "lowest", "below")
            rival = caveat.others[0] if caveat.others else "another waiting lead"
            return (
                f"No rank is {way} {rival}'s rank {caveat.other_rank}: {limit} is the {word} rank babelforce "
                f"stores, so top cannot put this lead ahead of it; nothing was changed. Move {rival} "
                f"{'down' if up else 'up'} first, or give a number."
            )
        case TopRefusal.RANKS_UNKNOWN:
            if caveat.unranked:
                which = f"gives no rank for {_leads(caveat.unranked)} waiting to be loaded"
            else:
                which = "has no rank column"
            return (
                f"babelforce's lead export for list {caveat.list_name} {which}, so leadbot cannot tell which rank "
                f"heads the next batch; nothing was changed: {instead}"
            )
        case _:
            assert_never(refusal)


def _beyond(caveat: Caveat) -> str:
    """ "one above the highest waiting lead (lead-30, rank 50)": the lead `top` had to beat."""
    up = caveat.list_order == ListOrder.UP_RANK
    rival = escape(caveat.others[0]) if caveat.others else "?"
    best = "highest" if up else "lowest"
    return f"one {'above' if up else 'below'} the {best} {_group(caveat)} ({rival}, rank {caveat.other_rank})"


def _group(caveat: Caveat) -> str:
    """The leads `top` compared with, in words; when the hopper or the statuses were unknown, it says so."""
    basis = caveat.basis or TopBasis.WAITING
    match basis:
        case TopBasis.WAITING:
            return "waiting lead"
        case TopBasis.NOT_IN_HOPPER:
            return "lead not in the hopper (the export has no statuses)"
        case TopBasis.DIALABLE:
            return "dialable lead, loaded or not (the hopper could not be read)"
        case TopBasis.ALL:
            return "lead of the list (neither the hopper nor the statuses could be read)"
        case _:
            assert_never(basis)


def _named(uids: Sequence[str]) -> str:
    """ "lead lead-7" or "leads lead-7, lead-8" (mrkdwn-escaped)."""
    shown = ", ".join(escape(uid) for uid in uids) or "another lead"
    return f"lead {shown}" if len(uids) <= 1 else f"leads {shown}"


def _has(uids: Sequence[str]) -> str:
    return "has" if len(uids) <= 1 else "have"


def _is(uids: Sequence[str]) -> str:
    return "is" if len(uids) <= 1 else "are"


def _kept(caveat: Caveat, item: Kept) -> str:
    match item:
        case Kept.PLACE:
            return "the lead keeps its place"
        case Kept.OLD_NUMBER:
            return f"it is still called on the old number {escape(str(caveat.old_number))}"
        case Kept.OLD_UID:
            return f"it still carries the old uid {escape(str(caveat.old_uid))}"
        case Kept.OLD_DATA:
            return "the agent still sees the old data"
        case _:
            assert_never(item)


def campaign_line(context: DialContext) -> str:
    """One context line: which campaign dials the list, its order and the hopper's size."""
    campaign = context.campaign
    if campaign is None:
        return f"List *{escape(context.list_name)}* · no campaign dials it"
    state = "active" if campaign.active else "not active"
    order = context.list_order
    meaning = ORDER_MEANING.get(order, "")  # StrEnum keys: a plain "UP RANK" finds its meaning
    parts = [
        f"Campaign *{escape(campaign.name)}* ({state})",
        f"list order {order}" + (f" ({meaning})" if meaning else ""),
    ]
    if context.hopper is not None and context.dialling:
        parts.append(f"hopper {_leads(len(context.hopper))}")
    return " · ".join(parts)


def describe(caveats: Sequence[Caveat]) -> str:
    """The caveats as plain text (notification fallback, audit trail): markup removed."""
    return " ".join(caveat_text(caveat).replace("*", "").replace("`", "") for caveat in caveats)


def _leads(count: int) -> str:
    return f"{count} lead" if count == 1 else f"{count} leads"
