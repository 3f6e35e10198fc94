"""Mistakes about the backbone are refused before any trial: a probe layer the model does not
have, and preprocessing assumed for a checkpoint without its config is said, not silent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hpo.errors import HpoError
from hpo.kinds import get_kind, load_spec
from hpo.kinds.w2v.backbone import load_feature_extractor, tiny_backbone_dir
from tests.helpers import write_spec
from tests.kinds.w2v.settings import TINY_LAYERS


@pytest.mark.parametrize("layer", [100, 3, -4])
def test_a_probe_layer_the_backbone_lacks_is_refused(tmp_path: Path, layer: int) -> None:
    # The tiny backbone has 2 transformer layers: 3 states, indices 0..2 or -1..-3. Before,
    # an index was taken modulo 3, so 100 silently probed layer 1.
    spec = load_spec(
        write_spec(
            tmp_path / "p.toml",
            base="w2v-probe",
            model={"name": "tiny", "probe_layer": layer},
            space=TINY_LAYERS,
        )
    )
    with pytest.raises(HpoError) as e:
        get_kind("w2v").check(spec)
    msg = str(e.value)
    assert f"probe_layer = {layer}: model 'tiny' has 3 layer outputs" in msg
    assert "use 0 (the first transformer layer's input) to 2" in msg and "\n" not in msg
    # An exported configuration edited by hand gets the same refusal from hpo train.
    cfg = {"model": {"name": "tiny", "finetune": False, "probe_layer": layer}, "training": {}}
    with pytest.raises(HpoError, match=f"probe_layer = {layer}"):
        get_kind("w2v").train(cfg, None, tmp_path / "out", None)
    assert not (tmp_path / "out").exists()


def test_every_layer_the_backbone_has_is_accepted(tmp_path: Path) -> None:
    for layer in (-3, -1, 0, 2):
        spec = load_spec(
            write_spec(
                tmp_path / "p.toml",
                base="w2v-probe",
                model={"name": "tiny", "probe_layer": layer},
                space=TINY_LAYERS,
            )
        )
        get_kind("w2v").check(spec)


def test_a_checkpoint_without_preprocessor_config_gets_a_one_line_note(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "no-preprocessor"
    shutil.copytree(tiny_backbone_dir(), model)
    (model / "preprocessor_config.json").unlink()
    fe = load_feature_extractor(str(model))
    assert fe.do_normalize is True and fe.sampling_rate == 16_000
    load_feature_extractor(str(model))  # once per model and process, not per call
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"model '{model}' has no preprocessor_config.json" in err[0]
    assert "normalised per clip to zero mean and unit variance" in err[0]
    # A checkpoint with its config: its own preprocessing, no note.
    assert load_feature_extractor("tiny").do_normalize is False
    assert capfd.readouterr().err == ""
