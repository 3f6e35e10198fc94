"""The ``hpo`` group: every command hangs from it, and every error ends as one line.

Kept apart from ``hpo/cli/__init__.py`` so the command modules import the group without
importing the package that imports them.
"""

from __future__ import annotations

import os

import click

from hpo import __version__
from hpo.errors import HpoError, one_line


class OneLineErrors(click.Group):
    """Turns errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            # click's usage errors span four lines; one is enough, with where to look.
            where = e.ctx.command_path if e.ctx else "hpo"
            click.echo(f"hpo: error: {e.format_message()} (see '{where} --help')", err=True)
            ctx.exit(e.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except HpoError as e:
            click.echo(f"hpo: error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "hpo: interrupted; finished trials are saved and an interrupted trial is "
                "queued again: run the same command to resume",
                err=True,
            )
            ctx.exit(130)
        except OSError as e:  # a full disk, a read-only folder, a vanished file
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"hpo: error: {where}{e.strerror or one_line(e)}", err=True)
            ctx.exit(2)
        except Exception as e:
            if os.environ.get("HPO_DEBUG"):
                raise
            click.echo(
                f"hpo: internal error: {one_line(e)} (a bug in hpo; "
                "rerun with HPO_DEBUG=1 for the traceback and report it)",
                err=True,
            )
            ctx.exit(70)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpo")
def cli() -> None:
    """Bayesian hyperparameter search for speech emotion recognition on any corpus.

    A corpus (RAVDESS, EmoDB, CREMA-D, TESS, SAVEE, or a CSV listing your own clips) is
    prepared once with 'hpo data prepare', which fixes its labels and its speaker folds
    (K folds or leave-one-speaker-out). Studies are TOML files (./studies/NAME.toml, or the
    shipped ones); every trial is scored by speaker-independent cross-validation on those
    folds and stored in SQLite (or PostgreSQL) so it can be resumed, browsed and exported.
    """
