"""A local stand-in for babelforce's outbound API: real shapes, auth, errors and a live hopper, for tests and demos.

`SandboxServer` runs it on a loopback port in a background thread; `build_app` gives the ASGI app for a
`SandboxState` (the in-memory lists, leads, campaigns and tokens). The serving itself is `localserve`'s, which the
Slack stand-in in `slackstub/` uses too.
"""

from sandbox.app import build_app
from sandbox.server import SandboxServer
from sandbox.state import SandboxState

__all__ = ["SandboxServer", "SandboxState", "build_app"]
