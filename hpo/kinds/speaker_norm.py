"""Per-speaker normalisation, a named choice every kind offers (``speaker_norm``).

Each feature is standardised within a speaker, with a mean and standard deviation taken
from some of that speaker's clips (labels of scored clips never used). What the statistics
are taken from is the mode, and it is disclosed wherever a score is printed:

``off``
    No per-speaker step.
``transductive``
    Every clip of the speaker, the scored clip included: what a system that sees all of a
    test speaker's (unlabelled) recordings before deciding can do (test-time adaptation).
    Optimistic for a system that hears one clip at a time.
``enrolment``
    A fixed enrolment set per speaker, never the scored clip: ``enrolment = "clips"`` takes
    ``enrolment_clips`` of the speaker's clips (a count, or a share of each speaker's
    clips) in a fixed, label-blind random order; ``enrolment = "neutral"`` takes the
    speaker's neutral clips (an enrolment recording whose emotion is known by design),
    centred on their mean only (``SpeakerNorm.scales``: their spread is not the speaker's).
    What a deployed system does with a short enrolment recording of each new speaker.

Design of ``enrolment`` in cross-validation: leave-one-out, not held-out enrolment clips.
A scored clip's statistics come from ``k`` *other* clips of its speaker: the first ``k`` of
the speaker's enrolment order that are not the clip itself. So every clip is still scored
(the folds, the clip count and the label balance are those of ``off`` and
``transductive``, so the modes compare on the same clips and the Wilcoxon pruner pairs
like with like) and no clip ever contributes to its own statistics, as at prediction time
where the enrolment recordings are not the clips classified. For ``neutral`` every clip
uses ``n - 1`` of the speaker's ``n`` neutral clips (a neutral clip the other ones, any
other clip all but the last), so how many clips its statistics have does not depend on
its own label. Training speakers are normalised by the same rule as validation speakers,
so the classifier trains on what it is scored on. Statistics depend on one speaker's own
clips only, so they are the same in every fold and can be computed once per corpus.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from hpo.errors import HpoError, SpecError

if TYPE_CHECKING:
    from hpo.corpus.manifest import Corpus

MODES = ("off", "transductive", "enrolment")
SOURCES = ("clips", "neutral")
NEUTRAL = "neutral"
# Old study files, stored studies and exports said ``speaker_norm = true / false``:
# true was today's transductive z-scoring, false none.
LEGACY = {True: "transductive", False: "off"}
# Fewer than two clips have no spread: every feature would look constant.
MIN_STATS_CLIPS = 2
# The fewest clips ``hpo predict --speaker-norm-from given`` takes as one speaker.
MIN_GIVEN_CLIPS = 8

# A feature counts as constant within a speaker when its deviation there is at most one
# float32 step of its values (features are stored as float32): that much is rounding, not
# variation. Any larger deviation, however small in absolute terms, is divided by: openSMILE's
# features come in arbitrary units (energies of 1e-9 are ordinary), so an absolute floor
# would depend on the unit and silently leave some features unscaled. This is
# scikit-learn's rule for near-zero scale at the precision the features are stored in. A
# constant feature becomes 0 for that speaker (centred, unscaled).
CONSTANT_RTOL = float(np.finfo(np.float32).eps)

Groups = list[tuple[np.ndarray, np.ndarray]]


def mode_name(value: object) -> str:
    """The mode a ``speaker_norm`` value names (old booleans mapped, see ``LEGACY``)."""
    if isinstance(value, bool):
        return LEGACY[value]
    return str(value)


@dataclass(frozen=True)
class SpeakerNorm:
    """A kind's ``speaker_norm``, ``enrolment`` and ``enrolment_clips`` settings."""

    mode: str = "off"
    enrolment: str = "clips"
    enrolment_clips: int | float = 8

    @classmethod
    def of(cls, section: object) -> SpeakerNorm:
        """From a settings dataclass or a merged config table (a dict)."""
        get = section.get if isinstance(section, dict) else lambda k, d: getattr(section, k, d)
        return cls(
            mode_name(get("speaker_norm", "off")),
            str(get("enrolment", "clips")),
            get("enrolment_clips", 8),
        )

    @property
    def on(self) -> bool:
        return self.mode != "off"

    @property
    def scales(self) -> bool:
        """Whether the speaker's statistics scale as well as centre. Not for neutral
        enrolment: the spread of a speaker's few neutral clips is not that speaker's spread
        across emotions, and dividing by it inflates every emotional deviation (on the
        synthetic corpus, 6-fold UAR fell to 0.18-0.39 from 0.58 centred only). Centred on
        the neutral mean, the features are each clip's deviation from the speaker's
        neutral voice; the pipeline's global scaler (fitted per fold) scales them."""
        return not (self.mode == "enrolment" and self.enrolment == "neutral")

    def short(self) -> str:
        """What ``hpo status`` and the report print: ``enrolment (8 clips)``."""
        if self.mode != "enrolment":
            return self.mode
        if self.enrolment == "neutral":
            return "enrolment (neutral clips)"
        c = self.enrolment_clips
        return (
            f"enrolment ({c:g} of each speaker's clips)"
            if isinstance(c, float)
            else (f"enrolment ({c} clips)")
        )

    def sentence(self) -> str:
        """One line a reader of a paper needs: what the statistics came from."""
        return {
            "off": "no per-speaker normalisation",
            "transductive": "each speaker z-scored over all of that speaker's clips, the "
            "scored clip included (transductive)",
            "enrolment": f"each speaker z-scored over {self._what()}, never the scored clip "
            "(leave-one-out)",
        }[self.mode]

    def _what(self) -> str:
        if self.enrolment == "neutral":
            return "the speaker's other neutral clips (centred on their mean, not scaled)"
        c = self.enrolment_clips
        share = f"a share of {c:g} of" if isinstance(c, float) else f"{c} other clips of"
        return f"{share} the speaker's clips (fixed label-blind order)"


def variants(base: SpeakerNorm, space: Sequence[Any]) -> list[SpeakerNorm]:
    """Every normalisation a trial of ``space`` (``hpo.config.space.Param``s) may use: the
    searched modes with ``base``'s enrolment rule, or ``base`` alone."""
    for p in space:
        if p.name == "speaker_norm":
            return [replace(base, mode=mode_name(m)) for m in p.distribution.choices]
    return [base]


def check(norm: SpeakerNorm, where: str) -> None:
    """One-line SpecError for a setting outside the modes."""
    if norm.mode not in MODES:
        raise SpecError(
            f"{where}: 'speaker_norm' = {norm.mode!r}; use one of {', '.join(MODES)} "
            "(true means transductive, false off)"
        )
    if norm.enrolment not in SOURCES:
        raise SpecError(f"{where}: 'enrolment' must be one of {', '.join(SOURCES)}")
    c = norm.enrolment_clips
    if isinstance(c, bool) or not (
        (isinstance(c, int) and c >= MIN_STATS_CLIPS) or (isinstance(c, float) and 0 < c < 1)
    ):
        raise SpecError(
            f"{where}: 'enrolment_clips' = {c!r}; give a count of clips (an integer >= "
            f"{MIN_STATS_CLIPS}) or a share of each speaker's clips (a number between 0 and 1)"
        )


def _order(speaker: object, clips: np.ndarray) -> np.ndarray:
    """The speaker's clips in a fixed random order: label-blind (a manifest sorted by
    emotion would make "the first k" one emotion), seeded by the speaker's id alone, so a
    speaker's enrolment set does not depend on which other speakers the corpus has."""
    rng = np.random.default_rng(zlib.crc32(str(speaker).encode()))
    return clips[rng.permutation(len(clips))]


def stats_groups(
    norm: SpeakerNorm,
    speakers: np.ndarray,
    labels: Sequence[str] | None = None,
    where: str = "corpus",
) -> Groups:
    """(scored clips, clips whose statistics normalise them) pairs covering every clip
    once; see the module's docstring for each mode's rule. ``labels`` (each clip's label
    name) only for ``enrolment = "neutral"``; ``where`` names the corpus in errors."""
    speakers = np.asarray(speakers)
    groups: Groups = []
    for spk in dict.fromkeys(speakers.tolist()):
        ix = np.flatnonzero(speakers == spk)
        if norm.mode == "transductive":
            groups.append((ix, ix))
        elif norm.mode == "enrolment":
            groups += _enrolment(norm, spk, ix, labels, where)
    return groups


def _enrolment(
    norm: SpeakerNorm, spk: object, ix: np.ndarray, labels: Sequence[str] | None, where: str
) -> Groups:
    if norm.enrolment == "neutral":
        if labels is None:
            raise ValueError("enrolment = 'neutral' needs the clips' labels")
        pool = _order(spk, ix[[labels[i] == NEUTRAL for i in ix]])
        k, need = len(pool) - 1, f"{NEUTRAL} clips"
    else:
        pool = _order(spk, ix)
        c = norm.enrolment_clips
        k = max(MIN_STATS_CLIPS, round(c * len(ix))) if isinstance(c, float) else int(c)
        k, need = min(k, len(ix) - 1), "clips"
    if k < MIN_STATS_CLIPS:
        raise HpoError(
            f"{where}: speaker {spk} has {len(pool)} {need}; speaker_norm = 'enrolment' "
            f"takes statistics from at least {MIN_STATS_CLIPS} {need} besides the scored one; "
            "use another mode or enrolment setting"
        )
    base = pool[:k]
    rest = np.setdiff1d(ix, base, assume_unique=True)
    groups: Groups = [(rest, base)] if len(rest) else []
    for i in base:  # a clip of the enrolment set: the first k of the order without it
        groups.append((np.array([i]), pool[pool != i][:k]))
    return groups


def corpus_groups(norm: SpeakerNorm, corpus: Corpus) -> Groups:
    """``stats_groups`` over every clip of a prepared corpus."""
    labels = [corpus.labels[i] for i in corpus.label_ids]
    return stats_groups(norm, corpus.speakers, labels, str(corpus.root))


def given_groups(n_scored: int, n_enrol: int) -> Groups:
    """``hpo predict``: clips 0..n_scored-1 normalised by the enrolment clips after them."""
    return [(np.arange(n_scored), np.arange(n_scored, n_scored + n_enrol))]


def scored_clips(groups: Groups) -> np.ndarray:
    """The clips ``groups`` classify, in index order."""
    return np.sort(np.concatenate([scored for scored, _ in groups]))


def loo_groups(n: int) -> Groups:
    """Each of ``n`` clips of one speaker normalised by the other ones (leave-one-out)."""
    ix = np.arange(n)
    return [(np.array([i]), ix[ix != i]) for i in ix]


def standardise(X: np.ndarray, groups: Groups, scale: bool = True) -> np.ndarray:
    """Each group's scored rows z-scored with the mean and std of its statistics rows
    (their finite values; a non-finite value stays NaN for the pipeline's imputer), or only
    centred on that mean with ``scale=False`` (``SpeakerNorm.scales``). Rows in no group
    are left NaN. Float64 out."""
    X = np.where(np.isfinite(X), X, np.nan).astype(np.float64)
    out = np.full_like(X, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature with no finite value
        for scored, stats in groups:
            mu, sd = np.nanmean(X[stats], 0), np.nanstd(X[stats], 0)
            if not scale:
                out[scored] = X[scored] - mu
                continue
            constant = ~(sd > CONSTANT_RTOL * np.nanmax(np.abs(X[stats]), 0))
            z = (X[scored] - mu) / np.where(constant, 1.0, sd)
            out[scored] = np.where(constant & np.isfinite(z), 0.0, z)
    return out
