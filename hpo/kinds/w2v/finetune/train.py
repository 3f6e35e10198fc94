"""One fine-tuning run with transformers' Trainer: our AdamW + the wav2vec 2.0 schedule
(backbone and head at their own rates, an optional head-only phase first), mixed precision,
length-grouped batches, watched by the shared ``FoldMonitor`` (TensorBoard, divergence
guard, progress per epoch, epoch stage)."""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import torch
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from hpo.kinds.w2v.config import class_weights, peak_rates
from hpo.kinds.w2v.errors import Diverged
from hpo.kinds.w2v.finetune.data import Collator
from hpo.kinds.w2v.monitor import FoldMonitor
from hpo.kinds.w2v.schedule import BACKBONE, FoldPlan, finetune_optimizer, make_schedule
from hpo.trial.metrics import METRICS, fold_scores


class _Watch(TrainerCallback):
    """The Trainer's events, handed to the fold's monitor."""

    def __init__(self, monitor: FoldMonitor) -> None:
        self.monitor = monitor
        self.eval_step: int | None = None  # the training step the last validation saw

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        if "loss" in logs:
            self.monitor.step(
                state.global_step, logs["loss"], logs.get("learning_rate"), logs.get("grad_norm")
            )

    def on_epoch_end(self, args, state, control, **kw):
        if args.eval_strategy == "no":
            self.monitor.epoch(round(state.epoch or 0), state.global_step, None)

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        if self.eval_step == state.global_step:
            return  # the validation after training: the fold's result, not another epoch
        self.eval_step = state.global_step
        scores = {k.removeprefix("eval_"): v for k, v in (metrics or {}).items()}
        self.monitor.epoch(round(state.epoch or 0), state.global_step, scores)


class _HeadOnly(TrainerCallback):
    """The backbone frozen for the first ``updates`` optimizer steps (wav2vec 2.0 trains only
    its output layer first): no gradient reaches it, so its weights stay exactly as loaded
    and no backward pass runs through it. Its rate is 0 meanwhile too (``plan.backbone``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, updates: int) -> None:
        # The optimizer's backbone groups: the frozen CNN is in none and stays frozen.
        self.params = [
            p for g in optimizer.param_groups if g.get("name") == BACKBONE for p in g["params"]
        ]
        self.updates, self.frozen = updates, False

    def _freeze(self, frozen: bool) -> None:
        for p in self.params:
            p.requires_grad_(not frozen)
        self.frozen = frozen

    def on_train_begin(self, args, state, control, **kw):
        if self.updates > 0:
            self._freeze(True)

    def on_step_begin(self, args, state, control, **kw):
        if self.frozen and state.global_step >= self.updates:
            self._freeze(False)

    def on_train_end(self, args, state, control, **kw):
        if self.frozen:
            self._freeze(False)


class _Scores:
    """``compute_metrics`` that keeps what it scored: the last epoch's validation is the
    fold's result, not repeated after training."""

    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None

    def __call__(self, pred) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        if not np.all(np.isfinite(logits)):
            raise Diverged("non-finite validation logits")
        z = np.asarray(logits, dtype=np.float64)
        z = np.exp(z - z.max(-1, keepdims=True))
        proba = z / z.sum(-1, keepdims=True)
        s = fold_scores(np.asarray(pred.label_ids), np.argmax(logits, -1), logits.shape[-1], proba)
        self.last = s
        return {k: s[k] for k in METRICS}  # what the Trainer logs: the scalars


class _InOrderTrainer(Trainer):
    """The Trainer, validating a fold's clips in their given order. With
    ``train_sampling_strategy="group_by_length"`` it also shuffles the validation clips into
    length groups, and the per-clip predictions a trial keeps must line up with the fold's
    clips (the scores themselves do not depend on the order; padding costs a little more)."""

    def _get_eval_sampler(self, eval_dataset):
        return None if eval_dataset is None else torch.utils.data.SequentialSampler(eval_dataset)


def training_args(
    t: dict[str, Any],
    out: str,
    fold: int,
    steps: tuple[int, int],
    validate: bool,
    dtype: torch.dtype | None,
) -> TrainingArguments:
    """The Trainer's arguments for ``[training]`` settings ``t`` on this worker's device;
    ``steps`` = (total optimizer steps, logging interval)."""
    args = TrainingArguments(
        output_dir=out,
        max_steps=steps[0],
        logging_steps=steps[1],
        per_device_train_batch_size=t["batch_size"],
        per_device_eval_batch_size=t["batch_size"],
        gradient_accumulation_steps=t["gradient_accumulation"],
        num_train_epochs=t["epochs"],
        learning_rate=peak_rates(t)[1],  # unused: our optimizer has each group's rate
        weight_decay=t["weight_decay"],
        # 0 turns clipping off; the Trainer still logs the (pre-clip) gradient norm.
        max_grad_norm=0.0 if t["max_grad_norm"] == "off" else float(t["max_grad_norm"]),
        logging_nan_inf_filter=False,  # a NaN loss must be seen, not averaged away
        eval_strategy="epoch" if validate else "no",
        save_strategy="no",
        report_to="none",
        seed=t["seed"] + fold,
        data_seed=t["seed"] + fold,
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=["labels"],
        train_sampling_strategy="group_by_length",
        dataloader_num_workers=t["dataloader_workers"],
        use_cpu=not torch.cuda.is_available(),
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
    )
    _ = args.device  # set the device up now, so what follows is not undone by it
    if args.n_gpu > 1:
        # A worker trains on one GPU (device.claim_one_gpu), never with DataParallel: it
        # would split every batch and change an epoch's updates. The Trainer does the same
        # for model-parallel models.
        args._n_gpu = 1
    return args


def train_fold(
    model,
    training: dict[str, Any],
    train_ds,
    valid_ds,
    monitor: FoldMonitor,
    plan: FoldPlan,
    fold: int = 0,
    dtype: torch.dtype | None = None,
    waves: list[np.ndarray] | None = None,
    affine: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any] | None:
    """Fine-tune ``model`` on ``train_ds`` (``data.fold_examples``) as ``plan`` says; return
    the scores on ``valid_ds`` (None without one).

    Args:
        monitor: the fold's monitor (TensorBoard, divergence guard, progress, screen).
        dtype: the autocast precision (``device.autocast_dtype``).
        waves: the clips, when the model has no CNN cache (``model.bank`` is None).
        affine: per-speaker normalisation, each clip's (shift, factor) of its CNN frames
            (``speaker.corpus_affine``), by corpus clip index; None: not normalised.

    Raises:
        Diverged: the loss or the validation logits became NaN/inf.
        Screened: the epoch stage stopped the fold.
    """
    t = training
    validate = valid_ds is not None and t["eval_every_epoch"]
    # An export made before the key existed trained unweighted: so does its `hpo train`.
    w = class_weights(np.asarray(train_ds["labels"]), model.n_labels, t.get("class_weight", "none"))
    model.class_weight = None if w is None else torch.tensor(w, dtype=torch.float32)
    scores, watch = _Scores(), _Watch(monitor)
    with tempfile.TemporaryDirectory(prefix="hpo-trainer-") as out:
        args = training_args(t, out, fold, (plan.total, plan.log_every), validate, dtype)
        # Our own AdamW: the Trainer's has one rate for every parameter, not one per group.
        optimizer = finetune_optimizer(model, t)
        head_only = plan.backbone.frozen if plan.backbone else 0
        trainer = _InOrderTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=valid_ds,
            data_collator=Collator(None if model.bank is not None else waves, affine),
            compute_metrics=scores if valid_ds is not None else None,
            callbacks=[watch, _HeadOnly(optimizer, head_only)],
            optimizers=(optimizer, make_schedule(optimizer, plan.phases, plan.backbone)),
        )
        trainer.remove_callback(PrinterCallback)  # progress goes through our reporter
        trainer.train()
        # The last epoch's validation is the fold's score; validate again only if the last
        # one did not see the final weights (or there was none).
        if valid_ds is not None and watch.eval_step != trainer.state.global_step:
            watch.eval_step = trainer.state.global_step
            trainer.evaluate()
    return scores.last
