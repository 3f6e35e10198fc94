"""``hpo data prepare``: a corpus release (zip, folder or CSV list) → 16 kHz mono clips +
manifest + folds.

The adapter (``hpo.corpus.formats``) says what each source file is; everything else is the
same for every corpus. Every file of the source ends up either in the manifest or in the
list of rejected inputs with its reason.

All or nothing: the new corpus is built in a staging directory beside the output (same file
system), reusing the clips of an earlier run whose source is unchanged as hard links (the old
files are never written to), and swapped in whole at the end, in one ``renameat2`` exchange
where the system has it. Until then the old corpus is untouched and is what loads; a staging
directory left by a killed run is removed by the next one. Whatever else the old directory
held (feature caches, keyed by the manifest's hash) moves into the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import soundfile as sf

from hpo import __version__
from hpo.corpus.audio import TARGET_SR, BadAudio, decode_16k_mono
from hpo.corpus.folds import (
    FILE,
    LOSO,
    FoldRule,
    assign_folds,
    check_rule,
    fold_members,
    fold_units,
    speaker_key,
)
from hpo.corpus.formats import detect, get_format
from hpo.corpus.formats._base import Entry, Format
from hpo.corpus.manifest import CORPUS_JSON, MANIFEST, Clip, read_manifest_rows, write_corpus
from hpo.corpus.source import SYNTH_MARKER, Source, open_source
from hpo.corpus.splits import GivenFolds, check_groups, check_kept, from_column, from_file
from hpo.errors import CorpusError
from hpo.util.io import exchange, fsync_dir, fsync_file, fsync_tree
from hpo.util.parallel import pmap

DEFAULT_FOLDS = 6
# What prepare writes at a corpus's top level; anything else there (feature caches) is not
# the corpus's and moves into the new corpus when it is swapped in.
_OWN = frozenset({"clips", MANIFEST, CORPUS_JSON})
_STAGING, _REPLACED = "preparing", "replaced"


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
    folds_from: dict[str, Any] | None = None  # the published split's table, with "folds: file"
    grouped: bool = False  # the rule cut groups of speakers (the CSV's group column)


@dataclass(frozen=True)
class _Input:
    """The opened source: which adapter reads it, and its files."""

    adapter: Format
    source: Source
    members: list[str]
    synthetic: bool
    where: str  # the source as the user named it (a folder, a zip, a CSV file)


def _work(args: tuple[str, str, str, str, str, tuple[str, float] | None]) -> dict:
    """Worker: hash, then link the earlier run's clip when its source is the same content,
    else decode/resample/write into the staging directory."""
    src_path, member, stage, old_root, rel_out, known = args
    data = Source(Path(src_path)).read(member)
    sha = hashlib.sha256(data).hexdigest()
    out, old = Path(stage) / rel_out, Path(old_root) / rel_out
    out.parent.mkdir(parents=True, exist_ok=True)
    if known is not None and known[0] == sha and _intact(old, known[1]):
        _link_or_copy(old, out)
        return {"status": "reused", "sha": sha}
    try:
        y, channels, rate = decode_16k_mono(data)
    except BadAudio as e:
        return {"status": "rejected", "sha": sha, "reason": str(e)}
    sf.write(out, y, TARGET_SR, subtype="PCM_16", format="WAV")
    fsync_file(out)
    return {
        "status": "written",
        "sha": sha,
        "duration": y.size / TARGET_SR,
        "channels": channels,
        "sample_rate": rate,
    }


def _intact(clip: Path, duration: float) -> bool:
    """The earlier run's clip is there and as long as its manifest says: earlier hpo versions
    rewrote clips in place, so one killed part-way left other audio under the same row."""
    try:
        info = sf.info(clip)
    except (OSError, RuntimeError):  # missing, or not audio (libsndfile's errors vary)
        return False
    return info.samplerate == TARGET_SR and abs(info.frames / TARGET_SR - duration) < 1e-3


def _link_or_copy(old: Path, new: Path) -> None:
    """A hard link: instant, and the old corpus's file is only read, never written."""
    try:
        os.link(old, new)
    except OSError:  # a file system without hard links
        shutil.copyfile(old, new)
        fsync_file(new)


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
    inp: _Input, todo: list[Entry], stage: Path, out: Path, prev: dict[str, Clip], jobs: int | None
) -> list[dict]:
    tasks = [
        (
            str(inp.source.path),
            e.member,
            str(stage),
            str(out),
            e.out,
            (prev[e.out].source_sha256, prev[e.out].duration) if e.out in prev else None,
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
    todo: list[Entry], results: list[dict], prev: dict[str, Clip], stage: Path
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
                (stage / e.out).unlink(missing_ok=True)
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


def _groups(entries: list[Entry]) -> dict[str, str] | None:
    """``{speaker: group}`` when the corpus lists groups (the CSV's group column), else None."""
    if not any(k == "group" for e in entries for k, _ in e.extra):
        return None
    return {e.speaker: dict(e.extra).get("group", "") for e in entries}


def _fold_inputs(
    inp: _Input,
    todo: list[Entry],
    rejected: list[dict[str, str]],
    folds_from: Path | None,
    n_folds: FoldRule | None,
) -> tuple[GivenFolds | None, dict[str, str] | None]:
    """The published split to use (if any) and the speakers' groups (if any), checked, with
    the rule, before any clip is decoded."""
    column = from_column(Path(inp.where), todo) if inp.adapter.name == "csv" else None
    if column is not None and folds_from is not None:
        raise CorpusError(
            f"{inp.where}: has a fold column and --folds-from gives folds too; give the split once"
        )
    given = column or (from_file(Path(folds_from), todo, rejected) if folds_from else None)
    if given is not None and n_folds is not None:
        raise CorpusError(
            f"{given.source['file']}: gives the folds (a published split, used as it is); "
            "leave out --folds"
        )
    groups = _groups(todo)
    if given is not None and groups:
        check_groups(given.fold_of, groups, inp.where)
    if n_folds is not None:  # an impossible rule is refused before any clip is written
        units = fold_units({e.speaker for e in todo}, groups)
        check_rule(n_folds, len(units), any(len(u) > 1 for u in units))
    return given, groups


def _with_folds(
    clips: list[Clip], n_folds: FoldRule | None, given: GivenFolds | None, groups: dict | None
) -> tuple[list[Clip], FoldRule, dict]:
    """Clips with their fold; the rule used (a published split's folds as given; else by
    default 6 folds, or one fold per speaker (group) when there are fewer than 6) and
    ``{fold: speakers}``."""
    genders = {c.speaker: c.gender for c in clips}
    if given is not None:
        fold_of, n_folds = check_kept(given, set(genders), given.source["file"]), FILE
    else:
        if n_folds is None:
            n_units = len(fold_units(genders, groups))
            n_folds = DEFAULT_FOLDS if n_units >= DEFAULT_FOLDS else LOSO
        fold_of = assign_folds(genders, n_folds, genders, groups)
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
    given: GivenFolds | None = None,
    grouped: bool = False,
) -> dict[str, Any]:
    """``corpus.json``: the corpus's name, label set and fold rule (and the published split's
    table, hashed), and where it came from."""
    genders = {c.speaker: c.gender for c in clips}
    return {
        "name": name,
        "adapter": inp.adapter.name,
        "labels": list(labels),
        "folds": rule,
        "n_folds": len({c.fold for c in clips}),
        **({"folds_from": given.source} if given is not None else {}),
        "fold_unit": "group" if grouped else "speaker",
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
    folds_from: Path | None = None,
) -> PrepareReport:
    """Prepare an emotion corpus (or a synthetic one in a release's layout) for training.

    Args:
        src: the release's zip or folder (``None`` with ``manifest``).
        out: corpus directory to write (created; an earlier run there is reused by content
            and replaced whole, its feature caches kept); default ``data/NAME``.
        n_folds: ``K`` speaker folds or ``"loso"``; default 6, or ``"loso"`` when the corpus
            has fewer than 6 speakers.
        jobs: worker processes (default: all cores).
        fmt: the adapter (``hpo.corpus.formats``); default: told from the file names.
        manifest: a CSV listing the clips (path, speaker, label, optional gender).
        name: the corpus's name in ``corpus.json`` (default: the adapter's, or the CSV's
            file name).
        demographics: CREMA-D's ``VideoDemographics.csv`` when it is not in ``src``.
        folds_from: a published split to use as it is (``speaker,fold`` or ``path,fold``
            CSV; ``hpo.corpus.splits``); a CSV corpus's ``fold`` column is one too.

    Returns:
        A report with the clips and every rejected input with its reason.
    """
    inp = _open_input(src, fmt, {"manifest": manifest, "demographics": demographics})
    csv_name = Path(inp.where).stem if inp.adapter.name == "csv" else None
    corpus_name = name or csv_name or inp.adapter.name
    out = Path("data") / corpus_name if out is None else Path(out)
    todo, rejected = _plan(inp)
    given, groups = _fold_inputs(inp, todo, rejected, folds_from, n_folds)
    grouped = given is None and bool(groups)
    real = _target(out)
    _clear_leftovers(real)
    prev = _previous(real)
    with _staging(real) as stage:
        results = _decode_all(inp, todo, stage, real, prev, jobs)
        clips, bad_audio, written, reused = _collect(todo, results, prev, stage)
        rejected = sorted(rejected + bad_audio, key=lambda r: r["file"])
        if not clips:
            raise _no_clips(inp, rejected)
        clips, rule, members = _with_folds(clips, n_folds, given, groups)
        labels = inp.adapter.label_set(c.label for c in clips)
        meta = _meta(inp, corpus_name, labels, clips, rule, rejected, given, grouped)
        write_corpus(stage, clips, meta)
        _swap_in(stage, real)
    split = (rule, given.source if given else None, grouped)
    return PrepareReport(
        out, clips, rejected, written, reused, members, inp.synthetic, corpus_name, labels, *split
    )


def _target(out: Path) -> Path:
    """The directory to replace: a symlinked corpus is replaced where it lives, and the link
    stays."""
    real = out.resolve() if out.is_symlink() else out.absolute()
    if real.exists() and not real.is_dir():
        raise CorpusError(f"{out}: exists and is not a directory; give another --out")
    real.parent.mkdir(parents=True, exist_ok=True)
    return real


def _beside(real: Path, tag: str, pid: int) -> Path:
    return real.parent / f".{real.name}.{pid}.{tag}"


@contextlib.contextmanager
def _staging(real: Path) -> Iterator[Path]:
    """A new directory beside ``real`` for the new corpus; removed if the run stops short."""
    stage = _beside(real, _STAGING, os.getpid())
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir()
        if real.is_dir():  # the corpus keeps its permissions (a group-shared folder stays so)
            os.chmod(stage, real.stat().st_mode & 0o7777)
    except OSError as e:
        raise CorpusError(
            f"{real.parent}: cannot write there ({e.strerror or e}); the new corpus is built "
            "beside the old one and swapped in, so the folder that holds it must be writable"
        ) from None
    try:
        yield stage
    except OSError as e:  # a full disk while writing the manifest, say
        raise CorpusError(
            f"{real}: cannot write ({e.strerror or e}); the existing corpus there is unchanged"
        ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap_in(stage: Path, real: Path) -> None:
    """Replace the corpus at ``real`` with the complete one in ``stage``, in one step where
    the system can; ``stage`` then holds the old corpus, whose other contents move over."""
    fsync_tree(stage, files=False)  # the clips and the manifest were flushed as written
    old = stage
    if not real.exists():
        os.rename(stage, real)
    elif not exchange(stage, real):
        # Two renames: a kill between them leaves no corpus at ``real`` for an instant; the
        # next prepare puts the old one back (``_clear_leftovers``).
        old = _beside(real, _REPLACED, os.getpid())
        os.rename(real, old)
        try:
            os.rename(stage, real)
        except OSError:
            os.rename(old, real)  # the old corpus back in place: "unchanged" stays true
            raise
    try:
        fsync_dir(real.parent)
    except OSError as e:  # not "unchanged" (what the caller says of an OSError): it is in
        raise CorpusError(f"{real}: the new corpus is in place but not flushed ({e})") from None
    _retire(old, real)


def _retire(old: Path, real: Path) -> None:
    """Move what is not the corpus's own (feature caches) from the replaced corpus ``old``
    into ``real``, then remove ``old``."""
    with contextlib.suppress(OSError):  # the new corpus is in: a cache lost costs only time
        for entry in old.iterdir() if real.is_dir() else ():
            if entry.name not in _OWN and not (real / entry.name).exists():
                os.rename(entry, real / entry.name)
    shutil.rmtree(old, ignore_errors=True)


def _clear_leftovers(real: Path) -> None:
    """Tidy up after a prepare into ``real`` that was killed: put back an old corpus caught
    between two renames, keep the caches of one caught after its swap, remove the rest."""
    if sys.platform == "win32":
        return  # no harmless way there to ask whether the process that made them is alive
    found: list[tuple[str, Path]] = []
    for p in real.parent.glob(f".{glob.escape(real.name)}.*.*"):
        pid, _, tag = p.name[len(real.name) + 2 :].partition(".")
        if tag in (_STAGING, _REPLACED) and pid.isdigit() and not _alive(int(pid)):
            found.append((tag, p))
    for tag, p in sorted(found, key=lambda tp: tp[0] != _REPLACED):
        if tag == _REPLACED and not real.exists():
            os.rename(p, real)
        else:
            _retire(p, real)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not preparing this corpus yet
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True
