"""Wav2Vec2 backbone + pooling + dropout + linear classifier over the 8 emotions.

The model is a ``Wav2Vec2PreTrainedModel``, so ``from_pretrained("facebook/wav2vec2-base")``
loads the backbone under ``wav2vec2.`` and initialises the head at random, and
``save_pretrained`` / ``from_pretrained`` round-trip a fine-tuned model with its label map.

The CNN feature encoder is frozen and always run per clip on the unpadded waveform: its
group norm (wav2vec2-base) normalises over time, so padding would change its output. That
makes its output a pure function of the clip, which is what lets ``cache.py`` store it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2Model,
    Wav2Vec2PreTrainedModel,
)
from transformers.modeling_outputs import SequenceClassifierOutput

from hpo.corpus.ravdess import EMOTIONS
from hpo.w2v.config import TINY
from hpo.w2v.pooling import LayerWeightedPooling, make_pooling


class Wav2Vec2EmotionClassifier(Wav2Vec2PreTrainedModel):
    """Inputs: raw ``input_values`` (B, L) with ``lengths`` (B,), or cached CNN
    ``extract_features`` (B, T, C) with ``frame_lengths`` (B,)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        self.wav2vec2 = Wav2Vec2Model(config)
        self.wav2vec2.freeze_feature_encoder()
        pooling = getattr(config, "pooling", "mean")
        self.pooler, width = make_pooling(pooling, config.hidden_size, config.num_hidden_layers + 1)
        self.dropout = nn.Dropout(getattr(config, "classifier_dropout", 0.1))
        self.classifier = nn.Linear(width, config.num_labels)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, LayerWeightedPooling):
            with torch.no_grad():
                module.layer_logits.zero_()  # start from an even mix of layers

    @torch.no_grad()
    def cnn_features(self, wave: torch.Tensor) -> torch.Tensor:
        """The frozen CNN's output for one unpadded clip (L,) → (T, C)."""
        return self.wav2vec2.feature_extractor(wave.unsqueeze(0))[0].transpose(0, 1)

    def _cnn_batch(self, input_values: torch.Tensor, lengths: torch.Tensor):
        feats = [self.cnn_features(input_values[i, : int(n)]) for i, n in enumerate(lengths)]
        frame_lengths = torch.tensor([f.shape[0] for f in feats], device=input_values.device)
        return nn.utils.rnn.pad_sequence(feats, batch_first=True), frame_lengths

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        extract_features: torch.Tensor | None = None,
        frame_lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: object,
    ) -> SequenceClassifierOutput:
        if extract_features is None:
            if input_values is None or lengths is None:
                raise ValueError(
                    "give input_values and lengths, or extract_features and frame_lengths"
                )
            extract_features, frame_lengths = self._cnn_batch(input_values, lengths)
        assert frame_lengths is not None
        t = extract_features.shape[1]
        mask = torch.arange(t, device=extract_features.device)[None, :] < frame_lengths[:, None]
        w2v = self.wav2vec2
        hidden, _ = w2v.feature_projection(extract_features.to(self.dtype))
        hidden = w2v._mask_hidden_states(hidden, attention_mask=mask)
        if isinstance(self.pooler, LayerWeightedPooling):
            states: list[torch.Tensor] = []
            hooks = [
                w2v.encoder.layers[0].register_forward_pre_hook(
                    lambda _m, args: states.append(args[0])
                )
            ]
            hooks += [
                layer.register_forward_hook(
                    lambda _m, _a, out: states.append(out[0] if isinstance(out, tuple) else out)
                )
                for layer in w2v.encoder.layers
            ]
            try:
                last = w2v.encoder(hidden, attention_mask=mask).last_hidden_state
            finally:
                for h in hooks:
                    h.remove()
            states[-1] = last
            pooled = self.pooler(torch.stack(states), mask)
        else:
            last = w2v.encoder(hidden, attention_mask=mask).last_hidden_state
            pooled = self.pooler(last, mask)
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(logits.float(), labels)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def tiny_config() -> Wav2Vec2Config:
    """A small random Wav2Vec2 with the real architecture (7 conv layers, 320x downsampling)."""
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


TINY_DIR = Path("models") / "tiny-random-wav2vec2-v3"  # bump when tiny_config changes


def tiny_backbone_dir(root: Path = TINY_DIR, seed: int = 0) -> Path:
    """Build the tiny random-init backbone once and save it with save_pretrained, so it is
    loaded through exactly the same ``from_pretrained`` code as a real checkpoint."""
    if (root / "config.json").is_file():
        return root
    torch.manual_seed(seed)
    model = Wav2Vec2Model(tiny_config())
    model.config.hpo_random_init = True
    from hpo.io import atomic_dir

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
    """(name or path to load, whether it is random-init)."""
    if name == TINY:
        return str(tiny_backbone_dir()), True
    p = Path(name)
    if (p / "config.json").is_file():
        cfg = Wav2Vec2Config.from_pretrained(p)
        return name, bool(getattr(cfg, "hpo_random_init", False))
    return name, False


def check_model(name: str) -> None:
    """Fail before any trial starts when the backbone's config cannot be loaded."""
    from hpo.errors import HpoError

    path, _ = resolve_model_name(name)
    try:
        Wav2Vec2Config.from_pretrained(path)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0]
        raise HpoError(
            f"model {name!r}: cannot load ({first}); without network access use a local "
            "directory or --model tiny"
        ) from None


def load_classifier(
    name: str,
    pooling: str,
    dropout: float,
    mask_time_prob: float,
) -> Wav2Vec2EmotionClassifier:
    """Backbone from ``name`` (hub id or local dir) + a fresh head for the 8 emotions."""
    from hpo.errors import HpoError

    path, _ = resolve_model_name(name)
    try:
        config = Wav2Vec2Config.from_pretrained(path)
        config.pooling = pooling
        config.classifier_dropout = dropout
        config.mask_time_prob = mask_time_prob
        config.num_labels = len(EMOTIONS)
        config.id2label = dict(enumerate(EMOTIONS))
        config.label2id = {e: i for i, e in enumerate(EMOTIONS)}
        model = Wav2Vec2EmotionClassifier.from_pretrained(path, config=config)
    except OSError as e:
        first = str(e).strip().splitlines()[0]
        raise HpoError(
            f"model {name!r}: cannot load ({first}); without network access use a local "
            "directory or --model tiny"
        ) from None
    # Loading replaces the parameters created in __init__: freeze the CNN again.
    model.wav2vec2.freeze_feature_encoder()
    return model


def load_feature_extractor(name: str) -> Wav2Vec2FeatureExtractor:
    """The checkpoint's preprocessing (wav2vec2-base: zero-mean unit-variance per clip)."""
    path, _ = resolve_model_name(name)
    try:
        return Wav2Vec2FeatureExtractor.from_pretrained(path)
    except OSError:
        return Wav2Vec2FeatureExtractor(sampling_rate=16_000, do_normalize=True)


def preprocess(fe: Wav2Vec2FeatureExtractor, wave, max_samples: int):
    """Cut a 16 kHz clip to ``max_samples`` and apply the checkpoint's normalisation."""
    import numpy as np

    out = fe(wave[:max_samples], sampling_rate=16_000, return_tensors="np")["input_values"][0]
    return np.ascontiguousarray(out, dtype=np.float32)
