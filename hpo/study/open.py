"""Create a study, or resume one after checking it is the same study on the same data.

Every study records what its results depend on (definition hash, corpus name, label set and
manifest hash, fold speakers, package versions, git revision) as user attributes; resuming
with a different definition or corpus is refused unless asked.
"""

from __future__ import annotations

import json
import time
from typing import Any

import optuna

from hpo.config.study import StudySpec, spec_hash
from hpo.config.urls import redact
from hpo.corpus.folds import Fold, corpus_folds
from hpo.corpus.manifest import Corpus
from hpo.errors import StorageError
from hpo.kinds import get_kind
from hpo.study.locks import ask_lock
from hpo.study.provenance import git_revision, package_versions
from hpo.study.storage import open_storage
from hpo.trial.notes import markdown_table

# What a resume with --allow-changed-spec refreshes: everything that describes the data and
# definition the study's next trials run on (the creation time and versions stay the first
# run's; ``spec_changes`` keeps what each of these was before).
_REFRESHED = (
    "metric",
    "spec_hash",
    "spec",
    "manifest_hash",
    "corpus_path",
    "corpus_name",
    "labels",
    "corpus_synthetic",
    "corpus_clips",
    "fold_rule",
    "fold_actors",
)


def provenance(spec: StudySpec, corpus: Corpus, folds: list[Fold] | None = None) -> dict[str, Any]:
    """What the study's results depend on. ``folds``: the folds its trials are scored on
    when they are not the corpus's own (a nested inner study: the outer fold's speakers)."""
    folds = corpus_folds(corpus, spec.data.folds) if folds is None else folds
    kind = get_kind(spec.kind)
    return {
        "kind": spec.kind,
        "metric": spec.objective.metric,
        "spec_hash": spec.hash,
        "spec": json.loads(json.dumps(spec.raw, default=str)),
        "manifest_hash": corpus.manifest_hash,
        "corpus_path": str(corpus.root),
        "corpus_name": corpus.name,
        # The label set, in class order: confusion matrices, reports and exports name it.
        "labels": list(corpus.labels),
        "corpus_synthetic": corpus.synthetic,
        "corpus_clips": len(corpus.clips),
        "fold_rule": corpus.fold_rule,
        "fold_actors": {str(f.index): list(f.valid_actors) for f in folds},
        "versions": package_versions(kind.versions),
        "git_revision": git_revision(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **kind.describe(spec),
    }


def study_note(spec: StudySpec, provenance: dict[str, Any]) -> str:
    """The dashboard's note on the study: description, folds and provenance."""
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
        f"Objective: mean {spec.objective.metric} over {len(folds)} speaker folds.\n\n"
        f"{reading_best(spec.name)}\n\n"
        f"{markdown_table(['fold', 'validation speakers'], fold_rows)}\n\n"
        f"### Provenance\n\n```json\n{json.dumps(prov, indent=2, default=str)}\n```\n"
    )


def reading_best(name: str) -> str:
    """How to read the dashboard's best value: this note is written once, when the study is
    created, and the best changes after, so it says what the number is, not the number."""
    return (
        "**Reading the best value.** The best value shown here is the best of N complete "
        "trials on the folds that selected it: optimistic, not an estimate for new speakers. "
        f"`hpo nested --study {name}` computes the honest (nested) estimate; `hpo status "
        f"--study {name}` and `hpo report --study {name}` print both side by side, and `hpo "
        f"rerun --study {name} --seeds 5` trains the pick again with new seeds."
    )


def annotate_study(study: optuna.Study, spec: StudySpec, provenance: dict[str, Any]) -> None:
    """Metric name and study note for optuna-dashboard; called once, as the study is created."""
    from optuna_dashboard import save_note

    study.set_metric_names([spec.objective.metric])
    save_note(study, study_note(spec, provenance))


def _changed_sections(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [
        k
        for k in keys
        if k not in ("budget", "run", "description")
        and json.dumps(old.get(k), sort_keys=True, default=str)
        != json.dumps(new.get(k), sort_keys=True, default=str)
    ]


def open_study(
    spec: StudySpec,
    storage_url: str,
    corpus: Corpus,
    allow_changed: bool = False,
    folds: list[Fold] | None = None,
) -> optuna.Study:
    """Create the study, or resume it after checking it is the same study on the same data.
    ``folds``: the folds its trials are scored on, when not the corpus's own (nested CV)."""
    storage = open_storage(storage_url, spec.run)
    # Creating the study and stamping its provenance are separate writes: under the lock the
    # workers share, a run joining at the same moment never sees a half-stamped study.
    lock = ask_lock(storage, storage_url, spec.name)
    try:
        lock.acquire()
        return _create_or_check(storage, storage_url, spec, corpus, allow_changed, folds)
    finally:
        lock.close()


def _create_or_check(
    storage: optuna.storages.BaseStorage,
    storage_url: str,
    spec: StudySpec,
    corpus: Corpus,
    allow_changed: bool,
    folds: list[Fold] | None = None,
) -> optuna.Study:
    direction = spec.objective.direction
    try:
        study = optuna.create_study(
            storage=storage, study_name=spec.name, direction=direction, load_if_exists=True
        )
    except ValueError as e:  # e.g. an existing study with another direction
        raise StorageError(f"study '{spec.name}': {e}") from None
    attrs = study.user_attrs
    if "spec_hash" not in attrs:
        prov = provenance(spec, corpus, folds)
        for k, v in prov.items():
            study.set_user_attr(k, v)
        annotate_study(study, spec, prov)
        return study
    if study.direction.name.lower() != direction:
        raise StorageError(
            f"study '{spec.name}' in {redact(storage_url)} is "
            f"{study.direction.name.lower()}d, the study file says {direction}"
        )
    same_spec = _stored_hash(attrs, spec) == spec.hash
    if not same_spec and not allow_changed:
        changed = _changed_sections(attrs.get("spec", {}), spec.raw)
        raise StorageError(
            f"study '{spec.name}' was created from a different definition "
            f"(changed: {', '.join(changed) or 'settings'}); rerun with --allow-changed-spec "
            "to continue it anyway, or set a new 'name' in the study file"
        )
    if attrs.get("manifest_hash") != corpus.manifest_hash and not allow_changed:
        raise StorageError(
            f"study '{spec.name}' was run on another corpus (manifest {attrs.get('manifest_hash')},"
            f" now {corpus.manifest_hash} at {corpus.root}); rerun with --allow-changed-spec "
            "to continue it anyway, or use a new study name"
        )
    if not same_spec or attrs.get("manifest_hash") != corpus.manifest_hash:
        _refresh(study, spec, provenance(spec, corpus, folds))
    return study


def _stored_hash(attrs: dict[str, Any], spec: StudySpec) -> str:
    """The stored study's hash under today's rule, from its own stored definition (an older
    hpo hashed settings, such as logging, that no longer count)."""
    if isinstance(attrs.get("spec"), dict):
        return spec_hash(attrs["spec"], getattr(spec.settings, "OPERATIONAL", {}))
    return str(attrs.get("spec_hash"))


def _refresh(study: optuna.Study, spec: StudySpec, prov: dict[str, Any]) -> None:
    """A resume allowed to change definition or corpus: every attribute that describes them
    is rewritten (labels, folds, corpus), and ``spec_changes`` keeps what they were."""
    attrs = study.user_attrs
    history = list(attrs.get("spec_changes", []))
    history.append(
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "spec_hash": spec.hash,
            "manifest_hash": prov["manifest_hash"],
            "before": {k: attrs[k] for k in _REFRESHED if k in attrs and k != "spec"},
        }
    )
    study.set_user_attr("spec_changes", history)
    for k in _REFRESHED:
        study.set_user_attr(k, prov[k])
    annotate_study(study, spec, {**attrs, **{k: prov[k] for k in _REFRESHED}})
