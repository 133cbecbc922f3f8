"""The ack load generator, in its own process so that its work is not timed as the bot's. It plays Slack for
this part: it sends the signed `/lead` commands and serves the response_urls the bot replies to.

Reads a JSON spec on stdin: {"url": bot events URL, "secret": signing secret, "concurrency": n, "mode": "closed"
or "open", "texts": [command text, ...], "reply_timeout": s}. Bodies are built and signed before the clock starts.
- closed: `concurrency` users, each sends a command and waits for its reply before sending the next one, so at
  most `concurrency` commands are in progress (acked or not);
- open: the next command goes as soon as an ack comes back, so at most `concurrency` acks are awaited while any
  number of commands are in progress (a burst).
Prints a JSON list with, per command, the ack status and seconds to ack and to reply (null when none came).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

from aiohttp import web

from slackstub.signing import signed_headers


def _request(url: SplitResult, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {url.path or '/'} HTTP/1.1",
        f"Host: {url.netloc}",
        "Connection: close",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _post(host: str, port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        status_line = await reader.readline()
        await reader.read()  # Connection: close: the answer ends with the connection
        return int(status_line.split()[1])
    finally:
        writer.close()


def _body(text: str, response_url: str, n: int) -> str:
    return urlencode(
        {
            "token": "leadbot-local-verification-token",
            "team_id": "T0LEADBOT",
            "team_domain": "leadbot-local",
            "channel_id": "C0CAMPAIGN",
            "channel_name": "spring-campaign",
            "user_id": f"U0USER{n % 50:02d}",
            "user_name": "supervisor",
            "command": "/lead",
            "text": text,
            "api_app_id": "A0LEADBOT",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{n}.0.bench",
        }
    )


async def fire(spec: dict[str, Any]) -> list[dict[str, Any]]:
    texts: list[str] = spec["texts"]
    loop = asyncio.get_running_loop()
    replied: list[asyncio.Future[float]] = [loop.create_future() for _ in texts]
    reply_bodies: list[str] = ["" for _ in texts]

    async def response_url(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        reply_bodies[n] = await request.text()
        if not replied[n].done():
            replied[n].set_result(time.monotonic())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/response/{n}", response_url)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    prepared = []
    for n, text in enumerate(texts):
        body = _body(text, f"http://127.0.0.1:{port}/response/{n}", n).encode()
        prepared.append((body, signed_headers(spec["secret"], body)))
    results: list[dict[str, Any]] = [{} for _ in texts]
    pending = iter(range(len(texts)))
    closed = spec["mode"] == "closed"
    url = urlsplit(spec["url"])
    host, bot_port = url.hostname or "127.0.0.1", url.port or 80
    requests = [_request(url, body, headers) for body, headers in prepared]
    if True:

        async def worker() -> None:
            for n in pending:
                sent = time.monotonic()
                try:
                    status: int | str = await asyncio.wait_for(_post(host, bot_port, requests[n]), 30)
                except (OSError, TimeoutError, ValueError) as failure:
                    status = type(failure).__name__
                results[n] = {"status": status, "sent": sent, "ack_s": time.monotonic() - sent}
                if closed and status == 200:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(replied[n]), spec["reply_timeout"])

        await asyncio.gather(*(worker() for _ in range(spec["concurrency"])))
        waiting = [f for f in replied if not f.done()]
        if waiting:
            await asyncio.wait(waiting, timeout=spec["reply_timeout"])
    await runner.cleanup()
    for n, result in enumerate(results):
        result["reply_s"] = replied[n].result() - result["sent"] if replied[n].done() else None
        result["lead_card"] = "hopper" in reply_bodies[n].lower() and "lead-" in reply_bodies[n]
    return results


def main() -> int:
    spec = json.load(sys.stdin)
    json.dump(asyncio.run(fire(spec)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
