"""The registry's declarations as the tables tests compare with (usage lines, examples, form callback ids)."""

from __future__ import annotations

from typing import Any

from commands import registry

SPECS = registry.all_subcommands()
USAGE = {**{name: spec.usage for name, spec in SPECS.items()}, "help": registry.HELP_USAGE}
ALL_USAGE = registry.usage(None)
EXAMPLES = {name: spec.example for name, spec in SPECS.items()}
SUBCOMMANDS = registry.names()
WRITE_SUBCOMMANDS = frozenset(name for name, spec in SPECS.items() if spec.writes)
CALLBACK_IDS = {name: spec.callback_id for name, spec in SPECS.items() if spec.form is not None}
SUBCOMMAND_OF_CALLBACK = {callback: name for name, callback in CALLBACK_IDS.items()}
Command = Any
WriteCommand = Any
