"""The ``hpo`` command tree: each command parses its input and calls one library function.

Library modules are imported inside the commands so ``hpo --help`` starts fast and the
SVM path never imports torch. Every error a user can cause ends as one line on stderr and
a non-zero exit, never a traceback (``hpo.cli.group``).
"""

from __future__ import annotations

# Importing the command modules registers their commands on ``cli``.
from hpo.cli import data, models, studies, study  # noqa: F401
from hpo.cli.group import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="hpo")
