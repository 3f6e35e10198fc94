"""One worker, one device, one precision: the rules, tested without a GPU."""

from __future__ import annotations

import pytest
import torch

from hpo.errors import HpoError
from hpo.kinds.w2v import device as dev
from hpo.study.run import spread_workers


def test_a_worker_that_sees_several_gpus_keeps_the_one_its_index_picks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5,7")
    monkeypatch.setenv("HPO_WORKER_INDEX", "4")
    notes: list[str] = []
    assert dev.claim_one_gpu(notes.append) == "5"  # worker 4 of 3 GPUs: the second
    assert dev.visible_gpus() == ["5"] and "uses GPU 5 only" in notes[0]
    assert dev.claim_one_gpu() is None  # one left: nothing to choose


def test_no_gpu_or_one_gpu_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert dev.visible_gpus() == [] and dev.claim_one_gpu() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert dev.claim_one_gpu() is None and dev.visible_gpus() == ["3"]


def test_precision_per_device() -> None:
    cpu = torch.device("cpu")
    assert dev.autocast_dtype("auto", cpu) is None  # full precision on a CPU by default
    assert dev.autocast_dtype("no", cpu) is None
    assert dev.autocast_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(HpoError, match='"fp16" needs a GPU'):
        dev.autocast_dtype("fp16", cpu)


def test_per_device_spreads_k_workers_over_each_gpu() -> None:
    assert spread_workers(1, ["0", "1"], 4) == (8, ["0"] * 4 + ["1"] * 4)
    assert spread_workers(8, ["0", "1"], 4)[0] == 8
    assert spread_workers(3, ["0"], None) == (3, ["0"])  # without it: as before
    with pytest.raises(HpoError, match="--per-device needs --devices"):
        spread_workers(1, None, 2)
    with pytest.raises(HpoError, match="--jobs 3 contradicts"):
        spread_workers(3, ["0", "1"], 2)


def test_a_cache_too_big_for_the_gpu_stays_in_host_memory(monkeypatch: pytest.MonkeyPatch):
    gpu = torch.device("cuda:0")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (8 * 2**30, 16 * 2**30))
    assert dev.cache_device(1 * 2**30, gpu) == gpu
    notes: list[str] = []
    assert dev.cache_device(3 * 2**30, gpu, notes.append) == torch.device("cpu")
    assert "kept in host memory" in notes[0]
    assert dev.cache_device(3 * 2**30, torch.device("cpu")) == torch.device("cpu")


def test_workers_starting_together_size_their_caches_one_after_another(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Four workers on one 16 GiB GPU each place a 3 GiB cache at the same moment: each
    measures the free memory after the previous one's cache was allocated, so only the
    first two fit the GPU's share (3 <= 0.25 x 16, 3 <= 0.25 x 13, then 3 > 0.25 x 10)."""
    import tempfile
    import threading
    import time
    from types import SimpleNamespace

    gib, used, lock = 2**30, [0], threading.Lock()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the GPU's lock file goes
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda d=None: SimpleNamespace(uuid="u")
    )
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=None: (16 * gib - used[0], 16 * gib))
    start = threading.Barrier(4)

    def allocate(where: torch.device) -> torch.device:
        time.sleep(0.05)  # the copy to the GPU takes a while
        if where.type == "cuda":
            with lock:
                used[0] += 3 * gib
        return where

    placed: list[torch.device] = []

    def worker() -> None:
        start.wait()
        placed.append(dev.place_cache(3 * gib, torch.device("cuda:0"), allocate))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(d.type for d in placed) == ["cpu", "cpu", "cuda", "cuda"]
    assert used[0] == 6 * gib
    assert list(tmp_path.glob("hpo-gpu-*.lock"))  # one lock per physical GPU, in the temp dir
