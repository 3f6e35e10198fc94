"""Where a w2v worker trains, in which precision, and where its read-only caches sit.

One worker, one device. A worker that sees several GPUs keeps one of them (the one its
worker index picks), chosen before CUDA starts in the process: otherwise the Trainer would
spread every batch over all of them with ``DataParallel``, which also changes how many
updates an epoch has. ``hpo run --devices`` pins workers before they start; this is the
rule for a worker that was not pinned.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from hpo.config.paths import WORKER_INDEX_VAR
from hpo.errors import HpoError

# A read-only cache goes to the GPU only while it takes at most this share of the free
# memory: K workers on one card each hold a copy, and training needs the rest.
CACHE_SHARE_OF_FREE = 0.25

T = TypeVar("T")


def visible_gpus() -> list[str]:
    """The GPU ids this process may use, without starting CUDA."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    # With no CUDA_VISIBLE_DEVICES, device_count() asks NVML, which does not start CUDA.
    return [str(i) for i in range(torch.cuda.device_count())]


def claim_one_gpu(log: Callable[[str], None] | None = None) -> str | None:
    """Before CUDA starts here: when several GPUs are visible, keep the one this worker's
    index picks (``HPO_WORKER_INDEX``, 0 in a single run) and return its id."""
    ids = visible_gpus()
    if len(ids) <= 1 or torch.cuda.is_initialized():
        return None  # one GPU or none; or too late to choose (the Trainer still uses one)
    chosen = ids[int(os.environ.get(WORKER_INDEX_VAR, "0")) % len(ids)]
    os.environ["CUDA_VISIBLE_DEVICES"] = chosen
    if log:
        log(f"this worker sees {len(ids)} GPUs and uses GPU {chosen} only (choose: --devices)")
    return chosen


def training_device() -> torch.device:
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def autocast_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The study's ``mixed_precision`` on ``device``: ``auto`` is bf16 where the GPU has it,
    fp16 on older GPUs, full precision on a CPU; ``bf16`` also runs on a CPU."""
    if mode == "no":
        return None
    if device.type != "cuda":
        if mode == "fp16":
            raise HpoError(
                'mixed_precision = "fp16" needs a GPU (on a CPU it is emulated, minutes a '
                'step); use "bf16", "no" or "auto"'
            )
        return torch.bfloat16 if mode == "bf16" else None
    bf16_ok = torch.cuda.is_bf16_supported()
    if mode == "bf16" and not bf16_ok:
        raise HpoError(f'mixed_precision = "bf16": {torch.cuda.get_device_name()} has no bf16')
    if mode == "bf16" or (mode == "auto" and bf16_ok):
        return torch.bfloat16
    return torch.float16


def cache_device(
    nbytes: int, device: torch.device, log: Callable[[str], None] | None = None
) -> torch.device:
    """Where a read-only cache of ``nbytes`` lives for training on ``device``: on the GPU
    while it fits comfortably, else in host memory (batches are then gathered there)."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes <= CACHE_SHARE_OF_FREE * free:
        return device
    if log:
        log(
            f"cache of {nbytes / 2**30:.2f} GiB kept in host memory: the GPU has "
            f"{free / 2**30:.1f} GiB free"
        )
    return torch.device("cpu")


def place_cache(
    nbytes: int,
    device: torch.device,
    build: Callable[[torch.device], T],
    log: Callable[[str], None] | None = None,
) -> T:
    """``build(where)`` a read-only cache of ``nbytes`` where ``cache_device`` puts it.

    On a GPU, measuring its free memory and allocating the cache are one step for every hpo
    process on this machine (a file lock per GPU): K workers starting together would each
    see the same free memory, and all put their copy on a GPU that holds only some.
    """
    if device.type != "cuda":
        return build(device)
    import filelock

    with filelock.FileLock(_claim_path(device)):
        return build(cache_device(nbytes, device, log))


def _claim_path(device: torch.device) -> Path:
    """The lock of the physical GPU behind ``device`` (each worker sees its own as cuda:0)."""
    gpu = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    gpu = gpu or os.environ.get("CUDA_VISIBLE_DEVICES", "") or str(device)
    return Path(tempfile.gettempdir()) / f"hpo-gpu-{gpu}.lock"
