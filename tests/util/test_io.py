from __future__ import annotations

from pathlib import Path

import pytest

from hpo.util.io import atomic_dir, write_text_atomic


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


def _fsync_spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record, in order, every fsync (by inode) and every rename (by the moved inode)."""
    import os

    events: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(a, b) -> None:  # noqa: ANN001
        events.append(("rename", os.stat(a).st_ino))
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _no_umask(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    def umask(_mask: int) -> int:
        raise AssertionError("os.umask changes it for every thread of the process")

    monkeypatch.setattr(os, "umask", umask)


def test_an_atomic_write_is_flushed_then_renamed_then_its_directory_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _fsync_spy(monkeypatch)
    _no_umask(monkeypatch)
    target = tmp_path / "manifest.csv"
    write_text_atomic(target, "path,speaker\n")
    file_ino, dir_ino = target.stat().st_ino, tmp_path.stat().st_ino
    assert events == [("fsync", file_ino), ("rename", file_ino), ("fsync", dir_ino)]
    # The mode a plain open gives (the umask applied by the kernel), not mkstemp's 0600.
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert target.stat().st_mode == plain.stat().st_mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv", "plain"]


def test_an_atomic_directory_is_flushed_and_gets_a_plain_mkdirs_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _fsync_spy(monkeypatch)
    _no_umask(monkeypatch)
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"w")
    inode = {p: p.stat().st_ino for p in (target / "weights.bin", target, tmp_path)}
    flushed = [ino for what, ino in events if what == "fsync"]
    assert inode[target / "weights.bin"] in flushed and inode[target] in flushed
    assert events[-2:] == [("rename", inode[target]), ("fsync", inode[tmp_path])]
    (tmp_path / "plain").mkdir()
    assert target.stat().st_mode == (tmp_path / "plain").stat().st_mode
