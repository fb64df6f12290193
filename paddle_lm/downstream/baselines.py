"""The word2vec baseline: load word vectors from a file (format detected) or train them with gensim.

Formats read (all through gensim's ``KeyedVectors.load_word2vec_format``):

- word2vec binary: a ``"<count> <dim>"`` header line, then per word ``word<space>`` and ``dim`` float32s;
- word2vec text: the same header, then ``word v1 ... vdim`` lines;
- GloVe text: ``word v1 ... vdim`` lines without the header (``no_header=True``).

Anything else is a UserError naming the file. Training (``train_word2vec``) reads the same tokenized shards
ELMo is pretrained on, tokens split on whitespace exactly as the LM reads them (case kept), and caches the
vectors as a word2vec binary file keyed by the files (path, size, mtime) and every training setting.

OOV policy (``WordVectors.lookup``): a token is looked up as written, then lowercased (GloVe's vocabulary is
lowercase); a token found neither way is left out of the sentence's mean. A sentence without any known token
gets the zero vector. The OOV rate is reported with the results.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
from tqdm import tqdm

from paddle_lm.data.vocab import expand_glob, read_lines
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_path, open_input

_LOAD_ERRORS = (ValueError, EOFError, UnicodeDecodeError, OSError, IndexError, KeyError, MemoryError)


def _floats(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return bool(tokens)


def detect_format(path: str, flag: str = "--pretrained_word2vec_file") -> tuple[bool, bool]:
    """``(binary, no_header)`` for gensim, from the first bytes of `path`; UserError if it is neither format."""
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path!r} does not exist")
    if os.path.getsize(path) == 0:
        raise UserError(f"{flag} {path!r} is empty")
    with open_input(path) as f:
        head = f.read(1 << 20)
    first, _, rest = head.partition(b"\n")
    unknown = UserError(f"{flag} {path!r} is not a word-vector file gensim can read: expected word2vec "
                        f"binary/text (header '<count> <dim>') or GloVe text ('word v1 v2 ...' lines)")
    try:
        words = first.decode("utf-8").split()
    except UnicodeDecodeError:
        raise unknown from None
    if len(words) == 2 and all(w.isdigit() for w in words):  # word2vec header
        count, dim = int(words[0]), int(words[1])
        if count <= 0 or dim <= 0:
            raise unknown
        line2 = rest.split(b"\n", 1)[0]
        try:
            toks = line2.decode("utf-8").split()
            if len(toks) == dim + 1 and _floats(toks[1:]):
                return False, False  # text
        except UnicodeDecodeError:
            pass
        word, space, _ = rest.lstrip(b"\n").partition(b" ")
        if space and 0 < len(word) < 1000 and os.path.getsize(path) >= len(first) + 1 + count * (4 * dim + 2):
            return True, False  # binary
        raise unknown
    if len(words) >= 2 and _floats(words[1:]):
        return False, True  # GloVe text, no header
    raise unknown


class WordVectors:
    """gensim KeyedVectors plus the OOV policy (as written, then lowercased; else left out of the mean)."""

    def __init__(self, kv, source: str):
        self.kv, self.source = kv, source
        self.dim = int(kv.vector_size)

    def lookup(self, token: str) -> int:
        """Row of `token` in the vectors (trying it lowercased second), or -1 when unknown."""
        for t in (token, token.lower()):
            i = self.kv.key_to_index.get(t)
            if i is not None:
                return i
        return -1

    def sentence_means(self, sentences: list[list[str]]) -> tuple[np.ndarray, dict]:
        """Mean vector of each sentence's known tokens ``[N, D]`` float32, and OOV statistics."""
        out = np.zeros((len(sentences), self.dim), dtype=np.float32)  # [N, D]
        total = oov = empty = 0
        for n, sent in enumerate(sentences):
            rows = [self.lookup(t) for t in sent]
            known = [r for r in rows if r >= 0]
            total += len(rows)
            oov += len(rows) - len(known)
            if known:
                out[n] = self.kv.vectors[known].mean(axis=0)  # [K, D] -> [D]
            else:
                empty += 1
        stats = {"oov_rate": oov / max(total, 1), "oov_tokens": oov, "tokens": total,
                 "sentences_without_known_token": empty, "vocab_size": len(self.kv.key_to_index)}
        return out, stats


def load_vectors(path: str, flag: str = "--pretrained_word2vec_file") -> WordVectors:
    """WordVectors from a word2vec binary/text or GloVe text file (format detected)."""
    from gensim.models import KeyedVectors

    binary, no_header = detect_format(path, flag)
    try:
        kv = KeyedVectors.load_word2vec_format(path, binary=binary, no_header=no_header)
    except _LOAD_ERRORS as e:
        kind = "word2vec binary" if binary else ("GloVe text" if no_header else "word2vec text")
        raise UserError(f"{flag} {path!r} looks like {kind} but could not be read ({type(e).__name__}: "
                        f"{str(e)[:120]}); the file is damaged or truncated") from None
    if len(kv.key_to_index) == 0:
        raise UserError(f"{flag} {path!r} holds no vectors")
    return WordVectors(kv, path)


class _Corpus:
    """Restartable iterable of token lists over tokenized shards (whitespace split, case kept, no empties)."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __iter__(self):
        for path in self.paths:
            for _, line in read_lines(path):
                tokens = line.split()
                if tokens:
                    yield tokens


def word2vec_settings(dim: int, epochs: int, window: int, min_count: int, seed: int) -> dict:
    """gensim Word2Vec arguments: skip-gram with 5 negative samples, one worker so runs repeat exactly."""
    return dict(vector_size=dim, epochs=epochs, window=window, min_count=min_count, seed=seed, sg=1,
                negative=5, workers=1)


def cache_path(paths: list[str], settings: dict, cache_dir: str = "") -> str:
    """Where vectors trained on `paths` with `settings` are cached (key: files' path/size/mtime + settings)."""
    import gensim

    files = [(os.path.abspath(p), os.path.getsize(p), os.stat(p).st_mtime_ns) for p in paths]
    blob = json.dumps({"files": files, "settings": settings, "gensim": gensim.__version__}, sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    folder = cache_dir or os.path.join(os.path.dirname(os.path.abspath(paths[0])), ".paddle_lm_cache")
    return os.path.join(folder, f"word2vec-d{settings['vector_size']}-{key}.bin")


def train_word2vec(pattern: str, dim: int = 100, epochs: int = 10, window: int = 5, min_count: int = 3,
                   seed: int = 1234, cache_dir: str = "", progress: bool = True) -> tuple[WordVectors, str, bool]:
    """(vectors, cache file, whether they came from the cache) for word2vec trained on the shards `pattern`.

    Trains once per (files, settings); later calls read the cached word2vec binary file.
    """
    from gensim.models import KeyedVectors, Word2Vec
    from gensim.models.callbacks import CallbackAny2Vec

    paths = expand_glob(pattern, "--train_word2vec_on")
    settings = word2vec_settings(dim, epochs, window, min_count, seed)
    out = cache_path(paths, settings, cache_dir)
    if os.path.isfile(out):
        return WordVectors(KeyedVectors.load_word2vec_format(out, binary=True), out), out, True

    class _Bar(CallbackAny2Vec):
        def __init__(self):
            self.bar = tqdm(total=epochs, desc="word2vec", unit="epoch", disable=not progress, dynamic_ncols=True)

        def on_epoch_end(self, model):
            self.bar.update(1)

    corpus = _Corpus(paths)
    model = Word2Vec(**settings)
    model.build_vocab(corpus)
    if not model.wv.key_to_index:
        raise UserError(f"--train_word2vec_on {pattern!r}: no word occurs --word2vec_min_count={min_count} times")
    bar = _Bar()
    model.train(corpus, total_examples=model.corpus_count, epochs=epochs, callbacks=[bar])
    bar.bar.close()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with atomic_path(out) as tmp:
        model.wv.save_word2vec_format(tmp, binary=True)
    return WordVectors(model.wv, out), out, False
