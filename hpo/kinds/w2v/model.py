"""A wav2vec2-family backbone + the head (``heads.py``: layer, standardisation, pooling,
dropout, classifier) over the corpus's labels.

The backbone runs through its own ``forward``: its own SpecAugment masking, attention mask,
layerdrop and (for the layer mix) ``output_hidden_states``; nothing here re-implements
a family's encoder, so wav2vec2, HuBERT, WavLM and data2vec-audio all work alike.

The CNN feature encoder is frozen and run per clip on the unpadded waveform (group norm,
as in wav2vec2-base, normalises over time, so padding would change its output; layer-norm
CNNs are run on the padded batch, which gives the same valid frames). Its output is thus a
pure function of the clip, which is what lets ``cache.py`` store it. Cached or freshly
computed, the frames reach the backbone the same way: a hook on the CNN hands them over
in place of its output, and the attention mask says how long each clip was.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput

from hpo.kinds.w2v.config import LEGACY_POOLING
from hpo.kinds.w2v.heads import build_head, head_config, head_logits, pool_states

HEAD_FILE = "head.safetensors"
HEAD_CONFIG = "head.json"


def samples_for_frames(config, frames: torch.Tensor) -> torch.Tensor:
    """The fewest samples whose CNN output has ``frames`` frames: what the backbone's
    attention mask must count for a clip of that length. (transformers has the forward
    direction, ``_get_feat_extract_output_lengths``, but not this inverse.)"""
    n = frames.clone()
    for k, s in zip(reversed(config.conv_kernel), reversed(config.conv_stride), strict=True):
        n = (n - 1) * s + k
    return n


class EmotionClassifier(nn.Module):
    """Inputs: raw ``input_values`` (B, L) with ``lengths`` (B,); cached CNN
    ``extract_features`` (B, T, C) with ``frame_lengths`` (B,); or ``clip_ids`` (B,) into
    ``self.bank``, the CNN cache (``finetune.cache.FrameBank``). Optional ``frame_shift``
    and ``frame_scale`` (B, C): each clip's per-speaker affine map of its CNN frames.

    ``layer`` is the hidden state pooling reads: -1 the backbone's output, 0 the input of
    the first transformer layer, ``"weighted"`` the learned mix of all (a probe trained on
    another layer predicts from that layer). ``head`` and ``standardize``: see ``heads.py``;
    a probe's standardisation statistics are buffers of ``scaler``, saved with the head.
    """

    # forward takes **_ (the Trainer passes extra keys), which would tell the Trainer the
    # loss is normalised by num_items_in_batch; it is a mean per micro-batch, so the Trainer
    # must divide it by gradient_accumulation (else accumulated gradients are summed).
    accepts_loss_kwargs = False

    def __init__(
        self,
        backbone,
        pooling: str,
        dropout: float,
        n_labels: int,
        layer: int | str = -1,
        head: str = "linear",
        standardize: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        # Every family's CNN has _freeze_parameters (HubertModel lacks the public
        # freeze_feature_encoder in transformers 5): no gradients, no grad-enabled input.
        self.backbone.feature_extractor._freeze_parameters()
        cfg = backbone.config
        self.config = cfg  # the Trainer reads a few fields of model.config
        self.n_labels = n_labels
        build_head(
            self,
            pooling=pooling,
            layer=layer,
            head=head,
            hidden=cfg.hidden_size,
            n_states=cfg.num_hidden_layers + 1,
            dropout=dropout,
            n_labels=n_labels,
            standardize=standardize,
        )
        self.wants_all_layers = self.layer_mix is not None
        self.bank = None  # a finetune.cache.FrameBank, attached by the objective
        # The loss's class weights ([training] class_weight), set per fold from its training
        # clips. A plain attribute, not a buffer: a fold's weights are no part of the model.
        self.class_weight: torch.Tensor | None = None
        self._frames: torch.Tensor | None = None
        self._ran: list[int] = []
        self.backbone.feature_extractor.register_forward_hook(self._hand_over_frames)
        for i, layer in enumerate(self.backbone.encoder.layers):
            layer.register_forward_hook(self._mark_layer(i))

    # -- hooks -----------------------------------------------------------------------------
    def _hand_over_frames(self, _module, _args, output):
        if self._frames is not None:
            return self._frames.transpose(1, 2).to(output.dtype)
        return None

    def _mark_layer(self, i: int):
        def hook(_module, _args, _output) -> None:
            self._ran.append(i)

        return hook

    # -- CNN -------------------------------------------------------------------------------
    @torch.no_grad()
    def cnn_features(self, wave: torch.Tensor) -> torch.Tensor:
        """The frozen CNN's output for one unpadded clip (L,) → (T, C)."""
        return self.backbone.feature_extractor(wave.unsqueeze(0))[0].transpose(0, 1)

    def frames_for_samples(self, samples: torch.Tensor) -> torch.Tensor:
        """How many frames the CNN makes of clips of ``samples`` samples."""
        return self.backbone._get_feat_extract_output_lengths(samples.long())

    @torch.no_grad()
    def cnn_batch(self, input_values: torch.Tensor, lengths: torch.Tensor):
        """CNN frames of a padded batch and each clip's frame count."""
        cfg = self.backbone.config
        frame_lengths = self.frames_for_samples(lengths)
        if getattr(cfg, "feat_extract_norm", "layer") == "layer":
            feats = self.backbone.feature_extractor(input_values).transpose(1, 2)
            return feats[:, : int(frame_lengths.max())], frame_lengths
        feats = [self.cnn_features(input_values[i, : int(n)]) for i, n in enumerate(lengths)]
        return nn.utils.rnn.pad_sequence(feats, batch_first=True), frame_lengths

    # -- forward ---------------------------------------------------------------------------
    def layer_states(self, hidden_states: tuple[torch.Tensor, ...], last=None) -> torch.Tensor:
        """All L+1 states (L+1, B, T, H) from the backbone's ``hidden_states``.

        transformers records a state per layer that *ran*: under layerdrop a skipped layer
        records nothing and the tuple is shorter. A skipped layer passes its input through,
        so its state is the previous one; the layer hooks say which ran. The last state is
        the backbone's output (``last``: after the final layer norm of pre-LN encoders).
        """
        states, k = [hidden_states[0]], 1
        for i in range(len(self.backbone.encoder.layers)):
            if i in self._ran:
                states.append(hidden_states[k])
                k += 1
            else:
                states.append(states[-1])
        if k != len(hidden_states):
            raise RuntimeError(f"{len(hidden_states)} hidden states for {k} recorded layers")
        if last is not None:
            states[-1] = last
        return torch.stack(states)

    def encode(
        self, extract_features: torch.Tensor, frame_lengths: torch.Tensor, all_layers: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone on CNN frames: (last state (B, T, H) or all L+1 states, frame mask)."""
        cfg = self.backbone.config
        b, t = extract_features.shape[:2]
        device = extract_features.device
        n_samples = samples_for_frames(cfg, frame_lengths.to(device))
        attention_mask = (
            torch.arange(int(n_samples.max()), device=device)[None] < n_samples[:, None]
        )
        # The CNN sees one receptive field per clip; the hook replaces its output.
        stub = torch.zeros(b, int(samples_for_frames(cfg, torch.tensor(1))), device=device)
        self._frames, self._ran = extract_features, []
        try:
            out = self.backbone(
                input_values=stub.to(extract_features.dtype),
                attention_mask=attention_mask.long(),
                output_hidden_states=all_layers,
            )
        finally:
            self._frames = None
        mask = torch.arange(t, device=device)[None, :] < frame_lengths.to(device)[:, None]
        if all_layers:
            return self.layer_states(out.hidden_states, out.last_hidden_state), mask
        return out.last_hidden_state, mask

    def _states_for_pooling(self, extract_features, frame_lengths):
        last = self.layer == self.backbone.config.num_hidden_layers
        all_layers = self.wants_all_layers or not last
        states, mask = self.encode(extract_features, frame_lengths, all_layers)
        if all_layers and not self.wants_all_layers:
            states = states[self.layer]
        return states, mask

    def input_frames(
        self,
        input_values: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        extract_features: torch.Tensor | None = None,
        frame_lengths: torch.Tensor | None = None,
        clip_ids: torch.Tensor | None = None,
        frame_shift: torch.Tensor | None = None,
        frame_scale: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The CNN frames (B, T, C) the feature projection reads, and each clip's frame
        count: gathered from the cache, given, or computed from the waveforms, then, with
        ``frame_shift`` / ``frame_scale`` (B, C), mapped per clip as ``(x - shift) * scale``
        (per-speaker normalisation, ``finetune.speaker``). One place for every input, so
        the cached and the uncached paths normalise alike."""
        if clip_ids is not None:
            # The batch follows the model: the bank may sit in host memory (cache_device).
            extract_features, frame_lengths = self.bank.batch(clip_ids)
            extract_features = extract_features.to(self.classifier.weight.device)
        elif extract_features is None:
            if input_values is None or lengths is None:
                raise ValueError("give input_values + lengths, or extract_features + frame_lengths")
            extract_features, frame_lengths = self.cnn_batch(input_values, lengths)
        assert frame_lengths is not None
        if frame_shift is not None and frame_scale is not None:
            device = extract_features.device
            shift, scale = frame_shift.to(device)[:, None], frame_scale.to(device)[:, None]
            x = (extract_features.float() - shift) * scale
            # Padding stays 0, as the bank gives it (the encoder masks it anyway).
            t = torch.arange(x.shape[1], device=device)
            extract_features = x * (t[None] < frame_lengths.to(device)[:, None])[..., None]
        return extract_features, frame_lengths

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
        extract_features: torch.Tensor | None = None,
        frame_lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        clip_ids: torch.Tensor | None = None,
        frame_shift: torch.Tensor | None = None,
        frame_scale: torch.Tensor | None = None,
        **_: object,
    ) -> SequenceClassifierOutput:
        extract_features, frame_lengths = self.input_frames(
            input_values,
            lengths,
            extract_features,
            frame_lengths,
            clip_ids,
            frame_shift,
            frame_scale,
        )
        states, mask = self._states_for_pooling(extract_features, frame_lengths)
        # float32 logits and loss whatever the autocast precision (numpy has no bf16).
        logits = head_logits(self, pool_states(self, states, mask))
        loss = None
        if labels is not None:
            w = self.class_weight
            loss = nn.functional.cross_entropy(
                logits, labels, weight=None if w is None else w.to(logits.device)
            )
        return SequenceClassifierOutput(loss=loss, logits=logits)

    # -- saving ----------------------------------------------------------------------------
    def head_state(self) -> dict[str, torch.Tensor]:
        return {
            k: v.detach().contiguous()
            for k, v in self.state_dict().items()
            if not k.startswith("backbone.")
        }

    def save(self, out: Path, extra: dict | None = None) -> None:
        """The backbone with ``save_pretrained`` (its family's own format) and the head
        beside it: ``hpo predict`` loads any family back the same way."""
        from safetensors.torch import save_file

        self.backbone.save_pretrained(out)
        save_file(self.head_state(), str(out / HEAD_FILE))
        head = {**head_config(self), "dropout": self.dropout.p, "n_labels": self.n_labels}
        (out / HEAD_CONFIG).write_text(json.dumps({**head, **(extra or {})}, indent=2) + "\n")


def build_classifier(
    backbone,
    pooling: str,
    dropout: float,
    n_labels: int,
    layer: int | str = -1,
    head: str = "linear",
    standardize: bool = False,
) -> EmotionClassifier:
    """A fresh head on ``backbone`` (seed the RNG first for a reproducible head; the layer
    mix starts even)."""
    return EmotionClassifier(backbone, pooling, dropout, n_labels, layer, head, standardize)


def load_saved(model_dir: Path) -> tuple[EmotionClassifier, dict]:
    """A classifier saved by ``EmotionClassifier.save``, and its head settings."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    head = json.loads((model_dir / HEAD_CONFIG).read_text())
    backbone = AutoModel.from_pretrained(model_dir)
    model = EmotionClassifier(
        backbone,
        head["pooling"],
        head["dropout"],
        head["n_labels"],
        head.get("layer", -1),
        head.get("head", "linear"),  # a model saved before heads were named: linear,
        head.get("standardize", False),  # unstandardised
    )
    weights = load_file(str(model_dir / HEAD_FILE))
    if head["pooling"] == LEGACY_POOLING:  # the mix was the pooler's then
        weights = {
            k.replace("pooler.layer_logits", "layer_mix.layer_logits"): v
            for k, v in weights.items()
        }
    missing, unexpected = model.load_state_dict(weights, strict=False)
    missing = [k for k in missing if not k.startswith("backbone.")]
    if missing or unexpected:
        raise RuntimeError(f"{model_dir}: head weights do not match ({missing or unexpected})")
    return model, head
