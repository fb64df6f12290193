"""Raw text -> tokenized sentence-per-line shards in the 1-Billion-Word layout.

Pipeline for every document: paragraphs (blank lines) -> sentences -> Moses tokens, then

* a deterministic (seeded) held-out split by *document*, so no article leaks into both sides;
* training and held-out sentences bucketed into shards (balanced) and shuffled within each shard;
* files named like the benchmark's: ``OUT/training-tokenized-shuffled/news.en-00001-of-00010`` (numbered
  from 1) and ``OUT/heldout-tokenized-shuffled/news.en.heldout-00000-of-00001`` (numbered from 0).

Sentence splitting follows the rules of Moses' ``split-sentences.perl`` (sacremoses has no splitter, but
ships Moses' English non-breaking-prefix list, which is used here): a sentence ends at ``.``, ``?`` or
``!`` (optionally followed by closing quotes/brackets) when the next word starts, after optional opening
quotes/brackets, with an upper-case letter -- or, after a period, with a digit. A period never ends a
sentence after a known abbreviation (``Mr.``, ``Dr.``, ``e.g.``, single initials, ...) or an upper-case
acronym (``U.S.``); ``No.``/``Art.``-style prefixes only hold before a number. Tokenization is sacremoses'
``MosesTokenizer(lang="en")`` with ``escape=False`` (the benchmark was tokenized with Moses).

CLI: ``python -m paddle_lm.data.prep --input 'raw/*.txt' --output_dir OUT`` treats each file as one
document and also writes ``OUT/vocab-15w.txt`` built from the training shards; it refuses to replace a corpus
already prepared in OUT unless given ``--overwrite``.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import random
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence

from tqdm import tqdm

from paddle_lm.cli import ArgumentParser
from paddle_lm.data.download import install_path
from paddle_lm.errors import UserError
from paddle_lm.fsio import read_input

TRAIN_DIR = "training-tokenized-shuffled"
HELDOUT_DIR = "heldout-tokenized-shuffled"
VOCAB_FILE = "vocab-15w.txt"

_OPENERS = "'\"([{\u00bf\u00a1\u2018\u201c\u00ab\u2039"  # ' " ( [ { ¿ ¡ ‘ “ « ‹
_CLOSERS = "'\")]}\u2019\u201d\u00bb\u203a"  # ' " ) ] } ’ ” » ›
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_PREFIX_RUN = re.compile(r"[\w.\-]*$")


@functools.lru_cache(maxsize=1)
def _nonbreaking_prefixes() -> dict[str, int]:
    """Moses' English non-breaking prefixes: 1 = never ends a sentence, 2 = only not before a number."""
    from sacremoses import NonbreakingPrefixes

    out = {}
    for line in NonbreakingPrefixes().words(lang="en"):
        word = line.split()[0]
        out[word] = 2 if "#NUMERIC_ONLY#" in line else 1
    return out


@functools.lru_cache(maxsize=1)
def _moses():
    from sacremoses import MosesTokenizer

    return MosesTokenizer(lang="en")


def _ends_sentence(word: str, nxt: str, prefixes: dict[str, int]) -> bool:
    """Does a sentence end after `word` when `nxt` follows it? (Moses split-sentences rules.)"""
    body = nxt.lstrip(_OPENERS)
    first = body[:1]
    if not first:
        return False
    core = word.rstrip(_CLOSERS)
    if not core or core[-1] not in ".?!":
        return False
    if core != word or core[-1] in "?!" or core.endswith(".."):
        return first.isupper()  # closing quote/bracket, ? or !, or an ellipsis: need a capital next
    # A single period. `run` is the word-like run before it; `punct` any quote/bracket/% in between.
    stem = core[:-1]
    run = _PREFIX_RUN.search(stem.rstrip(_CLOSERS + "%")).group()
    punct = stem[len(stem.rstrip(_CLOSERS + "%")) :]
    kind = prefixes.get(run, 0) if run else 0
    if kind == 1 and not punct:
        return False  # Mr. Dr. e.g. single initials
    dot = stem.rfind(".")
    tail = stem[dot + 1 :]
    if dot >= 0 and tail and all(c.isupper() or c == "-" for c in tail):
        return False  # upper-case acronym: U.S. U.K.
    if first.isupper():
        return True
    if first in "0123456789":
        return not (kind == 2 and not punct)  # "No. 5" stays together
    return False


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`: paragraphs are separated by blank lines, sentences never cross them.

    Whitespace inside a sentence (line breaks included) is collapsed to single spaces.
    """
    prefixes = _nonbreaking_prefixes()
    out: list[str] = []
    for para in _PARAGRAPH.split(text):
        words = para.split()
        start = 0
        for i in range(len(words) - 1):
            if _ends_sentence(words[i], words[i + 1], prefixes):
                out.append(" ".join(words[start : i + 1]))
                start = i + 1
        if start < len(words):
            out.append(" ".join(words[start:]))
    return out


def tokenize(sentence: str) -> str:
    """Moses-tokenized `sentence` (tokens joined by single spaces; no HTML escaping)."""
    return " ".join(_moses().tokenize(sentence, escape=False, return_str=True).split())


def process_document(text: str) -> list[str]:
    """Tokenized sentences of one document (empty sentences dropped)."""
    out = []
    for sentence in split_sentences(text):
        tokens = tokenize(sentence)
        if tokens:
            out.append(tokens)
    return out


def _processed(docs: Sequence[str], workers: int) -> Iterator[list[str]]:
    """process_document over `docs` in order, on `workers` processes (1 = in this process)."""
    if workers <= 1:
        yield from map(process_document, docs)
        return
    window = 64 * workers  # read ahead a bounded number of documents, not the whole corpus
    with multiprocessing.get_context().Pool(workers) as pool:
        for start in range(0, len(docs), window):
            batch = [docs[j] for j in range(start, min(len(docs), start + window))]
            yield from pool.imap(process_document, batch, chunksize=4)


class _ShardWriter:
    """Spreads sentences over `n` temporary buckets (balanced, random), then shuffles each into a shard."""

    def __init__(self, tmp_dir: str, n: int, rng: random.Random):
        os.makedirs(tmp_dir)
        self.paths = [os.path.join(tmp_dir, f"bucket-{i:05d}") for i in range(n)]
        self._open = contextlib.ExitStack()
        self.files = [self._open.enter_context(open(p, "w", encoding="utf-8")) for p in self.paths]  # noqa: SIM115
        self.rng = rng
        self.cycle: list[int] = []
        self.sentences = self.tokens = 0

    def add(self, sentences: list[str]) -> None:
        for s in sentences:
            if not self.cycle:  # each round of n sentences visits every bucket once, in random order
                self.cycle = self.rng.sample(range(len(self.files)), len(self.files))
            self.files[self.cycle.pop()].write(s + "\n")
            self.sentences += 1
            self.tokens += s.count(" ") + 1

    def close(self) -> None:
        self._open.close()

    def finish(self, out_dir: str, name: str, first: int) -> list[str]:
        """Write the non-empty buckets, shuffled, as `{name}-{i:05d}-of-{n:05d}` under `out_dir`."""
        self.close()
        full = [p for p in self.paths if os.path.getsize(p) > 0]
        os.makedirs(out_dir)
        written = []
        for i, path in enumerate(full):
            with open(path, encoding="utf-8") as f:
                lines = f.readlines()
            self.rng.shuffle(lines)
            dst = os.path.join(out_dir, f"{name}-{i + first:05d}-of-{len(full):05d}")
            with open(dst, "w", encoding="utf-8") as f:
                f.writelines(lines)
            os.remove(path)
            written.append(dst)
        return written


def _auto_workers(num_docs: int) -> int:
    return 1 if num_docs < 200 else max(1, min(8, os.cpu_count() or 1))


def prepare_corpus(
    documents: Iterable[str],
    out_dir: str,
    heldout_fraction: float = 0.05,
    num_train_shards: int = 10,
    num_heldout_shards: int = 1,
    seed: int = 1234,
    progress: bool = True,
    workers: int = 0,
) -> dict:
    """Split, tokenize, split off held-out documents, shard and shuffle `documents` into `out_dir`.

    Output: ``out_dir/training-tokenized-shuffled/`` and ``out_dir/heldout-tokenized-shuffled/`` (each
    replaced as a whole, only after the new one is complete). ``round(heldout_fraction * documents)``
    documents, at least one when the fraction is positive, chosen with `seed`, go to held-out. The same
    inputs and seed give byte-identical files whatever `workers` is (0 = choose from the CPU count).
    Fewer sentences than shards gives fewer (never empty) shards.

    Returns counts: documents, heldout_documents, empty_documents, train/heldout sentences and tokens,
    train/heldout shards.
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise UserError(f"--heldout_fraction must be in [0, 1), got {heldout_fraction}")
    if num_train_shards < 1 or num_heldout_shards < 1:
        raise UserError("--num_shards and --num_heldout_shards must be at least 1")
    docs = documents if isinstance(documents, Sequence) else list(documents)
    n = len(docs)
    if n == 0:
        raise UserError("no documents to prepare: the input is empty")
    k = min(n - 1, max(1, round(heldout_fraction * n))) if heldout_fraction > 0 else 0
    if heldout_fraction > 0 and k == 0:
        raise UserError("a held-out split needs at least 2 documents; pass --heldout_fraction 0")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    heldout_ids = set(order[:k])

    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".prep-", dir=out_dir)
    writers: tuple[_ShardWriter, ...] = ()
    try:
        train = _ShardWriter(os.path.join(tmp, "train-buckets"), num_train_shards, random.Random(seed + 1))
        held = _ShardWriter(os.path.join(tmp, "heldout-buckets"), num_heldout_shards, random.Random(seed + 2))
        writers = (train, held)
        empty = 0
        stream = _processed(docs, workers or _auto_workers(n))
        bar = tqdm(stream, total=n, desc="tokenizing", unit="doc", disable=not progress, leave=False)
        for i, sentences in enumerate(bar):
            empty += not sentences
            (held if i in heldout_ids else train).add(sentences)
        if train.sentences == 0:
            raise UserError("no sentences found in the training documents: the input has no text")
        train_files = train.finish(os.path.join(tmp, TRAIN_DIR), "news.en", first=1)
        held_files = held.finish(os.path.join(tmp, HELDOUT_DIR), "news.en.heldout", first=0)
        for sub in (TRAIN_DIR, HELDOUT_DIR):
            install_path(os.path.join(tmp, sub), os.path.join(out_dir, sub))
    finally:
        for w in writers:
            w.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "documents": n,
        "heldout_documents": k,
        "empty_documents": empty,
        "train_sentences": train.sentences,
        "heldout_sentences": held.sentences,
        "train_tokens": train.tokens,
        "heldout_tokens": held.tokens,
        "train_shards": len(train_files),
        "heldout_shards": len(held_files),
    }


def write_vocab(out_dir: str, min_count: int = 3, max_size: int = 150_000, progress: bool = True) -> int:
    """Build ``out_dir/vocab-15w.txt`` (bilm-tf format) from the training shards; returns its size.

    The size counts the three special tokens ``<S> </S> <UNK>`` written at the top.
    """
    from paddle_lm.data.vocab import build_vocab, expand_glob

    if min_count < 1 or max_size < 0:
        raise UserError("--min_count must be >= 1 and --max_vocab_size >= 0")
    paths = expand_glob(os.path.join(out_dir, TRAIN_DIR, "*"), "training shards")
    vocab = build_vocab(paths, min_count=min_count, max_size=max_size, progress=progress)
    vocab.save(os.path.join(out_dir, VOCAB_FILE))
    return len(vocab)


def decode_document(path: str, data: bytes) -> str:
    """UTF-8 text of a file (a BOM is dropped); undecodable bytes raise a UserError naming file and line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise UserError(
            f"{path}:{line}: not valid UTF-8 ({e.reason} at byte {e.start}); re-encode the file as UTF-8"
        ) from None


class FileDocuments(Sequence):
    """The files of `paths` as a lazy sequence of documents (each read and decoded on access)."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return FileDocuments(self.paths[i])
        return decode_document(self.paths[i], read_input(self.paths[i]))


def main(argv: list[str] | None = None) -> int:
    """CLI: prepare raw text files into the 1-Billion-Word layout plus a vocabulary."""
    p = ArgumentParser(prog="python -m paddle_lm.data.prep", description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True, help="Glob of raw UTF-8 text files, one document per file.")
    p.add_argument("--output_dir", required=True, help="Where the shards and vocab-15w.txt are written.")
    p.add_argument("--heldout_fraction", type=float, default=0.05, help="Fraction of documents held out.")
    p.add_argument("--num_shards", type=int, default=10, help="Number of training shards.")
    p.add_argument("--num_heldout_shards", type=int, default=1, help="Number of held-out shards.")
    p.add_argument("--seed", type=int, default=1234, help="Seed of the held-out split and the shuffles.")
    p.add_argument("--min_count", type=int, default=3, help="Keep words seen at least this often.")
    p.add_argument(
        "--max_vocab_size", type=int, default=150_000, help="Keep at most this many words (0: all)."
    )
    p.add_argument("--workers", type=int, default=0, help="Tokenizer processes (0: from the CPU count).")
    p.add_argument("--quiet", action="store_true", help="No progress bars.")
    p.add_argument("--overwrite", action="store_true",
                   help="Replace a corpus already prepared in --output_dir (its shards and vocab-15w.txt).")
    args = p.parse_args(argv)
    try:
        from paddle_lm.config import validate_prep
        from paddle_lm.data.vocab import expand_glob
        from paddle_lm.locks import claim_output

        validate_prep(args.heldout_fraction, args.num_shards, args.num_heldout_shards, args.seed, args.min_count,
                      args.max_vocab_size, args.workers)
        paths = expand_glob(args.input, "--input")
        if os.path.lexists(args.output_dir) and not os.path.isdir(args.output_dir):
            raise UserError(f"--output_dir {args.output_dir!r} exists and is not a folder; pick another path")
        outputs = [os.path.join(args.output_dir, name) for name in (TRAIN_DIR, HELDOUT_DIR, VOCAB_FILE)]
        with claim_output(outputs, "--output_dir", args.overwrite, shown=args.output_dir):  # one writer at a time
            stats = prepare_corpus(FileDocuments(paths), args.output_dir, args.heldout_fraction, args.num_shards,
                                   args.num_heldout_shards, args.seed, progress=not args.quiet,
                                   workers=args.workers)
            stats["vocab_size"] = write_vocab(args.output_dir, args.min_count, args.max_vocab_size, not args.quiet)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"{stats['documents']:,} documents -> {stats['train_sentences']:,} training sentences "
        f"({stats['train_tokens']:,} tokens, {stats['train_shards']} shards), "
        f"{stats['heldout_sentences']:,} held-out sentences ({stats['heldout_tokens']:,} tokens), "
        f"vocab {stats['vocab_size']:,} -> {args.output_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
