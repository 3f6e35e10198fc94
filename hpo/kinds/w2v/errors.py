"""Why a fold stops early. The objectives turn both into a PRUNED trial with its reason."""

from __future__ import annotations


class Diverged(Exception):
    """Training produced a non-finite loss or non-finite logits (the message says where)."""


class Screened(Exception):
    """The epoch stage stopped this fold (the message says why) after ``epochs`` epochs."""

    def __init__(self, reason: str, epochs: float) -> None:
        super().__init__(reason)
        self.epochs = epochs
