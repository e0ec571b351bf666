"""wav2vec 2.0 (Baevski et al. 2020) with torchaudio's module tree and keys, and its English CTC speech recognizer.

Keys: ``feature_extractor.conv_layers.<i>.{conv, layer_norm}``, ``encoder.feature_projection.{layer_norm,
projection}``, ``encoder.transformer.pos_conv_embed.conv.{weight_g, weight_v, bias}`` (a weight-normalised
conv), ``encoder.transformer.layer_norm``, ``encoder.transformer.layers.<i>.{attention.{q,k,v,out}_proj,
layer_norm, feed_forward.{intermediate_dense, output_dense}, final_layer_norm}``, ``aux`` (the CTC head).
Exact (erf) GELU everywhere; post-LN transformer layers (the "base" layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit.audio import read_wav, resample
from hubkit.errors import ArgumentError, ShapeError
from hubkit.hub.registry import AudioPreprocessing, WeightTag, register_model
from hubkit.tensor import Tensor

__all__ = [
    "LIBRISPEECH_LABELS", "Wav2Vec2Config", "Wav2Vec2Model", "WaveformPreprocess", "ctc_greedy_decode",
    "hf_wav2vec2_state", "load_wav",
    "wav2vec2_asr_base_960h", "wav2vec2_base", "waveform_preprocess",
]

# torchaudio's English character set for the LibriSpeech fine-tuned models: CTC blank "-" first, "|" = space.
LIBRISPEECH_LABELS = ("-", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F", "G",
                      "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z")  # fmt: skip


@dataclass(frozen=True)
class Wav2Vec2Config:
    """torchaudio's ``wav2vec2_model`` arguments for the group-norm ("base") feature extractor."""

    conv_layers: tuple[tuple[int, int, int], ...] = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2
    embed_dim: int = 768
    pos_conv_kernel: int = 128
    pos_conv_groups: int = 16
    num_layers: int = 12
    num_heads: int = 12
    ffn_dim: int = 3072
    layer_norm_eps: float = 1e-5
    dropout: float = 0.1
    attention_dropout: float = 0.1
    aux_num_out: int | None = None

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ArgumentError(f"Wav2Vec2Config: embed_dim {self.embed_dim} is not a multiple of num_heads "
                                f"{self.num_heads}")  # fmt: skip
        if self.embed_dim % self.pos_conv_groups:
            raise ArgumentError(f"Wav2Vec2Config: embed_dim {self.embed_dim} is not a multiple of pos_conv_groups "
                                f"{self.pos_conv_groups}")  # fmt: skip
        if not self.conv_layers:
            raise ArgumentError("Wav2Vec2Config: conv_layers needs at least one (channels, kernel, stride) triple")

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], *, ctc: bool) -> Wav2Vec2Config:
        """From a transformers ``Wav2Vec2Config`` (``config.json``) of the base layout: a group-norm feature extractor
        without conv biases, post-LN transformer layers, GELU. ``ctc``: with the ``vocab_size`` CTC head."""
        unsupported = []
        if config.get("feat_extract_norm", "group") != "group":
            unsupported.append(f"feat_extract_norm={config.get('feat_extract_norm')!r} (only 'group')")
        if config.get("do_stable_layer_norm", False):
            unsupported.append("do_stable_layer_norm=True (pre-LN layers of the large models)")
        if config.get("conv_bias", False):
            unsupported.append("conv_bias=True")
        for key in ("hidden_act", "feat_extract_activation"):
            if config.get(key, "gelu") != "gelu":
                unsupported.append(f"{key}={config.get(key)!r} (only 'gelu')")
        if config.get("add_adapter", False):
            unsupported.append("add_adapter=True")
        if unsupported:
            raise ArgumentError("this wav2vec2 checkpoint uses what hubkit's wav2vec2 (torchaudio's base layout) does "
                                f"not implement: {', '.join(unsupported)}")  # fmt: skip
        dims, kernels, strides = (config.get(k) for k in ("conv_dim", "conv_kernel", "conv_stride"))
        layers = cls.conv_layers
        if dims is not None:
            if not (len(dims) == len(kernels or ()) == len(strides or ())):
                raise ArgumentError(f"wav2vec2 config: conv_dim, conv_kernel and conv_stride differ in length: {dims}, "
                                    f"{kernels}, {strides}")  # fmt: skip
            layers = tuple((int(d), int(k), int(st)) for d, k, st in zip(dims, kernels, strides))
        return cls(
            conv_layers=layers, embed_dim=int(config.get("hidden_size", 768)),
            pos_conv_kernel=int(config.get("num_conv_pos_embeddings", 128)),
            pos_conv_groups=int(config.get("num_conv_pos_embedding_groups", 16)),
            num_layers=int(config.get("num_hidden_layers", 12)), num_heads=int(config.get("num_attention_heads", 12)),
            ffn_dim=int(config.get("intermediate_size", 3072)),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-5)), dropout=float(config.get("hidden_dropout", 0.1)),
            attention_dropout=float(config.get("attention_dropout", 0.1)),
            aux_num_out=int(config["vocab_size"]) if ctc else None,
        )  # fmt: skip

    def num_frames(self, samples: int) -> int:
        """Frames the feature extractor makes of ``samples`` audio samples (0 when the audio is too short)."""
        for _, kernel, stride in self.conv_layers:
            samples = (samples - kernel) // stride + 1 if samples >= kernel else 0
        return samples


class ConvLayerBlock(nn.Module):
    """Conv1d (no bias) -> GroupNorm with one group per channel (first block only) -> GELU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=False)
        self.layer_norm = nn.GroupNorm(out_channels, out_channels) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return F.gelu(x)


class FeatureExtractor(nn.Module):
    """Waveform (N, samples) -> features (N, frames, channels)."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        blocks, in_channels = [], 1
        for i, (channels, kernel, stride) in enumerate(config.conv_layers):
            blocks.append(ConvLayerBlock(in_channels, channels, kernel, stride, norm=i == 0))
            in_channels = channels
        self.conv_layers = nn.ModuleList(blocks)

    def forward(self, waveforms: Tensor) -> Tensor:
        x = waveforms.unsqueeze(1)
        for block in self.conv_layers:
            x = block(x)
        return x.transpose(1, 2)


class FeatureProjection(nn.Module):
    def __init__(self, in_features: int, out_features: int, dropout: float) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(in_features)
        self.projection = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.projection(self.layer_norm(x)))


class WeightNormConv1d(nn.Module):
    """A Conv1d whose weight is ``weight_v * weight_g / ||weight_v||``, the norm taken over every dim but the
    kernel position (``torch.nn.utils.weight_norm(conv, dim=2)``), with parameters ``weight_g``/``weight_v``."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=groups)
        self.weight_g = nn.Parameter(hubkit.tensor(_norm_except_kernel(conv.weight.numpy())))
        self.weight_v = nn.Parameter(conv.weight.detach().clone())
        self.bias = nn.Parameter(conv.bias.detach().clone())

    def weight(self) -> Tensor:
        v = self.weight_v
        return v * (self.weight_g / (v * v).sum(dim=(0, 1), keepdim=True).sqrt())

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


def _norm_except_kernel(v: np.ndarray) -> np.ndarray:
    return np.sqrt((v.astype(np.float64) ** 2).sum(axis=(0, 1), keepdims=True)).astype(v.dtype)


class ConvolutionalPositionalEmbedding(nn.Module):
    """Relative positions from a grouped, weight-normalised conv over time: (N, T, C) -> (N, T, C)."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.conv = WeightNormConv1d(channels, kernel, groups)
        self.trim = 1 if kernel % 2 == 0 else 0  # an even kernel with kernel // 2 padding adds one frame

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[..., : -self.trim]
        return F.gelu(y).transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, dim // heads, dropout
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        n, t, _ = x.shape
        return x.reshape(n, t, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: Tensor) -> Tensor:
        n, t, c = x.shape
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(x)), self._split(self.v_proj(x))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(y.permute(0, 2, 1, 3).reshape(n, t, c))


class FeedForward(nn.Module):
    def __init__(self, dim: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(dim, ffn_dim)
        self.intermediate_dropout = nn.Dropout(dropout)
        self.output_dense = nn.Linear(ffn_dim, dim)
        self.output_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = self.intermediate_dropout(F.gelu(self.intermediate_dense(x)))
        return self.output_dropout(self.output_dense(x))


class EncoderLayer(nn.Module):
    """Post-LN block: ``x = LN(x + attn(x)); x = final_LN(x + FF(x))``."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        dim = config.embed_dim
        self.attention = SelfAttention(dim, config.num_heads, config.attention_dropout)
        self.dropout = nn.Dropout(config.dropout)
        self.layer_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(dim, config.ffn_dim, config.dropout)
        self.final_layer_norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer_norm(x + self.dropout(self.attention(x)))
        return self.final_layer_norm(x + self.feed_forward(x))


class Transformer(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.pos_conv_embed = ConvolutionalPositionalEmbedding(config.embed_dim, config.pos_conv_kernel,
                                                               config.pos_conv_groups)  # fmt: skip
        self.layer_norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList([EncoderLayer(config) for _ in range(config.num_layers)])

    def forward(self, x: Tensor) -> Tensor:
        x = self.dropout(self.layer_norm(x + self.pos_conv_embed(x)))
        for layer in self.layers:
            x = layer(x)
        return x


class Encoder(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.feature_projection = FeatureProjection(config.conv_layers[-1][0], config.embed_dim, config.dropout)
        self.transformer = Transformer(config)

    def forward(self, features: Tensor) -> Tensor:
        return self.transformer(self.feature_projection(features))


class Wav2Vec2Model(nn.Module):
    """wav2vec 2.0: waveform (N, samples) at 16 kHz -> (N, frames, aux_num_out) CTC emissions, or the encoder's
    (N, frames, embed_dim) features without an ``aux`` head. One frame per 20 ms (320 samples).

    ``labels`` (the CTC alphabet) is set by the registry for recognizers; ``transcribe`` then decodes, with ``blank``
    the CTC blank's index. ``normalize_waveform`` (transformers' ``do_normalize``): ``transcribe`` scales each
    waveform to zero mean and unit variance first, as the model's feature extractor did in training.
    """

    def __init__(self, config: Wav2Vec2Config | None = None, labels: Sequence[str] | None = None,
                 blank: int = 0, normalize_waveform: bool = False) -> None:
        super().__init__()
        self.config = config or Wav2Vec2Config()
        self.feature_extractor = FeatureExtractor(self.config)
        self.encoder = Encoder(self.config)
        self.aux = nn.Linear(self.config.embed_dim, self.config.aux_num_out) if self.config.aux_num_out else None
        if labels is not None and self.aux is not None and len(labels) != self.config.aux_num_out:
            raise ArgumentError(f"Wav2Vec2Model: {len(labels)} labels for {self.config.aux_num_out} outputs")
        self.labels = tuple(labels) if labels is not None else None
        self.blank = blank
        self.normalize_waveform = normalize_waveform

    def forward(self, waveforms: Any) -> Tensor:
        x = waveforms if isinstance(waveforms, Tensor) else hubkit.tensor(np.asarray(waveforms, dtype=np.float32))
        device = self.encoder.feature_projection.projection.weight.device
        x = x.to(device) if x.device != device else x
        if x.ndim == 1:
            x = x.unsqueeze(0)
        if x.ndim != 2:
            raise ShapeError(f"Wav2Vec2Model: expected a waveform (samples,) or a batch (N, samples), got "
                             f"shape {tuple(x.shape)}")  # fmt: skip
        if self.config.num_frames(x.shape[1]) < 1:
            kernel = self.config.conv_layers[0][1]
            raise ShapeError(f"Wav2Vec2Model: {x.shape[1]} samples are too short to make one frame; the model "
                             f"needs at least {_min_samples(self.config)} (about {kernel / 16:.0f}+ ms at 16 kHz)")
        y = self.encoder(self.feature_extractor(x))
        return self.aux(y) if self.aux is not None else y

    def transcribe(self, waveforms: Any) -> list[str]:
        """Greedy CTC transcripts of a 16 kHz waveform (samples,) or batch (N, samples), in eval mode."""
        if self.labels is None or self.aux is None:
            raise ArgumentError("transcribe needs a CTC head and its labels: load a recognizer such as "
                                "hubkit.load('wav2vec2_asr_base_960h', pretrained=True)")  # fmt: skip
        if self.normalize_waveform:
            x = waveforms.cpu().numpy() if isinstance(waveforms, Tensor) else np.asarray(waveforms, dtype=np.float32)
            x = x.astype(np.float32, copy=False)
            mean = x.mean(axis=-1, keepdims=True)
            var = x.var(axis=-1, keepdims=True)
            waveforms = ((x - mean) / np.sqrt(var + 1e-7)).astype(np.float32)
        was_training = self.training
        self.eval()
        try:
            with hubkit.no_grad():
                emissions = self(waveforms).cpu().numpy()
        finally:
            self.train(was_training)
        return [ctc_greedy_decode(e, self.labels, self.blank) for e in emissions]


def _min_samples(config: Wav2Vec2Config) -> int:
    samples = 1
    for _, kernel, stride in reversed(config.conv_layers):
        samples = (samples - 1) * stride + kernel
    return samples


def ctc_greedy_decode(emissions: np.ndarray, labels: Sequence[str], blank: int = 0) -> str:
    """Best path of one utterance's emissions (frames, len(labels)): argmax per frame, merge repeats, drop
    blanks; ``"|"`` is a word boundary. Returns the words joined by single spaces."""
    emissions = np.asarray(emissions)
    if emissions.ndim != 2 or emissions.shape[1] != len(labels):
        raise ShapeError(f"ctc_greedy_decode: expected emissions (frames, {len(labels)}), got {emissions.shape}")
    best = emissions.argmax(axis=1)
    keep = np.ones(best.shape, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    chars = "".join(labels[i] for i in best[keep & (best != blank)])
    return " ".join(chars.replace("|", " ").split())


def load_wav(path: str | Path, *, sample_rate: int | None = 16000) -> np.ndarray:
    """A PCM WAV file (8, 16, 24 or 32-bit) -> float32 mono waveform in [-1, 1], channels averaged, resampled to
    ``sample_rate`` Hz when the file has another rate (torchaudio's default band-limited sinc resampling;
    ``sample_rate=None`` keeps the file's rate). Bad files raise ``AudioFileError``."""
    waveform, rate = read_wav(path)
    audio = waveform.mean(axis=0, dtype=np.float32)
    if sample_rate is not None and rate != sample_rate:
        audio = resample(audio, rate, sample_rate)
    return audio


class WaveformPreprocess:
    """An audio weight tag's preprocessing: a WAV path (read with :func:`load_wav`, resampled to ``sample_rate``)
    or a 1-d array of samples already at ``sample_rate`` -> float32 mono waveform (samples,)."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def __call__(self, audio: Any) -> np.ndarray:
        if isinstance(audio, (str, Path)):
            return load_wav(audio, sample_rate=self.sample_rate)
        wav = np.asarray(audio, dtype=np.float32)
        if wav.ndim != 1:
            raise ShapeError(f"expected a mono waveform (samples,), got shape {wav.shape}; average the channels")
        return wav

    def __repr__(self) -> str:
        return f"WaveformPreprocess(sample_rate={self.sample_rate})"


def waveform_preprocess(tag: WeightTag) -> WaveformPreprocess:
    """The transforms factory of audio weight tags (``tag.transforms()``): their ``AudioPreprocessing``."""
    return WaveformPreprocess(tag.preprocessing.sample_rate)


_HF_PREFIXES = (
    ("feature_extractor.", "feature_extractor."),
    ("feature_projection.", "encoder.feature_projection."),
    ("encoder.pos_conv_embed.", "encoder.transformer.pos_conv_embed."),
    ("encoder.layer_norm.", "encoder.transformer.layer_norm."),
    ("encoder.layers.", "encoder.transformer.layers."),
)


def hf_wav2vec2_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A transformers ``Wav2Vec2ForCTC`` / ``Wav2Vec2Model`` checkpoint under this module's (torchaudio's) keys:
    ``wav2vec2.feature_projection.*`` -> ``encoder.feature_projection.*``, ``wav2vec2.encoder.*`` ->
    ``encoder.transformer.*``, ``lm_head.*`` -> ``aux.*``; the pre-training mask embedding (``masked_spec_embed``) is
    dropped and torch's new weight-norm names (``parametrizations.weight.original0/1``) are read. The CTC head is
    kept whole: its rows are the model's ``vocab.json``."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        name = key[len("wav2vec2."):] if key.startswith("wav2vec2.") else key
        if name == "masked_spec_embed":
            continue
        if name.startswith("lm_head."):
            out["aux." + name[len("lm_head."):]] = value
            continue
        for old, new in _HF_PREFIXES:
            if name.startswith(old):
                name = new + name[len(old):]
                break
        out[_weight_norm_names(name)] = value
    return out


def _weight_norm_names(key: str) -> str:
    key = key.replace("parametrizations.weight.original0", "weight_g")
    return key.replace("parametrizations.weight.original1", "weight_v")


def _fix_keys(state: dict[str, Any]) -> dict[str, Any]:
    """torchaudio's loading fix-ups: drop rows 1-3 of the fairseq ``aux`` head (``<pad>``, ``</s>``, ``<unk>``)
    when present, and accept ``parametrizations.weight.original0/1`` (torch's new weight norm) for
    ``weight_g``/``weight_v``."""
    out = {_weight_norm_names(key): value for key, value in state.items()}
    for name in ("aux.weight", "aux.bias"):
        if name in out and out[name].shape[0] == len(LIBRISPEECH_LABELS) + 3:
            value = np.asarray(out[name])
            out[name] = np.concatenate([value[:1], value[4:]], axis=0)
    return out


# ---------------------------------------------------------------- registry


@register_model(
    modality="audio", task="speech-features",
    description="wav2vec 2.0 base (architecture only): 16 kHz waveform -> 768-d features every 20 ms",
    paper="https://arxiv.org/abs/2006.11477",
)  # fmt: skip
def wav2vec2_base(**kwargs: Any) -> Wav2Vec2Model:
    """wav2vec 2.0 base: 7 conv layers, 12 transformer layers of 768, no CTC head (features only)."""
    return Wav2Vec2Model(Wav2Vec2Config(**kwargs))


@register_model(
    modality="audio",
    task="speech-recognition",
    description="wav2vec 2.0 base fine-tuned for English speech recognition (CTC, LibriSpeech 960 h)",
    paper="https://arxiv.org/abs/2006.11477",
    weights=(
        WeightTag(
            tag="LIBRISPEECH_960H",
            url="https://download.pytorch.org/torchaudio/models/wav2vec2_fairseq_base_ls960_asr_ls960.pth",
            sha256="488fd4f16de84438ffc945334278c1b9fb9b7159a806c1080b16111a958c945d",
            size=377664473,
            file_size_mb=377.7,
            format="torch",
            license="MIT",
            source="https://pytorch.org/audio/stable/generated/torchaudio.pipelines.WAV2VEC2_ASR_BASE_960H.html",
            recipe="fairseq wav2vec 2.0 base, pre-trained on LibriSpeech 960 h, CTC fine-tuned on the same",
            num_params=94393245,
            num_classes=len(LIBRISPEECH_LABELS),
            preprocessing=AudioPreprocessing(sample_rate=16000),
            transforms_factory=waveform_preprocess,
        ),
    ),
    default="LIBRISPEECH_960H",
    key_map=_fix_keys,
)  # fmt: skip
def wav2vec2_asr_base_960h(**kwargs: Any) -> Wav2Vec2Model:
    """wav2vec 2.0 base fine-tuned with CTC on 960 h of LibriSpeech: English characters (29 outputs)."""
    return Wav2Vec2Model(Wav2Vec2Config(aux_num_out=len(LIBRISPEECH_LABELS), **kwargs), labels=LIBRISPEECH_LABELS)
