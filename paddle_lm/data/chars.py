"""ELMo character ids: every token becomes `max_chars` ids (bilm-tf's scheme, shifted so 0 is padding).

id 0 = padding of a missing token; 1..256 = UTF-8 byte + 1; then the markers below. The char-embedding
table of the model therefore has ``CHAR_VOCAB_SIZE`` = 262 rows.
"""

from __future__ import annotations

import numpy as np

from paddle_lm.data.vocab import BOS, EOS

BOW_CHAR, EOW_CHAR, PAD_CHAR, BOS_CHAR, EOS_CHAR = 257, 258, 259, 260, 261
CHAR_VOCAB_SIZE = 262


def token_char_ids(token: str, max_chars: int = 50) -> np.ndarray:
    """`[max_chars]` int32: begin-of-word, the token's UTF-8 bytes (+1, truncated), end-of-word, padding."""
    out = np.full(max_chars, PAD_CHAR, dtype=np.int32)
    if token == BOS:
        body = [BOS_CHAR]
    elif token == EOS:
        body = [EOS_CHAR]
    else:
        body = [b + 1 for b in token.encode("utf-8")[: max_chars - 2]]
    ids = [BOW_CHAR, *body, EOW_CHAR]
    out[: len(ids)] = ids
    return out


def char_table(tokens: list[str], max_chars: int = 50) -> np.ndarray:
    """`[len(tokens), max_chars]` uint16 table of char ids, one row per token."""
    table = np.empty((len(tokens), max_chars), dtype=np.uint16)
    for i, tok in enumerate(tokens):
        table[i] = token_char_ids(tok, max_chars)
    return table


def sentences_char_ids(sentences: list[list[str]], max_chars: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded char ids `[B, T, max_chars]` (int32, 0 = padding) and mask `[B, T]` for tokenized sentences."""
    longest = max((len(s) for s in sentences), default=0)
    ids = np.zeros((len(sentences), longest, max_chars), dtype=np.int32)
    mask = np.zeros((len(sentences), longest), dtype=np.float32)
    for i, sent in enumerate(sentences):
        for j, tok in enumerate(sent):
            ids[i, j] = token_char_ids(tok, max_chars)
        mask[i, : len(sent)] = 1.0
    return ids, mask
