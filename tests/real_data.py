"""Small real datasets for tests, made from material no one on this project wrote.

The generated projects are tested on fixtures the template writes itself; this module builds
data from other programs instead -- speech from espeak-ng, letters drawn with the machine's
TrueType fonts, text from Debian's package descriptions -- in the layouts a generated project
documents, with the variety real folders have (mixed formats, sample rates, channel counts,
image modes, hidden junk files, quoted CSV fields). Every function is deterministic: the same
arguments give the same files. It needs the Debian programs ``espeak-ng`` and ``apt-cache``
plus numpy, scipy, soundfile and pillow.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw, ImageFont
from scipy.signal import resample_poly

# English voices and variants that ship with Debian's espeak-ng-data (the mbrola ones it also
# lists need the separate mbrola program and voice packages, so they are left out).
VOICES = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en+m3",
    "en+f2",
    "en-us+f4",
    "en+klatt",
    "en-us-nyc+m7",
    "en+f5",
    "en-gb-x-gbclan+croak",
)
# Plain espeak-ng WAV for about 40% of the clips; the rest re-encoded.
AUDIO_FORMATS = ("wav", "flac", "ogg", "wav8k", "wav48k", "wav24", "stereo")
AUDIO_WEIGHTS = (0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)
IMAGE_FORMATS = ("png-L", "png-RGB", "png-RGBA", "png-P", "jpg", "gif", "webp")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
JUNK = b"\x00\x00\x00\x01Bud1\x00\x00\x10\x00junk"


def _speak(text: str, dest_stem: Path, rng: np.random.Generator, one_voice: bool = False) -> Path:
    """Speak ``text`` with a drawn voice/speed/pitch (``one_voice``: always espeak-ng's default
    English voice, speed and pitch); write it in a drawn format; return path."""
    voice = VOICES[rng.integers(len(VOICES))]
    speed, pitch = int(rng.integers(130, 201)), int(rng.integers(30, 71))
    if one_voice:
        voice, speed, pitch = "en", 160, 50
    kind = AUDIO_FORMATS[rng.choice(len(AUDIO_FORMATS), p=AUDIO_WEIGHTS)]
    lead = float(rng.uniform(0.0, 0.2))
    raw = dest_stem.with_suffix(".espeak.wav")
    cmd = ["espeak-ng", "-w", str(raw), "-v", voice, "-s", str(speed), "-p", str(pitch), text]
    subprocess.run(cmd, check=True, capture_output=True)
    audio, rate = sf.read(raw, dtype="float64")
    raw.unlink()
    audio = np.concatenate([np.zeros(int(lead * rate)), audio])
    if kind in ("wav8k", "wav48k"):
        target = 8000 if kind == "wav8k" else 48000
        gcd = np.gcd(target, rate)
        audio, rate = np.clip(resample_poly(audio, target // gcd, rate // gcd), -1, 1), target
    if kind == "stereo":
        audio = np.stack([audio, audio * 0.8], axis=1)
    ext = kind if kind in ("flac", "ogg") else "wav"
    subtype = {"ogg": "VORBIS", "flac": "PCM_16", "wav24": "PCM_24"}.get(kind, "PCM_16")
    path = dest_stem.with_suffix(f".{ext}")
    sf.write(path, audio, rate, subtype=subtype, format="OGG" if ext == "ogg" else None)
    if ext == "ogg":
        _fix_ogg_serial(path)
    return path


def _fix_ogg_serial(path: Path, serial: int = 0x5EED) -> None:
    """libsndfile gives each Ogg stream a random serial number: fix it (and each page's CRC)."""
    data, pos = bytearray(path.read_bytes()), 0
    while pos < len(data):
        segments = data[pos + 26]
        end = pos + 27 + segments + sum(data[pos + 27 : pos + 27 + segments])
        data[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        data[pos + 22 : pos + 26] = bytes(4)
        crc = 0  # Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, over the whole page
        for byte in data[pos:end]:
            crc ^= byte << 24
            for _ in range(8):
                crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
        data[pos + 22 : pos + 26] = crc.to_bytes(4, "little")
        pos = end
    path.write_bytes(data)


def spoken_words(
    dest: Path,
    words: Sequence[str] = ("yes", "no", "up", "down", "left", "right"),
    per_word: int = 50,
    seed: int = 0,
) -> Path:
    """Audio classification: ``dest/<word>/<index>.<ext>`` plus hidden ``.DS_Store`` junk."""
    rng = np.random.default_rng(seed)
    for word in words:
        (dest / word).mkdir(parents=True, exist_ok=True)
        for index in range(per_word):
            _speak(word, dest / word / f"{index:03d}", rng)
    (dest / ".DS_Store").write_bytes(JUNK)
    (dest / words[0] / ".DS_Store").write_bytes(JUNK)
    return dest


def spoken_digits(
    dest: Path, utterances: int = 200, seed: int = 0, one_voice: bool = False
) -> Path:
    """Speech recognition (many voices) and text to speech (``one_voice``): ``dest/<name>.<ext>``
    plus ``metadata.csv`` (file_name,transcription)."""
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(utterances):
        words = [DIGITS[d] for d in rng.integers(10, size=int(rng.integers(2, 4)))]
        text = " ".join(words)
        path = _speak(text, dest / f"utt{index:04d}", rng, one_voice)
        rows.append((path.name, text))
    with (dest / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("file_name", "transcription"))
        writer.writerows(rows)
    return dest


def _fonts() -> list[Path]:
    roots = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
    fonts = sorted(p for root in roots if root.is_dir() for p in root.rglob("*.ttf"))
    if not fonts:
        raise RuntimeError("no TrueType fonts (*.ttf) under /usr/share/fonts")
    return fonts


def _colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A foreground and background RGB colour whose luminances differ by at least 40%."""
    while True:
        fg, bg = (tuple(int(v) for v in rng.integers(256, size=3)) for _ in range(2))
        luma = [0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] for c in (fg, bg)]
        if abs(luma[0] - luma[1]) >= 0.4 * 255:
            return fg, bg


def _glyph(letter: str, size: int, fonts: list[Path], rng: np.random.Generator) -> Image.Image:
    font_path = fonts[rng.integers(len(fonts))]
    font = ImageFont.truetype(str(font_path), int(size * rng.uniform(0.45, 0.75)))
    fg, bg = _colours(rng)
    x, y = (size / 2 + rng.uniform(-0.12, 0.12) * size for _ in range(2))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).text((x, y), letter, fill=255, font=font, anchor="mm")
    mask = mask.rotate(float(rng.uniform(-20, 20)), resample=Image.Resampling.BICUBIC)
    return Image.composite(Image.new("RGB", mask.size, fg), Image.new("RGB", mask.size, bg), mask)


def glyph_images(
    dest: Path, letters: str = "ABCDEFGH", per_class: int = 100, size: int = 40, seed: int = 0
) -> Path:
    """Image classification: ``dest/<letter>/<index>.<ext>`` in mixed formats and modes."""
    rng = np.random.default_rng(seed)
    fonts = _fonts()
    for letter in letters:
        (dest / letter).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = _glyph(letter, size, fonts, rng)
            kind = IMAGE_FORMATS[rng.integers(len(IMAGE_FORMATS))]
            stem = dest / letter / f"{index:03d}"
            if kind.startswith("png-"):
                mode = kind[4:]
                if mode == "P":
                    image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
                image.convert(mode).save(stem.with_suffix(".png"))
            elif kind in ("jpg", "webp"):
                image.save(stem.with_suffix(f".{kind}"), quality=int(rng.integers(70, 96)))
            else:
                image.save(stem.with_suffix(".gif"))
    (dest / ".DS_Store").write_bytes(JUNK)
    (dest / letters[0] / ".DS_Store").write_bytes(JUNK)
    return dest


def _package_rows(
    sections: Sequence[str], per_section: int, seed: int, one_line: bool = False
) -> list[tuple[str, str]]:
    """(text, section) rows sampled from ``apt-cache dumpavail``, sorted by section then text:
    the one-line description and the first sentence of the long one, or with `one_line` the
    one-line description alone."""
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], check=True, capture_output=True, text=True
    ).stdout
    labels: dict[str, set[str]] = {}
    for record in dump.split("\n\n"):
        fields = dict(re.findall(r"^(Section|Description): (.*)$", record, flags=re.M))
        section = fields.get("Section", "").rsplit("/", 1)[-1]
        if section not in sections or "Description" not in fields:
            continue
        long = re.search(r"^Description: .*\n((?: .*\n?)*)", record, flags=re.M)
        paragraph = re.split(r"^ \.$", long.group(1) if long else "", flags=re.M)[0]
        first = re.split(r"(?<=[.!?])\s", " ".join(paragraph.split()), maxsplit=1)[0]
        text = " ".join(f"{fields['Description']} {'' if one_line else first}".split())
        labels.setdefault(text, set()).add(section)
    rng = np.random.default_rng(seed)
    rows = []
    for section in sections:
        # Identical texts are kept once; texts found under two sections are dropped.
        texts = sorted(t for t, found in labels.items() if found == {section})
        if len(texts) < per_section:
            raise ValueError(f"section {section!r} has {len(texts)} texts, {per_section} wanted")
        picked = rng.choice(len(texts), size=per_section, replace=False)
        rows += [(texts[i], section) for i in sorted(picked)]
    return rows


def package_descriptions(
    dest: Path,
    sections: Sequence[str] = ("games", "sound", "science", "mail"),
    per_section: int = 150,
    seed: int = 0,
) -> Path:
    """Text classification: rows of text,label (Debian sections) in ``dest``, a CSV file or, for
    a ``.jsonl`` name, JSON Lines ({"text": ..., "label": ...})."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    rows = _package_rows(sections, per_section, seed)
    if dest.suffix == ".jsonl":
        lines = (json.dumps({"text": t, "label": s}, ensure_ascii=False) + "\n" for t, s in rows)
        dest.write_text("".join(lines), encoding="utf-8")
        return dest
    with dest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("text", "label"))
        writer.writerows(rows)
    return dest


def unreadable_files(dest: Path) -> dict[str, Path]:
    """Bad inputs for the tests of a project's ``prepare``: empty, mislabelled, truncated."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = {name: dest / name for name in ("empty.wav", "notes.wav", "truncated.wav")}
    paths |= {name: dest / name for name in ("empty.png", "text.png", "truncated.png")}
    paths["empty.wav"].write_bytes(b"")
    paths["notes.wav"].write_text("meeting notes, not audio\n", encoding="utf-8")
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    sf.write(paths["truncated.wav"], tone, 16000, subtype="PCM_16")
    with paths["truncated.wav"].open("r+b") as handle:
        handle.truncate(300)
    paths["empty.png"].write_bytes(b"")
    paths["text.png"].write_text("not a picture\n", encoding="utf-8")
    png = io.BytesIO()
    Image.linear_gradient("L").resize((40, 40)).save(png, format="PNG")
    paths["truncated.png"].write_bytes(png.getvalue()[:60])
    return paths


SECTIONS = ("games", "sound", "science", "mail")


def package_sections(dest: Path, per_section: int = 75, seed: int = 0) -> Path:
    """Text generation: JSON Lines in TRL's conventions asking which Debian section a package
    belongs in from its one-line description (answer: one word); even rows as `messages`, odd
    rows as conversational `prompt`/`completion`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    system = {"role": "system", "content": f"Answer with one word: {', '.join(SECTIONS)}."}
    lines = []
    pairs = _package_rows(SECTIONS, per_section, seed, one_line=True)
    order = np.random.default_rng(seed).permutation(len(pairs))
    for index, position in enumerate(order):
        description, section = pairs[position]
        user = {"role": "user", "content": f"Debian section of: {description}"}
        answer = {"role": "assistant", "content": section}
        if index % 2:
            row = {"prompt": [system, user], "completion": [answer]}
        else:
            row = {"messages": [system, user, answer]}
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    dest.write_text("".join(lines), encoding="utf-8")
    return dest
