"""Encoded token shards: each tokenized text shard is encoded once into compact arrays on disk and memory-mapped.

Per source shard, in the cache folder (key = hash of path, size, mtime and format version):

- ``KEY.ids.npy``      uint32 ``[n_tokens]``: the shard as one stream ``<S> w1 .. wn </S> <S> ...``, as ids of
  the shard's own token *types* (every distinct string, so out-of-vocabulary words keep their characters);
- ``KEY.types.txt``    the type strings, one per line (id = line number);
- ``KEY.sents.npy``    int64 ``[n_sentences]``: stream offset of each sentence's ``<S>``;
- ``KEY.chars50.npy``  uint16 ``[n_types, 50]``: ELMo char ids of each type (one file per char length);
- ``KEY.map-VOCAB.npy`` int32 ``[n_types]``: word id of each type under one vocabulary (made on first use);
- ``KEY.meta.json``    counts; written last, so its presence means the shard is complete.

Encoding takes a file lock per shard, so several ranks starting together encode each shard once. Training
reads windows through memory maps: its RAM does not grow with the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array

import numpy as np
from tqdm import tqdm

from paddle_lm.data.chars import char_table
from paddle_lm.data.vocab import BOS, EOS, Vocab, expand_glob, read_lines
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_save_npy, atomic_write_text, file_lock

FORMAT_VERSION = 1


def default_cache_dir(shard_path: str) -> str:
    """`.paddle_lm_cache` beside the shards, or ~/.cache/paddle_lm when that folder is not writable."""
    here = os.path.join(os.path.dirname(os.path.abspath(shard_path)), ".paddle_lm_cache")
    try:
        os.makedirs(here, exist_ok=True)
        if os.access(here, os.W_OK):
            return here
    except OSError:
        pass
    return os.path.join(os.path.expanduser("~"), ".cache", "paddle_lm")


def shard_key(path: str) -> str:
    st = os.stat(path)
    raw = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|v{FORMAT_VERSION}"
    return f"{os.path.basename(path)}.{hashlib.sha1(raw.encode()).hexdigest()[:12]}"


def encode_shard(path: str, prefix: str) -> dict:
    """Encode one tokenized text file into ``prefix.*`` arrays (see module doc); returns its meta."""
    types: dict[str, int] = {BOS: 0, EOS: 1}
    ids = array("I")
    starts = array("q")
    for _, line in read_lines(path):
        words = line.split()
        if not words:
            continue
        starts.append(len(ids))
        ids.append(0)
        for w in words:
            t = types.get(w)
            if t is None:
                t = types[w] = len(types)
            ids.append(t)
        ids.append(1)
    if not ids:
        raise UserError(f"{path}: no sentences (the file holds only blank lines)")
    atomic_save_npy(prefix + ".ids.npy", np.frombuffer(ids, dtype=np.uint32))
    atomic_save_npy(prefix + ".sents.npy", np.frombuffer(starts, dtype=np.int64))
    atomic_write_text(prefix + ".types.txt", "\n".join(types) + "\n")
    meta = {"source": os.path.abspath(path), "n_tokens": len(ids), "n_sentences": len(starts),
            "n_types": len(types), "format": FORMAT_VERSION}
    atomic_write_text(prefix + ".meta.json", json.dumps(meta))
    return meta


class Shard:
    """One encoded shard, memory-mapped; word ids and char ids are looked up per window."""

    def __init__(self, prefix: str, meta: dict):
        self.prefix, self.meta = prefix, meta
        self.n_tokens = meta["n_tokens"]
        self.ids = np.load(prefix + ".ids.npy", mmap_mode="r", allow_pickle=False)  # [n_tokens] uint32 type ids
        self.word_of_type: np.ndarray | None = None  # [n_types] int32
        self.chars_of_type: np.ndarray | None = None  # [n_types, C] uint16

    def types(self) -> list[str]:
        with open(self.prefix + ".types.txt", encoding="utf-8") as f:
            return f.read().split("\n")[: self.meta["n_types"]]

    def bind(self, vocab: Vocab, max_chars: int | None) -> None:
        """Load (building once if needed) the type->word map for `vocab` and the char table."""
        map_path = f"{self.prefix}.map-{vocab.identity}.npy"
        chars_path = f"{self.prefix}.chars{max_chars}.npy"
        need_map, need_chars = not os.path.exists(map_path), max_chars and not os.path.exists(chars_path)
        if need_map or need_chars:
            with file_lock(self.prefix + ".lock"):
                types = self.types()
                if not os.path.exists(map_path):
                    atomic_save_npy(map_path, np.array([vocab.id(t) for t in types], dtype=np.int32))
                if max_chars and not os.path.exists(chars_path):
                    atomic_save_npy(chars_path, char_table(types, max_chars))
        self.word_of_type = np.load(map_path, mmap_mode="r", allow_pickle=False)
        self.chars_of_type = np.load(chars_path, mmap_mode="r", allow_pickle=False) if max_chars else None


class EncodedCorpus:
    """The concatenated token stream of all shards matching a glob, under one vocabulary.

    `gather(start, end)` returns word ids ``[n]`` (int64) and, when `max_chars` is set, char ids
    ``[n, max_chars]`` (int32) of stream positions ``start..end-1``.
    """

    def __init__(self, pattern: str, vocab: Vocab, *, what: str = "--train_data_path", cache_dir: str = "",
                 max_chars: int | None = 50, progress: bool = True):
        paths = expand_glob(pattern, what)
        self.vocab, self.max_chars = vocab, max_chars
        self.shards: list[Shard] = []
        todo = []
        for p in paths:
            cdir = cache_dir or default_cache_dir(p)
            os.makedirs(cdir, exist_ok=True)
            prefix = os.path.join(cdir, shard_key(p))
            todo.append((p, prefix))
        total_bytes = sum(os.path.getsize(p) for p, pre in todo if not os.path.exists(pre + ".meta.json"))
        with tqdm(total=total_bytes, unit="B", unit_scale=True, desc="encoding shards",
                  disable=not progress or total_bytes == 0) as bar:
            for p, prefix in todo:
                with file_lock(prefix + ".lock"):
                    if os.path.exists(prefix + ".meta.json"):
                        with open(prefix + ".meta.json") as f:
                            meta = json.load(f)
                    else:
                        meta = encode_shard(p, prefix)
                        bar.update(os.path.getsize(p))
                shard = Shard(prefix, meta)
                shard.bind(vocab, max_chars)
                self.shards.append(shard)
        lengths = np.array([s.n_tokens for s in self.shards], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])  # [n_shards + 1]
        self.n_tokens = int(self.offsets[-1])
        self.n_sentences = sum(s.meta["n_sentences"] for s in self.shards)
        self.identity = hashlib.sha1("|".join(os.path.basename(s.prefix) for s in self.shards).encode()).hexdigest()[:16]

    def gather(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray | None]:
        start, end = max(start, 0), min(end, self.n_tokens)
        words = np.empty(max(end - start, 0), dtype=np.int64)
        chars = np.empty((len(words), self.max_chars), dtype=np.int32) if self.max_chars else None
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        pos = start
        for i in range(max(first, 0), len(self.shards)):
            if pos >= end:
                break
            shard, base = self.shards[i], int(self.offsets[i])
            hi = min(end, base + shard.n_tokens)
            type_ids = np.asarray(shard.ids[pos - base: hi - base], dtype=np.int64)  # [m]
            words[pos - start: hi - start] = shard.word_of_type[type_ids]
            if chars is not None:
                chars[pos - start: hi - start] = shard.chars_of_type[type_ids]  # [m, C]
            pos = hi
        return words, chars

    def unk_rate(self) -> float:
        """Fraction of tokens that map to <UNK> (reads the whole stream; used for reporting)."""
        unk = sum(int(np.count_nonzero(s.word_of_type[np.asarray(s.ids)] == self.vocab.unk)) for s in self.shards)
        return unk / max(self.n_tokens, 1)
