"""The probe's layer as a searched axis apart from pooling, features standardised per fold
with training clips' statistics only, and heads offered by name (#26 item 5)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import optuna
import pytest
import tomli_w
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from hpo.cli import cli
from hpo.corpus.folds import corpus_folds
from hpo.corpus.manifest import load_corpus
from hpo.errors import SpecError
from hpo.kinds import get_kind, load_spec, stored_spec
from hpo.kinds.w2v.backbone import new_classifier
from hpo.kinds.w2v.clips import load_waves, max_samples
from hpo.kinds.w2v.model import HEAD_CONFIG, HEAD_FILE, load_saved
from hpo.kinds.w2v.probe import train
from hpo.kinds.w2v.probe.head import ProbeHead, ProbeInputs
from hpo.kinds.w2v.probe.objective import build_layer_cache
from hpo.kinds.w2v.standardize import frame_moments
from tests.helpers import ROOT, write_spec
from tests.kinds.w2v.settings import MAX_SECONDS, TINY_LAYERS


def _spec(tmp_path: Path, corpus: Path, space: dict | None = None, **model) -> Path:
    return write_spec(
        tmp_path / "probe.toml",
        base="w2v-probe",
        data={"corpus": str(corpus)},
        model={"name": "tiny", **model},
        pruner={"type": "none"},
        training={"epochs": 1.0, "max_seconds": MAX_SECONDS, "tensorboard_dir": str(tmp_path)},
        space={**TINY_LAYERS, **(space or {})},
    )


def test_the_searched_layer_is_what_reaches_the_head_standardised_per_fold(
    tmp_path: Path, w2v_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_spec(
        _spec(tmp_path, w2v_corpus, {"pooling": {"type": "categorical", "choices": ["mean"]}})
    )
    corpus = load_corpus(w2v_corpus)
    cache = build_layer_cache(corpus, "tiny", MAX_SECONDS)
    seen: list[tuple] = []
    real = train.train_head

    def spy(head, inputs, labels, train_idx, valid_idx, *a):
        out = real(head, inputs, labels, train_idx, valid_idx, *a)
        seen.append((inputs.layer, inputs.x.cpu().numpy(), head, train_idx, valid_idx))
        return out

    monkeypatch.setattr(train, "train_head", spy)
    study = optuna.create_study(direction="maximize")
    for layer in (0, 2, "weighted"):
        study.enqueue_trial({"probe_layer": layer, "pooling": "mean", "speaker_norm": "off"})
    study.optimize(get_kind("w2v").objective(spec, corpus), n_trials=3)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    folds = corpus_folds(corpus, spec.data.folds)
    assert len(seen) == 3 * len(folds)
    for i, (layer, x, head, train_idx, valid_idx) in enumerate(seen):
        assert layer == study.trials[i // len(folds)].params["probe_layer"]
        # The head reads the cached layer it was told to: layer k's clip means, or all
        # layers' for the mix (and the two single layers differ: the choice matters).
        want = cache.means if layer == "weighted" else cache.means[:, layer]
        np.testing.assert_array_equal(x, want)
        # Standardised with the frames of this fold's training clips only.
        assert not set(train_idx) & set(valid_idx)
        mu, sd = frame_moments(cache.means, cache.sq_means, cache.lengths, train_idx)
        np.testing.assert_allclose(head.scaler.mean.cpu().numpy(), mu, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(head.scaler.std.cpu().numpy(), sd, rtol=1e-5, atol=1e-6)
        everyone = np.arange(len(corpus.clips))
        mu_all, _ = frame_moments(cache.means, cache.sq_means, cache.lengths, everyone)
        assert not np.allclose(mu, mu_all)  # the validation clips would have moved them
    assert not np.allclose(seen[0][1], seen[len(folds)][1])  # layer 0 vs layer 2


def test_validation_clips_never_enter_the_statistics(w2v_corpus: Path) -> None:
    cache = build_layer_cache(load_corpus(w2v_corpus), "tiny", MAX_SECONDS)
    fold = corpus_folds(load_corpus(w2v_corpus), 6)[0]
    means, sq = cache.means.copy(), cache.sq_means.copy()
    head = ProbeHead("mean", 32, 3, 0.0, 8, standardize=True)
    head.fit_scaler((means, sq, cache.lengths), fold.train)
    before = head.scaler.mean.clone(), head.scaler.std.clone()
    means[fold.valid] += 1000.0  # whatever the validation clips hold
    sq[fold.valid] *= 50.0
    head.fit_scaler((means, sq, cache.lengths), fold.train)
    assert torch.equal(head.scaler.mean, before[0]) and torch.equal(head.scaler.std, before[1])


@pytest.mark.parametrize(
    ("layer", "pooling", "head"),
    [
        (0, "stats", "linear"),
        (1, "max", "superb"),
        ("weighted", "mean", "superb"),
        ("weighted", "max", "linear"),
        ("weighted", "attention", "linear"),
    ],
)
def test_a_standardised_probe_head_is_the_classifiers_head(
    w2v_corpus: Path, layer, pooling: str, head: str
) -> None:
    # The probe reads cached statistics (or frames) and standardises them in its own way;
    # the saved classifier standardises the live backbone's frames: the same logits.
    corpus = load_corpus(w2v_corpus)
    cache = build_layer_cache(corpus, "tiny", MAX_SECONDS)
    torch.manual_seed(3)
    probe = ProbeHead(pooling, 32, 3, 0.0, 8, layer, head, standardize=True).eval()
    for name, p in probe.named_parameters():
        if "layer_logits" in name:  # a real, uneven mix of layers
            torch.nn.init.normal_(p, std=1.0)
    probe.fit_scaler((cache.means, cache.sq_means, cache.lengths), np.arange(0, 60))
    cfg = {"pooling": pooling, "dropout": 0.0, "probe_layer": layer, "head": head}
    clf = new_classifier("tiny", {**cfg, "standardize": True}, 0, 8).eval()
    missing, unexpected = clf.load_state_dict(probe.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("backbone.") for k in missing)
    idx = np.arange(0, len(corpus.clips), 9)[:8]
    waves, _ = load_waves(corpus, "tiny", max_samples(MAX_SECONDS))
    with torch.no_grad():
        got = probe(*ProbeInputs(cache, pooling, layer).batch(torch.as_tensor(idx)))
        live = torch.cat(
            [
                clf(
                    input_values=torch.from_numpy(waves[i])[None],
                    lengths=torch.tensor([len(waves[i])]),
                ).logits
                for i in idx
            ]
        )
    torch.testing.assert_close(got, live, atol=5e-3, rtol=5e-3)


def test_head_names_build_their_modules() -> None:
    superb = ProbeHead("mean", 32, 3, 0.1, 8, "weighted", "superb")
    # SUPERB's emotion downstream: projector_dim 256, then a linear post-net.
    assert (superb.projector.in_features, superb.projector.out_features) == (32, 256)
    assert (superb.classifier.in_features, superb.classifier.out_features) == (256, 8)
    assert superb.layer_mix is not None and superb.scaler is None
    linear = ProbeHead("stats", 32, 3, 0.1, 8, 1, "linear", standardize=True)
    assert linear.projector is None and linear.layer_mix is None
    assert linear.classifier.in_features == 64 and linear.scaler.mean.shape == (3, 32)


@pytest.mark.parametrize(
    ("space", "shown"),
    [
        ({"type": "categorical", "choices": ["weighted", 0, 5]}, "= 5"),
        ({"type": "int", "low": 0, "high": 12}, "= 12"),
    ],
)
def test_a_searched_layer_the_backbone_lacks_is_refused_in_one_line(
    tmp_path: Path, w2v_corpus: Path, space: dict, shown: str
) -> None:
    spec = _spec(tmp_path, w2v_corpus, {"probe_layer": space})
    db = tmp_path / "s.db"
    res = CliRunner().invoke(cli, ["run", "--study", str(spec), "--storage", str(db)])
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()
    assert f"[space.probe_layer] {shown}: model 'tiny' has 3 layer outputs" in line, line
    assert not db.exists()


@pytest.mark.parametrize(
    ("space", "shown"),
    [
        ({"type": "categorical", "choices": ["middle", 1]}, "choice 'middle' is not a layer"),
        ({"type": "float", "low": 0.0, "high": 2.0}, "a float is not a layer"),
    ],
)
def test_a_searched_layer_that_is_no_layer_is_refused_when_read(
    tmp_path: Path, space: dict, shown: str
) -> None:
    spec = _spec(tmp_path, tmp_path, {"probe_layer": space})
    with pytest.raises(SpecError, match=re.escape(f"[space.probe_layer] {shown}")):
        load_spec(spec)


def test_probe_settings_in_a_fine_tuning_space_are_refused(
    tmp_path: Path, w2v_corpus: Path
) -> None:
    spec = write_spec(
        tmp_path / "f.toml",
        base="w2v-tiny",
        data={"corpus": str(w2v_corpus)},
        space={"probe_layer": {"type": "categorical", "choices": [0, 1]}},
    )
    res = CliRunner().invoke(cli, ["run", "--study", str(spec), "--storage", str(tmp_path / "d")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "[space.probe_layer] applies to the probe only" in res.output


def _older_probe_study() -> dict:
    """studies/w2v-probe.toml as an older hpo stored it: pooling layer_weighted among the
    choices, no probe_layer search, no head or standardize keys."""
    raw = tomllib.loads((ROOT / "studies" / "w2v-probe.toml").read_text())
    for key in ("head", "standardize"):
        raw["model"].pop(key)
    raw["model"]["probe_layer"] = -1
    del raw["space"]["probe_layer"]
    raw["space"]["pooling"]["choices"].append("layer_weighted")
    return raw


def test_a_stored_older_probe_study_is_rebuilt_as_it_ran() -> None:
    raw = _older_probe_study()
    spec = stored_spec(raw, "w2v-probe")
    m = spec.settings.merged({"pooling": "layer_weighted", "learning_rate": 1e-3})["model"]
    assert m["standardize"] is False and m["head"] == "linear"  # as an older hpo trained it
    head = ProbeHead(m["pooling"], 32, 3, 0.0, 8, m["probe_layer"], m["head"], m["standardize"])
    assert head.layer == "weighted" and head.pooling == "mean" and head.scaler is None
    # The same file read today means what it says: standardised, so it is a changed study.
    from hpo.kinds import spec_from_dict

    today = spec_from_dict(tomllib.loads(tomli_w.dumps(raw)), ROOT / "p.toml")
    assert today.settings.model.standardize is True and today.hash != spec.hash


def test_a_model_saved_with_the_older_layer_weighted_pooling_still_predicts(tmp_path: Path) -> None:
    torch.manual_seed(0)
    m = new_classifier("tiny", {"pooling": "mean", "dropout": 0.0, "probe_layer": "weighted"}, 0, 8)
    with torch.no_grad():
        m.layer_mix.layer_logits.copy_(torch.tensor([0.5, -0.2, 1.0]))
    m.eval().save(tmp_path)
    # As an older hpo wrote it: the mix was the pooler's, the pooling named layer_weighted.
    weights = {
        k.replace("layer_mix.", "pooler."): v
        for k, v in load_file(str(tmp_path / HEAD_FILE)).items()
    }
    save_file(weights, str(tmp_path / HEAD_FILE))
    head = json.loads((tmp_path / HEAD_CONFIG).read_text())
    for key in ("head", "standardize"):
        head.pop(key)
    (tmp_path / HEAD_CONFIG).write_text(
        json.dumps({**head, "pooling": "layer_weighted", "layer": 2})
    )
    back, _ = load_saved(tmp_path)
    x = torch.randn(1, 16_000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(
            back.eval()(input_values=x, lengths=torch.tensor([16_000])).logits,
            m(input_values=x, lengths=torch.tensor([16_000])).logits,
        )


def test_hpo_train_saves_the_training_statistics_and_predict_reuses_them(
    tmp_path: Path, w2v_corpus: Path
) -> None:
    spec = load_spec(_spec(tmp_path, w2v_corpus, probe_layer=1, pooling="stats"))
    cfg = {"kind": "w2v", "name": "p", "data": {"corpus": str(w2v_corpus)}}
    cfg |= spec.settings.merged({"learning_rate": 3e-3, "warmup_ratio": 0.1, "max_grad_norm": 1.0})
    assert cfg["model"]["standardize"] is True and cfg["model"]["head"] == "superb"
    export = tmp_path / "p-best.toml"
    export.write_text(tomli_w.dumps({"study": "p", "config": cfg}))
    out = tmp_path / "model"
    res = CliRunner().invoke(cli, ["train", "--config", str(export), "--out", str(out)])
    assert res.exit_code == 0, res.output
    corpus = load_corpus(w2v_corpus)
    cache = build_layer_cache(corpus, "tiny", MAX_SECONDS)
    saved = load_file(str(out / HEAD_FILE))
    everyone = np.arange(len(corpus.clips))  # hpo train fits on every clip of the corpus
    mu, sd = frame_moments(cache.means, cache.sq_means, cache.lengths, everyone)
    np.testing.assert_allclose(saved["scaler.mean"].numpy(), mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved["scaler.std"].numpy(), sd, rtol=1e-5, atol=1e-6)
    assert json.loads((out / HEAD_CONFIG).read_text())["standardize"] is True
    # hpo predict's classifier applies those statistics: its logits are the probe head's.
    model, _ = load_saved(out)
    probe = ProbeHead("stats", 32, 3, 0.0, 8, 1, "superb", standardize=True).eval()
    probe.load_state_dict(model.state_dict(), strict=False)
    idx = np.arange(0, len(corpus.clips), 11)[:6]
    waves, _ = load_waves(corpus, str(out), max_samples(MAX_SECONDS))
    with torch.no_grad():
        want = probe(*ProbeInputs(cache, "stats", 1).batch(torch.as_tensor(idx)))
        got = torch.cat(
            [
                model.eval()(
                    input_values=torch.from_numpy(waves[i])[None],
                    lengths=torch.tensor([len(waves[i])]),
                ).logits
                for i in idx
            ]
        )
    torch.testing.assert_close(got, want, atol=5e-3, rtol=5e-3)


def test_a_cache_written_before_mean_squares_gets_them_added_not_rebuilt(
    small_corpus: Path,
) -> None:
    built = build_layer_cache(load_corpus(small_corpus), "tiny", MAX_SECONDS)
    (root,) = {p.parent for p in (small_corpus / "cache" / "layers").rglob("states.npy")}
    (root / "sq_means.npy").unlink()  # as an older hpo left it
    states = (root / "states.npy").stat().st_mtime_ns
    again = build_layer_cache(load_corpus(small_corpus), "tiny", MAX_SECONDS)
    assert (root / "states.npy").stat().st_mtime_ns == states  # the frames were not rebuilt
    assert (root / "sq_means.npy").is_file()
    # From the half-precision frames, so equal to what the build computed up to that rounding.
    np.testing.assert_allclose(again.sq_means, built.sq_means, rtol=2e-2, atol=1e-3)
