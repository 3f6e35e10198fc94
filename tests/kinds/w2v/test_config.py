"""Each w2v path refuses, in one line, a setting that only the other path reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpo.cli import cli
from hpo.errors import SpecError
from hpo.kinds import load_spec
from tests.helpers import write_spec

ONLY_HEAD = {"type": "float", "low": 0.0, "high": 0.2}


@pytest.mark.parametrize(
    ("base", "section", "key", "value", "path"),
    [
        ("w2v-probe", "training", "feature_cache", True, "fine-tuning"),
        ("w2v-probe", "training", "gradient_accumulation", 2, "fine-tuning"),
        ("w2v-probe", "training", "dataloader_workers", 2, "fine-tuning"),
        ("w2v-probe", "model", "mask_time_prob", 0.05, "fine-tuning"),
        ("w2v", "model", "probe_layer", 6, "the probe"),
        # The probe trains a head alone: no backbone rate, no head-only phase.
        ("w2v-probe", "training", "backbone_lr", 1e-5, "fine-tuning"),
        ("w2v-probe", "training", "head_lr_ratio", 10.0, "fine-tuning"),
        ("w2v-probe", "training", "head_only_ratio", 0.1, "fine-tuning"),
        ("w2v-probe", "space", "head_only_ratio", ONLY_HEAD, "fine-tuning"),
    ],
)
def test_a_setting_of_the_other_path_is_refused(
    tmp_path: Path, base: str, section: str, key: str, value, path: str
) -> None:
    spec = write_spec(tmp_path / "s.toml", base=base, **{section: {key: value}})
    where = f"[space.{key}]" if section == "space" else f"[{section}] {key}"
    with pytest.raises(SpecError, match=re.escape(f"{where} applies to {path} only")):
        load_spec(spec)
    res = CliRunner().invoke(cli, ["run", "--study", str(spec), "--storage", str(tmp_path / "d")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_an_export_holds_only_what_its_path_reads(tmp_path: Path) -> None:
    probe = load_spec(write_spec(tmp_path / "p.toml", base="w2v-probe")).settings.merged({})
    assert "feature_cache" not in probe["training"] and "probe_layer" in probe["model"]
    assert "mixed_precision" in probe["training"]  # the probe's heads use it too
    tuned = load_spec(write_spec(tmp_path / "f.toml", base="w2v")).settings.merged({})
    assert "probe_layer" not in tuned["model"] and tuned["training"]["feature_cache"] is True
