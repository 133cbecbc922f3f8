"""The checks of `leadbot doctor`: each one a small async generator in `CHECKS`, run in that order.

A check reads the settings and what earlier checks learned from the shared `Doctor` (the Slack and babelforce
clients, the lists, the campaigns) and yields one `CheckResult` per thing it checked, as soon as it knows: the report
shows each line while the next check runs. Adding a check is one function appended to `CHECKS`.

Every check only reads, save `write_check`, which runs only with `--write-check LIST LEAD` and writes a lead's rank
back unchanged. Text here never holds a phone number whole (bot.masking) or a secret (the runner redacts them too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from babelforce import errors, lookup
from babelforce.client import BabelforceClient, match_list
from babelforce.config import DEFAULT_PASSWORD_CLIENT_ID, BabelforceSettings
from babelforce.lookup import IndexedLead, LeadIndex, number_key
from babelforce.models import Campaign, HopperEntry, Lead, LeadList

from .app import SLACK_API_URL
from .doctor_report import CheckResult
from .masking import mask
from .permissions import AccessPolicy
from .settings import BotSettings, StartupError, load_babelforce_settings, load_settings

#: Seconds a Slack Web API call may take before the check says Slack could not be reached.
SLACK_TIMEOUT = 15
#: Leads of each list whose export row is compared with the JSON API's answer.
LEADS_COMPARED = 5
#: Seconds an export read by one check is reused by the next (a doctor run on a big account takes minutes).
INDEX_REUSE_S = 900
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

    async def index(self, lead_list: LeadList, *, fresh: bool = False) -> LeadIndex:
        """The list's lookup index: from a new export when `fresh`, else the client's copy when a doctor run's age
        at most (the export check has just built it), so a list is exported once per run, and held no longer than
        the client's index cache holds it."""
        assert self.client is not None
        return await self.client.lead_index(lead_list.id, max_age=0 if fresh else INDEX_REUSE_S)

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
            f"Slack refused it ({_slack_error(refused)})",
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
            f"Slack refused it ({_slack_error(refused)})",
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
    if doctor.lists is None:
        yield CheckResult.skipped(name, "not checked: needs the lists")
        return
    campaigns = await doctor.campaign_list()
    if campaigns is None:
        yield CheckResult.failed(name, f"the campaigns could not be read: {doctor.campaigns_failure}", UNREACHABLE_FIX)
        return
    dialling = [campaign for campaign in campaigns if campaign.active and campaign.lead_list is not None]
    if not dialling:
        yield CheckResult.skipped(name, "no active campaign dials a list: no hopper to check")
        return
    for campaign in dialling:
        yield await hopper_resolves(doctor, campaign)


async def campaign_map(doctor: Doctor) -> AsyncIterator[CheckResult]:
    """Which list each campaign dials: an active campaign must dial a list leadbot can read."""
    name = "campaign → list"
    if doctor.lists is None:
        yield CheckResult.skipped(name, "not checked: needs the lists")
        return
    campaigns = await doctor.campaign_list()
    if campaigns is None:
        yield CheckResult.failed(name, f"the campaigns could not be read: {doctor.campaigns_failure}", UNREACHABLE_FIX)
        return
    known = {lead_list.id for lead_list in doctor.lists}
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
    facts += [f"{lead_list.name}: no campaign dials it" for lead_list in doctor.lists if lead_list.id not in dialled]
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
    it was (babelforce's PUT is partial: leadbot's rank and set send only what changes)."""
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
    yield await partial_update(doctor.client, lead_list, lead_ref, name)


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
    """The list's export as babelforce.lookup reads it: its shape when lookup can tell (`inspect_export`), else
    how many rows it could read."""
    name = f"export of {lead_list.name}"
    assert doctor.client is not None
    inspect_export = getattr(lookup, "inspect_export", None)
    try:
        if inspect_export is None:
            index = await doctor.index(lead_list, fresh=True)
            return CheckResult.passed(
                name, f"rows readable: {index.exported} (columns: {', '.join(sorted(index.columns))})"
            )
        shape = await inspect_export(doctor.client, lead_list.id)
    except errors.BabelforceError as failure:
        return CheckResult.failed(name, failure.message, EXPORT_FIX)
    if shape.problem:
        return CheckResult.failed(name, f"{shape.problem} ({describe_shape(shape)})", EXPORT_FIX)
    return CheckResult.passed(name, describe_shape(shape))


def describe_shape(shape: Any) -> str:
    """An ExportShape (babelforce.lookup) in one line: rows, delimiter, encoding, and which header is which field."""
    separator = {",": "comma", ";": "semicolon", "\t": "tab"}.get(shape.delimiter, repr(shape.delimiter))
    extras = [shape.encoding] + (["BOM"] if shape.bom else []) + (["Excel sep= line"] if shape.excel_sep_line else [])
    columns = ", ".join(f"{ours}={header!r}" for ours, header in shape.columns.items())
    return (
        f"{shape.rows} rows, {separator}-separated, {', '.join(extras)}; headers: {', '.join(shape.headers)}; "
        f"read as {columns or 'nothing'}"
    )


async def export_agrees(doctor: Doctor, lead_list: LeadList) -> CheckResult:
    """The export's first LEADS_COMPARED rows, each compared with GET of that lead by the export's id."""
    name = f"export vs JSON API, {lead_list.name}"
    assert doctor.client is not None
    try:
        index = await doctor.index(lead_list)
    except errors.BabelforceError as failure:
        return CheckResult.skipped(name, f"not checked: the export could not be read ({failure.message})")
    rows = [index.lead(row) for row in range(min(LEADS_COMPARED, index.exported))]
    if not rows:
        return CheckResult.skipped(name, "no leads to compare: the export is empty")
    compared = [f for f in ("rank", "status") if f in index.columns]
    problems: list[str] = []
    for exported in rows:
        try:
            lead = await doctor.client.get_lead(lead_list.id, exported.id)
        except errors.NotFoundError:
            problems.append(f"row with uid {exported.uid!r}: the JSON API has no lead with its id {exported.id}")
            continue
        except errors.BabelforceError as failure:
            return CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
        problems += [f"uid {exported.uid!r}: {difference}" for difference in disagreements(exported, lead, compared)]
    fields = ", ".join(["id", "uid", "number", *compared])
    if problems:
        return CheckResult.failed(
            name,
            f"{len(problems)} difference{'s' if len(problems) != 1 else ''} in the first {len(rows)} leads",
            "leadbot reads this export's columns as something they are not, so lookups by uid or number may find "
            "the wrong lead: send the export's header line (not its rows: they hold phone numbers) and these lines "
            "to leadbot's developers, and do not go live until it is fixed.",
            problems[:NAMES_SHOWN],
        )
    return CheckResult.passed(name, f"the first {len(rows)} leads agree ({fields})")


def disagreements(exported: IndexedLead, lead: Lead, compared: Iterable[str] = ("rank", "status")) -> list[str]:
    """How an export row differs from the JSON API's lead (numbers compared by their digits, shown masked)."""
    found = []
    if (exported.uid or None) != (lead.uid or None):
        found.append(f"the export says uid {exported.uid!r}, the JSON API {lead.uid!r}")
    if number_key(exported.number or "") != number_key(lead.number or ""):
        found.append(f"the export says number {mask(exported.number or '-')}, the JSON API {mask(lead.number or '-')}")
    if "rank" in compared and exported.rank != lead.rank:
        found.append(f"the export says rank {exported.rank}, the JSON API {lead.rank}")
    if "status" in compared and (exported.status or None) != (lead.status or None):
        found.append(f"the export says status {exported.status}, the JSON API {lead.status}")
    return found


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


async def partial_update(client: BabelforceClient, lead_list: LeadList, reference: str, name: str) -> CheckResult:
    """Read the lead, PUT only its rank (unchanged), read it again, and compare every field."""
    try:
        before = await client.find_lead(lead_list.id, reference)
        before = await client.get_lead(lead_list.id, before.id)  # live, whatever the lookup used
    except errors.NotFoundError:
        return CheckResult.failed(
            name,
            f"no lead {reference!r} in {lead_list.name}",
            f"give a lead of {lead_list.name} by its uid or id: --write-check LIST LEAD.",
        )
    except errors.BabelforceError as failure:
        return CheckResult.failed(name, failure.message, UNREACHABLE_FIX)
    if before.rank is None:
        return CheckResult.failed(
            name, f"{reference} has no rank to write back unchanged", "choose a lead that has a rank."
        )
    try:
        await client.update_lead(lead_list.id, before.id, rank=before.rank)
        after = await client.get_lead(lead_list.id, before.id)
    except errors.BabelforceError as failure:
        return CheckResult.failed(name, f"the rank-only PUT failed: {failure.message}", UNREACHABLE_FIX)
    changes = changed_fields(_wire(before), _wire(after))
    if not changes:
        return CheckResult.passed(
            name, f"PUT of rank {before.rank} alone left every other field of {before.uid} as it was"
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
        name, f"a PUT of rank {before.rank} alone changed {len(changes)} other fields", fix, changes
    )


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
    "leadbot cannot read this list's CSV export, so lookups by uid or number fail on it: send the export's header "
    "line (not its rows: they hold phone numbers) and this line to leadbot's developers."
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


def _slack_error(failure: SlackApiError) -> str:
    response = failure.response
    return str(response.get("error", "refused")) if response is not None else "refused"


def _wire(lead: Lead) -> dict[str, Any]:
    return lead.model_dump(by_alias=True, mode="json")
