"""``hpo data``: prepare, inspect or synthesize a corpus."""

from __future__ import annotations

import json
from pathlib import Path

import click

from hpo.cli.group import OneLineErrors, cli
from hpo.cli.options import jobs_option, json_option

# Listed here, not imported, so `hpo --help` loads no corpus code; a test checks it against
# the registry (hpo.corpus.formats).
FORMATS_HELP = "ravdess, emodb, crema-d, tess, savee, csv"
# Past this many rejected inputs (a repository with its mp3s and videos), show a count per
# reason; `hpo data info DIR --json` lists every one.
MAX_LISTED = 30


class FoldRule(click.ParamType):
    """``--folds K`` (at least 2) or ``--folds loso``."""

    name = "K|loso"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            k = value
        elif str(value).strip().lower() == "loso":
            return "loso"
        else:
            try:
                k = int(str(value))
            except ValueError:
                self.fail(f"{value!r} is neither a number of folds nor 'loso'", param, ctx)
        if k < 2:
            self.fail(f"{k}: cross-validation needs at least 2 folds", param, ctx)
        return k


@cli.group(cls=OneLineErrors)
def data() -> None:
    """Prepare, inspect or synthesize a corpus."""


@data.command("prepare")
@click.argument("src", type=click.Path(path_type=Path), required=False)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Corpus directory to write [default: data/NAME, e.g. data/ravdess].",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    metavar="NAME",
    help=f"The release's corpus: {FORMATS_HELP} [default: told from the file names].",
)
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    default=None,
    help="A CSV listing the clips (path, speaker, label, optional gender; paths relative "
    "to the CSV), instead of SRC.",
)
@click.option(
    "--name", default=None, help="The corpus's name [default: the format's, or the CSV's]."
)
@click.option(
    "--demographics",
    type=click.Path(path_type=Path),
    default=None,
    help="CREMA-D's VideoDemographics.csv, when it is not inside SRC.",
)
@click.option(
    "--folds",
    "n_folds",
    type=FoldRule(),
    default=None,
    help="Speaker folds: K, or 'loso' (leave one speaker out); studies must ask for the "
    "same [default: 6, or loso with fewer than 6 speakers].",
)
@click.option(
    "--folds-from",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="A published split to use as it is: a CSV with speaker,fold (or path,fold: clip -> "
    'fold) columns, folds 0..K-1 or 1..K; studies then ask for folds = "file".',
)
@jobs_option
def data_prepare(
    src: Path | None,
    out: Path | None,
    fmt: str | None,
    manifest: Path | None,
    name: str | None,
    demographics: Path | None,
    n_folds: int | str | None,
    folds_from: Path | None,
    jobs: int | None,
) -> None:
    """Prepare SRC (a release's zip or folder: RAVDESS, EmoDB, CREMA-D, TESS, SAVEE) or the
    clips a CSV lists: 16 kHz mono clips, a manifest and speaker-independent folds."""
    from hpo.corpus.prepare import prepare

    r = prepare(src, out, n_folds, jobs, fmt, manifest, name, demographics, folds_from)
    kind = " (SYNTHETIC corpus)" if r.synthetic else ""
    speakers = {c.speaker for c in r.clips}
    click.echo(
        f"prepared {len(r.clips)} clips from {len(speakers)} speakers into {r.out}{kind}: "
        f"{r.written} written, {r.reused} unchanged"
    )
    click.echo(f"corpus {r.name}: {len(r.labels)} labels: {', '.join(r.labels)}")
    click.echo(f"folds ({_rule_words(r.folds, r.grouped, r.folds_from)}):")
    for fold, members in r.fold_members.items():
        click.echo(f"  fold {fold}: speakers {', '.join(str(a) for a in members)}")
    _echo_rejected(r.rejected, "rejected {n} input(s):")


def _rule_words(rule: int | str, grouped: bool, source: dict | None) -> str:
    if rule == "file":
        how = f"by {source['by']}" if source else "as given"
        return f"read from {source['file'] if source else 'a file'}, {how}"
    one = "group" if grouped else "speaker"
    return f"leave one {one} out" if rule == "loso" else f"{rule} {one} folds"


def _echo_rejected(rejected: list[dict[str, str]], title: str) -> None:
    if not rejected:
        return
    if title:
        click.echo(title.format(n=len(rejected)))
    if len(rejected) <= MAX_LISTED:
        for rej in rejected:
            click.echo(f"  {rej['file']}: {rej['reason']}")
        return
    counts: dict[str, int] = {}
    for rej in rejected:
        why = rej["reason"].split(" (")[0].split(":")[0]
        counts[why] = counts.get(why, 0) + 1
    for why, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {n} x {why}")
    click.echo("  (every file with its reason: hpo data info DIR --json)")


@data.command("info")
@click.argument("corpus_dir", metavar="DIR", type=click.Path(path_type=Path))
@json_option
def data_info(corpus_dir: Path, as_json: bool) -> None:
    """Describe a prepared corpus: clips, speakers, labels, folds, rejected inputs."""
    from hpo.corpus.info import corpus_info

    info = corpus_info(corpus_dir)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    kind = "SYNTHETIC corpus (not real speech)" if info["synthetic"] else "corpus"
    click.echo(
        f"{kind} {info['name']} at {info['path']}: {info['clips']} clips, "
        f"{info['speakers']} speakers, {info['sample_rate']} Hz, {info['channels']} channel(s), "
        f"{info['hours']} h"
    )
    click.echo(f"labels ({len(info['labels'])}): " + ", ".join(info["labels"]))
    per_label = info["clips_per_label"].items()
    click.echo("clips per label: " + ", ".join(f"{k} {v}" for k, v in per_label))
    click.echo("clips by gender: " + ", ".join(f"{k} {v}" for k, v in info["genders"].items()))
    rule = _rule_words(info["fold_rule"], info["fold_unit"] == "group", info["folds_from"])
    click.echo(f"folds ({rule}):")
    for fold, speakers in info["folds"].items():
        click.echo(f"  fold {fold}: speakers {', '.join(map(str, speakers))}")
    click.echo(f"rejected at preparation: {len(info['rejected'])}")
    _echo_rejected(info["rejected"], "")


@data.command("synth")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the release's folders [default: data/synthetic-src, or "
    "data/synthetic-NAME for another --format].",
)
@click.option(
    "--format",
    "fmt",
    default="ravdess",
    show_default=True,
    metavar="NAME",
    help="Whose release layout: ravdess, emodb, crema-d, tess, savee.",
)
@click.option(
    "--actors",
    type=click.IntRange(min=1),
    default=None,
    help="Speakers [default: all the release has: RAVDESS 24, EmoDB 10, ...].",
)
@click.option(
    "--clips-per-actor",
    type=click.IntRange(min=1),
    default=None,
    help="Clips per speaker, labels kept balanced [default: the release's, RAVDESS 60].",
)
@click.option("--seed", type=int, default=0, show_default=True)
@jobs_option
def data_synth(
    out: Path | None,
    fmt: str,
    actors: int | None,
    clips_per_actor: int | None,
    seed: int,
    jobs: int | None,
) -> None:
    """Write a SYNTHETIC corpus in a release's layout (same file names, folders and rate).

    For offline demos and tests only: results on it say nothing about real speech."""
    from hpo.corpus.formats import get_format
    from hpo.corpus.synth import synthesize

    most = get_format(fmt).max_speakers
    if actors is not None and actors > most:
        raise click.BadParameter(f"{actors}: {fmt} has {most} speakers", param_hint="'--actors'")
    out = out or Path("data/synthetic-src" if fmt == "ravdess" else f"data/synthetic-{fmt}")
    r = synthesize(out, actors, clips_per_actor, seed, None, jobs, fmt)
    # Never into the real corpus's default folder (data/ravdess), which a synthetic one
    # would shadow.
    name = r.out.name
    stem = name[: -len("-src")] if name.endswith("-src") else f"{name}-prepared"
    prepared = r.out.with_name(stem)
    click.echo(
        f"wrote {r.clips} synthetic clips ({r.actors} speakers, {r.sample_rate} Hz, {fmt} "
        f"layout) to {r.out}; prepare them with: hpo data prepare {r.out} --out {prepared}"
    )
