"""What optuna-dashboard shows besides Optuna's own views.

- the objective's name (``accuracy``, ``uar``, ``macro_f1``) instead of "Objective 0";
- a note on the study: its description and provenance;
- a note on every finished trial: per-fold scores and the confusion matrix as tables;
- the best trial's confusion matrix as a PNG artifact.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from hpo.trial.metrics import METRICS

CONFUSION_PNG = "confusion.png"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def class_names(n: int, labels: Sequence[str] | None) -> list[str]:
    """Names of a confusion matrix's ``n`` classes: the study's labels (``labels`` user
    attribute). A study from before studies recorded them ran on RAVDESS, the only corpus
    then."""
    if labels and len(labels) == n:
        return list(labels)
    from hpo.corpus.ravdess import EMOTIONS

    return list(EMOTIONS) if labels is None and n == len(EMOTIONS) else [str(i) for i in range(n)]


def study_note(spec: Any, provenance: dict[str, Any]) -> str:
    prov = {k: v for k, v in provenance.items() if k not in ("spec", "fold_actors")}
    folds = provenance.get("fold_actors", {})
    fold_rows = [[f, ", ".join(map(str, a))] for f, a in folds.items()]
    synth = "\n\n**SYNTHETIC corpus: scores say nothing about real speech.**" * bool(
        provenance.get("corpus_synthetic")
    )
    labels = provenance.get("labels", [])
    return (
        f"## {spec.name} ({spec.kind})\n\n{spec.description}{synth}\n\n"
        f"Corpus: {provenance.get('corpus_name')}, {len(labels)} labels: {', '.join(labels)}.\n\n"
        f"Objective: mean {spec.objective.metric} over {len(folds)} actor folds.\n\n"
        f"{_table(['fold', 'validation actors'], fold_rows)}\n\n"
        f"### Provenance\n\n```json\n{json.dumps(prov, indent=2, default=str)}\n```\n"
    )


def annotate_study(study: optuna.Study, spec: Any, provenance: dict[str, Any]) -> None:
    """Metric name and study note; called once when the study is created."""
    from optuna_dashboard import save_note

    study.set_metric_names([spec.objective.metric])
    save_note(study, study_note(spec, provenance))


def trial_note(
    per_fold: dict[str, list[float | None]],
    confusion: np.ndarray | None,
    labels: Sequence[str] | None = None,
) -> str:
    n = len(per_fold[METRICS[0]])
    rows = [[m] + ["-" if v is None else f"{v:.3f}" for v in per_fold[m]] for m in METRICS]
    text = "### Scores per actor fold\n\n" + _table(["metric"] + [str(f) for f in range(n)], rows)
    if confusion is not None:
        names = class_names(len(confusion), labels)
        cm = [[names[i]] + [str(int(x)) for x in row] for i, row in enumerate(confusion)]
        text += "\n\n### Confusion matrix (rows: true, summed over folds)\n\n"
        text += _table(["true \\ predicted", *names], cm)
    return text + "\n"


def annotate_trial(
    trial: optuna.Trial,
    per_fold: dict[str, list[float | None]],
    confusion: np.ndarray | None,
    labels: Sequence[str] | None = None,
) -> None:
    from optuna_dashboard import save_note

    save_note(trial, trial_note(per_fold, confusion, labels))


def confusion_figure(cm: np.ndarray, title: str, labels: Sequence[str] | None = None):
    """A confusion-matrix figure (scikit-learn's display, rows normalised, counts shown)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(6, 5))
    names = class_names(len(cm), labels)
    disp = ConfusionMatrixDisplay(cm.astype(int), display_labels=names)
    disp.plot(ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45)
    ax.set_title(title)
    return fig


def attach_confusion_if_best(
    trial: optuna.Trial, value: float, artifacts: Path, labels: Sequence[str] | None = None
) -> str | None:
    """Attach this trial's confusion matrix as a PNG artifact when it is the new best.

    Done while the trial still runs: Optuna refuses artifacts on a finished trial.
    """
    import matplotlib.pyplot as plt
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    study = trial.study
    try:
        best = study.best_value
        better = value > best if study.direction.name == "MAXIMIZE" else value < best
    except ValueError:
        better = True  # the first complete trial
    cm = trial.user_attrs.get("confusion")
    if not better or cm is None:
        return None
    artifacts.mkdir(parents=True, exist_ok=True)
    fig = confusion_figure(np.array(cm), f"trial #{trial.number}, all folds", labels)
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / CONFUSION_PNG
        fig.savefig(png, dpi=110, bbox_inches="tight")
        plt.close(fig)
        artifact_id = upload_artifact(
            artifact_store=FileSystemArtifactStore(str(artifacts)),
            file_path=str(png),
            study_or_trial=trial,
            mimetype="image/png",
        )
    trial.set_user_attr("confusion_artifact", artifact_id)
    return artifact_id
