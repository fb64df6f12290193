"""Subword-encoded token shards for BERT and GPT-2: each text shard encoded once with the run's tokenizer
(WordPiece or byte-level BPE), memory-mapped.

Per source shard and tokenizer, in the same cache folder as `paddle_lm.data.shards` (key = the shard's
`shard_key` + the tokenizer kind and identity):

- ``KEY.{wp|bpe}-IDENT.npy``       uint32 ``[n_tokens]``: every non-blank line's subword ids followed by the
  sentence separator, ``[SEP]`` (BERT) or ``<|endoftext|>`` (GPT-2);
- ``KEY.{wp|bpe}-IDENT.meta.json`` counts; written last, so its presence means the shard is complete.

Encoding takes the shard's file lock, so several ranks starting together encode each shard once.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array

import numpy as np

from paddle_lm.data.shards import cache_keys, encode_shards
from paddle_lm.data.subword import GPT2_EOS, detect_kind, encode_lines, fast_tokenizer, tokenizer_identity
from paddle_lm.data.vocab import expand_glob, read_lines
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_save_npy, atomic_write_text

_CHUNK = 10000  # lines encoded per call
SEPARATOR = {"bert": "[SEP]", "gpt2": GPT2_EOS}  # appended after every sentence
TAG = {"bert": "wp", "gpt2": "bpe"}


def encode_subword_shard(path: str, prefix: str, fast, eos_id: int) -> dict:
    """Encode one text file into ``prefix.npy`` (ids, `eos_id` after every line); returns its meta."""
    ids = array("I")
    n_lines = 0

    def flush(lines: list[str]) -> None:
        for row in encode_lines(fast, lines):
            ids.extend(row)
            ids.append(eos_id)

    chunk: list[str] = []
    for _, line in read_lines(path):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        chunk.append(line)
        n_lines += 1
        if len(chunk) == _CHUNK:
            flush(chunk)
            chunk = []
    flush(chunk)
    if not ids:
        raise UserError(f"{path}: no sentences (the file holds only blank lines)")
    atomic_save_npy(prefix + ".npy", np.frombuffer(ids, dtype=np.uint32))
    meta = {"source": os.path.abspath(path), "n_tokens": len(ids), "n_sentences": n_lines}
    atomic_write_text(prefix + ".meta.json", json.dumps(meta))
    return meta


class SubwordCorpus:
    """The concatenated subword stream of all shards matching a glob, under one BERT or GPT-2 tokenizer.

    `gather(start, end)` returns ``(ids int64 [n], None)`` of stream positions ``start..end-1`` (the
    `TokenStream` interface the block datasets read).
    """

    def __init__(self, pattern: str, tokenizer_dir: str, *, what: str = "--train_data_path", cache_dir: str = "",
                 progress: bool = True, rank: int = 0, world: int = 1):
        paths = expand_glob(pattern, what)
        ident, kind = tokenizer_identity(tokenizer_dir), detect_kind(tokenizer_dir)
        keys, made = cache_keys(paths, cache_dir)
        prefixes = [f"{key}.{TAG[kind]}-{ident}" for key in keys]
        fast = []  # the tokenizer, loaded on first use

        def encode(i: int) -> None:
            if not fast:
                fast.append(fast_tokenizer(tokenizer_dir, kind))
            encode_subword_shard(paths[i], prefixes[i], fast[0], fast[0].token_to_id(SEPARATOR[kind]))

        jobs = [(p, key + ".lock", pre + ".meta.json") for p, key, pre in zip(paths, keys, prefixes)]
        metas = encode_shards(jobs, encode, rank, world, progress, made)
        self.shards = [np.load(pre + ".npy", mmap_mode="r", allow_pickle=False) for pre in prefixes]  # [n_i] uint32
        self.n_sentences = sum(meta["n_sentences"] for meta in metas)
        lengths = np.array([len(s) for s in self.shards], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])  # [n_shards + 1]
        self.n_tokens = int(self.offsets[-1])
        names = "|".join(os.path.basename(key) for key in keys)
        self.identity = hashlib.sha1(f"{names}|{ident}".encode()).hexdigest()[:16]

    def gather(self, start: int, end: int) -> tuple[np.ndarray, None]:
        start, end = max(start, 0), min(end, self.n_tokens)
        out = np.empty(max(end - start, 0), dtype=np.int64)
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        pos = start
        for i in range(max(first, 0), len(self.shards)):
            if pos >= end:
                break
            base = int(self.offsets[i])
            hi = min(end, base + len(self.shards[i]))
            out[pos - start: hi - start] = self.shards[i][pos - base: hi - base]
            pos = hi
        return out, None
