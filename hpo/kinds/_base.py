"""The contract every study kind implements.

A kind is a model family searched by hpo. The runner, export, train and predict commands
only ever talk to a kind through these methods, so a kind's code stays in its folder.
Methods import their heavy dependencies (torch, librosa) inside, so that loading a kind to
validate a study file costs nothing.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from hpo.config.study import StudySpec
    from hpo.corpus.manifest import Corpus
    from hpo.kinds.speaker_norm import Groups, SpeakerNorm
    from hpo.trial.cv import CvObjective


class Kind:
    """Subclasses set ``name`` and ``settings_module`` and implement the methods."""

    name: str
    #: Module with ``SECTIONS`` (its TOML tables), ``Settings`` (``from_tables``,
    #: ``merged``) and ``check_space``. Must not import torch.
    settings_module: str
    #: Packages whose versions are recorded on every study of this kind.
    versions: tuple[str, ...] = ()

    def settings(self) -> ModuleType:
        return import_module(self.settings_module)

    def check(self, spec: StudySpec) -> None:
        """Fail, before any study is created, on what would fail every trial."""

    def describe(self, spec: StudySpec) -> dict[str, Any]:
        """Extra study user attributes (e.g. the loaded backbone family)."""
        return {}

    def prepare(self, spec: StudySpec, corpus: Corpus, reporter: Any = None) -> None:
        """Build what every trial reads and is expensive (feature caches) once, before
        workers start, so ``--jobs N`` does not build it N times."""

    def objective(self, spec: StudySpec, corpus: Corpus, reporter: Any = None) -> CvObjective:
        raise NotImplementedError

    def train(self, cfg: dict[str, Any], corpus: Corpus, out: Path, reporter: Any) -> dict:
        """Fit an exported configuration on every clip of ``corpus`` and save it in ``out``;
        returns what to add to the model's ``hpo.json``."""
        raise NotImplementedError

    def predict(
        self,
        model_dir: Path,
        meta: dict[str, Any],
        waves: list[np.ndarray],
        groups: Groups | None = None,
    ) -> np.ndarray:
        """Class probabilities, one row per scored 16 kHz clip (see ``classify``)."""
        raise NotImplementedError

    def speaker_norm(self, meta: dict[str, Any]) -> SpeakerNorm:
        """The saved model's per-speaker normalisation (``hpo.kinds.speaker_norm``): when
        on, ``classify`` needs the statistics' groups."""
        from hpo.kinds.speaker_norm import SpeakerNorm

        return SpeakerNorm()

    def classify(
        self,
        model_dir: Path,
        meta: dict[str, Any],
        waves: list[np.ndarray],
        groups: Groups | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(class index, class probabilities) per scored clip. The index is the decision the
        kind's cross-validation scored; by default the most probable class, which a kind
        whose probabilities are calibrated apart from that decision overrides.

        ``groups``: for a model that normalises per speaker, which clips' statistics
        normalise which clips (``speaker_norm.stats_groups``, ``given_groups``); only their
        scored clips are classified, in index order. None: every clip, no normalisation."""
        probs = self.predict(model_dir, meta, waves, groups)
        return probs.argmax(axis=1), probs
