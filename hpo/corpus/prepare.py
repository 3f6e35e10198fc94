"""``hpo data prepare``: the release (zip or folder) → 16 kHz mono clips + manifest + folds.

Every file of the source ends up either in the manifest or in the list of rejected inputs
with its reason. Clip files are written atomically and the manifest last, so an interrupted
run leaves no half-written file and a re-run redoes only what is missing or changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import soundfile as sf

from hpo import __version__
from hpo.corpus.audio import TARGET_SR, BadAudio, to_16k_mono
from hpo.corpus.folds import assign_folds, fold_members
from hpo.corpus.manifest import CORPUS_JSON, MANIFEST, Clip, read_manifest_rows, write_corpus
from hpo.corpus.ravdess import BadClipName, ClipId, parse_stem
from hpo.corpus.source import SYNTH_MARKER, Source, open_source
from hpo.errors import CorpusError
from hpo.util.io import atomic_path
from hpo.util.parallel import pmap

_VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


@dataclass
class PrepareReport:
    """What ``prepare`` did: the corpus directory, its clips and the inputs it skipped."""

    out: Path
    clips: list[Clip]
    rejected: list[dict[str, str]]
    written: int = 0
    reused: int = 0
    fold_members: dict[int, list[int]] = field(default_factory=dict)
    synthetic: bool = False


def _classify(member: str) -> ClipId | str:
    """A member's clip id, or the reason it is not a usable clip."""
    p = PurePosixPath(member)
    ext = p.suffix.lower()
    if ext in _VIDEO_EXT:
        return "video file: only the audio-only .wav clips are used"
    if ext != ".wav":
        return f"not a .wav file ({ext or 'no extension'})"
    try:
        cid = parse_stem(p.stem)
    except BadClipName as e:
        return f"name does not parse: {e}"
    if cid.modality != 3:
        return f"video modality {cid.modality:02d}: only audio-only (03) clips are used"
    if cid.channel != 1:
        return "song clip (vocal channel 02): only speech (01) is used"
    return cid


def _work(args: tuple[str, str, str, str, str | None]) -> dict:
    """Worker: hash, then decode/resample/write unless the same content is already done."""
    src_path, member, out_root, rel_out, known_sha = args
    data = Source(Path(src_path)).read(member)
    sha = hashlib.sha256(data).hexdigest()
    out = Path(out_root) / rel_out
    if known_sha == sha and out.is_file():
        return {"status": "reused", "sha": sha}
    try:
        y, channels = to_16k_mono(data)
    except BadAudio as e:
        return {"status": "rejected", "sha": sha, "reason": str(e)}
    with atomic_path(out) as tmp:
        sf.write(tmp, y, TARGET_SR, subtype="PCM_16", format="WAV")
    return {"status": "written", "sha": sha, "duration": y.size / TARGET_SR, "channels": channels}


def _previous(out: Path) -> dict[str, Clip]:
    """The clips of an earlier complete run into ``out``, by relative clip path."""
    if not (out / CORPUS_JSON).is_file() or not (out / MANIFEST).is_file():
        return {}
    try:
        return {c.path: c for c in read_manifest_rows(out / MANIFEST)}
    except CorpusError:
        return {}  # a damaged manifest only costs a full redo


def prepare(
    src: str | Path, out: str | Path, n_folds: int = 6, jobs: int | None = None
) -> PrepareReport:
    """Prepare the RAVDESS speech release (or a synthetic one in its layout) for training.

    Args:
        src: ``Audio_Speech_Actors_01-24.zip`` or the folder it extracts to.
        out: corpus directory to write (created; an earlier run there is reused by content).
        n_folds: actor folds to assign in the manifest.
        jobs: worker processes (default: all cores).

    Returns:
        A report with the clips and every rejected input with its reason.
    """
    source = open_source(src)
    out = Path(out)
    members = source.members()
    if not members:
        raise CorpusError(f"{src}: contains no files; give the RAVDESS zip or its folder")
    synthetic = any(PurePosixPath(m).name == SYNTH_MARKER for m in members)
    members = [m for m in members if PurePosixPath(m).name != SYNTH_MARKER]

    rejected: list[dict[str, str]] = []
    first_by_id: dict[ClipId, str] = {}
    todo: list[tuple[str, ClipId]] = []
    for m in members:
        c = _classify(m)
        if isinstance(c, str):
            rejected.append({"file": m, "reason": c})
        elif c in first_by_id:
            rejected.append({"file": m, "reason": f"duplicate clip id of {first_by_id[c]}"})
        else:
            first_by_id[c] = m
            todo.append((m, c))

    prev = _previous(out)
    rel = {cid: f"clips/Actor_{cid.actor:02d}/{cid.filename}" for _, cid in todo}
    tasks = [
        (
            str(source.path),
            m,
            str(out),
            rel[cid],
            prev[rel[cid]].source_sha256 if rel[cid] in prev else None,
        )
        for m, cid in todo
    ]
    try:
        results = list(pmap(_work, tasks, "preparing clips", jobs))
    except OSError as e:  # disk full, permissions: not the clip's fault, so stop here
        raise CorpusError(
            f"{out}: cannot write ({e.strerror or e}); the existing corpus there is unchanged"
        ) from None

    clips_by_id: dict[ClipId, Clip] = {}
    first_by_sha: dict[str, str] = {}
    written = reused = 0
    for (m, cid), r in zip(todo, results, strict=True):
        if r["status"] == "rejected":
            rejected.append({"file": m, "reason": r["reason"]})
            continue
        if r["sha"] in first_by_sha:
            rejected.append({"file": m, "reason": f"same audio as {first_by_sha[r['sha']]}"})
            if r["status"] == "written":
                (out / rel[cid]).unlink(missing_ok=True)
            continue
        first_by_sha[r["sha"]] = m
        if r["status"] == "reused":
            old = prev[rel[cid]]
            duration, channels = old.duration, old.channels
            reused += 1
        else:
            duration, channels = r["duration"], r["channels"]
            written += 1
        clips_by_id[cid] = Clip(
            path=rel[cid],
            actor=cid.actor,
            gender=cid.gender,
            emotion=cid.emotion_label,
            emotion_id=cid.emotion,
            intensity=cid.intensity,
            statement=cid.statement,
            repetition=cid.repetition,
            duration=round(duration, 4),
            channels=channels,
            source=m,
            source_sha256=r["sha"],
            fold=-1,
        )

    if not clips_by_id:
        reasons = sorted({r["reason"].split(":")[0] for r in rejected})
        raise CorpusError(
            f"{src}: no usable speech clip among {len(members)} file(s) "
            f"(rejected: {'; '.join(reasons) or 'nothing to read'})"
        )
    fold_of = assign_folds({c.actor for c in clips_by_id.values()}, n_folds)
    clips = [
        Clip(**{**c.__dict__, "fold": fold_of[c.actor]}) for _, c in sorted(clips_by_id.items())
    ]
    # Clips of an earlier run that this source no longer has must not linger beside the manifest.
    keep = {c.path for c in clips}
    for old in prev:
        if old not in keep:
            (out / old).unlink(missing_ok=True)
    rejected.sort(key=lambda r: r["file"])
    members_by_fold = fold_members(fold_of)
    write_corpus(
        out,
        clips,
        {
            "sample_rate": TARGET_SR,
            "channels": 1,
            "n_folds": n_folds,
            "source": str(source.path.resolve()),
            "synthetic": synthetic,
            "prepared_with": f"hpo {__version__}",
            "rejected": rejected,
        },
    )
    return PrepareReport(
        out=out,
        clips=clips,
        rejected=rejected,
        written=written,
        reused=reused,
        fold_members=members_by_fold,
        synthetic=synthetic,
    )
