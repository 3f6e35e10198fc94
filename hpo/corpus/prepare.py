"""``hpo data prepare``: a corpus release (zip, folder or CSV list) → 16 kHz mono clips +
manifest + folds.

The adapter (``hpo.corpus.formats``) says what each source file is; everything else is the
same for every corpus. Every file of the source ends up either in the manifest or in the
list of rejected inputs with its reason. Clip files are written atomically and the manifest
and ``corpus.json`` last, so an interrupted run leaves no half-written file and a re-run
redoes only what is missing or changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import soundfile as sf

from hpo import __version__
from hpo.corpus.audio import TARGET_SR, BadAudio, decode_16k_mono
from hpo.corpus.folds import (
    LOSO,
    FoldRule,
    assign_folds,
    check_rule,
    fold_members,
    speaker_key,
)
from hpo.corpus.formats import detect, get_format
from hpo.corpus.formats._base import Entry, Format
from hpo.corpus.manifest import CORPUS_JSON, MANIFEST, Clip, read_manifest_rows, write_corpus
from hpo.corpus.source import SYNTH_MARKER, Source, open_source
from hpo.errors import CorpusError
from hpo.util.io import atomic_path
from hpo.util.parallel import pmap

DEFAULT_FOLDS = 6


@dataclass
class PrepareReport:
    """What ``prepare`` did: the corpus directory, its clips and the inputs it skipped."""

    out: Path
    clips: list[Clip]
    rejected: list[dict[str, str]]
    written: int = 0
    reused: int = 0
    fold_members: dict[int, list[Any]] = field(default_factory=dict)
    synthetic: bool = False
    name: str = "ravdess"
    labels: tuple[str, ...] = ()
    folds: FoldRule = DEFAULT_FOLDS


@dataclass(frozen=True)
class _Input:
    """The opened source: which adapter reads it, and its files."""

    adapter: Format
    source: Source
    members: list[str]
    synthetic: bool
    where: str  # the source as the user named it (a folder, a zip, a CSV file)


def _work(args: tuple[str, str, str, str, str | None]) -> dict:
    """Worker: hash, then decode/resample/write unless the same content is already done."""
    src_path, member, out_root, rel_out, known_sha = args
    data = Source(Path(src_path)).read(member)
    sha = hashlib.sha256(data).hexdigest()
    out = Path(out_root) / rel_out
    if known_sha == sha and out.is_file():
        return {"status": "reused", "sha": sha}
    try:
        y, channels, rate = decode_16k_mono(data)
    except BadAudio as e:
        return {"status": "rejected", "sha": sha, "reason": str(e)}
    with atomic_path(out) as tmp:
        sf.write(tmp, y, TARGET_SR, subtype="PCM_16", format="WAV")
    return {
        "status": "written",
        "sha": sha,
        "duration": y.size / TARGET_SR,
        "channels": channels,
        "sample_rate": rate,
    }


def _previous(out: Path) -> dict[str, Clip]:
    """The clips of an earlier complete run into ``out``, by relative clip path."""
    if not (out / CORPUS_JSON).is_file() or not (out / MANIFEST).is_file():
        return {}
    try:
        return {c.path: c for c in read_manifest_rows(out / MANIFEST)}
    except (CorpusError, UnicodeDecodeError):
        return {}  # a damaged manifest only costs a full redo


def _open_input(src: str | Path | None, fmt: str | None, options: dict[str, Path | None]) -> _Input:
    """The adapter and the files it reads: a release (zip or folder), or a CSV's rows."""
    manifest = options.get("manifest")
    if manifest is None and src is not None and Path(src).suffix.lower() == ".csv":
        manifest, src = Path(src), None  # `hpo data prepare my-corpus.csv`
    if manifest is not None:
        if src is not None or fmt not in (None, "csv"):
            raise CorpusError(
                "--manifest lists the clips itself: give no SRC and no other --format"
            )
        if not Path(manifest).is_file():
            raise CorpusError(f"{manifest}: no such CSV file")
        folder = Path(manifest).resolve().parent
        adapter = get_format("csv", manifest=Path(manifest))
        synthetic = (folder / SYNTH_MARKER).is_file()
        return _Input(adapter, Source(folder), [], synthetic, str(manifest))
    if src is None:
        raise CorpusError("give SRC (a release's zip or folder) or --manifest FILE.csv")
    if fmt == "csv":
        raise CorpusError("--format csv needs --manifest FILE.csv (path, speaker, label columns)")
    source = open_source(src)
    members = source.members()
    if not members:
        raise CorpusError(f"{src}: contains no files; give the corpus's zip or its folder")
    synthetic = any(PurePosixPath(m).name == SYNTH_MARKER for m in members)
    members = [m for m in members if PurePosixPath(m).name != SYNTH_MARKER]
    name = fmt or detect(members, str(src))
    if options.get("demographics") is not None and name != "crema-d":
        raise CorpusError(f"--demographics is CREMA-D's VideoDemographics.csv; this is {name}")
    adapter = get_format(name, demographics=options.get("demographics"))
    return _Input(adapter, source, members, synthetic, str(src))


def _plan(inp: _Input) -> tuple[list[Entry], list[dict[str, str]]]:
    """The entries to decode (one per clip id) and the inputs rejected by name."""
    found = inp.adapter.entries(inp.source, inp.members)
    rejected = list(found.rejected)
    first: dict[str, str] = {}
    todo: list[Entry] = []
    for e in found.entries:
        if e.out in first:
            rejected.append({"file": e.member, "reason": f"duplicate clip id of {first[e.out]}"})
        else:
            first[e.out] = e.member
            todo.append(e)
    return todo, rejected


def _decode_all(
    inp: _Input, todo: list[Entry], out: Path, prev: dict[str, Clip], jobs: int | None
) -> list[dict]:
    tasks = [
        (
            str(inp.source.path),
            e.member,
            str(out),
            e.out,
            prev[e.out].source_sha256 if e.out in prev else None,
        )
        for e in todo
    ]
    try:
        return list(pmap(_work, tasks, "preparing clips", jobs))
    except OSError as e:  # disk full, permissions: not the clip's fault, so stop here
        raise CorpusError(
            f"{out}: cannot write ({e.strerror or e}); the existing corpus there is unchanged"
        ) from None


def _collect(
    todo: list[Entry], results: list[dict], prev: dict[str, Clip], out: Path
) -> tuple[list[Clip], list[dict[str, str]], int, int]:
    """Clips (fold unset) in the adapter's order, rejected audio and duplicates by content,
    and how many clips were written and reused."""
    kept: list[tuple[Entry, Clip]] = []
    rejected: list[dict[str, str]] = []
    first_by_sha: dict[str, str] = {}
    written = reused = 0
    for e, r in zip(todo, results, strict=True):
        if r["status"] == "rejected":
            rejected.append({"file": e.member, "reason": r["reason"]})
            continue
        if r["sha"] in first_by_sha:
            rejected.append({"file": e.member, "reason": f"same audio as {first_by_sha[r['sha']]}"})
            if r["status"] == "written":
                (out / e.out).unlink(missing_ok=True)
            continue
        first_by_sha[r["sha"]] = e.member
        if r["status"] == "reused":
            old = prev[e.out]
            audio = (old.duration, old.channels, old.sample_rate)
            reused += 1
        else:
            audio = (r["duration"], r["channels"], r["sample_rate"])
            written += 1
        kept.append((e, _clip(e, r["sha"], *audio)))
    kept.sort(key=lambda ec: ec[0].order or (ec[0].out,))
    return [c for _, c in kept], rejected, written, reused


def _clip(e: Entry, sha: str, duration: float, channels: int, rate: int) -> Clip:
    return Clip(
        path=e.out,
        speaker=e.speaker,
        gender=e.gender,
        label=e.label,
        fold=-1,
        duration=round(duration, 4),
        channels=channels,
        sample_rate=rate,
        source=e.member,
        source_sha256=sha,
        extra=e.extra,
    )


def _with_folds(clips: list[Clip], n_folds: FoldRule | None) -> tuple[list[Clip], FoldRule, dict]:
    """Clips with their fold; the rule used (by default 6 folds, or one fold per speaker
    when there are fewer than 6 speakers) and ``{fold: speakers}``."""
    genders = {c.speaker: c.gender for c in clips}
    if n_folds is None:
        n_folds = DEFAULT_FOLDS if len(genders) >= DEFAULT_FOLDS else LOSO
    fold_of = assign_folds(genders, n_folds, genders)
    clips = [dataclasses.replace(c, fold=fold_of[c.speaker]) for c in clips]
    return clips, n_folds, fold_members(fold_of)


def _no_clips(inp: _Input, rejected: list[dict[str, str]]) -> CorpusError:
    reasons = sorted({r["reason"].split(":")[0] for r in rejected})
    n = len(inp.members) or len(rejected)
    return CorpusError(
        f"{inp.where}: no usable speech clip among {n} file(s) "
        f"(rejected: {'; '.join(reasons) or 'nothing to read'})"
    )


def _meta(
    inp: _Input,
    name: str,
    labels: tuple[str, ...],
    clips: list[Clip],
    rule: FoldRule,
    rejected: list[dict[str, str]],
) -> dict[str, Any]:
    """``corpus.json``: the corpus's name, label set and fold rule, and where it came from."""
    genders = {c.speaker: c.gender for c in clips}
    return {
        "name": name,
        "adapter": inp.adapter.name,
        "labels": list(labels),
        "folds": rule,
        "n_folds": len({c.fold for c in clips}),
        "speakers": dict(sorted(genders.items(), key=lambda sg: speaker_key(sg[0]))),
        "sample_rate": TARGET_SR,
        "channels": 1,
        "source": str(Path(inp.where).resolve()),
        "synthetic": inp.synthetic,
        "prepared_with": f"hpo {__version__}",
        "rejected": rejected,
    }


def prepare(
    src: str | Path | None,
    out: str | Path | None,
    n_folds: FoldRule | None = None,
    jobs: int | None = None,
    fmt: str | None = None,
    manifest: Path | None = None,
    name: str | None = None,
    demographics: Path | None = None,
) -> PrepareReport:
    """Prepare an emotion corpus (or a synthetic one in a release's layout) for training.

    Args:
        src: the release's zip or folder (``None`` with ``manifest``).
        out: corpus directory to write (created; an earlier run there is reused by content);
            default ``data/NAME``.
        n_folds: ``K`` speaker folds or ``"loso"``; default 6, or ``"loso"`` when the corpus
            has fewer than 6 speakers.
        jobs: worker processes (default: all cores).
        fmt: the adapter (``hpo.corpus.formats``); default: told from the file names.
        manifest: a CSV listing the clips (path, speaker, label, optional gender).
        name: the corpus's name in ``corpus.json`` (default: the adapter's, or the CSV's
            file name).
        demographics: CREMA-D's ``VideoDemographics.csv`` when it is not in ``src``.

    Returns:
        A report with the clips and every rejected input with its reason.
    """
    inp = _open_input(src, fmt, {"manifest": manifest, "demographics": demographics})
    csv_name = Path(inp.where).stem if inp.adapter.name == "csv" else None
    corpus_name = name or csv_name or inp.adapter.name
    out = Path("data") / corpus_name if out is None else Path(out)
    todo, rejected = _plan(inp)
    if n_folds is not None:  # an impossible rule is refused before any clip is written
        check_rule(n_folds, len({e.speaker for e in todo}))
    prev = _previous(out)
    results = _decode_all(inp, todo, out, prev, jobs)
    clips, bad_audio, written, reused = _collect(todo, results, prev, out)
    rejected = sorted(rejected + bad_audio, key=lambda r: r["file"])
    if not clips:
        raise _no_clips(inp, rejected)
    clips, rule, members = _with_folds(clips, n_folds)
    labels = inp.adapter.label_set(c.label for c in clips)
    write_corpus(out, clips, _meta(inp, corpus_name, labels, clips, rule, rejected))
    # Clips of an earlier run that this source no longer has must not linger beside the
    # manifest; removed once the new manifest (which does not name them) is in place.
    keep = {c.path for c in clips}
    for old in prev:
        if old not in keep:
            (out / old).unlink(missing_ok=True)
    return PrepareReport(
        out, clips, rejected, written, reused, members, inp.synthetic, corpus_name, labels, rule
    )
