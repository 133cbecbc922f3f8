"""The checks of `leadbot doctor`: each one a small async generator in `CHECKS`, run in that order.

A check reads the settings and what earlier checks learned from the shared `Doctor` (the Slack and babelforce
clients, the lists, the campaigns) and yields one `CheckResult` per thing it checked, as soon as it knows: the report
shows each line while the next check runs. Adding a check is one function appended to `CHECKS`.

Every check only reads, save `write_check`, which runs only with `--write-check LIST LEAD` and writes a lead's rank
back unchanged, recorded in the audit trail before it is made, as every leadbot write is. Text here never holds a
phone number whole (bot.masking) or a secret (the runner redacts them too).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import shlex
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from babelforce import errors
from babelforce.client import FALLBACK_PAGE_SIZE, BabelforceClient, match_list
from babelforce.config import DEFAULT_PASSWORD_CLIENT_ID, BabelforceSettings
from babelforce.lookup import DELIMITER_NAMES, ExportShape, IndexedLead, inspect_export, number_key
from babelforce.models import Campaign, HopperEntry, Lead, LeadList

from .app import SLACK_API_URL
from .audit import Actor, AuditError, AuditStore, Outcome, open_store, sqlite_path, store_kind
from .doctor_report import CheckResult
from .explain import maybe_applied
from .masking import mask, mask_url
from .permissions import AccessPolicy
from .service import written
from .settings import BotSettings, StartupError, load_babelforce_settings, load_settings
from .slack_edge import slack_error
from .tuning import WRITE_IN_FLIGHT_MAX_S

#: Seconds a Slack Web API call may take before the check says Slack could not be reached.
SLACK_TIMEOUT = 15
#: Leads of each list whose export row is compared with the JSON API's answer (ExportShape.first_leads holds 5).
LEADS_COMPARED = 5
#: A delimiter as a report line names it.
#: Codecs (as Python names them) as people know them.
ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "ascii": "ASCII",
    "cp1252": "Windows-1252",
    "iso8859-1": "ISO-8859-1",
    "latin-1": "ISO-8859-1",
    "iso8859-15": "ISO-8859-15",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-16": "UTF-16",
}
#: The audit action and the fields the write check records: it is a rank change that changes nothing.
WRITE_CHECK_ACTION = "rank"
WRITE_CHECK_FIELDS = ("rank",)
#: Hopper entries looked up at once (one GET each).
HOPPER_LOOKUPS_AT_ONCE = 8
#: Names listed in one line before "…".
NAMES_SHOWN = 10
#: A lead's fields that a rank-only PUT may change: babelforce stamps the update.
STAMPED_FIELDS = frozenset({"lastUpdated"})
#: Fields a dial may change between the two reads of the write check (then the check is worth repeating).
DIAL_FIELDS = frozenset({"status", "callCount", "duration", "dateCalled", "calledSinceReset", "callback"})

#: The bot scopes leadbot always needs, and what for (manifest.yml's oauth_config.scopes.bot; a test keeps them equal).
ALWAYS_NEEDED_SCOPES = {
    "commands": "/lead itself",
    "chat:write": "a form's result once its response_url has expired (chat.postEphemeral, or the user's DM)",
    "im:write": "opening the DM with a user where leadbot is not in the channel (conversations.open)",
}
GROUP_SCOPE = "usergroups:read"

Mode = Literal["http", "socket"]


@dataclass(frozen=True, slots=True)
class Options:
    """What the command line asked for."""

    http: bool = False  # check as for `leadbot run --http`
    list_name: str | None = None  # only this list's export
    write_check: tuple[str, str] | None = None  # (list, lead): PUT its rank unchanged


@dataclass
class Doctor:
    """The settings, the clients and what the checks learned so far, shared by the checks in order."""

    options: Options
    settings: BotSettings | None = None
    babelforce_settings: BabelforceSettings | None = None
    mode: Mode = "http"
    slack: AsyncWebClient | None = None
    bot_token_accepted: bool = False
    granted_scopes: frozenset[str] | None = None  # from the x-oauth-scopes header; None: Slack did not say
    client: BabelforceClient | None = None
    logged_in: bool = False
    lists: list[LeadList] | None = None
    campaigns: list[Campaign] | None = None
    campaigns_failure: str | None = None
    shapes: dict[str, ExportShape] = field(default_factory=dict)  # list id -> its export as the export check read it

    def secrets(self) -> list[str]:
        """Every secret value the settings hold, for the report's redaction."""
        values: list[Any] = []
        if self.settings is not None:
            values += [self.settings.slack_bot_token, self.settings.slack_signing_secret, self.settings.slack_app_token]
        if self.babelforce_settings is not None:
            bf = self.babelforce_settings
            values += [bf.password, bf.client_secret, bf.access_token]
        return [value.get_secret_value() for value in values if value is not None]

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def campaign_list(self) -> list[Campaign] | None:
        """Every campaign, read once for all the checks that need them (None: unreadable, see campaigns_failure)."""
        if self.campaigns is None and self.campaigns_failure is None and self.client is not None:
            try:
                self.campaigns = await self.client.list_campaigns()
            except errors.BabelforceError as failure:
                self.campaigns_failure = failure.message
        return self.campaigns

    def list_name(self, list_id: str | None) -> str:
        found = next((lead_list for lead_list in self.lists or () if lead_list.id == list_id), None)
        return found.name if found is not None else f"list {list_id}"


Check = Callable[[Doctor], AsyncIterator[CheckResult]]


# ---------------------------------------------------------------------- settings


async def settings_complete(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """The settings `leadbot run` needs, checked as it checks them (same messages, never a value)."""
    name = "settings"
    problems: list[str] = []
    try:
        doctor.settings = load_settings()
    except StartupError as invalid:
        problems += invalid.problems
    if doctor.settings is not None:
        http = doctor.options.http or doctor.settings.slack_app_token is None
        doctor.mode = "http" if http else "socket"
        try:
            doctor.settings.check(doctor.mode)
        except StartupError as incomplete:
            problems += incomplete.problems
    try:
        doctor.babelforce_settings = load_babelforce_settings(required=True)
    except StartupError as incomplete:
        problems += incomplete.problems
    if problems:
        yield CheckResult.failed(
            name,
            f"{len(problems)} setting{'s' if len(problems) != 1 else ''} missing or invalid",
            "set them in the environment or in .env in this folder (.env.example describes each), as for leadbot run.",
            problems,
        )
        return
    assert doctor.babelforce_settings is not None
    mode = "Socket Mode (SLACK_APP_TOKEN)" if doctor.mode == "socket" else "HTTP mode (SLACK_SIGNING_SECRET)"
    host = urlsplit(doctor.babelforce_settings.resolved_base_url()).hostname
    yield CheckResult.passed(name, f"complete for leadbot run in {mode}; babelforce at {host}")


# ---------------------------------------------------------------------- Slack


async def slack_bot_token(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """Slack accepts SLACK_BOT_TOKEN (auth.test); its answer's x-oauth-scopes header says what it was granted."""
    name = "Slack bot token"
    settings = doctor.settings
    if settings is None:
        yield CheckResult.skipped(name, "not checked: the Slack settings could not be read")
        return
    if settings.slack_bot_token is None:
        yield CheckResult.skipped(name, "not checked: SLACK_BOT_TOKEN is not set")
        return
    base_url = settings.slack_api_url or SLACK_API_URL
    doctor.slack = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=base_url, timeout=SLACK_TIMEOUT
    )
    try:
        answer = await doctor.slack.auth_test()
    except SlackApiError as refused:
        yield CheckResult.failed(
            name,
            f"Slack refused it ({slack_error(refused)})",
            "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page into SLACK_BOT_TOKEN; "
            "if the page shows none, install the app to the workspace first.",
        )
        return
    except (aiohttp.ClientError, TimeoutError, OSError) as unreachable:
        yield CheckResult.failed(
            name,
            f"could not reach Slack at {urlsplit(base_url).hostname} ({type(unreachable).__name__})",
            "leave SLACK_API_URL empty (https://slack.com/api/), and check that this machine can reach Slack over "
            "HTTPS (proxy, firewall).",
        )
        return
    doctor.bot_token_accepted = True
    doctor.granted_scopes = granted_scopes(answer.headers)
    team, team_id = answer.get("team"), answer.get("team_id")
    facts = []
    accepted_teams = settings.leadbot_team_id
    if accepted_teams and team_id not in accepted_teams and answer.get("enterprise_id") not in accepted_teams:
        facts.append(
            f"LEADBOT_TEAM_ID does not list this workspace ({team_id}): its own members' requests will be refused."
        )
    yield CheckResult.passed(name, f"accepted by workspace {team} ({team_id}) as @{answer.get('user')}", facts)


async def slack_scopes(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """The bot token was granted every scope the enabled features need (manifest.yml's bot scopes)."""
    name = "Slack scopes"
    settings = doctor.settings
    if settings is None or not doctor.bot_token_accepted:
        yield CheckResult.skipped(name, "not checked: needs a bot token Slack accepts")
        return
    needed = needed_scopes(settings)
    facts = channel_reminders(settings)
    if doctor.granted_scopes is None:
        yield CheckResult.failed(
            name,
            "Slack did not say which scopes the bot token has (no x-oauth-scopes header in its answer)",
            f"check the app's OAuth & Permissions page by hand: it needs {', '.join(needed)}.",
            facts,
        )
        return
    missing = [scope for scope in needed if scope not in doctor.granted_scopes]
    if missing:
        yield CheckResult.failed(
            name,
            f"missing {', '.join(missing)}",
            "add them under OAuth & Permissions → Bot Token Scopes (manifest.yml lists them), reinstall the app to "
            "the workspace, and put the bot token it then shows in SLACK_BOT_TOKEN.",
            [f"{scope} is needed for {needed[scope]}" for scope in missing] + facts,
        )
        return
    yield CheckResult.passed(name, f"granted {', '.join(needed)}", facts)


async def slack_app_token(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """In Socket Mode, Slack accepts SLACK_APP_TOKEN (apps.connections.open, as leadbot run does at start)."""
    name = "Slack app token (Socket Mode)"
    settings = doctor.settings
    if settings is None:
        yield CheckResult.skipped(name, "not checked: the Slack settings could not be read")
        return
    if settings.slack_app_token is None:
        yield CheckResult.skipped(name, "not set: leadbot run serves HTTP")
        return
    if doctor.mode == "http":
        yield CheckResult.skipped(name, "not used: --http serves HTTP")
        return
    if doctor.slack is None:
        yield CheckResult.skipped(name, "not checked: needs SLACK_BOT_TOKEN")
        return
    try:
        await doctor.slack.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    except SlackApiError as refused:
        yield CheckResult.failed(
            name,
            f"Slack refused it ({slack_error(refused)})",
            "create an app-level token with the connections:write scope (Basic Information → App-Level Tokens) and "
            "put it in SLACK_APP_TOKEN; check that Socket Mode is on (manifest.yml: socket_mode_enabled).",
        )
        return
    except (aiohttp.ClientError, TimeoutError, OSError) as unreachable:
        yield CheckResult.failed(
            name,
            f"could not reach Slack ({type(unreachable).__name__})",
            "check that this machine can reach Slack over HTTPS (proxy, firewall).",
        )
        return
    yield CheckResult.passed(name, "accepted: leadbot run can connect in Socket Mode")


# ---------------------------------------------------------------------- babelforce


async def babelforce_login(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """babelforce gives a token for the configured grant (password grant, client credentials or a static token)."""
    name = "babelforce login"
    settings = doctor.babelforce_settings
    if settings is None:
        yield CheckResult.skipped(name, "not checked: the BABELFORCE_ settings are incomplete")
        return
    doctor.client = BabelforceClient.from_settings(settings)
    grant = describe_grant(settings)
    if settings.auth_mode() == "access_token":
        doctor.logged_in = True
        yield CheckResult.skipped(name, f"{grant}: checked by reading the lists, next")
        return
    try:
        await doctor.client.log_in()
    except errors.AuthenticationError as refused:
        yield CheckResult.failed(name, f"{grant}: {refused.message}", login_fix(settings))
        return
    except errors.BabelforceError as failure:
        yield CheckResult.failed(name, f"{grant}: {failure.message}", UNREACHABLE_FIX)
        return
    doctor.logged_in = True
    yield CheckResult.passed(name, f"{grant}: babelforce gave a token")


async def lists_readable(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """The account may read the outbound lead-lists."""
    name = "babelforce lists"
    if doctor.client is None or not doctor.logged_in:
        yield CheckResult.skipped(name, "not checked: needs a babelforce login")
        return
    try:
        doctor.lists = await doctor.client.list_lists()
    except errors.AuthenticationError as refused:
        yield CheckResult.failed(
            name,
            refused.message,
            "check the BABELFORCE_ credentials: a BABELFORCE_ACCESS_TOKEN is used as it is and never refreshed, "
            "so prefer a login with BABELFORCE_USERNAME and BABELFORCE_PASSWORD.",
        )
        return
    except errors.PermissionDeniedError as refused:
        yield CheckResult.failed(
            name, refused.message, "give the babelforce user leadbot logs in as access to the outbound lists."
        )
        return
    except errors.BabelforceError as failure:
        yield CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
        return
    names = [f"{lead_list.name} ({_leads(lead_list.count)})" for lead_list in doctor.lists]
    yield CheckResult.passed(name, f"{len(names)} list{'s' if len(names) != 1 else ''}: {_some(names)}")


async def list_exports(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """Each list's CSV export is readable, and what shape it has (delimiter, encoding, headers, rows)."""
    for lead_list in await _lists_to_check(doctor, "export"):
        if isinstance(lead_list, CheckResult):
            yield lead_list
            continue
        yield await export_shape(doctor, lead_list)


async def exports_agree(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """The first leads of each list's export are the leads the JSON API gives for those ids (uid, number, rank,
    status): the export's columns are read as what they are."""
    for lead_list in await _lists_to_check(doctor, "export vs JSON API"):
        if isinstance(lead_list, CheckResult):
            continue  # said once, by list_exports
        yield await export_agrees(doctor, lead_list)


async def hoppers_resolve(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """Every entry in each active campaign's hopper is a lead of the campaign's list."""
    name = "hoppers"
    found = await _campaigns_to_check(doctor, name)
    if isinstance(found, CheckResult):
        yield found
        return
    _, campaigns = found
    dialling = [campaign for campaign in campaigns if campaign.active and campaign.lead_list is not None]
    if not dialling:
        yield CheckResult.skipped(name, "no active campaign dials a list: no hopper to check")
        return
    for campaign in dialling:
        yield await hopper_resolves(doctor, campaign)


async def _campaigns_to_check(doctor: Doctor, name: str) -> tuple[list[LeadList], list[Campaign]] | CheckResult:
    """The lists and the campaigns, or check `name`'s result when they cannot be checked: skipped without the lists,
    failed when babelforce would not give the campaigns."""
    if doctor.lists is None:
        return CheckResult.skipped(name, "not checked: needs the lists")
    campaigns = await doctor.campaign_list()
    if campaigns is None:
        return CheckResult.failed(name, f"the campaigns could not be read: {doctor.campaigns_failure}", UNREACHABLE_FIX)
    return doctor.lists, campaigns


async def campaign_map(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """Which list each campaign dials: an active campaign must dial a list leadbot can read."""
    name = "campaign → list"
    found = await _campaigns_to_check(doctor, name)
    if isinstance(found, CheckResult):
        yield found
        return
    lists, campaigns = found
    known = {lead_list.id for lead_list in lists}
    facts, broken = [], []
    for campaign in sorted(campaigns, key=lambda campaign: (not campaign.active, campaign.name.casefold())):
        state = "active" if campaign.active else "not active"
        order = f", {campaign.list_order}" if campaign.list_order else ""
        if campaign.lead_list is None:
            facts.append(f"{campaign.name} ({state}{order}) → no list")
            if campaign.active:
                broken.append(f"{campaign.name} is active but dials no list")
            continue
        facts.append(f"{campaign.name} ({state}{order}) → {doctor.list_name(campaign.lead_list.id)}")
        if campaign.active and campaign.lead_list.id not in known:
            broken.append(f"{campaign.name} dials list {campaign.lead_list.id}, which is not among the lists")
    dialled = {campaign.lead_list.id for campaign in campaigns if campaign.lead_list is not None}
    facts += [f"{lead_list.name}: no campaign dials it" for lead_list in lists if lead_list.id not in dialled]
    active = sum(bool(campaign.active) for campaign in campaigns)
    detail = f"{len(campaigns)} campaign{'s' if len(campaigns) != 1 else ''}, {active} active"
    if broken:
        yield CheckResult.failed(
            name,
            f"{detail}; " + "; ".join(broken),
            "give the babelforce user access to that list, or set the campaign's list in babelforce: leadbot's "
            "hopper caveats need the list an active campaign dials.",
            facts,
        )
        return
    yield CheckResult.passed(name, detail, facts)


async def write_check(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """Only with --write-check LIST LEAD: PUT the lead's rank unchanged, then confirm that every other field is as
    it was (babelforce's PUT is partial: leadbot's rank and set send only what changes). The write is recorded in
    the audit trail `leadbot run` uses before it is made, as a rank change by "leadbot doctor (<OS user>)"."""
    if doctor.options.write_check is None:
        return
    list_ref, lead_ref = doctor.options.write_check
    name = f"partial update ({lead_ref} in {list_ref})"
    if doctor.client is None or doctor.lists is None:
        yield CheckResult.skipped(name, "not checked: needs the lists")
        return
    lead_list = match_list(doctor.lists, list_ref)
    if lead_list is None:
        yield CheckResult.failed(name, f"no list named {list_ref!r}", f"name one of: {_some(_names(doctor.lists))}.")
        return
    if doctor.settings is None:
        yield CheckResult.skipped(name, "not checked: needs the settings (LEADBOT_DB, where this write is recorded)")
        return
    try:
        audit = open_audit(doctor.settings)
    except AuditError as unusable:
        yield CheckResult.failed(name, f"nothing written: {unusable.message}", AUDIT_FIX)
        return
    where = audit_location(doctor.settings)
    command = "leadbot doctor --write-check " + shlex.join([list_ref, lead_ref])
    try:
        yield await partial_update(
            doctor.client, lead_list, lead_ref, name, Recorder(audit, Actor(user_id=operator()), command, where)
        )
    finally:
        audit.close()


CHECKS: list[Check] = [
    settings_complete,
    slack_bot_token,
    slack_scopes,
    slack_app_token,
    babelforce_login,
    lists_readable,
    list_exports,
    exports_agree,
    hoppers_resolve,
    campaign_map,
    write_check,
]


# ---------------------------------------------------------------------- one list, one campaign, one lead


async def export_shape(doctor: Doctor, lead_list: LeadList) -> CheckResult:
    """The list's export as babelforce.lookup reads it (`inspect_export`: one export, read to the end), kept for
    `export_agrees`. An export lookups cannot use is a ✗: leadbot still works by paging the JSON API, but that is
    the slow path, so exit status 0 keeps meaning "works as designed" (README, Before going live)."""
    name = f"export of {lead_list.name}"
    assert doctor.client is not None
    try:
        shape = await inspect_export(doctor.client, lead_list.id)
    except errors.BabelforceError as failure:  # what would stop a lookup too: the list gone, credentials, babelforce
        return CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
    doctor.shapes[lead_list.id] = shape
    if shape.usable:
        return CheckResult.passed(name, describe_shape(shape))
    problem = (shape.problem or "").rstrip(".")
    problem = problem[:1].lower() + problem[1:]  # a sentence of lookup's, as this report's detail
    media_type = (shape.content_type or "").split(";")[0].strip()
    if not shape.delimiter and media_type and media_type not in problem:  # not read as CSV: what babelforce sent
        problem += f" (Content-Type: {shape.content_type})"
    facts = [] if not shape.delimiter else [f"read as far as the header line: {_dialect(shape)}"]
    facts.append(slow_path(lead_list))
    return CheckResult.failed(name, problem, EXPORT_FIX.format(list_id=lead_list.id), facts)


def describe_shape(shape: ExportShape) -> str:
    """An export's shape in one line a supervisor can read: "50 rows, semicolon-separated, UTF-8 with BOM, Excel
    sep= line; columns leadId → id, leadUid → uid, phone → number, Rank → rank" (a header named as our field is
    named once)."""
    rows = f"{shape.rows} row{'s' if shape.rows != 1 else ''}"
    columns = ", ".join(ours if header == ours else f"{header} → {ours}" for ours, header in shape.columns.items())
    return f"{rows}, {_dialect(shape)}; columns {columns or 'none'}"


def _dialect(shape: ExportShape) -> str:
    """Delimiter in words, encoding, BOM, Excel sep= line, padding: "semicolon-separated, UTF-8 with BOM, …"."""
    words = DELIMITER_NAMES.get(shape.delimiter)
    parts = [f"{words}-separated" if words else f"separated by {shape.delimiter!r}"]
    if shape.encoding:
        parts.append(
            ENCODING_NAMES.get(shape.encoding.lower(), shape.encoding.upper()) + (" with BOM" if shape.bom else "")
        )
    elif shape.bom:
        parts.append("BOM")
    if shape.excel_sep_line:
        parts.append("Excel sep= line")
    if shape.padded:
        parts.append("spaces around fields")
    return ", ".join(parts)


def slow_path(lead_list: LeadList) -> str:
    """What leadbot does instead of reading the export, and what it costs, for this list."""
    if lead_list.count is None:
        cost = f"one request per {FALLBACK_PAGE_SIZE:,} leads".replace(",", " ")
    else:
        pages = max(1, -(-lead_list.count // FALLBACK_PAGE_SIZE))
        cost = f"{pages} request{'s' if pages != 1 else ''} for its {_leads(lead_list.count)}"
    return (
        "leadbot still works on this list, more slowly: lookups by uid or number, /lead find and the standings page "
        f"the JSON API instead ({cost} each time the list is read, where the export takes one)."
    )


async def export_agrees(doctor: Doctor, lead_list: LeadList) -> CheckResult:
    """The export's first leads (ExportShape.first_leads), each compared with GET of that lead by the export's id,
    field by field through the export's column mapping (an aliased `Rank` column is compared as rank)."""
    name = f"export vs JSON API, {lead_list.name}"
    assert doctor.client is not None
    shape = doctor.shapes.get(lead_list.id)
    if shape is None:
        return CheckResult.skipped(name, "not compared: the export could not be read")
    if not shape.usable:
        return CheckResult.skipped(name, "not compared: leadbot pages the JSON API for this list (see its export)")
    exported_leads = shape.first_leads[:LEADS_COMPARED]
    if not exported_leads:
        return CheckResult.skipped(name, "no leads to compare: the export is empty")
    problems: list[str] = []
    lost: list[str] = []
    for exported in exported_leads:
        try:
            lead = await doctor.client.get_lead(lead_list.id, exported.id)
        except errors.NotFoundError:
            problems.append(f"row with uid {exported.uid!r}: the JSON API has no lead with its id {exported.id}")
            continue
        except errors.BabelforceError as failure:
            return CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
        lost += charset_losses(exported, lead)
        problems += [f"uid {lead.uid!r}: {difference}" for difference in disagreements(exported, lead, shape.columns)]
    fields = [ours for ours in COMPARED_FIELDS if ours in shape.columns]
    count = len(exported_leads)
    if not problems and not lost:
        return CheckResult.passed(name, f"the first {count} leads agree on {_and(fields)}")
    written_in = CHARSET_FIX.format(charset=_declared_charset(shape.content_type) or _charset(shape))
    if problems:
        fix = COLUMNS_FIX + (f" Also: {written_in}" if lost else "")
        detail = f"{len(problems)} difference{'s' if len(problems) != 1 else ''} in the first {count} leads"
    else:
        fix = written_in
        uids = f"{len(lost)} uid{'s' if len(lost) != 1 else ''}"
        detail = f"{uids} lost characters in the export's charset ({_charset(shape)})"
    return CheckResult.failed(name, detail, fix, (problems + lost)[:NAMES_SHOWN])


#: The lead fields `export_agrees` compares (id by the GET itself), when the export has their columns.
COMPARED_FIELDS = ("id", "uid", "number", "rank", "status")


def disagreements(exported: IndexedLead, lead: Lead, columns: Mapping[str, str]) -> list[str]:
    """How an export row differs from the JSON API's lead, field by field for the fields the export has a column for
    (`columns`: our field -> the header read as it), each named with that header when it is another name. Numbers
    are compared by their digits and shown masked; a uid that differs only by characters its charset lost is left
    to `charset_losses`."""
    found = []

    def differs(ours: str, in_export: object, in_api: object) -> None:
        header = columns.get(ours, ours)
        named = ours if header == ours else f"{ours} (column {header})"
        found.append(f"{named}: the export says {in_export}, the JSON API {in_api}")

    uid_differs = (exported.uid or None) != (lead.uid or None)
    if "uid" in columns and uid_differs and not lost_characters(exported.uid or "", lead.uid or ""):
        differs("uid", repr(exported.uid), repr(lead.uid))
    if "number" in columns and number_key(exported.number or "") != number_key(lead.number or ""):
        differs("number", mask(exported.number or "-"), mask(lead.number or "-"))
    if "rank" in columns and exported.rank != lead.rank:
        differs("rank", exported.rank, lead.rank)
    if "status" in columns and (exported.status or None) != (lead.status or None):
        differs("status", exported.status, lead.status)
    return found


def charset_losses(exported: IndexedLead, lead: Lead) -> list[str]:
    """The uid as the export has it, when it is the JSON API's uid with characters lost in the export's charset."""
    if exported.uid != lead.uid and lost_characters(exported.uid or "", lead.uid or ""):
        return [f"uid {lead.uid!r} reads {exported.uid!r} in the export"]
    return []


def lost_characters(in_export: str, in_api: str) -> bool:
    """Whether `in_export` is `in_api` written in a charset that cannot hold some of its characters: each one
    replaced by "?" (what an encoder does with errors="replace"), or its UTF-8 bytes read as Windows-1252 ("Ã¼")."""
    if in_export == in_api:
        return False
    if len(in_export) == len(in_api) and all(
        mine == theirs or (mine == "?" and ord(theirs) > 127) for mine, theirs in zip(in_export, in_api, strict=True)
    ):
        return True
    return in_export == in_api.encode("utf-8").decode("cp1252", errors="replace")


def _charset(shape: ExportShape) -> str:
    """The export's charset as read, and as babelforce declared it when that says otherwise."""
    read = _encoding_name(shape.encoding) if shape.encoding else "unknown"
    declared = _declared_charset(shape.content_type)
    if declared and declared.replace("_", "-").upper() not in (read.upper(), shape.encoding.upper()):
        return f"{read}; babelforce declares {declared}"
    return read


def _encoding_name(codec: str) -> str:
    return ENCODING_NAMES.get(codec.lower(), codec.upper())


def _declared_charset(content_type: str | None) -> str | None:
    for parameter in (content_type or "").split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


async def hopper_resolves(doctor: Doctor, campaign: Campaign) -> CheckResult:
    """Each hopper entry of the campaign found as a lead of its list: by id (GET), else by list id + uid."""
    assert doctor.client is not None and campaign.lead_list is not None
    client, list_id = doctor.client, campaign.lead_list.id
    name = f"hopper of {campaign.name}"
    try:
        entries = await client.get_hopper(campaign.id)
    except errors.BabelforceError as failure:
        return CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
    if not entries:
        return CheckResult.passed(name, "empty: nothing loaded to check")
    slots = asyncio.Semaphore(HOPPER_LOOKUPS_AT_ONCE)

    async def resolve(entry: HopperEntry) -> str | None:
        async with slots:
            return await unresolved(client, list_id, entry)

    outcomes = await asyncio.gather(*(resolve(entry) for entry in entries), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, errors.BabelforceError):
            return CheckResult.failed(name, outcome.message, UNREACHABLE_FIX)
        if isinstance(outcome, BaseException):
            raise outcome
    problems = [
        f"position {entry.order if entry.order is not None else '?'}: {problem}"
        for entry, problem in zip(entries, outcomes, strict=True)
        if isinstance(problem, str)
    ]
    by_id = sum(entry.id is not None for entry in entries)
    how = "by id" if by_id == len(entries) else f"{by_id} by id, {len(entries) - by_id} by list id + uid"
    list_name = doctor.list_name(list_id)
    if not problems:
        return CheckResult.passed(name, f"all {len(entries)} entries are leads of {list_name} ({how})")
    deleted = (
        "a lead deleted after it was loaded keeps its entry until that batch dials it (babelforce's API cannot take "
        "it out), so this clears once the batch is dialled: run leadbot doctor again then."
    )
    if len(problems) == len(entries) and any(entry.id is not None for entry in entries):
        fix = (
            "either babelforce's hopper entry ids are not lead ids on this tenant, and leadbot would then say that "
            "a lead in the hopper is not (send these lines and one entry's field names, not its number, to "
            f"leadbot's developers before going live), or every loaded lead was deleted: {deleted}"
        )
    else:
        fix = f"{deleted} If none of these leads was deleted, send these lines to leadbot's developers."
    return CheckResult.failed(
        name,
        f"{len(problems)} of {len(entries)} entries are not leads of {list_name}",
        fix,
        problems[:NAMES_SHOWN] + (["…"] if len(problems) > NAMES_SHOWN else []),
    )


async def unresolved(client: BabelforceClient, list_id: str, entry: HopperEntry) -> str | None:
    """None when the entry is a lead of the list; else why not, in a few words (uid shown, never the number)."""
    uid = f"uid {entry.uid!r}" if entry.uid else "no uid"
    if entry.list_id is not None and entry.list_id != list_id:
        return f"{uid}: the entry names list {entry.list_id}, not the campaign's"
    if entry.id is not None:
        try:
            await client.get_lead(list_id, entry.id)
        except errors.NotFoundError:
            return f"{uid}: no lead with the entry's id {entry.id}"
        return None
    if entry.uid is not None and entry.list_id is not None:
        try:
            await client.find_lead_by_uid(list_id, entry.uid)
        except errors.NotFoundError:
            return f"{uid}: no lead with that uid"
        return None
    return "the entry names no lead (no id, and no list id + uid)"


@dataclass(frozen=True, slots=True)
class Recorder:
    """Where and as whom the write check records its write: the audit store `leadbot run` writes to."""

    audit: AuditStore
    actor: Actor
    command: str  # "leadbot doctor --write-check LIST LEAD", as the record's command text
    where: str  # the audit file, named in the report

    async def finish(self, change_id: int, outcome: Outcome, **fields: Any) -> str:
        """Complete the record; the report's line about it (a record left unfinished is said so, never raised)."""
        try:
            await self.audit.finish(change_id, outcome=outcome, **fields)
        except AuditError as failure:
            return (
                f"audit trail ({self.where}): change #{change_id} could not be completed ({failure.message}); "
                "leadbot run marks it unknown when it next starts"
            )
        return f"audit trail ({self.where}): change #{change_id}, {outcome}; /lead history shows it"


def open_audit(settings: BotSettings) -> AuditStore:
    """The audit store of these settings, opened as `leadbot run` opens it (bot/run.py): LEADBOT_DB, or its
    default; a SQLite file or PostgreSQL."""
    return open_store(settings.leadbot_db)


def audit_location(settings: BotSettings) -> str:
    """Where the record goes, for the report: the SQLite file's full path, or the PostgreSQL URL without its
    password."""
    if store_kind(settings.leadbot_db) == "postgresql":
        return mask_url(str(settings.leadbot_db))
    return str(Path(sqlite_path(settings.leadbot_db)).resolve())


def operator() -> str:
    """Who runs the write check, as its audit record names the actor: not a Slack user, the machine's user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor in the password database
        user = "unknown user"
    return f"leadbot doctor ({user})"


async def partial_update(
    client: BabelforceClient, lead_list: LeadList, reference: str, name: str, recorder: Recorder
) -> CheckResult:
    """Find the lead, then under its write lock (the one leadbot's own writes take, so no /lead rank is overwritten
    with the rank read here): read it, record the write, PUT only its rank (unchanged), finish the record, read it
    again and compare every field."""
    try:
        found = await client.find_lead(lead_list.id, reference)
    except errors.NotFoundError:
        return CheckResult.failed(
            name,
            f"no lead {reference!r} in {lead_list.name}",
            f"give a lead of {lead_list.name} by its uid or id: --write-check LIST LEAD.",
        )
    except errors.BabelforceError as failure:
        return CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
    holder = f"doctor:{uuid.uuid4().hex[:8]}"
    try:
        locked = await recorder.audit.lock_lead(lead_list.id, found.id, holder, ttl=WRITE_IN_FLIGHT_MAX_S)
    except AuditError as unusable:
        return CheckResult.failed(name, f"nothing written: {unusable.message}", AUDIT_FIX)
    if not locked:
        return CheckResult.failed(
            name,
            f"nothing written: leadbot is changing {found.uid or found.id} right now",
            "run the check again in a moment, or name a lead nobody is changing.",
        )
    try:
        return await _write_back_rank(client, lead_list, found.id, name, recorder)
    finally:
        with contextlib.suppress(AuditError):  # the lock lapses at its expiry
            await recorder.audit.unlock_lead(lead_list.id, found.id, holder)


async def _write_back_rank(
    client: BabelforceClient, lead_list: LeadList, lead_id: str, name: str, recorder: Recorder
) -> CheckResult:
    try:
        before = await client.get_lead(lead_list.id, lead_id)  # live, whatever the lookup used
    except errors.BabelforceError as failure:
        return CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
    if before.rank is None:
        return CheckResult.failed(
            name, f"{before.uid or before.id} has no rank to write back unchanged", "choose a lead that has a rank."
        )
    values = written(before, WRITE_CHECK_FIELDS, ())
    try:
        change_id = await recorder.audit.begin(
            actor=recorder.actor,
            action=WRITE_CHECK_ACTION,
            command=recorder.command,
            request_id=f"doctor:{uuid.uuid4().hex}",
            list_id=lead_list.id,
            list_name=lead_list.name,
            lead_id=before.id,
            lead_uid=before.uid,
            before=values,
            intended=values,  # what the write leaves: the same rank
        )
    except AuditError as unusable:
        return CheckResult.failed(name, f"nothing written: {unusable.message}", AUDIT_FIX)
    assert change_id is not None  # a new request id is never taken
    try:
        answer = await client.update_lead(lead_list.id, before.id, rank=before.rank)
    except errors.BabelforceError as failure:
        outcome = Outcome.UNKNOWN if maybe_applied(failure) else Outcome.FAILED
        recorded = await recorder.finish(change_id, outcome, detail=failure.message)
        return CheckResult.failed(
            name, f"the rank-only PUT failed: {failure.message}", put_fix(failure, outcome), [recorded]
        )
    except BaseException:
        await recorder.finish(change_id, Outcome.UNKNOWN, detail="leadbot doctor stopped before babelforce answered")
        raise
    recorded = await recorder.finish(
        change_id,
        Outcome.OK,
        after=written(answer, WRITE_CHECK_FIELDS, ()),
        lead_id=answer.id,
        lead_uid=answer.uid,
    )
    try:
        after = await client.get_lead(lead_list.id, before.id)
    except errors.BabelforceError as failure:
        return CheckResult.failed(
            name, f"the PUT was made, but the lead could not be read again: {failure.message}", UNREACHABLE_FIX
        )
    changes = changed_fields(_wire(before), _wire(after))
    if not changes:
        return CheckResult.passed(
            name, f"PUT of rank {before.rank} alone left every other field of {before.uid} as it was", [recorded]
        )
    dial_only = all(change.split(":")[0].split(".")[0] in DIAL_FIELDS for change in changes)
    fix = (
        "a dial changed the lead between the two reads: run the check again on a lead no active campaign is dialling."
        if dial_only
        else "babelforce's PUT is not partial on this tenant: leadbot's rank and set send only the fields they change "
        "and would reset the others the same way. Put the values above back in babelforce, and do not go live; "
        "send these lines to leadbot's developers."
    )
    return CheckResult.failed(
        name, f"a PUT of rank {before.rank} alone changed {len(changes)} other fields", fix, [*changes, recorded]
    )


def put_fix(failure: errors.BabelforceError, outcome: Outcome) -> str:
    """What to do about a rank-only PUT babelforce did not accept (or never answered)."""
    if outcome == Outcome.UNKNOWN:
        return (
            "babelforce may or may not have applied it; it wrote the rank the lead already had, so nothing changed "
            "either way: run leadbot doctor again in a moment."
        )
    if isinstance(failure, errors.PermissionDeniedError):
        return (
            "give the babelforce user leadbot logs in as permission to update leads (leadbot's rank and set need it), "
            "then run the check again."
        )
    if isinstance(failure, errors.InvalidRequestError):
        return (
            "babelforce refused a PUT of only the rank, which is what leadbot's rank sends: send this line to "
            "leadbot's developers, and do not go live until it is understood."
        )
    return UNREACHABLE_FIX


def changed_fields(
    before: Mapping[str, Any], after: Mapping[str, Any], *, ignore: frozenset[str] = STAMPED_FIELDS
) -> list[str]:
    """Every field (and data variable) whose value differs, as "field: before → after", the number masked and data
    values not shown (they may be personal): "data.email: changed"."""
    changes = []
    for key in sorted(set(before) | set(after)):
        if key in ignore:
            continue
        old, new = before.get(key), after.get(key)
        if key == "data" and isinstance(old, Mapping) and isinstance(new, Mapping):
            for variable in sorted(set(old) | set(new)):
                if variable not in new:
                    changes.append(f"data.{variable}: removed")
                elif variable not in old:
                    changes.append(f"data.{variable}: added")
                elif old[variable] != new[variable]:
                    changes.append(f"data.{variable}: changed")
        elif old != new:
            shown = mask if key.startswith("number") else str
            changes.append(f"{key}: {shown(str(old))} → {shown(str(new))}")
    return changes


# ---------------------------------------------------------------------- helpers


def granted_scopes(headers: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The scopes in Slack's x-oauth-scopes response header (None when the answer has no such header)."""
    for key, value in (headers or {}).items():
        if key.lower() == "x-oauth-scopes":
            return frozenset(scope.strip() for scope in str(value).split(",") if scope.strip())
    return None


def needed_scopes(settings: BotSettings) -> dict[str, str]:
    """The bot scopes these settings need, each with what for."""
    needed = dict(ALWAYS_NEEDED_SCOPES)
    also = [
        f"{what} in {variable}"
        for what, variable, channel in (
            ("the line per change", "LEADBOT_AUDIT_CHANNEL", settings.leadbot_audit_channel),
            ("campaign alerts", "LEADBOT_ALERT_CHANNEL", settings.leadbot_alert_channel),
        )
        if channel
    ]
    if also:
        needed["chat:write"] += ", " + " and ".join(also)
    if AccessPolicy.from_settings(settings).uses_groups:
        needed[GROUP_SCOPE] = "the members of the user groups (S…) that LEADBOT_WRITERS/LEADBOT_READERS name"
    return needed


def channel_reminders(settings: BotSettings) -> list[str]:
    """What doctor cannot see with leadbot's scopes: whether the bot is a member of the channels it posts to."""
    return [
        f"{variable} is {channel}: invite leadbot there (/invite @leadbot); doctor cannot see channel membership "
        "without more scopes."
        for variable, channel in (
            ("LEADBOT_AUDIT_CHANNEL", settings.leadbot_audit_channel),
            ("LEADBOT_ALERT_CHANNEL", settings.leadbot_alert_channel),
        )
        if channel
    ]


def describe_grant(settings: BabelforceSettings) -> str:
    mode = settings.auth_mode()
    if mode == "password":
        client_id = settings.client_id or DEFAULT_PASSWORD_CLIENT_ID
        return f"password grant as {settings.username} (client id {client_id})"
    if mode == "client_credentials":
        return f"client credentials (client id {settings.client_id})"
    return "static token (BABELFORCE_ACCESS_TOKEN, never refreshed)"


def login_fix(settings: BabelforceSettings) -> str:
    if settings.auth_mode() == "client_credentials":
        return (
            "check BABELFORCE_CLIENT_ID and BABELFORCE_CLIENT_SECRET; babelforce's API spec calls client credentials "
            "not yet generally available, so if your account has none, use the password grant instead "
            "(BABELFORCE_USERNAME and BABELFORCE_PASSWORD, and leave BABELFORCE_CLIENT_SECRET empty)."
        )
    return (
        "check BABELFORCE_USERNAME and BABELFORCE_PASSWORD (log in to babelforce's web app with them to be sure); "
        f"the password grant uses client id {DEFAULT_PASSWORD_CLIENT_ID} unless BABELFORCE_CLIENT_ID is set."
    )


UNREACHABLE_FIX = (
    "check BABELFORCE_BASE_URL (or BABELFORCE_ENV) and that this machine can reach babelforce; run leadbot doctor "
    "again in a moment if babelforce was busy."
)
EXPORT_FIX = (
    "ask babelforce support why GET /api/v2/outbound/lists/{list_id}/leads?format=csv answers this for leadbot's "
    "babelforce user (a sign-in page or proxy in front of the API, a missing permission, or an export without id, "
    "uid and number columns); if only the header names differ, send the header line (not its rows: they hold phone "
    "numbers) to leadbot's developers. Going live meanwhile works, with the slower lookups above."
)
COLUMNS_FIX = (
    "leadbot reads this export's columns as something they are not, so lookups by uid or number may find the wrong "
    "lead: send the export's header line (not its rows: they hold phone numbers) and these lines to leadbot's "
    "developers, and do not go live until it is fixed."
)
AUDIT_FIX = (
    "leadbot records every write in its audit trail before making it, so doctor writes nothing it cannot record: "
    "run doctor where leadbot run runs, with the same LEADBOT_DB (default data/leadbot.db in the working folder), "
    "as a user who may write that file and its folder."
)
CHARSET_FIX = (
    "babelforce writes this export in {charset}, which cannot hold every character of these uids, so leadbot "
    "cannot find such a lead by its uid (by its id or number it can): ask babelforce support to send the CSV export "
    "in UTF-8 (Content-Type: text/csv; charset=utf-8)."
)


async def _lists_to_check(doctor: Doctor, name: str) -> list[LeadList | CheckResult]:
    """The lists a per-list check looks at (all, or --list NAME), or one result saying why there are none."""
    if doctor.lists is None:
        return [CheckResult.skipped(name, "not checked: needs the lists")]
    wanted = doctor.options.list_name
    if wanted is None:
        return list(doctor.lists) or [CheckResult.skipped(name, "no lists to check")]
    found = match_list(doctor.lists, wanted)
    if found is None:
        return [CheckResult.failed(name, f"no list named {wanted!r}", f"name one of: {_some(_names(doctor.lists))}.")]
    return [found]


def _names(lists: Iterable[LeadList]) -> list[str]:
    return [lead_list.name for lead_list in lists]


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "") if names else "none"


def _leads(count: int | None) -> str:
    return "? leads" if count is None else f"{count} lead{'s' if count != 1 else ''}"


def _wire(lead: Lead) -> dict[str, Any]:
    return lead.model_dump(by_alias=True, mode="json")
