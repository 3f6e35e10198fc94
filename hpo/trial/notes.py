"""What a trial leaves for optuna-dashboard besides Optuna's own views, written by the fold
loop (``hpo.trial.cv``) as the trial runs:

- a note on every finished trial: per-fold scores and the confusion matrix as tables;
- the best trial's confusion matrix as a PNG artifact, in the store the study names (see
  ``hpo.config.paths.artifacts_dir``), whose absolute path is recorded on the study
  (``STORE_ATTR``) for ``hpo dashboard`` to serve.

The study's note (description, provenance) is written where the study is created
(``hpo.study.open``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna

from hpo.trial.metrics import METRICS

CONFUSION_PNG = "confusion.png"
STORE_ATTR = "artifact_store"  # the study's user attribute naming its artifact store


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (what optuna-dashboard renders in a note)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def class_names(n: int, labels: Sequence[str] | None) -> list[str]:
    """Names of a confusion matrix's ``n`` classes: the study's labels (``labels`` user
    attribute), else the class indices."""
    return list(labels) if labels and len(labels) == n else [str(i) for i in range(n)]


def trial_note(
    per_fold: dict[str, list[float | None]],
    confusion: np.ndarray | None,
    labels: Sequence[str] | None = None,
) -> str:
    n = len(per_fold[METRICS[0]])
    rows = [[m] + ["-" if v is None else f"{v:.3f}" for v in per_fold[m]] for m in METRICS]
    text = "### Scores per speaker fold\n\n" + markdown_table(
        ["metric"] + [str(f) for f in range(n)], rows
    )
    if confusion is not None:
        names = class_names(len(confusion), labels)
        cm = [[names[i]] + [str(int(x)) for x in row] for i, row in enumerate(confusion)]
        text += "\n\n### Confusion matrix (rows: true, summed over folds)\n\n"
        text += markdown_table(["true \\ predicted", *names], cm)
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
    store = str(artifacts.resolve())
    if study.user_attrs.get(STORE_ATTR) != store:
        study.set_user_attr(STORE_ATTR, store)
    return artifact_id
