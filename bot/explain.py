"""What leadbot tells a supervisor when babelforce fails: every babelforce error as one sentence, in one place.

The sentence is chosen by the error's type and its attributes (the operation, the HTTP status, babelforce's
reason, and which list, lead or campaign it was about; see `babelforce.errors`), and names the list and the lead as
the user knows them: the list by its name, the lead by its uid. Nothing here reads an error's English message
(save as the last resort for an error that carries nothing else, such as a ConfigurationError) and nothing reads a
URL.
"""

from __future__ import annotations

from collections.abc import Sequence

from babelforce import errors
from babelforce.models import Lead, LeadList
from commands.fields import FIELD_LEAD, FIELD_LIST, FIELD_UID, quote_input

CHECK_AND_RETRY = "the change may or may not have been applied, so check with /lead show before retrying."


class UserFacingError(Exception):
    """A failure explained in one sentence; `field` names the form field at fault, when there is one.

    `uncertain` marks a write whose outcome is unknown (babelforce may have applied it before going silent), so the
    audit trail says "unknown" rather than "failed".
    """

    def __init__(self, message: str, *, field: str | None = None, uncertain: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.uncertain = uncertain


def user_error(
    failure: errors.BabelforceError,
    lead_list: LeadList | None = None,
    *,
    write: bool = False,
    lead: Lead | None = None,
    reference: str | None = None,
) -> UserFacingError:
    """The UserFacingError for a failed babelforce call about `lead_list` (and `lead`, or the lead the user asked
    for as `reference`): the sentence, the form field at fault, and whether a write may have been applied."""
    if isinstance(failure, errors.NotFoundError):
        if lead_list is not None and list_is_gone(failure, lead_list):
            return UserFacingError(list_gone(lead_list), field=FIELD_LIST)
        if reference is not None and lead_list is not None and failure.resource == "lead":
            return lead_not_found(reference, lead_list)
    if isinstance(failure, errors.AmbiguousMatchError) and failure.resource == "list":
        return UserFacingError(explain(failure, lead_list), field=FIELD_LIST)
    return UserFacingError(
        explain(failure, lead_list, write=write, lead=lead), uncertain=write and maybe_applied(failure)
    )


def explain(
    failure: errors.BabelforceError, lead_list: LeadList | None = None, *, write: bool = False, lead: Lead | None = None
) -> str:
    """One sentence for a supervisor: babelforce's error, naming the list and lead as the user knows them."""
    if isinstance(failure, errors.APITimeoutError):
        message = "babelforce did not answer in time"
        if write:
            return f"{message}; {CHECK_AND_RETRY}"
        return message + "; nothing was changed, try again in a moment."
    if isinstance(failure, errors.APIConnectionError):
        message = f"Could not reach babelforce ({errors.short_reason(failure)})"
        if write and failure.may_have_reached_server:
            return message + "; the change may or may not have been applied, so check with /lead show."
        return message + "; nothing was changed."
    if isinstance(failure, errors.RateLimitedError):
        wait = f" for {failure.retry_after:.0f} s" if failure.retry_after else ""
        return f"babelforce is limiting requests right now, so nothing was changed; wait{wait} and try again."
    if isinstance(failure, errors.AuthenticationError):
        return "babelforce refused leadbot's credentials; ask whoever runs leadbot to check the BABELFORCE_ settings."
    if isinstance(failure, errors.PermissionDeniedError):
        return "babelforce does not allow leadbot's account to do this; ask a babelforce admin for the permission."
    if isinstance(failure, errors.InvalidRequestError):
        return f"babelforce rejected the request to {_doing(failure, lead_list, lead)}{_because(failure)}."
    if isinstance(failure, errors.NotFoundError):
        return _not_found(failure, lead_list, lead)
    if isinstance(failure, errors.ConflictError):
        if failure.uid is not None and failure.operation in {"add_lead", "update_lead"}:
            hint = "set" if failure.operation == "update_lead" else "add"
            return uid_taken(failure.uid, _named(failure, lead_list), None, hint=hint).message
        return f"babelforce refused to {_doing(failure, lead_list, lead)}: it conflicts{_because(failure)}."
    if isinstance(failure, errors.ServerError):
        doing = _doing(failure, lead_list, lead)
        if failure.status_code < 500:  # babelforce said yes, but its answer could not be read
            return f"babelforce sent an answer that could not be read when asked to {doing}."
        return f"babelforce had a server error (HTTP {failure.status_code}) when asked to {doing}; try again shortly."
    if isinstance(failure, errors.APIStatusError):
        return f"babelforce answered HTTP {failure.status_code} when asked to {_doing(failure, lead_list, lead)}."
    if isinstance(failure, errors.AmbiguousMatchError):
        return _ambiguous(failure, lead_list)
    if isinstance(failure, errors.AddNotCreatedError):
        if not maybe_applied(failure):  # babelforce itself answered with a refusal: nothing was created
            return (
                f"{_lost_add(failure, lead_list)} and the list has no lead with that uid, so nothing was created; "
                "try again."
            )
        return (
            f"{_lost_add(failure, lead_list)} and the list has no lead with that uid yet, so the add is not confirmed: "
            "babelforce may still be creating it. leadbot looks again shortly and tells you; do not add it again "
            "before then."
        )
    if isinstance(failure, errors.AddOutcomeUnknownError):
        check = failure.check
        if isinstance(check, errors.APITimeoutError) and check.timeout is not None:
            why = f"it did not answer the check within {check.timeout:g} s either"
        elif check is not None:
            why = f"checking whether it was created failed too ({errors.short_reason(check)})"
        else:
            why = "checking whether it was created failed too"
        return f"{_lost_add(failure, lead_list)} and {why}, so look the lead up before adding it again."
    return failure.message  # e.g. a ConfigurationError: its own sentence is all there is


def maybe_applied(failure: errors.BabelforceError) -> bool:
    """A write babelforce may have carried out although no answer came back (or the check after it failed)."""
    if isinstance(failure, errors.AddNotCreatedError):
        # the lookup missed: not confirmed yet, unless babelforce's own answer said it refused (a JSON error)
        lost = failure.lost
        return not (isinstance(lost, errors.APIStatusError) and getattr(lost, "answered", True))
    if isinstance(failure, errors.APITimeoutError | errors.AddOutcomeUnknownError):
        return True
    if isinstance(failure, errors.ServerError) and not failure.answered:
        return True  # a gateway's page or an unreadable body: the request had left, babelforce may have acted
    return isinstance(failure, errors.APIConnectionError) and failure.may_have_reached_server


def list_is_gone(failure: errors.BabelforceError, lead_list: LeadList) -> bool:
    """babelforce's 404 for this list itself (not for one of its leads)."""
    return (
        isinstance(failure, errors.NotFoundError)
        and failure.resource == "list"
        and failure.list_id is not None
        and failure.list_id == lead_list.id
    )


def list_gone(lead_list: LeadList) -> str:
    return f"List {lead_list.name} no longer exists in babelforce."


def lead_not_found(reference: str, lead_list: LeadList) -> UserFacingError:
    """No lead matches what the user typed (an id, a uid or a number)."""
    return UserFacingError(
        f"No lead with uid, id or number {quote_input(reference)} in list {lead_list.name}.", field=FIELD_LEAD
    )


def uid_taken(uid: str, lead_list: LeadList | None, rank: int | None, *, hint: str) -> UserFacingError:
    """A duplicate uid, said so that the next step is clear: change that lead (add) or pick another uid (set).
    `rank` is the rank of the lead holding the uid, when it could be read."""
    held = f" (rank {rank})" if rank is not None else ""
    where = f"list {lead_list.name}" if lead_list is not None else "this list"
    if hint == "set":
        message = f"uid {quote_input(uid)} already belongs to another lead in {where}{held}; choose another uid."
    else:
        message = (
            f"uid {quote_input(uid)} already exists in {where}{held} — use /lead rank or /lead set to change that lead."
        )
    return UserFacingError(message, field=FIELD_UID)


def ambiguous_number(
    lead_list: LeadList, reference: str, ambiguous: errors.AmbiguousMatchError, uids: Sequence[str]
) -> UserFacingError:
    """Several leads share the number typed; `uids` names those of them leadbot could read, so the user can pick."""
    more = len(ambiguous.candidates) - len(uids)
    named = ", ".join(uids) + (f" and {more} more" if more > 0 else "") if uids else ""
    which = f" ({named})" if named else ""
    return UserFacingError(
        f"{len(ambiguous.candidates)} leads in list {lead_list.name} have number {quote_input(reference)}{which}; "
        "use the uid or the lead id instead.",
        field=FIELD_LEAD,
    )


# ---------------------------------------------------------------------- the parts of a sentence


def _named(failure: errors.BabelforceError, lead_list: LeadList | None) -> LeadList | None:
    """`lead_list` when the failure is about it (or names no list at all), else None."""
    if lead_list is not None and failure.list_id in (None, lead_list.id):
        return lead_list
    return None


def _the_list(failure: errors.BabelforceError, lead_list: LeadList | None) -> str:
    named = _named(failure, lead_list)
    if named is not None:
        return f"list {named.name}"
    return f"list {failure.list_id}" if failure.list_id else "the list"


def _the_lead(failure: errors.BabelforceError, lead: Lead | None) -> str:
    if lead is not None and lead.uid and failure.lead_id in (None, lead.id):
        return f"lead {lead.uid}"
    return f"lead {failure.lead_id}" if failure.lead_id else "the lead"


def _the_uid(failure: errors.BabelforceError) -> str:
    return quote_input(failure.uid) if failure.uid is not None else "the lead"


def _doing(failure: errors.BabelforceError, lead_list: LeadList | None, lead: Lead | None) -> str:
    """What leadbot asked babelforce to do, as the end of "when asked to …"."""
    operation = failure.operation
    if operation == "list_lists":
        return "list the lead-lists"
    if operation == "get_list":
        return f"get {_the_list(failure, lead_list)}"
    if operation == "find_list":
        return "find the list"
    if operation == "list_leads":
        return f"list the leads of {_the_list(failure, lead_list)}"
    if operation == "export_csv":
        return f"export the leads of {_the_list(failure, lead_list)}"
    if operation == "get_lead":
        return f"get {_the_lead(failure, lead)}"
    if operation == "find_lead":
        return f"find the lead in {_the_list(failure, lead_list)}"
    if operation == "add_lead":
        return f"add lead {_the_uid(failure)} to {_the_list(failure, lead_list)}"
    if operation == "update_lead":
        return f"update {_the_lead(failure, lead)}"
    if operation == "delete_lead":
        return f"delete {_the_lead(failure, lead)}"
    if operation == "list_campaigns":
        return "list the campaigns"
    if operation == "get_campaign":
        return f"get campaign {failure.campaign_id}"
    if operation == "get_hopper":
        return f"get the hopper of campaign {failure.campaign_id}"
    if operation == "token":
        return "log in"
    return "do this"


def _because(failure: errors.BabelforceError) -> str:
    """babelforce's own reason, to end a sentence with (": rank must be …"), or nothing."""
    return f": {failure.reason.rstrip('.')}" if failure.reason else ""


def _not_found(failure: errors.NotFoundError, lead_list: LeadList | None, lead: Lead | None) -> str:
    if failure.resource == "list":
        if lead_list is not None and list_is_gone(failure, lead_list):
            return list_gone(lead_list)
        return f"No list with id {failure.list_id}." if failure.list_id else "No such list."
    if failure.resource == "lead":
        where = _the_list(failure, lead_list)
        if lead is not None and lead.uid and (failure.lead_id is None or failure.lead_id == lead.id):
            # the lead was found a moment ago: name it as the user knows it, not by babelforce's internal id
            return f"Lead {quote_input(lead.uid)} is no longer in {where}; it was removed meanwhile."
        if failure.lead_id is not None:
            return f"No lead with id {failure.lead_id} in {where}."
        if failure.uid is not None:
            return f"No lead with uid {quote_input(failure.uid)} in {where}."
        return f"No such lead in {where}."
    if failure.resource == "campaign":
        return f"No campaign with id {failure.campaign_id}." if failure.campaign_id else "No such campaign."
    return f"babelforce found nothing to {_doing(failure, lead_list, lead)}."


def _ambiguous(failure: errors.AmbiguousMatchError, lead_list: LeadList | None) -> str:
    count = len(failure.candidates)
    typed = quote_input(failure.reference) if failure.reference is not None else "that"
    if failure.resource == "list":
        return f"{count} lists are named {typed}; use the list id instead."
    return f"{count} leads in {_the_list(failure, lead_list)} have number {typed}; use the uid or the lead id instead."


def _lost_add(failure: errors.AddNotCreatedError | errors.AddOutcomeUnknownError, lead_list: LeadList | None) -> str:
    lost = f" ({errors.short_reason(failure.lost)})" if failure.lost is not None else ""
    return f"babelforce's answer to adding uid {_the_uid(failure)} to {_the_list(failure, lead_list)} was lost{lost}"
