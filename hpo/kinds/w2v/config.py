"""Settings of a ``w2v`` study: ``[model]`` and ``[training]``. No torch import here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from optuna.distributions import FloatDistribution

from hpo.config.space import Param, parse_space
from hpo.config.study import ObjectiveSpec
from hpo.config.tables import build_sections
from hpo.errors import SpecError
from hpo.kinds import speaker_norm as spknorm

SECTIONS = ("model", "training")
# How a layer's frames become one vector per clip. "layer_weighted" is the older name of
# probe_layer = "weighted" with mean pooling, still read in older study files and studies.
POOLINGS = ("mean", "max", "stats", "attention", "layer_weighted")
LEGACY_POOLING = "layer_weighted"
WEIGHTED = "weighted"  # probe_layer: a learned softmax mix of every layer (SUPERB's featurizer)
# The probe's head after pooling. linear: dropout + one linear layer. superb: SUPERB's
# emotion downstream (s3prl downstream/emotion/config.yaml: projector_dim 256, then
# UtteranceLevel MeanPooling and a linear post-net): a linear projector to 256 first.
HEADS = ("linear", "superb")
SUPERB_PROJECTOR = 256
# Searchable parameter → the section it belongs to.
SEARCHABLE = {
    "learning_rate": "training",
    "backbone_lr": "training",
    "head_lr_ratio": "training",
    "head_only_ratio": "training",
    "epochs": "training",
    "warmup_ratio": "training",
    "max_grad_norm": "training",
    "weight_decay": "training",
    "pooling": "model",
    "dropout": "model",
    "probe_layer": "model",
    "head": "model",
    "speaker_norm": "model",
}
TINY = "tiny"
# Settings that one path reads and the other does not: a study file that sets one on the
# wrong path is refused (one line), never silently ignored.
FINETUNE_ONLY = {
    "model": ("mask_time_prob",),  # the probe's backbone runs in eval mode: no masking
    "training": (
        "gradient_accumulation",
        "feature_cache",
        "dataloader_workers",
        # The probe trains a head alone: no backbone to give a rate or to hold back.
        "backbone_lr",
        "head_lr_ratio",
        "head_only_ratio",
    ),
}
# Per-speaker normalisation (hpo.kinds.speaker_norm) is on both paths: the probe normalises
# each layer's frames, fine-tuning the frozen CNN's output frames (finetune/speaker.py).
PROBE_ONLY = {"model": ("probe_layer", "head", "standardize")}


@dataclass(frozen=True)
class ModelSettings:
    # A hub id, a local directory saved with save_pretrained, or "tiny": a small
    # random-init Wav2Vec2 built locally (offline tests and demos; not pretrained).
    name: str = "facebook/wav2vec2-base"
    pooling: Literal["mean", "max", "stats", "attention", "layer_weighted"] = "mean"
    dropout: float = 0.1  # before the linear classifier
    # SpecAugment-style time masking of the encoder input while training (wav2vec 2.0 fine-tuning).
    mask_time_prob: float = 0.05
    # false: the whole backbone stays frozen and only pooling + classifier are trained, on
    # a cache of every layer's outputs (the SUPERB/EmoBox protocol; minutes, even on a CPU).
    finetune: bool = True
    # With finetune = false: the layer that pooling reads (-1: the backbone's output, 0: the
    # input of the first transformer layer), or "weighted": a learned mix of all of them.
    probe_layer: int | Literal["weighted"] = -1
    # With finetune = false: "linear" or "superb" (HEADS).
    head: Literal["linear", "superb"] = "linear"
    # With finetune = false: z-score each layer's frames with the mean and std over the
    # fold's training clips' frames before pooling (older studies: not standardised).
    standardize: bool = True
    # Per-speaker standardisation of frames, as the SVM's [features] speaker_norm: the same
    # modes and enrolment rule (hpo.kinds.speaker_norm), so the kinds compare on equal
    # terms. The probe: each layer's frames before pooling (and before the fold's
    # standardisation above); fine-tuning: the frozen CNN's output frames before the
    # feature projection. "off", "transductive" or "enrolment".
    speaker_norm: Literal["off", "transductive", "enrolment"] = "off"
    enrolment: Literal["clips", "neutral"] = "clips"
    enrolment_clips: int | float = 8  # a count, or a share (0-1) of each speaker's clips

    @property
    def norm(self) -> spknorm.SpeakerNorm:
        return spknorm.SpeakerNorm.of(self)

    def check(self, where: str) -> None:
        if not 0 <= self.dropout < 1 or not 0 <= self.mask_time_prob < 1:
            raise SpecError(f"{where}: 'dropout' and 'mask_time_prob' must be in [0, 1)")
        spknorm.check(self.norm, where)


@dataclass(frozen=True)
class TrainingSettings:
    epochs: float = 10.0
    batch_size: int = 8
    gradient_accumulation: int = 1
    # One peak rate for backbone and head alike: what every study file before backbone_lr
    # meant (on the probe path: the head's rate). Give backbone_lr instead, not both.
    learning_rate: float = 5e-5
    # Fine-tuning: the pretrained backbone's peak rate (None: learning_rate) ...
    backbone_lr: float | None = None
    # ... and the randomly initialised head's (pooling + classifier) as a multiple of it.
    head_lr_ratio: float = 1.0
    # Fine-tuning: the first share of a fold's updates trains the head alone, the backbone
    # frozen (wav2vec 2.0's freeze_finetune_updates); its own tri-stage schedule then runs
    # over the remaining updates. 0: the backbone trains from the first update.
    head_only_ratio: float = 0.0
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # wav2vec 2.0: warm up over the first 10% of updates,
    hold_ratio: float = 0.4  # hold for the next 40%, then decay linearly to 0
    max_grad_norm: float | Literal["off"] = "off"
    max_seconds: float = 6.0  # clips are cut to this length (RAVDESS clips are < 6 s)
    seed: int = 0
    # The cross-entropy's class weights, both paths (as the SVM's [svm] class_weight).
    # balanced: n_clips / (n_classes x clips of the class), over each fold's training clips,
    # so every emotion weighs alike in the loss, as it does in UAR. auto: balanced when
    # [objective] metric is "uar", else none (resolved when the study file is read).
    class_weight: Literal["auto", "balanced", "none"] = "auto"
    # auto: bf16 (or fp16 on GPUs without bf16) on a GPU, full precision on a CPU;
    # "bf16" runs on a CPU too. Both paths: fine-tuning and the probe's heads.
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    feature_cache: bool = True  # reuse the frozen CNN's output across epochs, folds, trials
    eval_every_epoch: bool = True  # validation metrics per epoch in TensorBoard
    tensorboard_dir: str = "runs"
    logging_steps: int = 0  # 0: about 50 points per fold
    dataloader_workers: int = 0

    def check(self, where: str) -> None:
        if self.epochs <= 0 or self.batch_size < 1 or self.gradient_accumulation < 1:
            raise SpecError(
                f"{where}: epochs, batch_size and gradient_accumulation must be positive"
            )
        if (
            not 0 <= self.warmup_ratio < 1
            or not 0 <= self.hold_ratio < 1
            or (self.warmup_ratio + self.hold_ratio > 1)
        ):
            raise SpecError(f"{where}: warmup_ratio + hold_ratio must be within [0, 1]")
        if self.learning_rate <= 0 or (self.backbone_lr is not None and self.backbone_lr <= 0):
            raise SpecError(f"{where}: learning_rate and backbone_lr must be positive")
        if self.head_lr_ratio <= 0:
            raise SpecError(
                f"{where}: head_lr_ratio = {self.head_lr_ratio}: the head's rate is the "
                "backbone's times this; give a positive number (1: one rate for both)"
            )
        if not 0 <= self.head_only_ratio < 1:
            raise SpecError(
                f"{where}: head_only_ratio = {self.head_only_ratio}: the share of updates "
                "that train the head alone must be in [0, 1)"
            )
        if not isinstance(self.max_grad_norm, str) and self.max_grad_norm <= 0:
            raise SpecError(f'{where}: max_grad_norm must be positive or "off"')
        if self.max_seconds <= 0:
            raise SpecError(
                f"{where}: 'max_seconds' = {self.max_seconds}: clips are cut to this many "
                "seconds; give a positive number (RAVDESS clips are under 6)"
            )
        for key in ("logging_steps", "dataloader_workers"):
            if getattr(self, key) < 0:
                raise SpecError(
                    f"{where}: '{key}' = {getattr(self, key)} must be 0 or more"
                    + (" (0: about 50 points per fold)" if key == "logging_steps" else "")
                )


@dataclass(frozen=True)
class Settings:
    model: ModelSettings
    training: TrainingSettings
    # How visibly and how fast trials run, not what they score: left out of the study's
    # hash, so changing them resumes the same study. (``feature_cache`` stays in: the cache
    # holds the CNN's float32 output, while without it the CNN runs under the trial's
    # autocast, which can move a score.)
    # What a key left out of a *stored* study definition meant when that study ran, where
    # the default has changed since: an older hpo trained every w2v study unweighted.
    STORED_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {"training": {"class_weight": "none"}}
    OPERATIONAL: ClassVar[dict[str, tuple[str, ...]]] = {
        "training": ("logging_steps", "tensorboard_dir", "dataloader_workers"),
    }

    @classmethod
    def stored_defaults(cls, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``STORED_DEFAULTS`` for the stored definition ``raw``, by path: an older hpo's
        probe read its features unstandardised (a fine-tuning study must not get the
        probe-only key, which it would refuse)."""
        out = {section: dict(keys) for section, keys in cls.STORED_DEFAULTS.items()}
        model = raw.get("model")
        if isinstance(model, dict) and model.get("finetune") is False:
            out.setdefault("model", {})["standardize"] = False
        return out

    @classmethod
    def from_tables(cls, raw: dict[str, Any], where: str) -> Settings:
        settings = _resolve_class_weight(build_sections(cls, raw, where), raw)
        finetune = settings.model.finetune
        for section, keys in (PROBE_ONLY if finetune else FINETUNE_ONLY).items():
            for key in keys:
                if key in (raw.get(section) or {}):
                    path = "the probe only (finetune = false)" if finetune else "fine-tuning only"
                    raise SpecError(f"{where}: [{section}] {key} applies to {path}; remove it")
        _check_searched(settings, parse_space(raw.get("space"), where), raw, where)
        m = settings.model
        if not finetune and m.pooling == LEGACY_POOLING and m.probe_layer not in (-1, WEIGHTED):
            raise SpecError(
                f'{where}: [model] pooling = "layer_weighted" reads every layer, not '
                f"probe_layer = {m.probe_layer}; write probe_layer = "
                '"weighted" with pooling = "mean"'
            )
        if not finetune and "standardize" not in (raw.get("model") or {}):
            # Hashed as if the file said so (as class_weight): an older probe study file,
            # which trained on unstandardised features, is refused as changed on resume.
            raw.setdefault("model", {})["standardize"] = settings.model.standardize
        return settings

    def merged(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fixed settings with a trial's parameters merged in: what a model is trained with
        (only the settings its path reads)."""
        unused = PROBE_ONLY if self.model.finetune else FINETUNE_ONLY
        out = {
            section: {
                k: v
                for k, v in dataclasses.asdict(getattr(self, section)).items()
                if k not in unused.get(section, ())
            }
            for section in SECTIONS
        }
        for k, v in params.items():
            out[SEARCHABLE[k]][k] = v
        return out


def _check_searched(
    settings: Settings, space: tuple[Param, ...], raw: dict[str, Any], where: str
) -> None:
    """What ``[space]`` can draw, held to the rules of a fixed setting: a parameter of the
    other path, two names for the backbone's rate, a value the setting would refuse."""
    unused = PROBE_ONLY if settings.model.finetune else FINETUNE_ONLY
    training = raw.get("training") if isinstance(raw.get("training"), dict) else {}
    given = set(training) | {p.name for p in space}
    if {"learning_rate", "backbone_lr"} <= given:
        raise SpecError(
            f"{where}: learning_rate and backbone_lr both set the backbone's rate (learning_rate "
            "is its older name, one rate for backbone and head); keep backbone_lr"
        )
    for p in space:
        section = SEARCHABLE.get(p.name)
        if p.name in unused.get(section or "", ()):
            path = "the probe only (finetune = false)"
            path = path if settings.model.finetune else "fine-tuning only"
            raise SpecError(f"{where}: [space.{p.name}] applies to {path}; remove it")
        if section != "training" or p.name == "max_grad_norm":  # check_space: its choices
            continue
        d = p.distribution
        for v in getattr(d, "choices", None) or (getattr(d, "low", None), getattr(d, "high", None)):
            if isinstance(v, int | float) and not isinstance(v, bool):
                t = dataclasses.replace(settings.training, **{p.name: v})
                t.check(f"{where}: [space.{p.name}] can draw {v}, but [training]")


def peak_rates(t: dict[str, Any]) -> tuple[float, float]:
    """(backbone's, head's) peak learning rate of merged ``[training]`` settings ``t``. A
    study or an export without backbone_lr trained both at ``learning_rate``."""
    backbone = t.get("backbone_lr") or t["learning_rate"]
    return backbone, backbone * t.get("head_lr_ratio", 1.0)


def layer_and_pooling(model: dict[str, Any]) -> tuple[int | str, str]:
    """(layer, pooling) a ``[model]`` table (a merged config) means: the older pooling
    "layer_weighted" is the mean of the learned layer mix (probe_layer "weighted")."""
    if model["pooling"] == LEGACY_POOLING:
        return WEIGHTED, "mean"
    return model.get("probe_layer", -1), model["pooling"]


def _resolve_class_weight(settings: Settings, raw: dict[str, Any]) -> Settings:
    """``class_weight = "auto"`` made explicit from the study's metric."""
    t = settings.training
    if t.class_weight != "auto":
        return settings
    objective = raw.get("objective")
    metric = (objective if isinstance(objective, dict) else {}).get("metric", ObjectiveSpec.metric)
    mode = "balanced" if metric == "uar" else "none"
    if mode == "balanced":
        # Hashed as if the file said so: a "uar" study that an older hpo (no such key, an
        # unweighted loss) ran is refused as changed on resume, not continued with a
        # different loss. Unweighted, as before, leaves every older study's hash alone.
        raw.setdefault("training", {})["class_weight"] = mode
    training = dataclasses.replace(t, class_weight=mode)
    return dataclasses.replace(settings, training=training)


def class_weights(labels: np.ndarray, n_labels: int, mode: str) -> np.ndarray | None:
    """The loss's weight per class for training clips of classes ``labels`` (None: no
    weights). Computed from the training clips only, never the validation ones; a class
    with no training clip never is a target, so its weight (1) is never used."""
    if mode != "balanced":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.asarray(labels)
    present = np.unique(labels)
    weights = np.ones(n_labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights


def check_space(space: tuple[Param, ...], where: str) -> None:
    for p in space:
        if p.name not in SEARCHABLE:
            raise SpecError(
                f"{where}: [space.{p.name}] is not a w2v parameter "
                f"(searchable: {', '.join(sorted(SEARCHABLE))})"
            )
        if p.name == "probe_layer":
            d = p.distribution
            bad = [
                c
                for c in getattr(d, "choices", ())
                if c != WEIGHTED and not (isinstance(c, int) and not isinstance(c, bool))
            ]
            if bad or isinstance(d, FloatDistribution):
                what = f"choice {bad[0]!r}" if bad else "a float"
                raise SpecError(
                    f"{where}: [space.probe_layer] {what} is not a layer: use an int range, "
                    f'or choices of layer numbers and "{WEIGHTED}"'
                )
        if p.name == "speaker_norm":
            bad = [c for c in getattr(p.distribution, "choices", [None]) if c not in spknorm.MODES]
            if bad:
                raise SpecError(
                    f"{where}: [space.speaker_norm] must be categorical over "
                    f"{', '.join(spknorm.MODES)}, got {bad[0]!r}"
                )
        if p.name == "head":
            bad = [c for c in getattr(p.distribution, "choices", ()) if c not in HEADS]
            if bad or not hasattr(p.distribution, "choices"):
                raise SpecError(
                    f"{where}: [space.head] unknown head {bad[0] if bad else ''!r} "
                    f"(use categorical choices of {', '.join(HEADS)})"
                )
        if p.name == "pooling":
            bad = [c for c in getattr(p.distribution, "choices", ()) if c not in POOLINGS]
            if bad:
                raise SpecError(
                    f"{where}: [space.pooling] unknown pooling {bad[0]!r} "
                    f"(use {', '.join(POOLINGS)})"
                )
        if p.name == "max_grad_norm":
            bad = [
                c
                for c in getattr(p.distribution, "choices", ())
                if c != "off" and not (isinstance(c, int | float) and c > 0)
            ]
            if bad:
                raise SpecError(
                    f"{where}: [space.max_grad_norm] choice {bad[0]!r} must be a "
                    'positive number or "off"'
                )
