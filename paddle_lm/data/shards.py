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
import itertools
import json
import os

import numpy as np
from tqdm import tqdm

from paddle_lm.data.chars import char_table
from paddle_lm.data.vocab import BOS, EOS, Vocab, expand_glob
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_save_npy, atomic_write_text, make_dirs, open_input, remove_made
from paddle_lm.locks import file_lock

FORMAT_VERSION = 1


def cache_keys(paths: list[str], cache_dir: str = "") -> tuple[list[str], list[str]]:
    """The cache prefix (folder + `shard_key`) of each shard, and the cache folders this call created (which
    `encode_shards` removes again, when empty, if the encoding is refused). The folder is `cache_dir`, else a
    `.paddle_lm_cache` beside the shard, or ~/.cache/paddle_lm when that one is not writable."""
    keys, made = [], []
    for p in paths:
        folder = cache_dir
        if not folder:
            folder = os.path.join(os.path.dirname(os.path.abspath(p)), ".paddle_lm_cache")
            try:
                made += make_dirs(folder)
            except OSError:
                pass
            if not os.access(folder, os.W_OK):
                folder = os.path.join(os.path.expanduser("~"), ".cache", "paddle_lm")
        made += make_dirs(folder)
        keys.append(os.path.join(folder, shard_key(p)))
    return keys, made


def shard_key(path: str) -> str:
    st = os.stat(path)
    raw = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|v{FORMAT_VERSION}"
    return f"{os.path.basename(path)}.{hashlib.sha1(raw.encode()).hexdigest()[:12]}"


CHUNK_BYTES = 8 << 20  # text decoded and encoded at a time: bounds the encoder's memory per shard


def _text_chunks(path: str):
    """(first line number, decoded text) of consecutive pieces of a UTF-8 file, each ending at a newline;
    undecodable bytes raise a UserError naming the file and line (as `read_lines`)."""
    line_no, rest = 1, b""
    with open_input(path) as f:
        while True:
            block = f.read(CHUNK_BYTES)
            data = rest + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            piece, rest = data[:cut], data[cut:]
            if piece:
                try:
                    text = piece.decode("utf-8")
                except UnicodeDecodeError as e:
                    bad_line = line_no + piece.count(b"\n", 0, e.start)
                    column = e.start - (piece.rfind(b"\n", 0, e.start) + 1)
                    raise UserError(f"{path}:{bad_line}: not valid UTF-8 ({e.reason} at byte {column}); "
                                    f"re-encode the file as UTF-8") from None
                yield line_no, text
                line_no += piece.count(b"\n")
            if not block:
                return


def _encode_text(text: str, types: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Stream ids ``<S> w.. </S> <S> ..`` of the non-blank lines of `text` and each sentence's ``<S>`` offset,
    adding unseen strings to `types` (first occurrence order). Splitting and lookups run in C (str.split, map)."""
    sentences = [words for words in map(str.split, text.split("\n")) if words]
    lengths = np.fromiter(map(len, sentences), dtype=np.int64, count=len(sentences))  # [S]
    flat = list(itertools.chain.from_iterable(sentences))
    for w in dict.fromkeys(flat):  # each distinct string of the piece once
        if w not in types:
            types[w] = len(types)
    starts = np.zeros(len(sentences), dtype=np.int64)  # [S] offset of each <S>
    np.cumsum(lengths[:-1] + 2, out=starts[1:])
    ids = np.empty(len(flat) + 2 * len(sentences), dtype=np.uint32)  # [n]
    is_word = np.ones(len(ids), dtype=bool)
    is_word[starts] = is_word[starts + lengths + 1] = False
    ids[starts], ids[starts + lengths + 1] = types[BOS], types[EOS]
    ids[is_word] = np.fromiter(map(types.__getitem__, flat), dtype=np.uint32, count=len(flat))
    return ids, starts


def encode_shard(path: str, prefix: str) -> dict:
    """Encode one tokenized text file into ``prefix.*`` arrays (see module doc); returns its meta."""
    types: dict[str, int] = {BOS: 0, EOS: 1}
    ids, starts, n = [], [], 0
    for _, text in _text_chunks(path):
        piece_ids, piece_starts = _encode_text(text, types)
        ids.append(piece_ids)
        starts.append(piece_starts + n)
        n += len(piece_ids)
    if not n:
        raise UserError(f"{path}: no sentences (the file holds only blank lines)")
    atomic_save_npy(prefix + ".ids.npy", np.concatenate(ids))
    atomic_save_npy(prefix + ".sents.npy", np.concatenate(starts))
    atomic_write_text(prefix + ".types.txt", "\n".join(types) + "\n")
    meta = {"source": os.path.abspath(path), "n_tokens": n, "n_sentences": int(sum(len(s) for s in starts)),
            "n_types": len(types), "format": FORMAT_VERSION}
    atomic_write_text(prefix + ".meta.json", json.dumps(meta))
    return meta


def rank_order(n: int, rank: int, world: int) -> list[int]:
    """Shard indices in the order rank `rank` of `world` visits them: its own share first (every world-th shard
    from `rank`), then the others (by then done, or being encoded by their rank and waited for under the lock)."""
    return [*range(rank, n, world), *(i for i in range(n) if i % world != rank)]


def encode_shards(jobs: list[tuple[str, str, str]], encode, rank: int = 0, world: int = 1,
                  progress: bool = True, made: tuple[str, ...] = ()) -> list[dict]:
    """The meta of every job ``(source path, lock path, meta path)``, calling ``encode(i)`` under the job's lock
    for those without a meta file yet. Ranks starting together take their own shares first, so they encode in
    parallel and each shard exactly once. When an encoding is refused (a file that is not UTF-8, ...), the
    cache folders in `made` (created for this call) are removed again if nothing else is in them."""
    try:
        return _encode_shards(jobs, encode, rank, world, progress)
    except BaseException:
        remove_made(list(made))
        raise


def _encode_shards(jobs, encode, rank: int, world: int, progress: bool) -> list[dict]:
    pending = {i for i, (_, _, meta) in enumerate(jobs) if not os.path.exists(meta)}
    metas: list[dict] = [{} for _ in jobs]
    with tqdm(total=sum(os.path.getsize(jobs[i][0]) for i in pending), unit="B", unit_scale=True,
              desc="encoding shards", disable=not progress or not pending) as bar:
        for i in rank_order(len(jobs), rank, world):
            source, lock, meta_path = jobs[i]
            with file_lock(lock):
                if not os.path.exists(meta_path):
                    encode(i)
                with open(meta_path, encoding="utf-8") as f:
                    metas[i] = json.load(f)
            if i in pending:
                bar.update(os.path.getsize(source))
    return metas


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
                    word_ids = map(vocab.index.get, types, itertools.repeat(vocab.unk))  # vocab.id, in C
                    atomic_save_npy(map_path, np.fromiter(word_ids, dtype=np.int32, count=len(types)))
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
                 max_chars: int | None = 50, progress: bool = True, rank: int = 0, world: int = 1):
        paths = expand_glob(pattern, what)
        self.vocab, self.max_chars = vocab, max_chars
        prefixes, made = cache_keys(paths, cache_dir)
        jobs = [(p, pre + ".lock", pre + ".meta.json") for p, pre in zip(paths, prefixes)]
        metas = encode_shards(jobs, lambda i: encode_shard(paths[i], prefixes[i]), rank, world, progress, made)
        self.shards = [Shard(pre, meta) for pre, meta in zip(prefixes, metas)]
        for i in rank_order(len(self.shards), rank, world):
            self.shards[i].bind(vocab, max_chars)
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
