"""Who may use leadbot: AccessPolicy + Gatekeeper against a real Slack stand-in on loopback (no mocks).

User groups are listed with `usergroups.users.list` on the stub; calls are counted from what the stub recorded.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.permissions import AccessPolicy, Denial, Gatekeeper, Requester
from bot.settings import BotSettings
from slackstub import SlackStub
from tests.support import run

TEAM = "T0LEADBOT"
OTHER_TEAM = "T0ELSEWHERE"
ENTERPRISE = "E0ACME"
CHANNEL = "C0CAMPAIGN"
GROUP = "S0SUPERVISORS"
OTHER_GROUP = "S0AGENTS"
ALICE = "U0ALICE"  # listed directly as a writer
BOB = "U0BOB"  # a member of GROUP
CAROL = "W0CAROL"  # listed directly as a reader
MALLORY = "U0MALLORY"  # listed nowhere
METHOD = "usergroups.users.list"


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub(team_id=TEAM) as server:
        server.set_usergroup(GROUP, [BOB, "U0DAVE"])
        server.set_usergroup(OTHER_GROUP, ["U0ERIN"])
        yield server


def web(stub: SlackStub) -> AsyncWebClient:
    return AsyncWebClient(token=stub.bot_token, base_url=stub.api_url)


def who(
    user: str, *, team: str | None = TEAM, enterprise: str | None = None, channel: str | None = CHANNEL
) -> Requester:
    return Requester(user_id=user, team_id=team, enterprise_id=enterprise, channel_id=channel)


def gatekeeper(stub: SlackStub, policy: AccessPolicy, **kwargs: object) -> Gatekeeper:
    return Gatekeeper(policy, web(stub), **kwargs)  # type: ignore[arg-type]


WRITERS = AccessPolicy(writers=frozenset({ALICE, GROUP}))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- writers


def test_a_writer_listed_directly_may_write_without_any_lookup(stub: SlackStub) -> None:
    assert run(lambda: gatekeeper(stub, WRITERS).check(who(ALICE), write=True)) is None
    assert stub.calls(METHOD) == []


def test_a_member_of_a_writer_group_may_write(stub: SlackStub) -> None:
    assert run(lambda: gatekeeper(stub, WRITERS).check(who(BOB), write=True)) is None
    (call,) = stub.calls(METHOD)
    assert call.payload["usergroup"] == GROUP
    assert call.ok


def test_someone_in_no_writer_group_is_denied_with_a_sentence_naming_leadbot_writers(stub: SlackStub) -> None:
    denial = run(lambda: gatekeeper(stub, WRITERS).check(who(MALLORY), write=True))
    assert isinstance(denial, Denial)
    assert denial.reason == "writer"
    assert "LEADBOT_WRITERS" in denial.message
    assert f"you (member id {MALLORY})" in denial.message
    assert denial.message.count(". ") == 0 and denial.message.endswith(".")  # one sentence
    assert stub.bot_token not in denial.message
    assert len(stub.calls(METHOD)) == 1


def test_no_writers_at_all_means_nobody_writes_and_nothing_is_looked_up(stub: SlackStub) -> None:
    denial = run(lambda: gatekeeper(stub, AccessPolicy()).check(who(ALICE), write=True))
    assert denial is not None and denial.reason == "writer"
    assert stub.calls(METHOD) == []


def test_membership_in_any_of_several_groups_is_enough(stub: SlackStub) -> None:
    policy = AccessPolicy(writers=frozenset({GROUP, OTHER_GROUP}))
    keeper = gatekeeper(stub, policy)

    async def both() -> list[Denial | None]:
        return [await keeper.check(who("U0ERIN"), write=True), await keeper.check(who(MALLORY), write=True)]

    erin, mallory = run(both)
    assert erin is None
    assert mallory is not None and mallory.reason == "writer"
    assert sorted(call.payload["usergroup"] for call in stub.calls(METHOD)) == [OTHER_GROUP, GROUP]  # cached after


def test_allow_all_writers_lets_everyone_in_an_accepted_team_and_channel_write(stub: SlackStub) -> None:
    policy = AccessPolicy(
        readers=frozenset({CAROL}), channels=frozenset({CHANNEL}), teams=frozenset({TEAM}), allow_all_writers=True
    )
    keeper = gatekeeper(stub, policy)

    async def checks() -> list[Denial | None]:
        return [
            await keeper.check(who(MALLORY), write=True),
            await keeper.check(who(MALLORY), write=False),  # everyone may write, and a writer may read
            await keeper.check(who(MALLORY, team=OTHER_TEAM), write=True),
            await keeper.check(who(MALLORY, channel="C0RANDOM"), write=True),
        ]

    mallory_writes, mallory_reads, elsewhere, other_channel = run(checks)
    assert mallory_writes is None and mallory_reads is None
    assert elsewhere is not None and elsewhere.reason == "team"
    assert other_channel is not None and other_channel.reason == "channel"
    assert stub.calls(METHOD) == []


# ---------------------------------------------------------------------- readers


def test_with_no_readers_listed_everyone_may_read_but_not_write(stub: SlackStub) -> None:
    keeper = gatekeeper(stub, WRITERS)

    async def checks() -> list[Denial | None]:
        return [await keeper.check(who(MALLORY), write=False), await keeper.check(who(MALLORY), write=True)]

    reads, writes = run(checks)
    assert reads is None
    assert writes is not None and writes.reason == "writer"


def test_listed_readers_read_writers_read_and_others_are_told_about_leadbot_readers(stub: SlackStub) -> None:
    policy = AccessPolicy(writers=frozenset({ALICE, GROUP}), readers=frozenset({CAROL, OTHER_GROUP}))
    keeper = gatekeeper(stub, policy)

    async def checks() -> dict[str, Denial | None]:
        return {
            "carol reads": await keeper.check(who(CAROL), write=False),
            "carol writes": await keeper.check(who(CAROL), write=True),
            "alice reads": await keeper.check(who(ALICE), write=False),  # a writer may always read
            "bob reads": await keeper.check(who(BOB), write=False),  # through a writer group
            "erin reads": await keeper.check(who("U0ERIN"), write=False),  # through a reader group
            "mallory reads": await keeper.check(who(MALLORY), write=False),
        }

    results = run(checks)
    assert results["carol reads"] is None
    assert results["carol writes"] is not None and results["carol writes"].reason == "writer"
    assert results["alice reads"] is None
    assert results["bob reads"] is None
    assert results["erin reads"] is None
    denial = results["mallory reads"]
    assert denial is not None and denial.reason == "reader"
    assert "LEADBOT_READERS" in denial.message and MALLORY in denial.message


# ---------------------------------------------------------------------- channels and workspaces


def test_channels_restrict_where_the_bot_answers_and_an_unknown_channel_is_denied(stub: SlackStub) -> None:
    policy = AccessPolicy(writers=frozenset({ALICE}), channels=frozenset({CHANNEL, "G0PRIVATE"}))
    keeper = gatekeeper(stub, policy)

    async def checks() -> list[Denial | None]:
        return [
            await keeper.check(who(ALICE), write=True),
            await keeper.check(who(ALICE, channel="G0PRIVATE"), write=False),
            await keeper.check(who(ALICE, channel="C0RANDOM"), write=True),
            await keeper.check(who(ALICE, channel=None), write=False),
        ]

    here, private, elsewhere, unknown = run(checks)
    assert here is None and private is None
    assert elsewhere is not None and elsewhere.reason == "channel"
    assert "LEADBOT_CHANNELS" in elsewhere.message and "C0RANDOM" in elsewhere.message
    assert f"use it in channel {CHANNEL}" in elsewhere.message  # where the user can go instead
    assert unknown is not None and unknown.reason == "channel"
    assert "LEADBOT_CHANNELS" in unknown.message
    any_channel = gatekeeper(stub, WRITERS)
    assert run(lambda: any_channel.check(who(ALICE, channel=None), write=True)) is None


def test_only_accepted_workspaces_or_enterprises_are_served(stub: SlackStub) -> None:
    policy = AccessPolicy(writers=frozenset({ALICE}), teams=frozenset({TEAM, ENTERPRISE}))
    keeper = gatekeeper(stub, policy)

    async def checks() -> list[Denial | None]:
        return [
            await keeper.check(who(ALICE), write=True),
            # an org-wide install: the command comes from any workspace of the accepted enterprise
            await keeper.check(who(ALICE, team="T0ORGWORKSPACE", enterprise=ENTERPRISE), write=True),
            await keeper.check(who(ALICE, team=OTHER_TEAM), write=False),
            await keeper.check(who(ALICE, team=OTHER_TEAM, enterprise="E0OTHER"), write=False),
            await keeper.check(who(ALICE, team=None), write=False),
        ]

    home, org, other, other_org, unknown = run(checks)
    assert home is None and org is None
    for denial in (other, other_org, unknown):
        assert denial is not None and denial.reason == "team"
        assert "LEADBOT_TEAM_ID" in denial.message
    assert other is not None and OTHER_TEAM in other.message


def test_checks_run_in_order_team_then_channel_then_writer(stub: SlackStub) -> None:
    policy = AccessPolicy(writers=frozenset({GROUP}), channels=frozenset({CHANNEL}), teams=frozenset({TEAM}))
    keeper = gatekeeper(stub, policy)

    async def checks() -> list[Denial | None]:
        return [
            await keeper.check(who(MALLORY, team=OTHER_TEAM, channel="C0RANDOM"), write=True),
            await keeper.check(who(MALLORY, channel="C0RANDOM"), write=True),
            await keeper.check(who(MALLORY), write=True),
        ]

    reasons = [denial.reason if denial else None for denial in run(checks)]
    assert reasons == ["team", "channel", "writer"]
    assert len(stub.calls(METHOD)) == 1  # group membership is looked up only once the rest passed


def test_an_org_install_lists_the_group_in_the_requesters_workspace(stub: SlackStub) -> None:
    org = who(BOB, team="T0ORGWORKSPACE", enterprise=ENTERPRISE)
    assert run(lambda: gatekeeper(stub, WRITERS).check(org, write=True)) is None
    assert stub.calls(METHOD)[0].payload.get("team_id") == "T0ORGWORKSPACE"
    stub.clear()
    assert run(lambda: gatekeeper(stub, WRITERS).check(who(BOB), write=True)) is None
    assert "team_id" not in stub.calls(METHOD)[0].payload  # a single-workspace token needs none


# ---------------------------------------------------------------------- the group cache


def test_group_members_are_cached_for_the_ttl_then_listed_again(stub: SlackStub) -> None:
    clock = Clock()
    keeper = gatekeeper(stub, WRITERS, group_ttl=60.0, clock=clock)

    async def check(user: str) -> Denial | None:
        return await keeper.check(who(user), write=True)

    assert run(lambda: check(BOB)) is None
    clock.now += 59.0
    assert run(lambda: check(BOB)) is None
    denial = run(lambda: check(MALLORY))  # a non-member is answered from the cache too
    assert denial is not None and denial.reason == "writer"
    assert len(stub.calls(METHOD)) == 1

    stub.set_usergroup(GROUP, [MALLORY])  # membership changed in Slack
    clock.now += 2.0  # past the TTL
    assert run(lambda: check(MALLORY)) is None
    assert len(stub.calls(METHOD)) == 2
    bob = run(lambda: check(BOB))
    assert bob is not None and bob.reason == "writer"
    assert len(stub.calls(METHOD)) == 2


def test_concurrent_checks_share_one_lookup(stub: SlackStub) -> None:
    keeper = gatekeeper(stub, WRITERS)

    async def many() -> list[Denial | None]:
        users = [BOB, MALLORY] * 10
        return await asyncio.gather(*(keeper.check(who(user), write=True) for user in users))

    results = run(many)
    assert results[0::2] == [None] * 10
    assert all(denial is not None and denial.reason == "writer" for denial in results[1::2])
    assert len(stub.calls(METHOD)) == 1


# ---------------------------------------------------------------------- Slack cannot say: deny, never allow


def _assert_groups_unavailable(denial: Denial | None) -> None:
    assert denial is not None and denial.reason == "groups_unavailable"
    assert "Slack could not confirm your user groups" in denial.message and "try again" in denial.message
    assert "Traceback" not in denial.message and "xoxb" not in denial.message


@pytest.mark.parametrize(
    ("status", "error"),
    [(200, "missing_scope"), (200, "no_such_subteam"), (500, None), (429, None)],
    ids=["ok-false-missing-scope", "ok-false-no-such-subteam", "http-500", "http-429"],
)
def test_a_failed_lookup_denies_a_group_member_and_the_next_request_asks_again(
    stub: SlackStub, status: int, error: str | None
) -> None:
    stub.fail(METHOD, status=status, error=error)
    keeper = gatekeeper(stub, WRITERS)

    async def twice() -> list[Denial | None]:
        return [await keeper.check(who(BOB), write=True), await keeper.check(who(BOB), write=True)]

    first, second = run(twice)
    assert first is not None and first.reason == "groups_unavailable"
    if error in ("missing_scope", "no_such_subteam"):  # a retry will not help: say what to fix, and who can
        assert f"Slack refuses to list the user groups in LEADBOT_WRITERS ({error})" in first.message
        assert "ask whoever runs leadbot" in first.message
    else:
        _assert_groups_unavailable(first)
    assert second is None  # the failure was not cached
    assert [call.ok for call in stub.calls(METHOD)] == [False, True]


def test_a_failed_lookup_still_lets_direct_writers_in_and_confirmed_members_of_other_groups(stub: SlackStub) -> None:
    policy = AccessPolicy(writers=frozenset({ALICE, GROUP, "S0GONE"}))  # S0GONE: Slack answers no_such_subteam
    keeper = gatekeeper(stub, policy)

    async def checks() -> list[Denial | None]:
        return [await keeper.check(who(user), write=True) for user in (ALICE, BOB, MALLORY)]

    alice, bob, mallory = run(checks)
    assert alice is None
    assert bob is None  # confirmed by the group Slack did list
    assert mallory is not None and mallory.reason == "groups_unavailable"  # unknown is not "not a member"
    assert "(no_such_subteam)" in mallory.message and "LEADBOT_WRITERS" in mallory.message
    errors = [(call.payload["usergroup"], (call.response or {}).get("error")) for call in stub.calls(METHOD)]
    assert ("S0GONE", "no_such_subteam") in errors


def test_a_reader_check_that_needs_groups_fails_closed_too(stub: SlackStub) -> None:
    policy = AccessPolicy(writers=frozenset({ALICE}), readers=frozenset({OTHER_GROUP}))
    stub.fail(METHOD, status=200, error="ratelimited")
    _assert_groups_unavailable(run(lambda: gatekeeper(stub, policy).check(who("U0ERIN"), write=False)))


class SilentServer:
    """A loopback TCP server that accepts connections and never answers: a Slack that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent slack", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(connection)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        for connection in self.connections:
            connection.close()
        self.listener.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def test_a_slack_that_never_answers_denies_within_the_budget_and_the_next_request_tries_again(
    silent: SilentServer,
) -> None:
    client = AsyncWebClient(token="xoxb-silent", base_url=silent.api_url, timeout=30)
    keeper = Gatekeeper(WRITERS, client, lookup_budget=0.3)

    async def twice() -> list[tuple[Denial | None, float]]:
        results = []
        for _ in range(2):
            started = time.monotonic()
            denial = await keeper.check(who(BOB), write=True)
            results.append((denial, time.monotonic() - started))
            await asyncio.sleep(0.1)  # the abandoned lookup ends (its own budget) before the next request
        direct = await keeper.check(who(ALICE), write=True)
        results.append((direct, 0.0))
        return results

    (first, first_s), (second, second_s), (alice, _) = run(twice)
    _assert_groups_unavailable(first)
    _assert_groups_unavailable(second)
    assert first_s < 1.0 and second_s < 1.0, (first_s, second_s)  # far inside Slack's 3 s, not the client's 30 s
    assert len(silent.connections) == 2  # the slow failure was not cached: the second request asked again
    assert alice is None  # a direct writer never waits for Slack


def test_a_slack_that_cannot_be_reached_denies(stub: SlackStub) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens here once the probe is closed
    client = AsyncWebClient(token="xoxb-x", base_url=f"http://127.0.0.1:{closed_port}/api/")
    _assert_groups_unavailable(run(lambda: Gatekeeper(WRITERS, client).check(who(BOB), write=True)))


# ---------------------------------------------------------------------- the policy itself


def test_the_open_policy_allows_everything_without_a_client() -> None:
    keeper = Gatekeeper(AccessPolicy.open(), None)
    requesters = [who(MALLORY), who("U0X", team=None, channel=None), who("U0Y", team=OTHER_TEAM, channel="D0DM")]

    async def checks() -> list[Denial | None]:
        return [await keeper.check(r, write=write) for r in requesters for write in (True, False)]

    assert run(checks) == [None] * 6
    assert AccessPolicy.open().uses_groups is False


def test_a_policy_with_groups_needs_a_client() -> None:
    with pytest.raises(ValueError, match="Slack client"):
        Gatekeeper(WRITERS, None)
    Gatekeeper(AccessPolicy(writers=frozenset({ALICE})), None)  # no groups: no client needed


def test_policy_from_settings_and_uses_groups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {
        "LEADBOT_WRITERS": "U0ALICE, S0SUPERVISORS",
        "LEADBOT_READERS": "W0CAROL",
        "LEADBOT_CHANNELS": "C0CAMPAIGN G0PRIVATE",
        "LEADBOT_TEAM_ID": "T0LEADBOT,E0ACME",
        "LEADBOT_ALLOW_ALL_WRITERS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    policy = AccessPolicy.from_settings(BotSettings())
    assert policy == AccessPolicy(
        writers=frozenset({ALICE, GROUP}),
        readers=frozenset({CAROL}),
        channels=frozenset({CHANNEL, "G0PRIVATE"}),
        teams=frozenset({TEAM, ENTERPRISE}),
    )
    assert policy.uses_groups is True
    assert AccessPolicy(writers=frozenset({ALICE}), readers=frozenset({OTHER_GROUP})).uses_groups is True
    assert AccessPolicy(writers=frozenset({ALICE}), readers=frozenset({CAROL})).uses_groups is False
    assert AccessPolicy(writers={ALICE}).writers == frozenset({ALICE})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        AccessPolicy(writers=ALICE)  # type: ignore[arg-type]


def test_denials_are_logged_at_info_with_user_and_reason_only(
    stub: SlackStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.permissions")
    denial = run(lambda: gatekeeper(stub, WRITERS).check(who(MALLORY), write=True))
    assert denial is not None
    (record,) = [r for r in caplog.records if r.name == "bot.permissions" and r.levelno == logging.INFO]
    assert MALLORY in record.getMessage() and "writer" in record.getMessage()
    assert denial.message not in record.getMessage()
    assert stub.bot_token not in caplog.text
