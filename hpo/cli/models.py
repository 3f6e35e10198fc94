"""``hpo train | predict | evaluate``: a model from an exported configuration, its predictions,
and its scores on another corpus."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hpo.cli.group import cli
from hpo.cli.options import data_option, json_option


@cli.command("train")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="An exported configuration (hpo export), e.g. models/w2v-best.toml.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Model directory [default: models/STUDY].",
)
@data_option
def train(config_path: Path, out: Path | None, data: Path | None) -> None:
    """Train an exported configuration on all speakers of its corpus and save it."""
    from hpo.trained.train import train_from_export
    from hpo.util.progress import TrialReporter

    with TrialReporter(1, 0, "accuracy") as reporter:
        path = train_from_export(config_path, out=out, data=data, reporter=reporter)
    click.echo(f"saved model to {path}")


@cli.command("predict")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A directory written by hpo train.",
)
@click.argument("clips", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--enrol",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Enrolment clips of the CLIPS' speaker (a wav file or a directory of them; "
    "repeatable), apart from the CLIPS: the per-speaker statistics of a speaker-normalised "
    "model.",
)
@click.option(
    "--speaker-norm-from",
    "norm_from",
    type=click.Choice(["given"]),
    default=None,
    help="given: a speaker-normalised model takes its per-speaker statistics from the CLIPS "
    "themselves, as one speaker (at least 8 for a transductive model; each clip's from the "
    "others for an enrolment one).",
)
@json_option
def predict(
    model_dir: Path,
    clips: tuple[Path, ...],
    enrol: tuple[Path, ...],
    norm_from: str | None,
    as_json: bool,
) -> None:
    """Print the label and per-label probabilities of each CLIP (any wav; resampled to
    16 kHz), over the labels of the corpus the model was trained on.

    The label is the model's decision, the one cross-validation scored (an SVM's: the SVC's
    decision function). The probabilities are calibrated estimates of each label (an SVM's:
    Platt scaling fitted on speaker folds of its training corpus); on a borderline clip the
    most probable label can differ from the label.

    A model trained with speaker normalisation needs per-speaker statistics: --enrol
    (enrolment clips of the speaker) or --speaker-norm-from given; the output says which."""
    from hpo.trained.predict import predict as run_predict

    r = run_predict(model_dir, list(clips), list(enrol), norm_from)
    if as_json:
        click.echo(json.dumps(r, indent=2))
        return
    if r["random_init_model"]:
        click.echo("note: this model was fine-tuned from a RANDOMLY INITIALISED backbone")
    if r["synthetic_training_corpus"]:
        click.echo("note: this model was trained on a SYNTHETIC corpus")
    norm = r["speaker_norm"]
    if norm:
        click.echo(f"speaker norm: {norm['mode']}; statistics from {norm['statistics']}")
        if "warning" in norm:
            click.echo(f"warning: {norm['warning']}", err=True)
    for clip, probs in r["predictions"].items():
        label = r["predicted"][clip]
        click.echo(f"{clip}: {label} (p={probs[r['labels'].index(label)]:.2f})")
        click.echo(
            "  " + "  ".join(f"{lab} {p:.2f}" for lab, p in zip(r["labels"], probs, strict=True))
        )


@cli.command("evaluate")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A directory written by hpo train.",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Another prepared corpus (hpo data prepare) to score the model on.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "tex", "csv", "json", "html"]),
    default="text",
    show_default=True,
    help="text for a terminal, md for a README, tex (booktabs) for a paper, csv, json.",
)
def evaluate(model_dir: Path, data: Path, fmt: str) -> None:
    """Score a trained model on another corpus (cross-corpus), on the labels the two share.

    Labels only one side has are listed and left out (the corpus's clips of them are
    counted), never merged. Headline: the model's own decision over all its labels, so a
    clip it calls by a label the corpus lacks counts as wrong; beside it, the most probable
    shared label. Accuracy, UAR, macro-F1, per-label recall, precision and F1, and the
    confusion matrix. Each speaker's clips are classified together, so a model with speaker
    normalisation is normalised per evaluated speaker, as in cross-validation."""
    from hpo.trained.evaluate import evaluate as run_evaluate
    from hpo.trained.evaluate import render

    ev = run_evaluate(model_dir, data, progress=lambda line: click.echo(line, err=True))
    if fmt == "text":
        if ev.model["random_init_model"]:
            click.echo("note: this model was fine-tuned from a RANDOMLY INITIALISED backbone")
        if ev.model["trained_on"].get("synthetic"):
            click.echo("note: this model was trained on a SYNTHETIC corpus")
        if ev.corpus["synthetic"]:
            click.echo(f"note: {ev.corpus['path']} is a SYNTHETIC corpus")
    click.echo(render(ev, fmt), nl=False)
