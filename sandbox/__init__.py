"""A local stand-in for babelforce's outbound API: real shapes, auth, errors and a live hopper, for tests and demos.

`SandboxServer` runs it on a loopback port in a background thread; `build_app` gives the ASGI app for a
`SandboxState` (the in-memory lists, leads, campaigns and tokens). `BackgroundServer` serves any ASGI app the same
way (the Slack stand-in in `slackstub/` uses it).
"""

from sandbox.app import build_app
from sandbox.server import BackgroundServer, SandboxServer
from sandbox.state import SandboxState

__all__ = ["BackgroundServer", "SandboxServer", "SandboxState", "build_app"]
