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

    def predict(self, model_dir: Path, meta: dict[str, Any], waves: list[np.ndarray]) -> np.ndarray:
        """Class probabilities, one row per 16 kHz clip."""
        raise NotImplementedError

    def min_speaker_clips(self, meta: dict[str, Any]) -> int:
        """The fewest clips of one speaker ``classify`` takes together: above 1 where the
        saved model normalises features over a speaker's clips (``hpo evaluate`` classifies
        each speaker's clips together and refuses a speaker with fewer)."""
        return 1

    def classify(
        self, model_dir: Path, meta: dict[str, Any], waves: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(class index, class probabilities) per clip. The index is the decision the
        kind's cross-validation scored; by default the most probable class, which a kind
        whose probabilities are calibrated apart from that decision overrides."""
        probs = self.predict(model_dir, meta, waves)
        return probs.argmax(axis=1), probs
