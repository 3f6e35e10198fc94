"""What both training paths do around their own steps, written once: TensorBoard scalars,
the divergence guard, progress per epoch and the epoch stage.

Fine-tuning calls it from a Trainer callback, the probe from its own loop; either way a
fold logs the same tags (``train/loss``, ``train/learning_rate``, ``train/grad_norm``,
``eval/accuracy`` ...), stops on the same non-finite loss and is screened by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpo.kinds.w2v.errors import Diverged, Screened
from hpo.trial.metrics import METRICS


class FoldMonitor:
    """One fold's training, watched.

    Args:
        fold: the fold's index (in messages).
        n_epochs: the epochs the fold trains (shown in progress).
        tb_dir: where TensorBoard scalars go (None: nowhere).
        log_every: write training scalars every this many optimizer steps.
        on_epoch: progress callback ``(fold, epoch, n_epochs, info)``.
        screen: an ``EpochScreen`` deciding after each validated epoch whether to stop.
        metric: what the screen compares.
    """

    def __init__(
        self,
        fold: int,
        n_epochs: float,
        tb_dir: Path | None,
        log_every: int,
        on_epoch: Callable[[int, int, int, str], None] | None = None,
        screen: Any = None,
        metric: str = "accuracy",
    ) -> None:
        self.fold, self.n_epochs, self.log_every = fold, math.ceil(n_epochs), max(1, log_every)
        self.on_epoch, self.screen, self.metric = on_epoch, screen, metric
        self.last_loss: float | None = None
        self.writer = None
        if tb_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(tb_dir))

    def due(self, step: int) -> bool:
        """Whether ``step`` is a logging step (the probe reads the loss only then: reading
        it every step would make the GPU wait for the CPU)."""
        return step % self.log_every == 0

    def step(self, step: int, loss: float | None, lr: float | None, grad_norm: float | None):
        """A logging step: a non-finite loss stops the fold; the scalars go to TensorBoard.

        Raises:
            Diverged: the loss is NaN or infinite.
        """
        if loss is not None and not math.isfinite(loss):
            raise Diverged(f"non-finite loss ({loss}) at fold {self.fold}, step {step}")
        if loss is not None:
            self.last_loss = loss
        if self.writer is not None:
            for tag, v in (("loss", loss), ("learning_rate", lr), ("grad_norm", grad_norm)):
                if v is not None:
                    self.writer.add_scalar(f"train/{tag}", v, step)

    def epoch(self, epoch: int, step: int, scores: dict[str, Any] | None) -> None:
        """The end of epoch ``epoch`` (1-based), with its validation scores if it had any.

        Raises:
            Screened: the epoch stage stops the fold here.
        """
        if scores is not None and self.writer is not None:
            for m in METRICS:
                self.writer.add_scalar(f"eval/{m}", scores[m], step)
        if self.on_epoch:
            bits = [] if self.last_loss is None else [f"loss {self.last_loss:.3f}"]
            if scores is not None:
                bits.append(f"val acc {scores['accuracy']:.3f}")
            self.on_epoch(self.fold, epoch, self.n_epochs, ", ".join(bits))
        if scores is not None and self.screen is not None:
            reason = self.screen.after_epoch(epoch, scores[self.metric])
            if reason:
                raise Screened(reason, float(epoch))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()

    def __enter__(self) -> FoldMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def final_fit(n_clips: int, t: dict[str, Any], out: Path, reporter: Any) -> tuple[Any, FoldMonitor]:
    """The plan and the monitor of ``hpo train``'s one fit on all ``n_clips``, for either
    path: its TensorBoard run is ``tensorboard_dir/train/<model folder>``, its epochs go to
    the reporter's progress."""
    from hpo.kinds.w2v.schedule import plan_fold

    plan = plan_fold(n_clips, t)
    tb = Path(t["tensorboard_dir"]) / "train" / out.name
    on_epoch = reporter.epoch_done if reporter else None
    return plan, FoldMonitor(0, t["epochs"], tb, plan.log_every, on_epoch)
