"""The sandbox's HTTP face: babelforce's outbound API (v2) and /oauth/token, plus /sandbox/* test controls.

Responses follow the OpenAPI contract in shape and status; errors are `{"success": false, "message": ...}`
naming the field or the thing not found. `build_app(state)` returns the ASGI app with the faults layer outermost.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from sandbox.faults import FaultBook, FaultsMiddleware, RequestStats
from sandbox.hopper import DIALABLE_STATUSES, LIST_ORDERS
from sandbox.state import (
    DIAL_STATUSES,
    UNSET,
    Campaign,
    Invalid,
    Lead,
    LeadList,
    NotFound,
    SandboxError,
    SandboxState,
    is_dashed_uuid,
    normalize_id,
    now_rfc3339,
)

# OAuth clients: confidential `sandbox` (secret "sandbox") and public `manager` (no secret, password grant).
CLIENT_SECRETS: dict[str, str | None] = {"sandbox": "sandbox", "manager": None}
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"

MAX_RESULTS = 1000
DEFAULT_PAGE_SIZE = 10
RANK_MIN, RANK_MAX = -32768, 32767
NUMBER_PATTERN = re.compile(r"\+?[0-9]{6,15}")
DIGITS = re.compile(r"[0-9]+")
CSV_COLUMNS = ("id", "uid", "number", "rank", "status", "callCount", "dateCreated", "lastUpdated", "data")
#: The same columns under names other systems give them (`--csv-headers alias`).
CSV_ALIAS_COLUMNS = (
    "leadId",
    "leadUid",
    "phone",
    "Rank",
    "Status",
    "call_count",
    "date_created",
    "last_updated",
    "Data",
)


@dataclass(frozen=True, slots=True)
class ExportDialect:
    """How `--csv-dialect` writes the export: delimiter, charset, and what comes before the header line."""

    delimiter: str
    charset: str
    bom: bool = False
    sep_line: bool = False


EXPORT_DIALECTS = {
    "comma": ExportDialect(",", "utf-8"),
    "semicolon": ExportDialect(";", "utf-8"),
    "tab": ExportDialect("\t", "utf-8"),
    "excel": ExportDialect(";", "ISO-8859-1", bom=True, sep_line=True),
}

Handler = Callable[[Request], Awaitable[Response]]


# ---- envelopes ----------------------------------------------------------------------------------------------


def item_response(item: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({"item": item, "success": True}, status_code=status)


def items_response(items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"items": items, "success": True})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": False, "message": message}, status_code=status, headers=headers)


def oauth_error(error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )


# ---- rendering ----------------------------------------------------------------------------------------------


def lead_json(lead: Lead, campaign_id: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": lead.id,
        "uid": lead.uid,
        "listId": lead.list_id,
        "number": lead.number,
        "rank": lead.rank,
        "status": lead.status,
        "callCount": lead.call_count,
        "duration": lead.duration,
        "calledSinceReset": lead.called_since_reset,
        "dateCreated": lead.date_created,
        "lastUpdated": lead.last_updated,
        "data": dict(lead.data),
    }
    if campaign_id is not None:
        item["campaignId"] = campaign_id
    if lead.date_called is not None:
        item["dateCalled"] = lead.date_called
    return item


def outbound_lead_json(lead: Lead, campaign_id: str | None) -> dict[str, Any]:
    """OutboundLead (add/update responses) additionally requires `callerId`: no per-lead override here."""
    return {**lead_json(lead, campaign_id), "callerId": ""}


def lead_list_json(lead_list: LeadList) -> dict[str, Any]:
    item: dict[str, Any] = {"id": lead_list.id, "name": lead_list.name, "count": len(lead_list.leads)}
    if lead_list.campaign_id is not None:
        item["campaignId"] = lead_list.campaign_id
    return item


def outbound_list_json(lead_list: LeadList) -> dict[str, Any]:
    # The spec's OutboundList requires a property `number` it never defines (a spec bug); the sandbox sends
    # the list's lead count there, the only reading that fits a list.
    return {**lead_list_json(lead_list), "number": len(lead_list.leads)}


def campaign_json(campaign: Campaign, state: SandboxState) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": campaign.id,
        "name": campaign.name,
        "active": campaign.active,
        "testMode": campaign.test_mode,
        "displayNumber": campaign.display_number,
        "listOrder": campaign.list_order,
        "callRatio": campaign.call_ratio,
    }
    # OutboundCampaign.leadList is not nullable: the key is left out when no list is set.
    if campaign.list_id is not None:
        item["leadList"] = {"id": campaign.list_id, "name": state.lists[campaign.list_id].name}
    return item


# ---- request parsing ----------------------------------------------------------------------------------------


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


def _path_id(request: Request, param: str, kind: str) -> str:
    raw = request.path_params[param]
    normalized = normalize_id(raw)
    if normalized is None:
        raise NotFound(f"{kind} {raw} not found.")
    return normalized


def _list_id(request: Request) -> str:
    return _path_id(request, "id", "Lead-list")


def _campaign_id(request: Request) -> str:
    return _path_id(request, "id", "Campaign")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(raw: bytes) -> Any:
    """Parse standard JSON only: Python's NaN/Infinity extension would be stored and then fail every response."""
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("The request body is not valid JSON.") from exc


async def _json_object(request: Request, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise Invalid("The request body must be a JSON object.")
        return {}
    body = strict_json(raw)
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    return body


def _positive_int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not DIGITS.fullmatch(raw):  # int() would also take " 5", "+5", "1_0" and non-ASCII digits
        raise Invalid(f"{name} must be a positive integer.")
    value = int(raw)
    if value < 1:
        raise Invalid(f"{name} must be a positive integer.")
    return value


def _status_param(request: Request) -> str | None:
    status = request.query_params.get("status")
    if status is not None and status not in DIAL_STATUSES:
        raise Invalid(f"status must be one of the dial statuses ({', '.join(DIAL_STATUSES)}).")
    return status


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _lead_fields(body: dict[str, Any], partial: bool) -> dict[str, Any]:
    """Validated uid/number/rank/data from an add (all but data required) or a partial update body."""
    fields: dict[str, Any] = {}
    for name in ("uid", "number", "rank"):
        if name not in body or body[name] is None:
            if not partial:
                raise Invalid(f"{name} is required.")
            if name in body:
                raise Invalid(f"{name} cannot be null.")
            continue
        value = body[name]
        if name == "uid" and (not isinstance(value, str) or not value):
            raise Invalid("uid must be a non-empty string.")
        if name == "number" and (not isinstance(value, str) or not NUMBER_PATTERN.fullmatch(value)):
            raise Invalid("number must be a phone number of 6 to 15 digits, optionally starting with +.")
        if name == "rank" and (not _is_int(value) or not RANK_MIN <= value <= RANK_MAX):
            raise Invalid(f"rank must be an integer between {RANK_MIN} and {RANK_MAX}.")
        fields[name] = value
    data = body.get("data")
    if data is not None:
        if not isinstance(data, dict):
            raise Invalid("data must be a JSON object.")
        fields["data"] = data
    return fields


_CAMPAIGN_FIELDS = {
    "name": "name",
    "active": "active",
    "testMode": "test_mode",
    "displayNumber": "display_number",
    "listOrder": "list_order",
    "callRatio": "call_ratio",
}


def _campaign_fields(body: dict[str, Any], partial: bool) -> dict[str, Any]:
    """Validated campaign settings (by attribute name) from a CreateCampaignRequest or UpdateCampaignRequest."""
    fields: dict[str, Any] = {}
    for key, attribute in _CAMPAIGN_FIELDS.items():
        if key not in body:
            if not partial and key != "callRatio":
                raise Invalid(f"{key} is required.")
            continue
        value = body[key]
        if key == "name" and (not isinstance(value, str) or not value.strip()):
            raise Invalid("name must be a non-empty string.")
        if key in {"active", "testMode"} and not isinstance(value, bool):
            raise Invalid(f"{key} must be true or false.")
        if key == "displayNumber" and (not isinstance(value, str) or not NUMBER_PATTERN.fullmatch(value)):
            raise Invalid("displayNumber must be a phone number of 6 to 15 digits, optionally starting with +.")
        if key == "listOrder" and value not in LIST_ORDERS:
            raise Invalid(f"listOrder must be one of {', '.join(LIST_ORDERS)}.")
        if key == "callRatio" and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 4
        ):
            raise Invalid("callRatio must be a number between 0 and 4.")
        fields[attribute] = value
    return fields


def _list_name(body: dict[str, Any]) -> str:
    name = body.get("name")
    if name is None:
        raise Invalid("name is required.")
    if not isinstance(name, str) or not name.strip():
        raise Invalid("name must be a non-empty string.")
    return name


# ---- auth ---------------------------------------------------------------------------------------------------


def _unauthorized(message: str) -> JSONResponse:
    return error_response(401, message, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _check_bearer(request: Request) -> JSONResponse | None:
    header = request.headers.get("authorization")
    if header is None:
        if "x-auth-access-id" in request.headers or "x-auth-access-token" in request.headers:
            return _unauthorized(
                "The X-Auth-Access-Id/X-Auth-Access-Token headers are no longer accepted; "
                "send Authorization: Bearer <token>."
            )
        return _unauthorized("Authentication required: send Authorization: Bearer <token>.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _unauthorized("The Authorization header must be Bearer <token>.")
    with _state(request).lock:
        valid = _state(request).tokens.is_valid(token)
    if not valid:
        return _unauthorized("The access token is unknown or expired.")
    return None


def api(handler: Handler) -> Handler:
    """Wrap an /api/v2 handler: bearer auth first, then SandboxErrors become JSON error responses."""

    async def endpoint(request: Request) -> Response:
        denied = _check_bearer(request)
        if denied is not None:
            return denied
        try:
            return await handler(request)
        except SandboxError as exc:
            return error_response(exc.status, exc.message)

    endpoint.__name__ = handler.__name__
    return endpoint


def control(handler: Handler) -> Handler:
    """Wrap a /sandbox/* handler (no auth)."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except SandboxError as exc:
            return error_response(exc.status, exc.message)

    endpoint.__name__ = handler.__name__
    return endpoint


# ---- /oauth/token -------------------------------------------------------------------------------------------


async def token(request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return oauth_error("invalid_request", "Send the token request form-encoded (x-www-form-urlencoded).")
    try:
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        return oauth_error("invalid_request", "The token request is not valid UTF-8.")
    form = dict(pairs)
    if len(form) != len(pairs):  # RFC 6749 3.2: a parameter must not be sent twice (which one would count?)
        repeated = next(name for name, seen in Counter(name for name, _ in pairs).items() if seen > 1)
        return oauth_error("invalid_request", f"{repeated} is given more than once.")
    grant_type = form.get("grant_type")
    tokens = _state(request).tokens
    if not grant_type:
        return oauth_error("invalid_request", "grant_type is required.")
    if grant_type == "client_credentials":
        client_id = form.get("client_id")
        if not client_id:
            return oauth_error("invalid_request", "client_id is required.")
        if CLIENT_SECRETS.get(client_id) is None or form.get("client_secret") != CLIENT_SECRETS[client_id]:
            return oauth_error("invalid_client", "Unknown client or wrong client_secret.")
        with _state(request).lock:
            grant = tokens.issue(client_id, with_refresh=False)
    elif grant_type == "password":
        client_id = form.get("client_id")
        if not client_id:
            return oauth_error("invalid_request", "client_id is required.")
        if client_id not in CLIENT_SECRETS:
            return oauth_error("invalid_client", f"Unknown client {client_id}.")
        secret = CLIENT_SECRETS[client_id]
        if secret is not None and form.get("client_secret") != secret:
            return oauth_error("invalid_client", "Wrong client_secret.")
        if not form.get("username") or not form.get("password"):
            return oauth_error("invalid_request", "username and password are required.")
        if form["username"] != DEMO_USERNAME or form["password"] != DEMO_PASSWORD:
            return oauth_error("invalid_grant", "Wrong username or password.")
        with _state(request).lock:
            grant = tokens.issue(client_id, with_refresh=True)
    elif grant_type == "refresh_token":
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return oauth_error("invalid_request", "refresh_token is required.")
        with _state(request).lock:
            client_id = tokens.refresh.get(refresh_token)
            if client_id is None:
                return oauth_error("invalid_grant", "The refresh token is unknown, revoked or already used.")
            # RFC 6749 6: the token is bound to its client, and a confidential client must authenticate.
            # Checked before the token is used up, so a bad request does not burn it.
            if form.get("client_id", client_id) != client_id:
                return oauth_error("invalid_grant", "The refresh token was issued to another client.")
            secret = CLIENT_SECRETS[client_id]
            if secret is not None and form.get("client_secret") != secret:
                return oauth_error("invalid_client", "Wrong or missing client_secret for this refresh token.")
            tokens.redeem_refresh(refresh_token)
            grant = tokens.issue(client_id, with_refresh=True)
    else:
        return oauth_error("unsupported_grant_type", f"grant_type {grant_type} is not supported.")
    return JSONResponse(grant, headers={"Cache-Control": "no-store"})


# ---- lead-lists ---------------------------------------------------------------------------------------------


@api
async def lists_index(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return items_response([outbound_list_json(lead_list) for lead_list in state.lists.values()])


@api
async def lists_create(request: Request) -> Response:
    name = _list_name(await _json_object(request))
    state = _state(request)
    with state.lock:
        return item_response(outbound_list_json(state.create_list(name)))


@api
async def list_get(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return item_response(lead_list_json(state.get_list(_list_id(request))))


@api
async def list_update(request: Request) -> Response:
    list_id = _list_id(request)
    state = _state(request)
    state.get_list(list_id)  # 404 before 400
    name = _list_name(await _json_object(request))
    with state.lock:
        return item_response(lead_list_json(state.rename_list(list_id, name)))


@api
async def list_delete(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        lead_list = state.get_list(_list_id(request))
        item = lead_list_json(lead_list)
        state.delete_list(lead_list.id)
        return item_response(item)


# ---- leads --------------------------------------------------------------------------------------------------


def _paged_leads(request: Request, base_path: str, list_id: str | None) -> Response:
    page = _positive_int_param(request, "page", 1)
    page_size = min(_positive_int_param(request, "max", DEFAULT_PAGE_SIZE), MAX_RESULTS)
    status = _status_param(request)
    state = _state(request)
    with state.lock:
        if list_id is not None and status is None:
            total = len(state.get_list(list_id).leads)
            leads = state.iter_leads(list_id)
        else:
            total = sum(1 for _ in state.iter_leads(list_id, status))
            leads = state.iter_leads(list_id, status)
        start = (page - 1) * page_size
        # A page past the end is empty; checking first also keeps a huge page number out of islice (ValueError).
        window = islice(leads, start, start + page_size) if start < total else ()
        items = [lead_json(lead, state.campaign_id_of_list(lead.list_id)) for lead in window]
    pages = max(1, math.ceil(total / page_size))
    pagination: dict[str, Any] = {
        "current": page,
        "pages": pages,
        "total": total,
        "max": page_size,
        "maxResults": MAX_RESULTS,
    }
    if page < pages:
        query: dict[str, int | str] = {"page": page + 1, "max": page_size}
        if list_id is not None and base_path.endswith("/outbound/leads"):
            query["listId"] = list_id
        if status is not None:
            query["status"] = status
        pagination["next"] = f"{base_path}?{urlencode(query)}"
    return JSONResponse({"items": items, "pagination": pagination, "success": True})


#: Rows written per chunk of a streamed export.
EXPORT_CHUNK_ROWS = 2000


def _csv_export(state: SandboxState, list_id: str, status: str | None) -> Response:
    """The whole list (status filter honoured, paging ignored) as a CSV attachment, in list order.

    Streamed in chunks, as a real server sends a big attachment (a 1 000 000-lead export is ~150 MB): the leads are
    taken under the lock, their rows written while the body is sent. A lead changed meanwhile may show either
    version, as in any live export."""
    with state.lock:
        leads = list(state.iter_leads(list_id, status))
        dialect = EXPORT_DIALECTS[state.csv_dialect]
        columns = CSV_ALIAS_COLUMNS if state.csv_headers == "alias" else CSV_COLUMNS
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def encoded(text: str) -> bytes:
        return text.encode(dialect.charset, "replace")  # what ISO-8859-1 cannot hold becomes "?", as in a real one

    def body() -> Iterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=dialect.delimiter)
        if dialect.sep_line:
            buffer.write(f"sep={dialect.delimiter}\r\n")
        writer.writerow(columns)
        yield (codecs.BOM_UTF8 if dialect.bom else b"") + encoded(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
        for start in range(0, len(leads), EXPORT_CHUNK_ROWS):
            writer.writerows(
                (
                    lead.id,
                    lead.uid,
                    lead.number,
                    lead.rank,
                    lead.status,
                    lead.call_count,
                    lead.date_created,
                    lead.last_updated,
                    dumps(lead.data),
                )
                for lead in leads[start : start + EXPORT_CHUNK_ROWS]
            )
            yield encoded(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()

    return StreamingResponse(
        body(),
        media_type=f"text/csv; charset={dialect.charset}",
        headers={"Content-Disposition": f'attachment; filename="{list_id}.csv"'},
    )


@api
async def list_leads(request: Request) -> Response:
    list_id = _list_id(request)
    state = _state(request)
    state.get_list(list_id)
    output_format = request.query_params.get("format")
    if output_format is not None:
        if output_format != "csv":
            raise Invalid("format must be csv.")
        return _csv_export(state, list_id, _status_param(request))
    return _paged_leads(request, f"/api/v2/outbound/lists/{list_id}/leads", list_id)


@api
async def all_leads(request: Request) -> Response:
    raw_list_id = request.query_params.get("listId")
    list_id = None
    if raw_list_id is not None:
        list_id = normalize_id(raw_list_id)
        if list_id is None and is_dashed_uuid(raw_list_id):
            raise NotFound(f"Lead-list {raw_list_id} not found.")  # an id babelforce does not match (normalize_id)
        if list_id is None:
            raise Invalid("listId must be a lead-list id.")
    return _paged_leads(request, "/api/v2/outbound/leads", list_id)


@api
async def lead_add(request: Request) -> Response:
    list_id = _list_id(request)
    state = _state(request)
    state.get_list(list_id)
    fields = _lead_fields(await _json_object(request), partial=False)
    with state.lock:
        lead = state.add_lead(list_id, **fields)
        return item_response(outbound_lead_json(lead, state.campaign_id_of_list(list_id)))


@api
async def list_clear(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return item_response(outbound_list_json(state.clear_list(_list_id(request))))


def _lead_id(request: Request) -> str:
    return _path_id(request, "leadId", "Lead")


@api
async def lead_get(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        list_id = _list_id(request)
        lead = state.get_lead(list_id, _lead_id(request))
        return item_response(lead_json(lead, state.campaign_id_of_list(list_id)))


@api
async def lead_update(request: Request) -> Response:
    list_id, lead_id = _list_id(request), _lead_id(request)
    state = _state(request)
    state.get_lead(list_id, lead_id)
    body = await _json_object(request)
    fields = _lead_fields(body, partial=True)
    with state.lock:
        lead = state.update_lead(
            list_id,
            lead_id,
            uid=fields.get("uid", UNSET),
            number=fields.get("number", UNSET),
            rank=fields.get("rank", UNSET),
            data=fields.get("data", UNSET),
        )
        return item_response(outbound_lead_json(lead, state.campaign_id_of_list(list_id)))


@api
async def lead_delete(request: Request) -> Response:
    _state(request).delete_lead(_list_id(request), _lead_id(request))
    return JSONResponse({"success": True})


def _string_list(body: dict[str, Any], key: str) -> list[str]:
    values = body.get(key)
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise Invalid(f"{key} must be a list of strings.")
    return values


@api
async def leads_bulk_delete(request: Request) -> Response:
    list_id = _list_id(request)
    state = _state(request)
    state.get_list(list_id)
    body = await _json_object(request)
    ids, uids = _string_list(body, "ids"), _string_list(body, "uids")
    if "ids" not in body and "uids" not in body:
        raise Invalid("ids or uids is required.")
    normalized = [lead_id for lead_id in map(normalize_id, ids) if lead_id is not None]
    deleted = state.delete_leads(list_id, ids=normalized, uids=uids)
    return JSONResponse({"success": True, "message": f"Deleted {deleted} leads"})


# ---- campaigns ----------------------------------------------------------------------------------------------


@api
async def campaigns_index(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return items_response([campaign_json(campaign, state) for campaign in state.campaigns.values()])


@api
async def campaigns_create(request: Request) -> Response:
    fields = _campaign_fields(await _json_object(request), partial=False)
    state = _state(request)
    with state.lock:
        return item_response(campaign_json(state.create_campaign(**fields), state), status=201)


@api
async def campaign_get(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return item_response(campaign_json(state.get_campaign(_campaign_id(request)), state))


@api
async def campaign_update(request: Request) -> Response:
    campaign_id = _campaign_id(request)
    state = _state(request)
    state.get_campaign(campaign_id)
    fields = _campaign_fields(await _json_object(request), partial=True)
    with state.lock:
        return item_response(campaign_json(state.update_campaign(campaign_id, **fields), state), status=201)


@api
async def campaign_delete(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        campaign = state.get_campaign(_campaign_id(request))
        item = campaign_json(campaign, state)
        state.delete_campaign(campaign.id)
        return item_response(item)


@api
async def campaign_list_get(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        campaign = state.get_campaign(_campaign_id(request))
        if campaign.list_id is None:
            raise NotFound(f"Campaign {campaign.id} has no lead-list.")
        return item_response(lead_list_json(state.get_list(campaign.list_id)))


def _set_list(state: SandboxState, campaign_id: str, raw_list_id: str) -> Response:
    list_id = normalize_id(raw_list_id)
    with state.lock:
        state.get_campaign(campaign_id)
        if list_id is None:
            raise NotFound(f"Lead-list {raw_list_id} not found.")
        return item_response(campaign_json(state.set_campaign_list(campaign_id, list_id), state))


@api
async def campaign_list_set(request: Request) -> Response:
    campaign_id = _campaign_id(request)
    state = _state(request)
    state.get_campaign(campaign_id)
    raw_list_id = (await _json_object(request)).get("listId")
    if raw_list_id is None:
        raise Invalid("listId is required.")
    if not isinstance(raw_list_id, str):
        raise Invalid("listId must be a lead-list id.")
    return _set_list(state, campaign_id, raw_list_id)


@api
async def campaign_list_set_by_id(request: Request) -> Response:
    return _set_list(_state(request), _campaign_id(request), request.path_params["listId"])


@api
async def campaign_list_unset(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        return item_response(campaign_json(state.set_campaign_list(_campaign_id(request), None), state))


@api
async def campaign_hopper(request: Request) -> Response:
    entries = _state(request).hopper(_campaign_id(request))
    items = [
        {
            "id": entry.lead_id,
            "uid": entry.uid,
            "listId": entry.list_id,
            "number": entry.number,
            "status": entry.status,
            "order": str(position),
            "count": str(entry.count),
            "source": "list",
        }
        for position, entry in enumerate(entries, start=1)
    ]
    return items_response(items)


@api
async def campaign_status(request: Request) -> Response:
    """CampaignRealtimeStatus: the list order, the dial method and level, the statuses the dialer loads, and the
    figures of this state (the free-form *Stats objects: leads, calls and their outcomes, agents logged in)."""
    state = _state(request)
    with state.lock:
        campaign = state.get_campaign(_campaign_id(request))
        figures = state.campaign_status(campaign.id)
        item = {
            "order": campaign.list_order,
            "dial_method": "standard",
            "dial_level": campaign.call_ratio,
            "statuses": sorted(DIALABLE_STATUSES),
            "time": now_rfc3339(),
            "campaignLeadStats": figures["lead_stats"],
            "campaignCallStats": figures["call_stats"],
            "campaignAgentStats": figures["agent_stats"],
            "trunk": {},
        }
    return item_response(item)


def _unix_param(request: Request, name: str) -> int | None:
    """An optional UnixTimestamp query parameter (whole seconds)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not DIGITS.fullmatch(raw):
        raise Invalid(f"{name} must be a Unix timestamp in whole seconds.")
    return int(raw)


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@api
async def campaign_statistics(request: Request) -> Response:
    """Per-agent statistics (CampaignStatisticsItem: every figure a string): the agents whose session overlaps
    [from, to], with the talk time of the calls `dial` gave them and the rest of their login as waiting."""
    since, until = _unix_param(request, "from"), _unix_param(request, "to")
    if since is not None and until is not None and since > until:
        raise Invalid("from must not be after to.")
    state = _state(request)
    now = time.time()
    with state.lock:
        sessions = state.agent_sessions(_campaign_id(request), since, until)
        items = [
            {
                "agent": session.agent,
                "login_at": _rfc3339(session.login_at),
                "pause_in_seconds": "0",
                "wait_in_seconds": str(session.wait_s(now)),
                "talk_in_seconds": str(session.talk_s),
            }
            for session in sessions
        ]
    return items_response(items)


# ---- /sandbox/* controls ------------------------------------------------------------------------------------


@control
async def dial(request: Request) -> Response:
    campaign_id = _campaign_id(request)
    state = _state(request)
    state.get_campaign(campaign_id)
    body = await _json_object(request, required=False)
    count = body.get("count", 1)
    if not _is_int(count) or count < 1:
        raise Invalid("count must be a positive integer.")
    status = body.get("status", "no_answer")
    if status not in DIAL_STATUSES:
        raise Invalid(f"status must be one of the dial statuses ({', '.join(DIAL_STATUSES)}).")
    agent = body.get("agent")
    if agent is not None and (not isinstance(agent, str) or not agent.strip()):
        raise Invalid("agent must be the name of an agent logged in to the campaign.")
    talk_s = body.get("talk_s", 0)
    if not _is_int(talk_s) or talk_s < 0:
        raise Invalid("talk_s must be a whole number of seconds, 0 or more.")
    with state.lock:
        dialled, orphans = state.dial_batch(campaign_id, count, status, agent=agent, talk_s=talk_s)
        items = [lead_json(lead, state.campaign_id_of_list(lead.list_id)) for lead in dialled]
    # entries of leads deleted after they were loaded: called from the batch, with no lead left to update
    removed = [{"id": entry.lead_id, "uid": entry.uid, "number": entry.number} for entry in orphans]
    return JSONResponse({"success": True, "items": items, "removedCalled": removed})


@control
async def agents(request: Request) -> Response:
    """GET: the agents' sessions; PUT {"agents": [names]}: exactly these are logged in from now on."""
    campaign_id = _campaign_id(request)
    state = _state(request)
    state.get_campaign(campaign_id)
    if request.method == "PUT":
        names = (await _json_object(request)).get("agents")
        if not isinstance(names, list) or not all(isinstance(name, str) and name.strip() for name in names):
            raise Invalid("agents must be a list of agent names.")
        sessions = state.set_agents(campaign_id, names)
    else:
        sessions = state.agent_sessions(campaign_id)
    items = [
        {
            "agent": session.agent,
            "loginAt": _rfc3339(session.login_at),
            "logoutAt": None if session.logout_at is None else _rfc3339(session.logout_at),
            "calls": session.calls,
            "talkSeconds": session.talk_s,
        }
        for session in sessions
    ]
    return JSONResponse({"success": True, "items": items})


@control
async def faults(request: Request) -> Response:
    book: FaultBook = request.app.state.faults
    if request.method == "POST":
        rules = strict_json(await request.body())
        try:
            book.add(rules)
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
    elif request.method == "DELETE":
        book.clear()
    return JSONResponse({"success": True, "items": book.snapshot()})


@control
async def stats(request: Request) -> Response:
    counts: RequestStats = request.app.state.stats
    if request.method == "DELETE":
        counts.reset()
    return JSONResponse(counts.snapshot())


@control
async def export_shape(request: Request) -> Response:
    """GET: how the CSV export is written; PUT `{"dialect": "excel", "headers": "alias"}` changes it (either key)."""
    state = _state(request)
    if request.method == "PUT":
        body = strict_json(await request.body())
        if not isinstance(body, dict) or set(body) - {"dialect", "headers"}:
            raise Invalid('The body must be an object with "dialect" and/or "headers".')
        state.set_export_shape(body.get("dialect"), body.get("headers"))
    return JSONResponse({"success": True, "dialect": state.csv_dialect, "headers": state.csv_headers})


@control
async def expire_tokens(request: Request) -> Response:
    state = _state(request)
    with state.lock:
        expired = state.tokens.expire_all()
    return JSONResponse({"success": True, "expired": expired})


# ---- app ----------------------------------------------------------------------------------------------------

LISTS = "/api/v2/outbound/lists"
CAMPAIGNS = "/api/v2/outbound/campaigns"

# One route per path, dispatching on method, so a 405 carries the full Allow header.
ENDPOINTS: dict[str, dict[str, Handler]] = {
    "/oauth/token": {"POST": token},
    LISTS: {"GET": lists_index, "POST": lists_create},
    LISTS + "/{id}": {"GET": list_get, "PUT": list_update, "DELETE": list_delete},
    LISTS + "/{id}/leads": {"GET": list_leads, "POST": lead_add, "DELETE": list_clear},
    LISTS + "/{id}/leads/delete": {"POST": leads_bulk_delete},
    LISTS + "/{id}/leads/bulk/delete": {"POST": leads_bulk_delete},
    LISTS + "/{id}/leads/{leadId}": {"GET": lead_get, "PUT": lead_update, "DELETE": lead_delete},
    "/api/v2/outbound/leads": {"GET": all_leads},
    CAMPAIGNS: {"GET": campaigns_index, "POST": campaigns_create},
    CAMPAIGNS + "/{id}": {"GET": campaign_get, "PUT": campaign_update, "DELETE": campaign_delete},
    CAMPAIGNS + "/{id}/list": {"GET": campaign_list_get, "PUT": campaign_list_set, "DELETE": campaign_list_unset},
    CAMPAIGNS + "/{id}/list/{listId}": {"PUT": campaign_list_set_by_id},
    CAMPAIGNS + "/{id}/hopper": {"GET": campaign_hopper},
    CAMPAIGNS + "/{id}/status": {"GET": campaign_status},
    CAMPAIGNS + "/{id}/statistics": {"GET": campaign_statistics},
    "/sandbox/campaigns/{id}/dial": {"POST": dial},
    "/sandbox/campaigns/{id}/agents": {"GET": agents, "PUT": agents},
    "/sandbox/faults": {"GET": faults, "POST": faults, "DELETE": faults},
    "/sandbox/stats": {"GET": stats, "DELETE": stats},
    "/sandbox/tokens/expire": {"POST": expire_tokens},
    "/sandbox/export": {"GET": export_shape, "PUT": export_shape},
}


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    async def endpoint(request: Request) -> Response:
        # Starlette adds HEAD wherever GET is allowed; answer it with the GET handler (the body is dropped).
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return endpoint


ROUTES: list[BaseRoute] = [
    Route(path, _dispatch(handlers), methods=list(handlers)) for path, handlers in ENDPOINTS.items()
]


async def _http_error(request: Request, exc: Exception) -> Response:
    """404/405 from routing, as JSON like every other error (405 keeps its Allow header)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"No such endpoint: {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, headers=exc.headers)


def route_template(scope: Scope) -> str | None:
    """The route path template (as in the spec, e.g. `/api/v2/outbound/lists/{id}/leads`) a request hits."""
    partial = None
    for route in ROUTES:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return getattr(route, "path", None)
        if match is Match.PARTIAL and partial is None:
            partial = getattr(route, "path", None)
    return partial


def build_app(state: SandboxState) -> FaultsMiddleware:
    """The ASGI app for `state`; its `.faults` and `.stats` are the same objects /sandbox/* controls."""
    app = Starlette(routes=ROUTES, exception_handlers={404: _http_error, 405: _http_error})
    app.state.sandbox = state
    app.state.faults = FaultBook()
    app.state.stats = RequestStats()
    return FaultsMiddleware(app, app.state.faults, app.state.stats, route_template)
