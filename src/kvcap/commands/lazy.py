"""A Click group whose subcommands load on demand: `kvcap` itself (kvcap.cli) and `kvcap data`.

Each subcommand is named by "module:attribute" and imported only when it runs or when `--help`
lists it, so a group's help never loads torch or textual. Every command loaded this way ends its
`--help` with the exit-code policy (kvcap.errors); the policy itself is applied in kvcap.cli.
"""

from __future__ import annotations

import importlib
import sys

import click

from kvcap.errors import EXIT_CODES_HELP, EXIT_INTERRUPTED


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is needed."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module_name, attr = self.lazy_commands[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except KeyboardInterrupt:  # Ctrl-C while a command loads: the same 130 as while it runs
                click.echo("interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                return None  # that part of kvcap is not installed in this build
            return with_exit_codes(getattr(module, attr))
        return super().get_command(ctx, cmd_name)


def with_exit_codes(command: click.Command) -> click.Command:
    """Every command's --help ends with the exit-code policy (groups: each subcommand too)."""
    if command.epilog is None:
        command.epilog = EXIT_CODES_HELP
    for sub in getattr(command, "commands", {}).values():
        with_exit_codes(sub)
    return command
