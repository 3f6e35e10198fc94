"""Dashboard notes, confusion matrices and reports name the study's own labels."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from hpo.results.report import _labels_line
from hpo.study.open import study_note
from hpo.trial.notes import class_names, confusion_figure, trial_note

EMODB = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "bored"]


def test_a_trial_note_names_the_classes_of_its_corpus() -> None:
    cm = np.eye(7, dtype=int) * 3
    note = trial_note({"accuracy": [1.0], "uar": [1.0], "macro_f1": [1.0]}, cm, EMODB)
    assert (
        "| true \\ predicted | neutral | happy | sad | angry | fearful | disgust | bored |" in note
    )
    assert "| bored | 0 | 0 | 0 | 0 | 0 | 0 | 3 |" in note


def test_class_names_without_a_label_set() -> None:
    # No label set, or one that does not fit the matrix: numbered, never guessed (an
    # 8-class matrix is not taken for RAVDESS's).
    assert class_names(8, None) == [str(i) for i in range(8)]
    assert class_names(3, None) == ["0", "1", "2"]
    assert class_names(3, EMODB) == ["0", "1", "2"]


def test_confusion_figure_and_study_note_use_the_labels() -> None:
    import matplotlib.pyplot as plt

    fig = confusion_figure(np.eye(7), "t", EMODB)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    plt.close(fig)
    assert ticks == EMODB
    spec = SimpleNamespace(
        name="s", kind="svm", description="", objective=SimpleNamespace(metric="uar")
    )
    prov = {"corpus_name": "emodb", "labels": EMODB, "fold_actors": {"0": ["03"], "1": ["08"]}}
    assert "Corpus: emodb, 7 labels: neutral, happy" in study_note(spec, prov)
    assert _labels_line({"labels": EMODB}) == ", 7 labels: " + ", ".join(EMODB)
