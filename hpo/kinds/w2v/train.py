"""One fine-tuning run with transformers' Trainer: our AdamW + wav2vec 2.0 schedule,
TensorBoard logging (loss, learning rate, pre-clip gradient norm, validation metrics),
per-epoch progress and a guard that stops a diverging run."""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.integrations import TensorBoardCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from hpo.kinds.w2v.data import ClipDataset, collate
from hpo.kinds.w2v.schedule import make_optimizer, make_schedule, phases, updates_per_epoch
from hpo.trial.metrics import fold_scores


class Diverged(Exception):
    """Training produced a non-finite loss or non-finite logits (message says where)."""


class Screened(Exception):
    """The epoch stage stopped this fold (message: why); ``epochs`` were trained."""

    def __init__(self, reason: str, epochs: float) -> None:
        super().__init__(reason)
        self.epochs = epochs


class _LengthGroupedTrainer(Trainer):
    """Batches of clips of similar length: less padding, and the CNN sees less silence."""

    def _get_train_sampler(self, train_dataset=None):
        ds = train_dataset if train_dataset is not None else self.train_dataset
        return LengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            lengths=ds.lengths(),
        )


class _Watch(TrainerCallback):
    """Progress per epoch and the divergence guard."""

    def __init__(self, fold: int, n_epochs: float, reporter, screen=None, metric="accuracy"):
        self.fold, self.n_epochs, self.reporter = fold, n_epochs, reporter
        self.screen, self.metric = screen, metric
        self.diverged: str | None = None
        self.screened: str | None = None
        self.last: dict[str, float] = {}

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        self.last.update({k: v for k, v in logs.items() if isinstance(v, int | float)})
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.diverged = (
                f"non-finite loss ({loss}) at fold {self.fold}, step {state.global_step}"
            )
            control.should_training_stop = True
        return control

    def on_epoch_end(self, args, state, control, **kw):
        if args.eval_strategy == "no":
            self._report(state)
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        self.last.update({k: v for k, v in (metrics or {}).items() if isinstance(v, int | float)})
        self._report(state)
        value = (metrics or {}).get(f"eval_{self.metric}")
        if self.screen is not None and value is not None:
            self.screened = self.screen.after_epoch(round(state.epoch or 0), value)
            if self.screened:
                control.should_training_stop = True
        return control

    def _report(self, state) -> None:
        if self.reporter:
            bits = [f"loss {self.last['loss']:.3f}"] if "loss" in self.last else []
            if "eval_accuracy" in self.last:
                bits.append(f"val acc {self.last['eval_accuracy']:.3f}")
            self.reporter.epoch_done(
                self.fold, round(state.epoch or 0), math.ceil(self.n_epochs), ", ".join(bits)
            )


@dataclass
class FoldResult:
    scores: dict[str, Any]
    logits: np.ndarray
    phases: tuple[int, int, int]
    epochs: float = 0.0


def precision_kwargs(mode: str) -> dict[str, bool]:
    """TrainingArguments for the study's ``mixed_precision``: bf16/fp16 on a GPU, none on a CPU."""
    if not torch.cuda.is_available() or mode == "no":
        return {}
    if mode == "bf16" or (mode == "auto" and torch.cuda.is_bf16_supported()):
        return {"bf16": True}
    return {"fp16": True}


def _eval_metrics(pred) -> dict[str, float]:
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    s = fold_scores(np.asarray(pred.label_ids), np.argmax(logits, -1), logits.shape[-1])
    return {k: v for k, v in s.items() if k != "confusion"}


def train_fold(
    model,
    training: dict[str, Any],
    train_ds: ClipDataset,
    valid_ds: ClipDataset | None,
    tb_dir: Path | None,
    fold: int = 0,
    reporter=None,
    screen=None,
    metric: str = "accuracy",
) -> FoldResult | None:
    """Fine-tune ``model`` on ``train_ds``; score ``valid_ds`` if given.

    Args:
        screen: an ``EpochScreen`` deciding after each epoch's validation whether to stop.

    Raises:
        Diverged: the loss or the validation logits became NaN/inf.
        Screened: the epoch stage stopped the fold.
    """
    t = training
    clip = t["max_grad_norm"]
    steps_per_epoch = updates_per_epoch(len(train_ds), t["batch_size"], t["gradient_accumulation"])
    total = math.ceil(steps_per_epoch * t["epochs"])
    ph = phases(total, t["warmup_ratio"], t["hold_ratio"])
    with tempfile.TemporaryDirectory(prefix="hpo-trainer-") as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=t["batch_size"],
            per_device_eval_batch_size=t["batch_size"],
            gradient_accumulation_steps=t["gradient_accumulation"],
            num_train_epochs=t["epochs"],
            max_steps=total,
            learning_rate=t["learning_rate"],
            weight_decay=t["weight_decay"],
            # 0 turns clipping off; the Trainer still logs the (pre-clip) gradient norm.
            max_grad_norm=0.0 if clip == "off" else float(clip),
            logging_steps=t["logging_steps"] or max(1, total // 50),
            logging_nan_inf_filter=False,  # a NaN loss must be seen, not averaged away
            eval_strategy="epoch" if (valid_ds is not None and t["eval_every_epoch"]) else "no",
            save_strategy="no",
            report_to="none",
            seed=t["seed"] + fold,
            data_seed=t["seed"] + fold,
            disable_tqdm=True,
            remove_unused_columns=False,
            label_names=["labels"],
            dataloader_num_workers=t["dataloader_workers"],
            use_cpu=not torch.cuda.is_available(),
            **precision_kwargs(t["mixed_precision"]),
        )
        optimizer = make_optimizer(model, t["learning_rate"], t["weight_decay"])
        watch = _Watch(fold, t["epochs"], reporter, screen, metric)
        callbacks: list[TrainerCallback] = [watch]
        writer = None
        if tb_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(log_dir=str(tb_dir))
            callbacks.append(TensorBoardCallback(tb_writer=writer))
        trainer = _LengthGroupedTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=valid_ds,
            data_collator=collate,
            compute_metrics=_eval_metrics if valid_ds else None,
            callbacks=callbacks,
            optimizers=(optimizer, make_schedule(optimizer, ph)),
        )
        trainer.remove_callback(PrinterCallback)  # progress goes through our reporter
        try:
            trainer.train()
            if watch.diverged:
                raise Diverged(watch.diverged)
            if watch.screened:
                raise Screened(watch.screened, trainer.state.epoch or 0.0)
            if valid_ds is None:
                return None
            pred = trainer.predict(valid_ds)
        finally:
            if writer is not None:
                writer.flush()
                writer.close()
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    if not np.all(np.isfinite(logits)):
        raise Diverged(f"non-finite validation logits at fold {fold}")
    scores = fold_scores(np.asarray(pred.label_ids), np.argmax(logits, -1), logits.shape[-1])
    return FoldResult(
        scores=scores, logits=logits, phases=(ph.warmup, ph.hold, ph.decay), epochs=t["epochs"]
    )
