"""The `kvcap` command line: a Click group whose subcommands load on demand.

Each subcommand lives in `kvcap.commands.<module>` as a thin Click command over library
functions. They are imported only when run (or when `--help` lists them), and none of them
imports torch or textual at module level, so `kvcap --help` stays instant.
"""

from __future__ import annotations

import sys

import click

from kvcap import __version__
from kvcap.commands.lazy import LazyGroup
from kvcap.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    KvcapError,
    one_line,
)
from kvcap.launch import check_launch

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
    "review": "kvcap.commands.review:review",
}


class KvcapGroup(LazyGroup):
    """The `kvcap` group: subcommands load on demand (kvcap.commands.lazy), and run under one
    exit-code policy."""

    def invoke(self, ctx: click.Context):
        """Run the subcommand under the one exit-code policy (see `kvcap.errors`).

        A `ClickException`, or an error `user_error_line` knows, prints one line and exits 2;
        Ctrl-C exits 130 with one line; commands exit 1 themselves when some of their work failed.
        Commands catch none of these themselves: this is the one place errors become exit codes.
        """
        quiet_libraries()
        try:
            check_launch()  # `accelerate launch --cpu --num_processes 2` is one process: say so first
            return super().invoke(ctx)
        except click.ClickException as exc:
            if exc.exit_code == 1:  # click's default: here a usage/config/environment error
                exc.exit_code = EXIT_USAGE
            raise
        except (KeyboardInterrupt, click.Abort):
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            line = user_error_line(exc)
            if line is None:
                raise  # a bug: its traceback is what a report needs
            raise _UserError(line) from None


def user_error_line(exc: BaseException) -> str | None:
    """The one line a user sees for `exc` (exit 2), or None for a bug (its traceback is shown).

    - a `KvcapError`: kvcap's own one-line message naming the file, key or option;
    - an OSError: the environment (a disk, a permission, a model hub, a network); with a file
      name it reads `<file>: <reason>`, else its first line (a hub error's advice follows it).
    """
    if isinstance(exc, KvcapError):
        return one_line(exc)
    if isinstance(exc, OSError):
        return one_line(exc, first_line=exc.filename is None)
    return None


def quiet_libraries() -> None:
    """Hide library chatter that is noise to a kvcap user (set before those libraries load).

    - bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community" on CPUs with
      AVX512-BF16: an optional faster kernel; the plain one works.
    - transformers' warnings (special-token ids of the tiny configs, and the tokenizer's
      "sequence length (69 > 64)" when SigLIP2 tokenizes a whole sentence before kvcap cuts it
      into 64-token windows: no longer sequence ever reaches the model). `TRANSFORMERS_VERBOSITY`
      set by the user wins.
    - `kernels` (pulled in by transformers; bitsandbytes asks it for that optional CPU kernel on
      every 4-bit load): "Skipping publisher trust check for 'kernels-community/...' because
      Hugging Face Hub is in offline mode." from its logger `kernels._internals.hf_hub`. Its
      package logger is set, so a notice moved to another kernels module stays quiet; errors
      still show. kernels has no environment switch for it.
    """
    import logging
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    logging.getLogger("kernels").setLevel(logging.ERROR)


class _UserError(click.ClickException):
    exit_code = EXIT_USAGE


@click.group(cls=KvcapGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kvcap")
def main() -> None:
    """Korean captions for folders of videos, with a model kvcap trains and scores itself.

    \b
      kvcap caption ./videos --checkpoint demo     caption a folder
      kvcap train --stage 1                        train (reads kvcap.toml)
      kvcap score out/captions.jsonl --refs val.jsonl
      kvcap tui                                    watch runs live

    Exit status: 0 ok, 1 some work failed (a video, a clip, a target under --check),
    2 usage/config/environment error, 130 interrupted.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
