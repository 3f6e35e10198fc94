"""Backbones with the *structure* of published checkpoints, shrunk in width only.

Each entry starts from its family's transformers config class, whose defaults transformers
documents as that family's base checkpoint, and sets the structural keys of the published
checkpoint's config.json: feature-encoder norm and conv bias, post-LN or pre-LN ("stable
layer norm") transformer, layer count, layerdrop, the dropouts and SpecAugment. Only the
widths shrink (hidden size, FFN, conv channels, heads), so a test step takes milliseconds.
They are saved the way the hub repo is laid out: ``config.json`` + weights of the published
architecture (``*ForPreTraining`` with its quantizer where the checkpoint has one) +
``preprocessor_config.json``. Random init: they test structure, never accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Width shrink applied to every entry (the structure stays the checkpoint's).
NARROW = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 2,
    "conv_dim": [32] * 7,
}

PUBLISHED: dict[str, dict[str, Any]] = {
    # Group-norm CNN without conv bias, post-LN transformer, layerdrop, SpecAugment.
    "facebook/wav2vec2-base": {
        "family": "wav2vec2",
        "architecture": "Wav2Vec2ForPreTraining",
        "config": {
            "feat_extract_norm": "group",
            "conv_bias": False,
            "do_stable_layer_norm": False,
            "num_hidden_layers": 12,
            "layerdrop": 0.1,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.0,
            "feat_proj_dropout": 0.1,
            "mask_time_prob": 0.05,
            "mask_time_length": 10,
            "num_conv_pos_embeddings": 128,
            "num_conv_pos_embedding_groups": 16,
            "codevector_dim": 16,
            "proj_codevector_dim": 16,
            "num_codevectors_per_group": 8,
        },
        "preprocessor": {"do_normalize": True, "return_attention_mask": False},
    },
    # Layer-norm CNN with bias, pre-LN ("stable layer norm") transformer, 24 layers.
    "facebook/wav2vec2-large-lv60": {
        "family": "wav2vec2",
        "architecture": "Wav2Vec2ForPreTraining",
        "config": {
            "feat_extract_norm": "layer",
            "conv_bias": True,
            "do_stable_layer_norm": True,
            "num_hidden_layers": 24,
            "layerdrop": 0.1,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.0,
            "feat_proj_dropout": 0.1,
            "mask_time_prob": 0.05,
            "num_conv_pos_embeddings": 128,
            "num_conv_pos_embedding_groups": 16,
            "codevector_dim": 16,
            "proj_codevector_dim": 16,
            "num_codevectors_per_group": 8,
        },
        "preprocessor": {"do_normalize": True, "return_attention_mask": True},
    },
    "facebook/wav2vec2-large-robust": {
        "family": "wav2vec2",
        "architecture": "Wav2Vec2ForPreTraining",
        "config": {
            "feat_extract_norm": "layer",
            "conv_bias": True,
            "do_stable_layer_norm": True,
            "num_hidden_layers": 24,
            "layerdrop": 0.1,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.1,
            "feat_proj_dropout": 0.1,
            "mask_time_prob": 0.05,
            "num_conv_pos_embeddings": 128,
            "num_conv_pos_embedding_groups": 16,
            "codevector_dim": 16,
            "proj_codevector_dim": 16,
            "num_codevectors_per_group": 8,
        },
        "preprocessor": {"do_normalize": True, "return_attention_mask": True},
    },
    # HuBERT: wav2vec2-base's encoder structure, layer norm on the feature projection.
    "facebook/hubert-base-ls960": {
        "family": "hubert",
        "architecture": "HubertModel",
        "config": {
            "feat_extract_norm": "group",
            "conv_bias": False,
            "do_stable_layer_norm": False,
            "num_hidden_layers": 12,
            "layerdrop": 0.1,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.1,
            "feat_proj_dropout": 0.0,
            "feat_proj_layer_norm": True,
            "mask_time_prob": 0.05,
            "num_conv_pos_embeddings": 128,
            "num_conv_pos_embedding_groups": 16,
        },
        "preprocessor": {"do_normalize": False, "return_attention_mask": False},
    },
    # WavLM: gated relative position bias (buckets), layerdrop skips layer 0 never.
    "microsoft/wavlm-base-plus": {
        "family": "wavlm",
        "architecture": "WavLMModel",
        "config": {
            "feat_extract_norm": "group",
            "conv_bias": False,
            "do_stable_layer_norm": False,
            "num_hidden_layers": 12,
            "layerdrop": 0.05,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.0,
            "feat_proj_dropout": 0.1,
            "mask_time_prob": 0.05,
            "num_buckets": 320,
            "max_bucket_distance": 800,
            "num_conv_pos_embeddings": 128,
            "num_conv_pos_embedding_groups": 16,
        },
        "preprocessor": {"do_normalize": False, "return_attention_mask": True},
    },
    # data2vec-audio: layer-norm CNN, a stack of positional convolutions.
    "facebook/data2vec-audio-base": {
        "family": "data2vec-audio",
        "architecture": "Data2VecAudioModel",
        "config": {
            "conv_bias": False,
            "num_hidden_layers": 12,
            "layerdrop": 0.05,
            "hidden_dropout": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.0,
            "feat_proj_dropout": 0.0,
            "mask_time_prob": 0.05,
            "num_conv_pos_embeddings": 5,
            "conv_pos_kernel_size": 19,
            "num_conv_pos_embedding_groups": 16,
        },
        "preprocessor": {"do_normalize": True, "return_attention_mask": True},
    },
}


def save_published_like(name: str, out: Path, seed: int = 0) -> Path:
    """Write a random-init checkpoint with ``name``'s structure to ``out`` (hub layout)."""
    import torch
    import transformers

    entry = PUBLISHED[name]
    cfg_cls = transformers.AutoConfig.for_model(entry["family"]).__class__
    cfg = cfg_cls(**{**entry["config"], **NARROW})
    cfg.architectures = [entry["architecture"]]
    torch.manual_seed(seed)
    model = getattr(transformers, entry["architecture"])(cfg)
    model.save_pretrained(out)
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16_000, padding_value=0.0, **entry["preprocessor"]
    ).save_pretrained(out)
    return out
