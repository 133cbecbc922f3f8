"""Who may use leadbot, and where: Slack has no per-command permissions, so the bot decides.

`AccessPolicy` is what the operator configured (LEADBOT_WRITERS, LEADBOT_READERS, LEADBOT_CHANNELS,
LEADBOT_TEAM_ID, LEADBOT_ALLOW_ALL_WRITERS); `Gatekeeper.check` applies it to one `Requester` and answers None
(allowed) or a `Denial` whose message tells the user, in one sentence, what they need.

Order of the checks: workspace, then channel, then writer (for a write) or reader (for a read); a writer may
always read. User group ids (S…) are resolved with Slack's `usergroups.users.list` (scope usergroups:read),
cached per group for a short TTL; concurrent misses share one call, and the whole lookup is bounded so the check
fits before Slack's 3 s ack. A lookup that fails or is too slow denies ("groups_unavailable") and is not cached:
membership is never assumed, and the next request asks Slack again.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from . import ack_first

if TYPE_CHECKING:
    from .settings import BotSettings

log = logging.getLogger(__name__)

DenialReason = Literal["team", "channel", "reader", "writer", "groups_unavailable"]

#: How long a group's members are trusted, and how long one check may wait for Slack to list them.
GROUP_TTL_S = 60.0
LOOKUP_BUDGET_S = 1.5
#: Slack's answers to usergroups.users.list that a retry does not change (a wrong id, scope or token).
PERMANENT_GROUP_ERRORS = frozenset(
    {"missing_scope", "no_such_subteam", "invalid_auth", "not_authed", "account_inactive", "token_revoked"}
)
#: At most this many of the bot's channels are named in a channel denial.
CHANNELS_SHOWN = 3


def is_group_id(slack_id: str) -> bool:
    """A user group id (S…), as opposed to a user id (U…/W…)."""
    return slack_id.startswith("S")


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Who may do what, where. Every empty set means "no restriction" except `writers`: nobody may write
    unless listed there or `allow_all_writers` is set."""

    writers: frozenset[str] = frozenset()  # U…/W… user ids and S… group ids
    readers: frozenset[str] = frozenset()  # empty = everyone (in an accepted team)
    channels: frozenset[str] = frozenset()  # empty = any channel
    teams: frozenset[str] = frozenset()  # T… workspace ids and E… enterprise ids; empty = any
    allow_all_writers: bool = False

    def __post_init__(self) -> None:
        for name in ("writers", "readers", "channels", "teams"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"AccessPolicy.{name} takes a collection of ids, not one string")
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))

    @classmethod
    def open(cls) -> AccessPolicy:
        """Everything allowed: the local console, where the person typing runs the bot."""
        return cls(allow_all_writers=True)

    @classmethod
    def from_settings(cls, settings: BotSettings) -> AccessPolicy:
        return cls(
            writers=settings.leadbot_writers,
            readers=settings.leadbot_readers,
            channels=settings.leadbot_channels,
            teams=settings.leadbot_team_id,
            allow_all_writers=settings.leadbot_allow_all_writers,
        )

    @property
    def uses_groups(self) -> bool:
        """Whether any user group id (S…) is listed: the bot then needs the usergroups:read scope."""
        return any(is_group_id(slack_id) for slack_id in self.writers | self.readers)


@dataclass(frozen=True, slots=True)
class Requester:
    """Who is asking, from where (ids from the Slack request). `team_id` and `enterprise_id` are the acting user's
    own workspace and organisation (bot.slack_edge.actor_workspace), not the installing workspace: LEADBOT_TEAM_ID is
    checked against them, so a Slack Connect partner is refused unless their own workspace is listed."""

    user_id: str
    team_id: str | None = None  # None: the request does not tell (then only the enterprise id can match)
    enterprise_id: str | None = None
    channel_id: str | None = None  # None: unknown (then LEADBOT_CHANNELS cannot be satisfied -> denied when set)


@dataclass(frozen=True, slots=True)
class Denial:
    """Why a request is refused: `reason` for logs and the audit trail, `message` (one sentence naming what is
    needed, no secrets) for the user."""

    reason: DenialReason
    message: str


@dataclass(slots=True)
class _Members:
    fetched_at: float
    users: frozenset[str]


class Gatekeeper:
    """Applies an AccessPolicy to requests. One per app; safe for concurrent checks on its event loop."""

    def __init__(
        self,
        policy: AccessPolicy,
        client: AsyncWebClient | None,
        *,
        group_ttl: float = GROUP_TTL_S,
        lookup_budget: float = LOOKUP_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy.uses_groups and client is None:
            raise ValueError("an AccessPolicy naming user groups (S…) needs a Slack client to list their members")
        self.policy = policy
        self._client = client
        self._group_ttl = group_ttl
        self._lookup_budget = lookup_budget
        self._clock = clock
        self._members: dict[str, _Members] = {}
        self._lookups: dict[str, asyncio.Task[frozenset[str] | None]] = {}  # in flight, shared (single flight)
        self._refusals: dict[str, str] = {}  # group -> the error code of Slack's last refusal that retries cannot fix

    async def check(self, requester: Requester, *, write: bool, channel_rule: bool = True) -> Denial | None:
        """None when `requester` may write (`write=True`: add, rank, set, undo) or read (show, history, help);
        else the Denial to show them. Never raises for Slack trouble: an unconfirmed group membership denies.

        `channel_rule=False`: the request comes from no channel but from the user's private Home tab, where
        LEADBOT_CHANNELS has nothing to restrict (the workspace and who may read or write still apply)."""
        denial = self._where(requester, channel_rule=channel_rule) or await self._who(requester, write=write)
        if denial is not None:
            log.info("denied a %s to user %s: %s", "write" if write else "read", requester.user_id, denial.reason)
        return denial

    # ------------------------------------------------------------------ the rules

    def _where(self, requester: Requester, *, channel_rule: bool = True) -> Denial | None:
        policy = self.policy
        if policy.teams and not ({requester.team_id, requester.enterprise_id} & policy.teams):
            if requester.team_id is None and requester.enterprise_id is None:
                message = (
                    "leadbot could not tell which Slack workspace this request came from, and it serves only the "
                    "workspaces listed in LEADBOT_TEAM_ID."
                )
            else:
                ids = " / ".join(i for i in (requester.team_id, requester.enterprise_id) if i)
                message = (
                    f"leadbot does not serve this Slack workspace (id {ids}); whoever runs leadbot can add its id to "
                    "LEADBOT_TEAM_ID."
                )
            return Denial("team", message)
        if channel_rule and policy.channels and requester.channel_id not in policy.channels:
            shown = sorted(policy.channels)[:CHANNELS_SHOWN]
            # plain ids: the reply is escaped text, where <#C…> would show as typed rather than as a channel link
            where = "channel " + ", ".join(shown)
            if len(policy.channels) > CHANNELS_SHOWN:
                where += " or another of its channels"
            if requester.channel_id is None:
                message = (
                    "leadbot answers only in its channels (LEADBOT_CHANNELS) and could not tell which channel this "
                    f"came from; use it in {where}."
                )
            else:
                message = (
                    f"leadbot does not answer in this channel; use it in {where}, or ask whoever runs leadbot to add "
                    f"this channel (id {requester.channel_id}) to LEADBOT_CHANNELS."
                )
            return Denial("channel", message)
        return None

    async def _who(self, requester: Requester, *, write: bool) -> Denial | None:
        policy = self.policy
        user = requester.user_id
        if policy.allow_all_writers:
            return None  # everyone in an accepted workspace and channel may write, hence read
        if write:
            allowed_ids = policy.writers
        elif not policy.readers:
            return None  # reading is open to everyone in an accepted workspace and channel
        else:
            allowed_ids = policy.readers | policy.writers  # a writer may always read
        if user and user in allowed_ids:
            return None  # listed directly: no lookup
        groups = sorted(slack_id for slack_id in allowed_ids if is_group_id(slack_id))
        member = await self._in_any_group(user, groups, requester) if user and groups else False
        if member:
            return None
        if member is None:
            doing = "change leads" if write else "use leadbot"
            setting = "LEADBOT_WRITERS" if write else "LEADBOT_READERS"
            refused = sorted({self._refusals[group] for group in groups if group in self._refusals})
            if refused:  # retrying will not help: say what is wrong and who can fix it
                return Denial(
                    "groups_unavailable",
                    f"Slack refuses to list the user groups in {setting} ({', '.join(refused)}), so leadbot cannot "
                    f"tell whether you may {doing}; ask whoever runs leadbot to fix that setting or the app's scopes.",
                )
            return Denial(
                "groups_unavailable",
                f"Slack could not confirm your user groups just now, so leadbot cannot tell whether you may {doing}; "
                "please try again in a moment.",
            )
        you = f"you (member id {user})" if user else "you"
        if write:
            return Denial(
                "writer",
                f"Only leadbot writers can change leads; ask whoever runs leadbot to add {you} or one of your user "
                "groups to LEADBOT_WRITERS.",
            )
        return Denial(
            "reader",
            f"Only leadbot readers can use leadbot; ask whoever runs leadbot to add {you} or one of your user groups "
            "to LEADBOT_READERS.",
        )

    # ------------------------------------------------------------------ group membership

    async def _in_any_group(self, user: str, groups: Iterable[str], requester: Requester) -> bool | None:
        """True when a group's members (cached or listed now) include `user`; False when every group was listed
        and none does; None when some group could not be listed within the budget and none confirmed it."""
        pending: set[asyncio.Task[frozenset[str] | None]] = set()
        unavailable = False
        for group in groups:
            cached = self._members.get(group)
            if cached is not None and self._clock() - cached.fetched_at < self._group_ttl:
                if user in cached.users:
                    return True
                continue
            pending.add(self._lookup(group, requester))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lookup_budget
        while pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with ack_first.waiting_elsewhere():  # Slack's user groups: no CPU of ours meanwhile
                done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                users = None if task.cancelled() else task.result()
                if users is None:
                    unavailable = True
                elif user in users:
                    return True
        # Lookups still running keep going (others may share them) and fill the cache when they succeed.
        return None if unavailable or pending else False

    def _lookup(self, group: str, requester: Requester) -> asyncio.Task[frozenset[str] | None]:
        """The in-flight lookup of `group`, started when there is none (single flight)."""
        loop = asyncio.get_running_loop()
        task = self._lookups.get(group)
        if task is None or task.done() or task.get_loop() is not loop:
            # An org-wide install's token must say which workspace the group lives in.
            team_id = requester.team_id if requester.enterprise_id else None
            # a context of its own: it serves every request asking meanwhile, so it carries none's log context and
            # never waits its turn behind acks (bot.ack_first) while a request awaits it before its own ack
            task = loop.create_task(
                self._list_members(group, team_id),
                name=f"usergroups.users.list {group}",
                context=contextvars.Context(),
            )
            self._lookups[group] = task
            task.add_done_callback(functools.partial(self._forget_lookup, group))
        return task

    def _forget_lookup(self, group: str, task: asyncio.Task[frozenset[str] | None]) -> None:
        if self._lookups.get(group) is task:
            del self._lookups[group]

    async def _list_members(self, group: str, team_id: str | None) -> frozenset[str] | None:
        """The group's members from Slack, cached; None (not cached) when Slack could not say in time."""
        client = self._client
        if client is None:  # excluded by __init__ for policies with groups; kept for safety
            return None
        try:
            async with asyncio.timeout(self._lookup_budget):
                response = await client.usergroups_users_list(usergroup=group, team_id=team_id)
        except SlackApiError as failure:
            error = failure.response.get("error") if failure.response is not None else None
            if error in PERMANENT_GROUP_ERRORS:
                self._refusals[group] = str(error)
            else:  # only the latest failure speaks: an old refusal is not the reason for this one
                self._refusals.pop(group, None)
            hint = " (the app needs the usergroups:read scope: reinstall it from manifest.yml)"
            log.warning(
                "Slack refused to list user group %s: HTTP %s, %s%s",
                group,
                failure.response.status_code if failure.response is not None else "?",
                error or "no error code",
                hint if error == "missing_scope" else "",
            )
            return None
        except TimeoutError:
            self._refusals.pop(group, None)
            log.warning("Slack did not list user group %s within %.1f s", group, self._lookup_budget)
            return None
        except (SlackClientError, aiohttp.ClientError, OSError, ValueError) as failure:
            self._refusals.pop(group, None)
            log.warning("could not reach Slack to list user group %s: %s", group, type(failure).__name__)
            return None
        except Exception:  # whatever else broke, membership stays unconfirmed: deny, never allow
            self._refusals.pop(group, None)
            log.exception("listing user group %s failed unexpectedly", group)
            return None
        users = response.get("users")
        if not isinstance(users, list) or not all(isinstance(user, str) for user in users):
            log.warning("Slack listed user group %s without a list of user ids", group)
            return None
        members = frozenset(users)
        self._members[group] = _Members(self._clock(), members)
        self._refusals.pop(group, None)
        return members
