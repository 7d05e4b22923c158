"""Frozen dataclass configs shared by every layer, serialised to JSON in checkpoints and indexes."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

Truncation = Literal["rand_trunc", "fusion"]
MelScale = Literal["slaney", "htk"]


# Sanity limits of `AudioConfig` (inclusive): far beyond any real CLAP front end (LAION: 48 kHz,
# 10 s, n_fft 1024, hop 480, 64 mels), far below what would exhaust memory per window.
AUDIO_LIMITS = {
    "sample_rate": (1_000, 768_000),
    "window_s": (0.01, 60.0),
    "n_fft": (16, 65_536),
    "hop_length": (1, 65_536),
    "n_mels": (1, 1_024),
    "f_min": (0.0, 384_000.0),
    "f_max": (1.0, 384_000.0),
}
MAX_WINDOW_FEATURES = 4_000_000  # frames x mel bins of one window (16 MB of float32)


@dataclass(frozen=True)
class AudioConfig:
    """The audio front end a model expects: waveform rate, clip window and log-mel parameters.

    Defaults are the LAION-CLAP HTSAT checkpoints' (`preprocessor_config.json`):
    48 kHz, 10 s windows, 1024-point FFT, hop 480 (1001 frames), 64 mel bins from 50 Hz to 14 kHz.
    `rand_trunc` models use a slaney-normalised slaney-scale filterbank, `fusion` models an
    un-normalised HTK filterbank, exactly as transformers' `ClapFeatureExtractor`.

    `filterbank_rate`: the sample rate the mel filters are designed for; 0 (every model but
    one) means `sample_rate`. MS-CLAP 2023 decodes and takes its STFT at 44.1 kHz but builds its
    filters for 32 kHz (its HTSAT wrapper reads the AudioSet config, not its own yml), so its
    bin k is treated as k * 32000 / n_fft Hz; reproducing that needs the two rates apart.
    """

    sample_rate: int = 48_000
    window_s: float = 10.0
    n_fft: int = 1024
    hop_length: int = 480
    n_mels: int = 64
    f_min: float = 50.0
    f_max: float = 14_000.0
    truncation: Truncation = "rand_trunc"
    padding: Literal["repeatpad", "repeat", "pad"] = "repeatpad"
    filterbank_rate: int = 0

    @property
    def mel_rate(self) -> int:
        """The rate the mel filters assume (see `filterbank_rate`)."""
        return self.filterbank_rate or self.sample_rate

    def __post_init__(self) -> None:
        """Refuse sizes no CLAP front end uses: a model folder's config decides how much is
        allocated per clip (a `max_length_s` of 100000 repeat-pads a 3 s clip to 4.8 G
        samples), so a damaged or hostile one must fail at load, in one sentence."""
        for name, (lo, hi) in AUDIO_LIMITS.items():
            value = getattr(self, name)
            if not lo <= value <= hi:  # also false for NaN
                from clapsearch.errors import ConfigError

                raise ConfigError(
                    f"audio {name} = {value} is outside the {lo:g}..{hi:g} clapsearch accepts: "
                    f"a damaged config, or not a CLAP model's"
                )
        lo, hi = AUDIO_LIMITS["sample_rate"]
        if self.filterbank_rate and not lo <= self.filterbank_rate <= hi:
            from clapsearch.errors import ConfigError

            raise ConfigError(
                f"audio filterbank_rate = {self.filterbank_rate} is neither 0 (the sample rate) "
                f"nor within {lo:g}..{hi:g}: a damaged config, or not a CLAP model's"
            )
        if self.window_frames * self.n_mels > MAX_WINDOW_FEATURES:
            from clapsearch.errors import ConfigError

            raise ConfigError(
                f"audio windows of {self.window_frames} frames x {self.n_mels} mel bins are "
                f"over the {MAX_WINDOW_FEATURES:,} values clapsearch accepts: a damaged "
                f"config, or not a CLAP model's"
            )

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def window_frames(self) -> int:
        """Frames of one window's log-mel (centred STFT: one more than samples // hop)."""
        return self.window_samples // self.hop_length + 1

    @property
    def mel_scale(self) -> MelScale:
        return "htk" if self.truncation == "fusion" else "slaney"

    @property
    def mel_norm(self) -> str | None:
        return None if self.truncation == "fusion" else "slaney"


def to_dict(config: Any) -> dict:
    """Nested dataclass -> plain dict (JSON-ready)."""
    return dataclasses.asdict(config)


def from_dict(cls: type, data: dict) -> Any:
    """Plain dict -> (nested) frozen dataclass; unknown keys are an error, missing ones default."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        sub = hints[name]
        if dataclasses.is_dataclass(sub) and isinstance(value, dict):
            value = from_dict(sub, value)
        elif isinstance(value, list):
            value = tuple(value)  # frozen configs hold tuples; JSON gives lists
        kwargs[name] = value
    return cls(**kwargs)


__all__ = ["AudioConfig", "MelScale", "Truncation", "from_dict", "to_dict"]
