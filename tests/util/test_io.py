from __future__ import annotations

from pathlib import Path

import pytest

from hpo.util.io import atomic_dir


def test_replace_swaps_the_directory_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with atomic_dir(target, replace=True) as tmp:
        (tmp / "new.bin").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failure_keeps_the_old_directory(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target, replace=True) as tmp:
        (tmp / "half.bin").write_text("half")
        raise RuntimeError("crash mid-training")
    assert [p.name for p in target.iterdir()] == ["old.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_without_replace_the_first_writer_wins(tmp_path: Path) -> None:
    target = tmp_path / "cache"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("first")
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("second")
    assert (target / "a").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]
