"""The processes a benchmark run drives: the sandbox and `leadbot run --http`, each in its own process, and the
Slack stand-in (in this process) that receives the bot's replies. Also the signed-command sender that times them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from slackstub import SlackDriver, SlackStub, render_message

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "bench-signing-secret"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any SLACK_/BABELFORCE_/LEADBOT_ setting of the caller's shell, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "BABELFORCE_", "LEADBOT_"))}
    env.update(values)
    return env


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) of a process, in kB, from /proc (Linux); empty elsewhere."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of a process and of every process it started, recursively (a `--workers` launcher and its
    workers); a process that ended meanwhile counts for nothing."""
    total = cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        total += sum(tree_cpu_seconds(int(child)) for child in children)
    return total


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate a child process; kill it when it does not stop within 15 s."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class SandboxProcess:
    """`python -m bench.sandbox_proc`: the demo seed plus a `Bench N` list (and campaign) per size."""

    def __init__(self, sizes: list[int], *, find_lists: str = "", find_big: int = 0) -> None:
        self.sizes = sizes
        self.find_lists = find_lists  # COUNTxSIZE lists "Find i" (bench.sandbox_proc --find-lists)
        self.find_big = find_big  # one list "Find big" of this many leads
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.lists: dict[int, dict[str, Any]] = {}
        self.find: dict[str, dict[str, Any]] = {}  # "find 1" … and "find big": name, id, campaign_id, leads
        self.http: httpx.Client | None = None

    def __enter__(self) -> SandboxProcess:
        cmd = [sys.executable, "-m", "bench.sandbox_proc", "--sizes", ",".join(map(str, self.sizes))]
        cmd += ["--find-lists", self.find_lists, "--find-big", str(self.find_big)]
        self.process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=clean_env())
        try:
            assert self.process.stdout is not None
            line = self.process.stdout.readline()  # seeding a 1 000 000-lead list takes a while
            if not line:
                raise RuntimeError("the sandbox process did not start")
            announced = json.loads(line)
            self.base_url = announced["base_url"]
            self.lists = {int(size): value for size, value in announced["lists"].items() if size.isdigit()}
            self.find = {name: value for name, value in announced["lists"].items() if name.startswith("find")}
            self.http = httpx.Client(base_url=self.base_url, timeout=60)
        except BaseException:
            self.__exit__()  # a failed start must not leave the process behind
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.http is not None:
            self.http.close()
        if self.process is not None:
            stop(self.process)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    # the sandbox's own control endpoints
    def latency(self, ms: float) -> None:
        assert self.http is not None
        self.http.delete("/sandbox/faults").raise_for_status()
        if ms > 0:
            self.http.post("/sandbox/faults", json=[{"latency_ms": ms, "times": None}]).raise_for_status()

    def reset_stats(self) -> None:
        assert self.http is not None
        self.http.delete("/sandbox/stats").raise_for_status()

    def stats_total(self) -> int:
        assert self.http is not None
        return int(self.http.get("/sandbox/stats").json()["total"])

    def route_count(self, route: str) -> int:
        assert self.http is not None
        return int(self.http.get("/sandbox/stats").json()["byRoute"].get(route, 0))

    def token(self) -> str:
        assert self.http is not None
        form = {"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "sandbox"}
        return self.http.post("/oauth/token", data=form).json()["access_token"]


class BotProcess:
    """`leadbot run --http` as a real process, configured only through its environment, logging to a file."""

    def __init__(
        self,
        sandbox: SandboxProcess,
        stub: SlackStub,
        log_path: Path,
        python_args: tuple[str, ...] = (),
        *,
        workers: int = 1,
        **env: str,
    ) -> None:
        self.python_args = python_args  # e.g. ("-m", "cProfile", "-o", "bot.prof") to profile the bot
        self.workers = workers  # `--workers N` (1: the single process, started without the option)
        self.sandbox = sandbox
        self.stub = stub
        self.log_path = log_path
        self.extra_env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.started_in = 0.0
        self._log_start = 0

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> BotProcess:
        self.port = free_port()
        env = clean_env(
            SLACK_BOT_TOKEN=self.stub.bot_token,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.stub.api_url,
            BABELFORCE_BASE_URL=self.sandbox.base_url,
            BABELFORCE_CLIENT_ID="sandbox",
            BABELFORCE_CLIENT_SECRET="sandbox",
            LEADBOT_ALLOW_ALL_WRITERS="true",
            LEADBOT_DB=str(self.log_path.with_suffix(".db")),  # the audit trail beside the log, not in ./data
        )
        env.update(self.extra_env)  # e.g. another LEADBOT_DB
        cmd = [
            sys.executable,
            *self.python_args,
            "-m",
            "bot.cli",
            "run",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if self.workers > 1:
            cmd += ["--workers", str(self.workers)]
        started = time.monotonic()
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_until_healthy(started + START_TIMEOUT_S)
        except BaseException:
            self.__exit__()  # a failed start must not leave the bot behind
            raise
        self.started_in = time.monotonic() - started
        return self

    def _wait_until_healthy(self, deadline: float) -> None:
        assert self.process is not None
        # One client for every probe: a new one per probe loads the CA bundle each time (~30 ms of CPU, taken from
        # the bot that is starting, whose start-up time is measured).
        with httpx.Client(timeout=1) as probe:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"leadbot run --http exited with {self.process.returncode}; see {self.log_path}")
                try:
                    if probe.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200 and self._all_started():
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"leadbot run --http did not answer within {START_TIMEOUT_S:g} s")
                time.sleep(0.05)

    def _all_started(self) -> bool:
        """Every worker has finished its start-up (uvicorn logs one line per process): with `--workers`, the first
        one up answers /healthz while the others are still importing."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return self.workers == 1 or log.read().count(b"Application startup complete") >= self.workers

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGINT)  # like Ctrl-C: a profiler still writes its file
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def memory_kb(self) -> dict[str, int]:
        return memory_kb(self.pid)


@dataclass
class Sample:
    ack_s: float
    reply_s: float
    status: int
    reply_text: str


class Commands:
    """Signed `/lead` commands to one bot, one at a time, timed to the ack and to the reply at the response_url."""

    def __init__(self, stub: SlackStub, bot: BotProcess) -> None:
        self.stub = stub
        self.http = httpx.Client(timeout=30)
        self.driver = SlackDriver(stub, bot.events_url, SIGNING_SECRET, http=self.http, timeout=30)

    def close(self) -> None:
        self.http.close()

    def run(self, text: str, timeout: float = 60.0) -> Sample:
        started = time.monotonic()
        interaction = self.driver.command(text)
        assert interaction.response_url is not None
        rid = interaction.response_url.rsplit("/", 1)[1]
        event = self.stub.wait_for(lambda e: e.kind == "response" and e.name == rid, timeout=timeout)
        return Sample(interaction.elapsed, event.at - started, interaction.status, render_message(event.payload))
