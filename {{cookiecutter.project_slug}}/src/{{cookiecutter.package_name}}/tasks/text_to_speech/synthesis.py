"""Speech synthesis models: a small text-to-spectrogram model that learns in CPU-seconds, SpeechT5
for real checkpoints, and Griffin-Lim to turn a spectrogram into a waveform without weights.

The small model (`AlignedTTS`) is the encoder of Grad-TTS / Glow-TTS without their generative
decoders: every character predicts an average log-mel frame, monotonic alignment search (MAS, a
Viterbi pass) finds which frames each character covers, a duration predictor learns those spans,
and a convolutional decoder adds the detail inside each span. It needs no attention to learn an
alignment, which is what lets it train on a few hundred utterances in seconds (docs/decisions.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    PretrainedConfig,
    PreTrainedModel,
    SpeechT5ForTextToSpeech,
)
from transformers.utils import ModelOutput


class AlignedTTSConfig(PretrainedConfig):
    model_type = "flywheel_aligned_tts"

    def __init__(
        self,
        vocab_size: int = 32,
        num_mel_bins: int = 80,
        hidden_size: int = 128,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        kernel_size: int = 5,
        dropout: float = 0.1,
        alignment_warmup_steps: int = 36,
        max_frames_per_token: int = 40,
        alignment_prior: float = 0.1,
        mel_mean: list[float] | None = None,
        mel_std: list[float] | None = None,
        pad_token_id: int = 0,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.num_mel_bins = num_mel_bins
        self.hidden_size = hidden_size
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.kernel_size = kernel_size
        self.dropout = dropout
        # Training steps that align each text evenly over its frames before MAS takes over:
        # MAS over an untrained model's frames settles on a degenerate alignment.
        self.alignment_warmup_steps = alignment_warmup_steps
        self.max_frames_per_token = max_frames_per_token
        # Weight of the even-pace prior in MAS: small enough for the sounds to decide, large
        # enough that no token swallows the utterance.
        self.alignment_prior = alignment_prior
        # Mean and spread of the training frames (per band; `build` gives every band the same
        # level and spread): the model works on standardized frames and learns them at once.
        self.mel_mean = mel_mean
        self.mel_std = mel_std
        super().__init__(pad_token_id=pad_token_id, **kwargs)


@dataclass
class SpeechOutput(ModelOutput):
    """Synthesized log-mel spectrograms (padded) and each one's length in frames; with labels,
    the training loss too (teacher-forced on the aligned frames)."""

    loss: torch.Tensor | None = None
    spectrogram: torch.Tensor | None = None
    lengths: torch.Tensor | None = None


def monotonic_alignment(log_likelihood: np.ndarray) -> np.ndarray:
    """Frames per token of the monotonic path (every token at least one frame, in order) that
    maximizes the summed log-likelihood; `log_likelihood` is (tokens, frames)."""
    tokens, frames = log_likelihood.shape
    best = np.full((tokens, frames), -np.inf)
    best[0, 0] = log_likelihood[0, 0]
    for frame in range(1, frames):
        stay = best[:, frame - 1]
        advance = np.concatenate([[-np.inf], best[:-1, frame - 1]])
        best[:, frame] = np.maximum(stay, advance) + log_likelihood[:, frame]
    durations = np.zeros(tokens, dtype=np.int64)
    token = tokens - 1
    for frame in range(frames - 1, -1, -1):
        durations[token] += 1
        if token > 0 and (token == frame or best[token - 1, frame - 1] >= best[token, frame - 1]):
            token -= 1
    return durations


def even_alignment(tokens: int, frames: int) -> np.ndarray:
    """Frames per token when `frames` are shared out evenly (the alignment warm-up, and the
    unit-concatenation baseline)."""
    edges = np.round(np.linspace(0, frames, tokens + 1)).astype(np.int64)
    return np.diff(edges)


class _ConvBlock(nn.Module):
    def __init__(self, size: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(size, size, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        update = self.conv((hidden * mask).transpose(1, 2)).transpose(1, 2)
        return self.norm(hidden + self.dropout(torch.relu(update))) * mask


class AlignedTTS(PreTrainedModel):
    config_class = AlignedTTSConfig
    main_input_name = "input_ids"
    # The loss is a mean per batch: the Trainer must not rescale it by token counts.
    accepts_loss_kwargs = False

    def __init__(self, config: AlignedTTSConfig) -> None:
        super().__init__(config)
        size, kernel, dropout = config.hidden_size, config.kernel_size, config.dropout
        self.embed = nn.Embedding(config.vocab_size, size, padding_idx=config.pad_token_id)
        self.encoder = nn.ModuleList(
            _ConvBlock(size, kernel, dropout) for _ in range(config.encoder_layers)
        )
        self.frame_mean = nn.Linear(size, config.num_mel_bins)
        self.duration_layers = nn.ModuleList(_ConvBlock(size, 3, 0.0) for _ in range(2))
        self.duration_out = nn.Linear(size, 1)
        self.decoder_in = nn.Linear(size + config.num_mel_bins, size)
        self.decoder = nn.ModuleList(
            _ConvBlock(size, kernel, dropout) for _ in range(config.decoder_layers)
        )
        self.decoder_out = nn.Linear(size, config.num_mel_bins)
        # Training batches seen (saved with the weights), for the alignment warm-up.
        self.register_buffer("steps_seen", torch.zeros((), dtype=torch.long))
        bands = config.num_mel_bins
        mean = torch.tensor(config.mel_mean or [0.0] * bands, dtype=torch.float32)
        std = torch.tensor(config.mel_std or [1.0] * bands, dtype=torch.float32)
        self.register_buffer("mel_mean", mean)
        self.register_buffer("mel_std", std)
        self.post_init()

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        mask = attention_mask.unsqueeze(-1).to(self.embed.weight.dtype)
        hidden = self.embed(input_ids) * mask
        for block in self.encoder:
            hidden = block(hidden, mask)
        # The duration predictor learns from the encoder without steering it.
        duration_states = hidden.detach()
        for block in self.duration_layers:
            duration_states = block(duration_states, mask)
        log_durations = self.duration_out(duration_states).squeeze(-1)
        return hidden, self.frame_mean(hidden), log_durations, mask

    def _decode(self, hidden: torch.Tensor, means: torch.Tensor, durations: torch.Tensor):
        """Each token's state and mean frame repeated over its frames, refined by the decoder."""
        # The frame-to-token index is built on the CPU (a loop over rows), then moved.
        spans_per_row = durations.cpu()
        lengths = spans_per_row.sum(dim=1)
        frames = max(int(lengths.max()), 1)
        token_of_frame = torch.zeros(len(spans_per_row), frames, dtype=torch.long)
        for row, spans in enumerate(spans_per_row):
            owners = torch.repeat_interleave(torch.arange(len(spans)), spans)
            token_of_frame[row, : len(owners)] = owners
        frame_mask = (torch.arange(frames)[None, :] < lengths[:, None]).unsqueeze(-1)
        frame_mask = frame_mask.to(device=hidden.device, dtype=hidden.dtype)
        token_of_frame = token_of_frame.to(hidden.device)

        def expand(states: torch.Tensor) -> torch.Tensor:
            index = token_of_frame.unsqueeze(-1).expand(-1, -1, states.size(-1))
            return torch.gather(states, 1, index)

        mean_frames = expand(means) * frame_mask
        detail = self.decoder_in(torch.cat([expand(hidden), mean_frames], dim=-1)) * frame_mask
        for block in self.decoder:
            detail = block(detail, frame_mask)
        refined = (mean_frames + self.decoder_out(detail)) * frame_mask
        return mean_frames, refined, frame_mask, lengths.to(hidden.device)

    def _warming_up(self) -> bool:
        return self.training and int(self.steps_seen) < self.config.alignment_warmup_steps

    def _aligned_durations(self, means, attention_mask, targets, frame_counts):
        token_counts = attention_mask.sum(dim=1)
        warm_up = self._warming_up()
        durations = torch.zeros_like(attention_mask, dtype=torch.long)
        with torch.no_grad():
            for row, (tokens, frames) in enumerate(
                zip(token_counts.tolist(), frame_counts.tolist(), strict=True)
            ):
                if warm_up or frames < tokens:
                    spans = even_alignment(tokens, frames)
                else:
                    target = targets[row, :frames].float()
                    mean = means[row, :tokens].float()
                    # Mean squared error per band of each (token, frame) pair...
                    distance = torch.cdist(mean, target).square() / target.size(-1)
                    # ...plus a penalty for straying from an even pace (in tokens, squared).
                    pace = torch.arange(frames, device=target.device) * tokens / frames
                    offset = torch.arange(tokens, device=target.device)[:, None] + 0.5 - pace
                    pace_penalty = self.config.alignment_prior * offset.square()
                    spans = monotonic_alignment((-distance - pace_penalty).cpu().numpy())
                durations[row, :tokens] = torch.from_numpy(spans).to(durations.device)
        return durations

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **unused: Any,
    ) -> SpeechOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden, means, log_durations, token_mask = self._encode(input_ids, attention_mask)
        spectrogram = lengths = loss = None
        if labels is not None:
            frame_counts = (labels != -100).any(dim=-1).sum(dim=1)
            targets = (labels - self.mel_mean) / self.mel_std
            durations = self._aligned_durations(means, attention_mask, targets, frame_counts)
            mean_frames, refined, frame_mask, _ = self._decode(hidden, means, durations)
            target = targets[:, : refined.size(1)] * frame_mask
            weight = frame_mask.sum() * refined.size(-1)
            prior_loss = ((mean_frames - target) ** 2 * frame_mask).sum() / weight
            detail_loss = ((refined - target).abs() * frame_mask).sum() / weight
            duration_target = torch.log1p(durations.to(log_durations.dtype))
            duration_loss = ((log_durations - duration_target) ** 2 * token_mask.squeeze(-1)).sum()
            loss = prior_loss + detail_loss + duration_loss / token_mask.sum()
            if self.training:
                self.steps_seen += 1
        if labels is None or not self.training:
            # Free-running synthesis, as `predict` does it: spans from the duration predictor.
            spectrogram, lengths = self.synthesize(hidden, means, log_durations, attention_mask)
        return SpeechOutput(loss=loss, spectrogram=spectrogram, lengths=lengths)

    def synthesize(self, hidden, means, log_durations, attention_mask):
        spans = torch.round(torch.expm1(log_durations)).clamp(1, self.config.max_frames_per_token)
        durations = spans.long() * attention_mask.long()
        _, refined, frame_mask, lengths = self._decode(hidden, means, durations)
        return (refined * self.mel_std + self.mel_mean) * frame_mask, lengths


# Known to the Auto classes, so AutoTokenizer and AutoModel read a saved model's folder.
AutoConfig.register(AlignedTTSConfig.model_type, AlignedTTSConfig, exist_ok=True)
AutoModel.register(AlignedTTSConfig, AlignedTTS, exist_ok=True)


class SpeechT5Synthesizer(SpeechT5ForTextToSpeech):
    """SpeechT5 answering like `AlignedTTS`: the loss with labels (teacher-forced), the generated
    spectrograms without (and in evaluation), so the shared code calls both the same way."""

    # Its loss is a mean per batch: the Trainer must not rescale it by token counts.
    accepts_loss_kwargs = False

    def forward(  # type: ignore[override]
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        speaker_embeddings: torch.Tensor | None = None,
        **unused: Any,
    ) -> SpeechOutput:
        loss = spectrogram = lengths = None
        if labels is not None:
            # The decoder sees whole groups of `reduction_factor` frames.
            usable = labels.size(1) - labels.size(1) % self.config.reduction_factor
            outputs = super().forward(
                input_ids=input_ids,
                attention_mask=attention_mask,
                labels=labels[:, :usable],
                speaker_embeddings=speaker_embeddings,
                return_dict=True,
            )
            loss = outputs.loss
        if labels is None or not self.training:
            spectrogram, lengths = self.generate_speech(
                input_ids,
                speaker_embeddings,
                attention_mask=attention_mask,
                return_output_lengths=True,
            )
            lengths = torch.as_tensor(lengths, device=spectrogram.device)
        return SpeechOutput(loss=loss, spectrogram=spectrogram, lengths=lengths)


def griffin_lim(log_mel: np.ndarray, mel_filters: np.ndarray, iterations: int = 32) -> np.ndarray:
    """A waveform whose log10-mel spectrogram (frames x bins, SpeechT5's features: 1024-point
    FFT, hop 256) is `log_mel`: the magnitudes through the filters' pseudo-inverse, the phase
    found by Griffin-Lim from a fixed start, so the same spectrogram always gives the same audio."""
    magnitude = np.maximum(
        (10.0 ** np.asarray(log_mel, dtype=np.float64)) @ np.linalg.pinv(mel_filters), 0
    )
    spectrum = torch.tensor(magnitude.T, dtype=torch.float32)
    window = torch.hann_window(1024)
    generator = torch.Generator().manual_seed(0)
    phase = torch.exp(2j * math.pi * torch.rand(spectrum.shape, generator=generator))
    for _ in range(iterations):
        wave = torch.istft(spectrum * phase, 1024, 256, 1024, window)
        estimate = torch.stft(wave, 1024, 256, 1024, window, return_complex=True)
        phase = estimate / estimate.abs().clamp_min(1e-8)
    return torch.istft(spectrum * phase, 1024, 256, 1024, window).numpy()
