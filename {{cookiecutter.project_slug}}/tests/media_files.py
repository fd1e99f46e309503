"""Real files of every media type the server's schema may name, for Schemathesis to upload
(it would send random bytes, which no decoder reads and the server rightly refuses). Importing
this module registers them: tests/test_fuzz.py does, and so does Schemathesis's command line with
`SCHEMATHESIS_HOOKS=tests.media_files st run http://127.0.0.1:8000/openapi.json --checks all`."""

import io

import numpy as np
import schemathesis
from hypothesis import strategies as st

SEEDS = st.integers(0, 2**32 - 1)


def image_files(format: str) -> st.SearchStrategy[bytes]:
    """Real images of random pixels and sizes, encoded by Pillow."""

    def encode(seed: int, width: int, height: int) -> bytes:
        from PIL import Image

        pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=format)
        return buffer.getvalue()

    return st.builds(encode, SEEDS, st.integers(1, 64), st.integers(1, 64))


def audio_files(format: str) -> st.SearchStrategy[bytes]:
    """Real recordings of random noise, from one sample to a second, at common rates, encoded
    by libsndfile."""

    def encode(seed: int, rate: int, seconds: float, channels: int) -> bytes:
        import soundfile

        frames = max(1, int(rate * seconds))
        noise = np.random.default_rng(seed).uniform(-1, 1, (frames, channels)).astype(np.float32)
        buffer = io.BytesIO()
        soundfile.write(buffer, noise, rate, format=format)
        return buffer.getvalue()

    rates = st.sampled_from([8_000, 16_000, 22_050, 44_100])
    return st.builds(encode, SEEDS, rates, st.floats(0, 1), st.integers(1, 2))


FILES = {
    "image/png": image_files("PNG"),
    "image/jpeg": image_files("JPEG"),
    "image/gif": image_files("GIF"),
    "image/webp": image_files("WEBP"),
    "audio/wav": audio_files("WAV"),
    "audio/flac": audio_files("FLAC"),
    "audio/ogg": audio_files("OGG"),
}
for media_type, files in FILES.items():
    schemathesis.openapi.media_type(media_type, files)
