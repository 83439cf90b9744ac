"""The `kvcap` command line: a Click group whose subcommands load on demand.

Each subcommand lives in `kvcap.commands.<module>` as a thin Click command over library
functions. They are imported only when run (or when `--help` lists them), and none of them
imports torch or textual at module level, so `kvcap --help` stays instant.
"""

from __future__ import annotations

import importlib

import click

from kvcap import __version__

# name users type -> "module:attribute" of the Click command
COMMANDS: dict[str, str] = {
    "caption": "kvcap.commands.caption:caption",
    "train": "kvcap.commands.train:train",
    "score": "kvcap.commands.score:score",
    "tui": "kvcap.commands.tui:tui",
    "compare": "kvcap.commands.compare:compare",
    "probe": "kvcap.commands.probe:probe",
    "data": "kvcap.commands.data:data",
    "cache": "kvcap.commands.cache:cache",
    "projectors": "kvcap.commands.projectors:projectors",
    "config": "kvcap.commands.config:config",
    "demo": "kvcap.commands.demo:demo",
    "export": "kvcap.commands.export:export",
}


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
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise
                return None  # that part of kvcap is not installed in this build
            return getattr(module, attr)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvcap")
def main() -> None:
    """Korean captions for folders of videos, with a model kvcap trains and scores itself.

    \b
      kvcap caption ./videos --checkpoint demo     caption a folder
      kvcap train --stage 1                        train (reads kvcap.toml)
      kvcap score out/captions.jsonl --refs val.jsonl
      kvcap tui                                    watch runs live
    """


if __name__ == "__main__":  # pragma: no cover
    main()
