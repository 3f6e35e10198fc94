"""Settings of an ``svm`` study: ``[features]`` (librosa) and ``[svm]`` (fixed SVC settings)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from hpo.config.space import Param
from hpo.config.tables import build_sections
from hpo.errors import SpecError
from hpo.kinds import speaker_norm as spknorm

SECTIONS = ("features", "svm")
SVC_PARAMS = {"kernel", "C", "gamma", "degree", "coef0"}
# Searchable [svm] settings: the SVC's, and the pipeline's feature selection.
SVM_PARAMS = SVC_PARAMS | {"select_k"}
# Searchable feature choices: parameter name -> [features] key.
FEATURE_PARAMS = {"feature_set": "set", "speaker_norm": "speaker_norm"}
SEARCHABLE = SVM_PARAMS | set(FEATURE_PARAMS)
FEATURE_SETS = ("librosa", "egemaps", "compare")
# Early fusion: "egemaps+compare" names the sets concatenated, each weighed the same
# (``pipeline.fused_blocks``). One string, not a list: Optuna's categorical choices are
# plain values, and the same name then serves the space, a study file and an export.
FUSE = "+"


def set_parts(name: object) -> tuple[str, ...]:
    """The sets a ``feature_set`` value names, in order: ``"compare"`` -> ``("compare",)``,
    ``"egemaps+compare"`` -> ``("egemaps", "compare")``. ValueError, in words, for a name
    that is not a set or a combination of distinct sets."""
    parts = tuple(name.split(FUSE)) if isinstance(name, str) else ()
    unknown = [p for p in parts if p not in FEATURE_SETS]
    if not parts or unknown:
        what = f"{unknown[0]!r} is not a feature set" if unknown else "not a set name"
        raise ValueError(
            f"{name!r}: {what} (sets: {', '.join(FEATURE_SETS)}; fuse sets with "
            f"'{FUSE}', e.g. \"egemaps{FUSE}compare\")"
        )
    if len(set(parts)) != len(parts):
        raise ValueError(f"{name!r} names a set twice; fuse distinct sets")
    return parts


@dataclass(frozen=True)
class FeatureSettings:
    """Utterance-level descriptors.

    ``set``: ``librosa`` (statistics over time of the frame-level features below),
    ``egemaps`` (openSMILE eGeMAPSv02 functionals, 88) or ``compare`` (openSMILE
    ComParE_2016 functionals, 6,373), or several joined by ``+`` (``"egemaps+compare"``):
    early fusion, the sets concatenated with each weighed the same; the settings below
    apply to ``librosa`` only.
    """

    set: str = "librosa"
    sample_rate: int = 16_000
    n_fft: int = 512  # 32 ms at 16 kHz
    hop_length: int = 160  # 10 ms
    n_mfcc: int = 40
    deltas: bool = True  # MFCC deltas and delta-deltas
    n_mels: int = 64  # log-mel band energies
    spectral_contrast: bool = True
    spectral_shape: bool = True  # centroid, bandwidth, rolloff, flatness
    energy: bool = True  # RMS and zero-crossing rate
    pitch: bool = True  # YIN f0 statistics over voiced frames
    fmin: float = 60.0
    fmax: float = 500.0
    trim_db: float | None = 30.0  # strip leading/trailing silence; none = keep it
    stats: list[str] = field(default_factory=lambda: ["mean", "std"])
    # Standardise each feature within each speaker before the global scaler: removes voice
    # and recording differences. "off", "transductive" (over all of the speaker's clips,
    # the scored one included) or "enrolment" (over `enrolment_clips` other clips of the
    # speaker, or its other neutral clips with enrolment = "neutral"); see
    # hpo.kinds.speaker_norm. Old files' true / false mean transductive / off.
    speaker_norm: bool | Literal["off", "transductive", "enrolment"] = "off"
    enrolment: Literal["clips", "neutral"] = "clips"
    enrolment_clips: int | float = 8  # a count, or a share (0-1) of each speaker's clips

    @property
    def norm(self) -> spknorm.SpeakerNorm:
        return spknorm.SpeakerNorm.of(self)

    @property
    def sets(self) -> tuple[str, ...]:
        """The feature sets this setting concatenates (one, unless fused)."""
        return set_parts(self.set)

    def part(self, name: str) -> FeatureSettings:
        """These settings for one of the fused sets."""
        return dataclasses.replace(self, set=name)

    def check(self, where: str) -> None:
        try:
            set_parts(self.set)
        except ValueError as e:
            raise SpecError(f"{where}: 'set' {e}") from None
        bad = [s for s in self.stats if s not in ("mean", "std", "min", "max", "median")]
        if bad or not self.stats:
            raise SpecError(f"{where}: 'stats' must list mean/std/min/max/median")
        if self.n_mfcc < 1 or self.n_mels < 1 or self.hop_length < 1 or self.n_fft < 16:
            raise SpecError(f"{where}: sizes must be positive")
        if not 0 < self.fmin < self.fmax < self.sample_rate / 2:
            raise SpecError(f"{where}: needs 0 < fmin < fmax < sample_rate/2")
        spknorm.check(self.norm, where)


@dataclass(frozen=True)
class SvmFixed:
    """SVC settings that are not searched (the searched ones come from [space]).

    ``scale`` says what ``C`` and ``gamma`` mean. ``"unit"`` (scale-free): kernels are
    computed on the standardised features scaled to unit mean squared norm (divided by
    the root of the number of non-constant features), so the linear kernel is the Gram
    matrix divided by the number of features and ``gamma = 1`` is scikit-learn's
    ``gamma="scale"``; one range of C and gamma then fits 88 and 6,373 features alike.
    ``"absolute"`` (the default, so study files, stored studies and exports written
    before it existed keep their meaning): C and gamma as scikit-learn's SVC takes them
    on standardised features.
    """

    scale: Literal["unit", "absolute"] = "absolute"
    # Keep at most k features, those with the highest ANOVA F on the fold's training clips
    # (a pipeline step, so fitted per fold like the rest); "all", or a set with k features
    # or fewer, keeps every feature.
    select_k: int | Literal["all"] = "all"
    kernel: Literal["linear", "rbf", "poly", "sigmoid"] = "rbf"
    C: float = 1.0
    gamma: float | Literal["scale", "auto"] = "scale"
    degree: int = 3
    coef0: float = 0.0
    # Labels are rarely balanced (RAVDESS has half as many neutral clips as other emotions).
    class_weight: Literal["balanced", "none"] = "balanced"
    cache_size: float = 1000.0  # MB of kernel cache: fits the whole RAVDESS Gram matrix
    max_iter: int = 1_000_000  # guard against a pathological C that never converges

    def check(self, where: str) -> None:
        if self.C <= 0 or self.degree < 1 or self.cache_size <= 0 or self.max_iter == 0:
            raise SpecError(f"{where}: C and cache_size must be positive, degree >= 1")
        if not isinstance(self.gamma, str) and self.gamma <= 0:
            raise SpecError(f"{where}: 'gamma' must be positive, 'scale' or 'auto'")
        if not _valid_k(self.select_k):
            raise SpecError(f"{where}: 'select_k' must be a positive integer or 'all'")
        if self.scale == "unit" and self.gamma == "auto":
            raise SpecError(
                f"{where}: 'gamma' = 'auto' has no scale-free meaning; with scale = 'unit' "
                "give a number (1 is scikit-learn's 'scale')"
            )


@dataclass(frozen=True)
class Settings:
    features: FeatureSettings
    svm: SvmFixed
    # Memory, not results: left out of the study's hash (changing it resumes the study).
    OPERATIONAL: ClassVar[dict[str, tuple[str, ...]]] = {"svm": ("cache_size",)}

    @classmethod
    def from_tables(cls, raw: dict[str, Any], where: str) -> Settings:
        return build_sections(cls, raw, where)

    def merged(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fixed settings with a trial's parameters merged in: what a model is trained with."""
        svm = dataclasses.asdict(self.svm) | {k: v for k, v in params.items() if k in SVM_PARAMS}
        features = dataclasses.asdict(self.features) | {
            FEATURE_PARAMS[k]: v for k, v in params.items() if k in FEATURE_PARAMS
        }
        # A stored trial of an older study says true / false: the mode it ran.
        features["speaker_norm"] = spknorm.mode_name(features["speaker_norm"])
        return {"features": features, "svm": svm}

    def feature_variants(self, space: tuple[Param, ...]) -> list[FeatureSettings]:
        """Every single feature set a trial of ``space`` may use (for caches built up
        front): a fused choice adds its parts, each cached once however many choices
        share it."""
        choices = {
            k: list(getattr(p.distribution, "choices", ()))
            for p in space
            if (k := FEATURE_PARAMS.get(p.name))
        }
        named = choices.get("set") or [self.features.set]
        sets = dict.fromkeys(part for name in named for part in set_parts(name))
        return [dataclasses.replace(self.features, set=s) for s in sets]

    def fused(self, space: tuple[Param, ...]) -> bool:
        """Whether a trial of ``space`` may fuse sets."""
        param = next((p for p in space if p.name == "feature_set"), None)
        named = getattr(param.distribution, "choices", ()) if param else (self.features.set,)
        return any(len(set_parts(n)) > 1 for n in named)

    def norm_variants(self, space: tuple[Param, ...]) -> list[spknorm.SpeakerNorm]:
        """Every speaker normalisation a trial of ``space`` may use."""
        return spknorm.variants(self.features.norm, space)


def _valid_k(k: object) -> bool:
    return k == "all" or (isinstance(k, int) and not isinstance(k, bool) and k >= 1)


def check_space(space: tuple[Param, ...], where: str) -> None:
    for p in space:
        if p.name not in SEARCHABLE:
            raise SpecError(
                f"{where}: [space.{p.name}] is not an SVM parameter "
                f"(searchable: {', '.join(sorted(SEARCHABLE))})"
            )
        choices = getattr(p.distribution, "choices", None)
        if p.name in FEATURE_PARAMS and choices is None:
            raise SpecError(f"{where}: [space.{p.name}] must be categorical")
        if p.name == "feature_set":
            for choice in choices:
                try:
                    set_parts(choice)
                except ValueError as e:
                    raise SpecError(f"{where}: [space.feature_set] choice {e}") from None
            continue
        bad, allowed = _bad_value(p.name, p.distribution)
        if bad is not None:
            raise SpecError(
                f"{where}: [space.{p.name}] choice {bad!r} is not one of "
                f"{', '.join(map(str, allowed))}"
            )


def _bad_value(name: str, dist: Any) -> tuple[Any, tuple]:
    """The first value of ``dist`` that parameter ``name`` cannot take, and what it can."""
    choices = getattr(dist, "choices", None)
    if name == "select_k":
        # A float range's low is a float: k must be a whole number.
        values = choices if choices is not None else (dist.low,)
        bad = [c for c in values if not _valid_k(c)]
        return (bad[0] if bad else None), ("all", "a positive integer")
    allowed = {"speaker_norm": (*spknorm.MODES, True, False)}.get(name)
    bad = [c for c in choices or () if allowed is not None and c not in allowed]
    return (bad[0] if bad else None), allowed or ()
