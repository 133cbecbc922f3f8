"""The /lead subcommands, one module each, and their shared parts: the tokenizer and shared grammar (grammar),
field validators (fields), the registry that drives dispatch, help and forms (registry), form primitives (modals),
the dialer's rules (caveats) and Block Kit rendering (blocks, caveat_text).

Importing this package registers the built-in subcommands, in the order help lists them.
"""

from . import add, rank, show, find, set, history, remove, undo, campaign, hopper, why  # noqa: F401, I001 - registration order is help's order
