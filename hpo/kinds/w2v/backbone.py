"""Loading a wav2vec2-family backbone: wav2vec2, HuBERT, WavLM, data2vec-audio.

``[model] name`` is a hub id, a local directory laid out like a hub repo (``config.json``,
weights, ``preprocessor_config.json``), or ``tiny``: a small random-init Wav2Vec2 built
locally for offline tests and demos (never pretrained, and said so everywhere).

Backbones load through transformers' Auto classes with their family's own architecture. A
checkpoint whose backbone weights do not all load is an error naming the keys: a silent
random initialisation would make a study meaningless.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from hpo.errors import HpoError
from hpo.kinds.w2v.config import TINY, WEIGHTED

FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
TINY_NAME = "tiny-random-wav2vec2-v3"  # bump when tiny_config changes
# Pretraining heads that a classifier never uses: a checkpoint saved with them
# (Wav2Vec2ForPreTraining, HuBERT's final_proj) has them as "unexpected" keys.
_HEAD_PREFIXES = ("quantizer.", "project_q.", "project_hid.", "final_proj.", "label_embs_concat")
# The mask embedding exists only when SpecAugment is on: a checkpoint may have it while the
# study turns masking off, or lack it while the study turns masking on.
_MASK_EMBED = "masked_spec_embed"


def quiet_transformers() -> None:
    """transformers' own progress bars and warnings would interleave with hpo's reporter."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _unreachable(name: str, e: Exception) -> HpoError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return HpoError(
        f"model {name!r}: cannot load ({first}); without network access use a local "
        "directory or --model tiny"
    )


def tiny_config():
    """A small random Wav2Vec2 with the real architecture (7 conv layers, 320x downsampling)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        # Layer norm in every conv layer (as in wav2vec2-large-lv60): with random, frozen conv
        # weights, group norm's per-channel normalisation over time erases the spectral
        # shape the tiny model could learn from (linear probe: ~22% vs ~35% accuracy).
        feat_extract_norm="layer",
        conv_bias=True,
        do_stable_layer_norm=False,
        vocab_size=32,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        layerdrop=0.0,
    )


def tiny_backbone_dir(root: Path | None = None, seed: int = 0) -> Path:
    """Build the tiny random-init backbone once and save it with save_pretrained, so it is
    loaded through exactly the same ``from_pretrained`` code as a real checkpoint."""
    from hpo.config.paths import models_dir

    root = root or models_dir() / TINY_NAME
    if (root / "config.json").is_file():
        return root
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from hpo.util.io import atomic_dir

    quiet_transformers()  # its "Writing model shards" bar cut into hpo's output
    torch.manual_seed(seed)
    model = Wav2Vec2Model(tiny_config())
    model.config.hpo_random_init = True
    with atomic_dir(root) as tmp:
        model.save_pretrained(tmp)
        # No per-clip normalisation: with random conv weights the clip's level is one of the
        # few cues that survive (pretrained wav2vec2-base's own config says do_normalize=True).
        Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=False).save_pretrained(tmp)
        (tmp / "README.md").write_text(
            "Randomly initialised tiny Wav2Vec2 built by hpo for offline tests and demos.\n"
            "NOT pretrained: results with it say nothing about wav2vec 2.0.\n"
        )
    return root


def resolve_model_name(name: str) -> tuple[str, bool]:
    """(name or path to load, whether it is a random-init model)."""
    if name == TINY:
        return str(tiny_backbone_dir()), True
    cfg = load_config(name)
    return name, bool(getattr(cfg, "hpo_random_init", False))


def load_config(name: str):
    """The backbone's config; an unknown family or an unreachable hub id is one line."""
    from transformers import AutoConfig

    path = str(tiny_backbone_dir()) if name == TINY else name
    try:
        cfg = AutoConfig.from_pretrained(path)
    except (OSError, ValueError, KeyError) as e:
        raise _unreachable(name, e) from None
    if cfg.model_type not in FAMILIES:
        raise HpoError(
            f"model {name!r} is a {cfg.model_type!r} model; hpo fine-tunes the wav2vec2 family "
            f"({', '.join(FAMILIES)})"
        )
    return cfg


def check_model(name: str, probe_layer: int | str | None = None, where: str = "[model]") -> None:
    """Fail before any trial starts when the backbone cannot be loaded, or when
    ``probe_layer`` names no layer of it (indices are never wrapped: 100 is a mistake, not
    some other layer)."""
    resolve_model_name(name)
    if probe_layer is not None:
        check_layers(name, [probe_layer], f"{where} probe_layer")


def check_layers(name: str, layers: list, field: str) -> None:
    """Refuse, in one line naming ``field``, the first of ``layers`` that model ``name``
    lacks ("weighted", the mix of all, fits every model)."""
    n_states = load_config(name).num_hidden_layers + 1  # the CNN's projection, then each layer
    for layer in layers:
        if layer != WEIGHTED and not -n_states <= layer < n_states:
            raise HpoError(
                f"{field} = {layer}: model {name!r} has {n_states} layer outputs; use 0 (the "
                f"first transformer layer's input) to {n_states - 1} (the last), -1 to "
                f'-{n_states} counting from the last, or "{WEIGHTED}"'
            )


def backbone_info(name: str) -> dict[str, Any]:
    """What a study records about its backbone (user attributes ``backbone`` and friends)."""
    cfg = load_config(name)
    return {
        "backbone": cfg.model_type,
        "backbone_layers": cfg.num_hidden_layers,
        "backbone_hidden_size": cfg.hidden_size,
        "random_init_model": name == TINY or bool(getattr(cfg, "hpo_random_init", False)),
    }


def load_backbone(name: str, **config_overrides: Any):
    """The family's base model (``Wav2Vec2Model``, ``HubertModel``, ...) with its weights.

    Raises:
        HpoError: the checkpoint cannot be read, or some backbone weights did not load.
    """
    from transformers import AutoModel

    path, _ = resolve_model_name(name)
    cfg = load_config(name)
    for k, v in config_overrides.items():
        setattr(cfg, k, v)
    try:
        model, info = AutoModel.from_pretrained(path, config=cfg, output_loading_info=True)
    except (OSError, ValueError) as e:
        raise _unreachable(name, e) from None
    missing = [k for k in info.get("missing_keys", ()) if not k.endswith(_MASK_EMBED)]
    unexpected = [
        k
        for k in info.get("unexpected_keys", ())
        if not k.endswith(_MASK_EMBED)
        and not k.startswith(_HEAD_PREFIXES)
        and not k.split(".", 1)[-1].startswith(_HEAD_PREFIXES)
    ]
    mismatched = [str(m[0] if isinstance(m, tuple) else m) for m in info.get("mismatched_keys", ())]
    if missing or unexpected or mismatched:
        parts = [
            f"{what} {len(keys)}: {', '.join(sorted(keys)[:4])}{' ...' if len(keys) > 4 else ''}"
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("mismatched", mismatched),
            )
            if keys
        ]
        raise HpoError(
            f"model {name!r}: its weights do not all load into {type(model).__name__} "
            f"({'; '.join(parts)}); is it a {cfg.model_type} checkpoint?"
        )
    return model


def load_feature_extractor(name: str):
    """The checkpoint's preprocessing (wav2vec2-base: zero-mean unit-variance per clip)."""
    from transformers import Wav2Vec2FeatureExtractor

    path, _ = resolve_model_name(name)
    try:
        return Wav2Vec2FeatureExtractor.from_pretrained(path)
    except OSError:
        _note_assumed_preprocessing(name)
        return Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=True)


@functools.cache
def _note_assumed_preprocessing(name: str) -> None:
    """Once per model and process: a checkpoint without ``preprocessor_config.json`` gets
    wav2vec2-base's preprocessing, which the user must hear about (a backbone pre-trained on
    unnormalised input would be fed other numbers than it learnt on)."""
    print(
        f"note: model {name!r} has no preprocessor_config.json; assuming 16 kHz input "
        "normalised per clip to zero mean and unit variance (as wav2vec2-base); save the "
        "right Wav2Vec2FeatureExtractor beside the model if it was pre-trained otherwise",
        file=sys.stderr,
    )


def preprocess(fe, wave, max_samples: int):
    """Cut a 16 kHz clip to ``max_samples`` and apply the checkpoint's normalisation."""
    import numpy as np

    out = fe(wave[:max_samples], sampling_rate=16_000, return_tensors="np")["input_values"][0]
    return np.ascontiguousarray(out, dtype=np.float32)


class BackboneStore:
    """A worker's backbone, read from disk once: every fold trains a fresh copy of it.

    The pristine copy sits on the training device, so a fold's copy is a device-to-device
    copy (milliseconds on a GPU) instead of a checkpoint read (seconds for wav2vec2-base).
    """

    def __init__(self, name: str, mask_time_prob: float, device: Any = "cpu") -> None:
        self.name = name
        self._pristine = load_backbone(name, mask_time_prob=mask_time_prob).to(device)

    @property
    def config(self):
        return self._pristine.config

    def classifier(self, model_cfg: dict[str, Any], seed: int, n_labels: int):
        """A fresh classifier for ``[model]`` settings ``model_cfg``; the same seed gives the
        same head in every trial."""
        import copy

        from transformers import set_seed

        from hpo.kinds.w2v.model import build_classifier

        set_seed(seed)
        return build_classifier(
            copy.deepcopy(self._pristine),
            model_cfg["pooling"],
            model_cfg["dropout"],
            n_labels,
            model_cfg.get("probe_layer", -1),  # the probe's settings (fine-tuning: defaults)
            model_cfg.get("head", "linear"),
            model_cfg.get("standardize", False),
        )


def new_classifier(name: str, model_cfg: dict[str, Any], seed: int, n_labels: int):
    """One classifier from checkpoint ``name`` (on the CPU), for one-off uses."""
    return BackboneStore(name, model_cfg.get("mask_time_prob", 0.0)).classifier(
        model_cfg, seed, n_labels
    )
