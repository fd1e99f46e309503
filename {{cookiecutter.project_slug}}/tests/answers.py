"""Comparing two answers of the model for the same input, computed in different ways (alone or in
a batch, in memory or through MLflow): equal but for float noise."""

import base64
import io

# A padded batch sums in another order; the answers may differ this much and no more.
SCORE_TOLERANCE = 1e-5
# Synthesized audio: -60 dB of full scale, inaudible. Griffin-Lim's phase search turns float noise
# of 1e-6 in a batched spectrogram into up to 1e-4 in the samples; a wrong answer differs by 0.1.
SAMPLE_TOLERANCE = 1e-3


def _samples(encoded: str):
    import soundfile

    samples, _ = soundfile.read(io.BytesIO(base64.b64decode(encoded)), dtype="float32")
    return samples


def same_prediction(one: dict, other: dict) -> bool:
    if one.keys() != other.keys():
        return False
    for key, value in one.items():
        if key == "audio_wav_base64":
            a, b = _samples(value), _samples(other[key])
            if a.shape != b.shape or abs(a - b).max(initial=0.0) > SAMPLE_TOLERANCE:
                return False
        elif isinstance(value, float):
            if abs(value - other[key]) > SCORE_TOLERANCE:
                return False
        elif value != other[key]:
            return False
    return True
