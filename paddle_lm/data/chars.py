"""ELMo character ids: every token becomes `max_chars` ids (bilm-tf's scheme, shifted so 0 is padding).

id 0 = padding of a missing token; 1..256 = UTF-8 byte + 1; then the markers below. The char-embedding
table of the model therefore has ``CHAR_VOCAB_SIZE`` = 262 rows.
"""

from __future__ import annotations

import numpy as np

from paddle_lm.data.vocab import BOS, EOS

BOW_CHAR, EOW_CHAR, PAD_CHAR, BOS_CHAR, EOS_CHAR = 257, 258, 259, 260, 261
CHAR_VOCAB_SIZE = 262


def char_table(tokens: list[str], max_chars: int = 50) -> np.ndarray:
    """`[len(tokens), max_chars]` uint16 char ids, one row per token: begin-of-word, the token's UTF-8 bytes (+1,
    truncated to ``max_chars - 2``), end-of-word, padding; ``<S>`` / ``</S>`` get their own marker. Built with
    array operations over all tokens at once (the shard cache makes one row per distinct string)."""
    n = len(tokens)
    raw = [t.encode("utf-8") for t in tokens]
    lengths = np.minimum(np.fromiter(map(len, raw), dtype=np.int64, count=n), max_chars - 2)  # [n]
    flat = np.frombuffer(b"".join(raw), dtype=np.uint8)  # every token's bytes, back to back
    starts = np.zeros(n, dtype=np.int64)  # [n] offset of each token's first byte in `flat`
    np.cumsum(np.fromiter(map(len, raw), dtype=np.int64, count=n)[:-1], out=starts[1:])
    table = np.full((n, max_chars), PAD_CHAR, dtype=np.uint16)
    table[:, 0] = BOW_CHAR
    rows = np.repeat(np.arange(n), lengths)  # [sum(lengths)] the token of each kept byte
    cols = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # its position in the token
    table[rows, cols + 1] = flat[starts[rows] + cols].astype(np.uint16) + 1
    table[np.arange(n), lengths + 1] = EOW_CHAR
    for marker, token in ((BOS_CHAR, BOS), (EOS_CHAR, EOS)):  # [BOW, marker, EOW, pad...]
        special = [i for i, t in enumerate(tokens) if t == token]
        table[special, 1:] = PAD_CHAR
        table[special, 1], table[special, 2] = marker, EOW_CHAR
    return table


def token_char_ids(token: str, max_chars: int = 50) -> np.ndarray:
    """`[max_chars]` int32 char ids of one token (a row of `char_table`)."""
    return char_table([token], max_chars)[0].astype(np.int32)


def sentences_char_ids(sentences: list[list[str]], max_chars: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded char ids `[B, T, max_chars]` (int32, 0 = padding) and mask `[B, T]` for tokenized sentences."""
    longest = max((len(s) for s in sentences), default=0)
    ids = np.zeros((len(sentences), longest, max_chars), dtype=np.int32)
    mask = np.zeros((len(sentences), longest), dtype=np.float32)
    for i, sent in enumerate(sentences):
        mask[i, : len(sent)] = 1.0
    table = char_table([tok for sent in sentences for tok in sent], max_chars)  # [n_tokens, C]
    ids[mask > 0] = table  # row-major order of the mask = the sentences' tokens in order
    return ids, mask


def distinct_rows(char_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct tokens of a batch: ``char_ids [..., C]`` -> (``unique [U, C]`` in the same dtype, ``inverse
    [N]`` int64 with ``char_ids.reshape(-1, C) == unique[inverse]``), N = the product of the leading axes.

    What lets the char-CNN run once per distinct token of a batch and gather (an exact reformulation: each
    token's encoding depends on its characters alone). Rows are compared as raw bytes, so this is one sort of
    N keys, not a lexicographic sort over C columns.
    """
    c = char_ids.shape[-1]
    flat = np.ascontiguousarray(char_ids.reshape(-1, c))  # [N, C]
    keys = flat.view(np.dtype((np.void, flat.dtype.itemsize * c))).reshape(-1)  # [N] one opaque key per row
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return flat[first], inverse.reshape(-1).astype(np.int64)
