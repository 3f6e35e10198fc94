"""What the fine-tuning and the probe objectives share: the worker's device and precision,
the corpus's labels and folds, the backbone's provenance and where TensorBoard runs go."""

from __future__ import annotations

from pathlib import Path

import optuna

from hpo.config.study import StudySpec
from hpo.corpus.folds import Fold, corpus_folds
from hpo.corpus.manifest import Corpus
from hpo.kinds.w2v.backbone import quiet_transformers
from hpo.kinds.w2v.guard import FoldGuard
from hpo.kinds.w2v.monitor import FoldMonitor
from hpo.kinds.w2v.schedule import FoldPlan
from hpo.trial.cv import CvObjective


class W2vObjective(CvObjective):
    """Subclasses load their clips or caches, then call ``note_random_init``."""

    def __init__(self, spec: StudySpec, corpus: Corpus, reporter=None) -> None:
        from hpo.kinds.w2v.backbone import resolve_model_name
        from hpo.kinds.w2v.device import autocast_dtype, claim_one_gpu, training_device

        quiet_transformers()
        self.spec, self.corpus, self.reporter = spec, corpus, reporter
        self.log = reporter.log if reporter else None
        claim_one_gpu(self.log)  # before anything here starts CUDA
        self.device = training_device()
        t = spec.settings.training
        self.dtype = autocast_dtype(t.mixed_precision, self.device)
        self.model_name = spec.settings.model.name
        _, self.random_init = resolve_model_name(self.model_name)
        self.labels = corpus.label_ids
        self.n_labels = len(corpus.labels)
        self.folds = corpus_folds(corpus, spec.data.folds)
        self.tb_root = Path(t.tensorboard_dir) / spec.name

    def note_random_init(self) -> None:
        """Said after the clips were read, so that a damaged clip is the only line printed."""
        if self.log and self.random_init:
            self.log(
                f"note: model {self.model_name!r} is RANDOMLY INITIALISED, not pretrained: "
                "scores show the pipeline works, nothing more"
            )

    def announce(self, trial: optuna.Trial) -> Path:
        """Record the trial's backbone and TensorBoard folder; return that folder."""
        tb = self.tb_root / f"trial-{trial.number:04d}"
        trial.set_user_attr("tensorboard", str(tb))
        trial.set_user_attr("model", self.model_name)
        trial.set_user_attr("random_init_model", self.random_init)
        return tb

    def on_epoch(self, fold: int, epoch: int, n_epochs: int, info: str) -> None:
        if self.reporter:
            self.reporter.epoch_done(fold, epoch, n_epochs, info)

    def monitor(self, tb: Path, fold: Fold, plan: FoldPlan, guard: FoldGuard) -> FoldMonitor:
        """The fold's monitor: TensorBoard under ``tb``, progress, the epoch stage."""
        return FoldMonitor(
            fold.index,
            plan.epochs or self.spec.settings.training.epochs,  # searched: the trial's
            tb / f"fold-{fold.index}",
            plan.log_every,
            self.on_epoch,
            guard.screen(fold),
            self.spec.objective.metric,
        )
