"""What drift monitoring reads of a text input: its length, its words, and how much of it the
model's vocabulary knows (for the tasks whose input is text)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


def vocabulary(processor: Any) -> tuple[set[str], bool]:
    """The model's whole-word tokens, or (for a character vocabulary) its characters, and which."""
    tokenizer = getattr(processor, "tokenizer", processor)
    tokens = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    specials = re.compile(r"^(\[.*\]|<.*>|##.*)$")
    # Byte-level BPE and SentencePiece mark a word's start (Ġ, ▁): the word is what follows.
    words = {
        token.lower().lstrip("\u0120\u2581")
        for token in tokens
        if len(token) > 1 and not specials.match(token)
    }
    if words:
        return words, True
    return {token.lower() for token in tokens if len(token) == 1}, False


def input_features(processor: Any) -> Callable[[Any], dict[str, float]]:
    """A decoded text's characters, words and out-of-vocabulary rate (of words, or of characters
    for a character vocabulary)."""
    known, by_word = vocabulary(processor)

    def features(decoded: Any) -> dict[str, float]:
        if not isinstance(decoded, str):  # a conversation (text generation): what it says
            decoded = " ".join(message["content"] for message in decoded)
        words = re.findall(r"\w+", decoded.lower())
        units = words if by_word else [char for char in decoded.lower() if not char.isspace()]
        unknown = sum(unit not in known for unit in units) / len(units) if units and known else 0.0
        return {"chars": float(len(decoded)), "words": float(len(words)), "oov_rate": unknown}

    return features
