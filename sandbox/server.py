"""Running the sandbox: embedded in a background thread (tests, demos) or in the foreground (the CLI).

The serving itself (uvicorn on a loopback port, in a thread or in the foreground) is `localserve`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp

from localserve import BackgroundServer, serve_in_foreground
from sandbox import seed as seeds
from sandbox.app import build_app
from sandbox.faults import FaultBook, RequestStats
from sandbox.state import SandboxState


def _sandbox_app(state: SandboxState) -> tuple[ASGIApp, FaultBook, RequestStats]:
    app = build_app(state)
    return app, app.faults, app.stats


class SandboxServer(BackgroundServer):
    """A seeded sandbox on a free loopback port, served by uvicorn in a background thread.

    Use as a context manager, or `.start()` / `.stop()`. `.state` is the live SandboxState (hold `state.lock`
    while changing it from another thread; `state.set_export_shape(dialect, headers)` changes how the CSV export is
    written, as `--csv-dialect` / `--csv-headers` and PUT /sandbox/export do); `.faults` and `.stats` are what
    /sandbox/faults and /sandbox/stats expose.
    """

    def __init__(
        self,
        seed: str = "demo",
        leads: int | None = None,
        hopper_size: int = 20,
        token_ttl: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        csv_dialect: str = "comma",
        csv_headers: str = "babelforce",
    ) -> None:
        self.seed = seed
        self.state = SandboxState(
            hopper_size=hopper_size, token_ttl=token_ttl, csv_dialect=csv_dialect, csv_headers=csv_headers
        )
        seeds.seed(self.state, seed, leads)
        app, self.faults, self.stats = _sandbox_app(self.state)
        # h11: the faults layer drops connections through h11's transport; keep it deterministic
        super().__init__(app, host=host, port=port, log_level=log_level, http="h11", name="sandbox")


def serve_forever(
    state: SandboxState,
    host: str = "127.0.0.1",
    port: int = 0,
    log_level: str = "warning",
    announce: Callable[[str], None] = print,
) -> None:
    """Serve `state` in the foreground until Ctrl-C / SIGTERM. `announce(base_url)` runs once bound."""
    app, _, _ = _sandbox_app(state)
    serve_in_foreground(app, host=host, port=port, log_level=log_level, http="h11", announce=announce)
