"""Word vocabulary: build from a corpus, write/read the bilm-tf format, load PaddleNLP's vocab-15w.txt.

File format written here (bilm-tf's): one token per line, ``<S>``, ``</S>``, ``<UNK>`` first, then words
by descending frequency (ties alphabetical). PaddleNLP's ``vocab-15w.txt`` lists words only; loading it adds
the three special tokens in front, so both files load unchanged.
"""

from __future__ import annotations

import collections
import glob as globlib
import hashlib
import os
from collections.abc import Iterable

from tqdm import tqdm

from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_write_text, open_input

BOS, EOS, UNK = "<S>", "</S>", "<UNK>"
SPECIALS = (BOS, EOS, UNK)
# Aliases some vocab files use for the special tokens.
_ALIASES = {"UNK": UNK, "<unk>": UNK, "<s>": BOS, "</s>": EOS}


def expand_glob(pattern: str, what: str) -> list[str]:
    """Sorted regular, non-empty files matching `pattern` (the one way a glob of inputs is read).

    A broken symlink or a match that is neither a folder nor a regular file (a FIFO, a device) is an error naming
    it; folders and empty files are skipped with one warning line on stderr naming them and how many of the
    matches were skipped; nothing left is an error naming the flag.
    """
    import sys

    matches = sorted(globlib.glob(os.path.expanduser(pattern)))
    if not matches:
        raise UserError(f"{what}: no file matches {pattern!r}")
    paths, skipped = [], []
    for p in matches:
        if os.path.islink(p) and not os.path.exists(p):
            raise UserError(f"{what}: {p} (matching {pattern!r}) is a broken symbolic link")
        if os.path.isdir(p):
            skipped.append(f"{p} (a folder)")
        elif not os.path.isfile(p):
            raise UserError(f"{what}: {p} (matching {pattern!r}) is not a regular file")
        elif os.path.getsize(p) == 0:
            skipped.append(f"{p} (empty)")
        else:
            paths.append(p)
    if not paths:
        raise UserError(f"{what}: no non-empty file matches {pattern!r} (e.g. {skipped[0]})")
    if skipped:
        shown = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
        print(f"warning: {what}: skipping {len(skipped)} of the {len(matches)} matches of {pattern!r}: {shown}",
              file=sys.stderr, flush=True)
    return paths


def read_lines(path: str) -> Iterable[tuple[int, str]]:
    """(line number, text) of a UTF-8 file (through `fsio.open_input`: a leading byte-order mark skipped, OS
    errors as one line); undecodable bytes raise a UserError naming file and line."""
    with open_input(path) as f:
        for no, raw in enumerate(f, 1):
            try:
                yield no, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise UserError(f"{path}:{no}: not valid UTF-8 ({e.reason} at byte {e.start}); "
                                f"re-encode the file as UTF-8") from None


class Vocab:
    """Token <-> id map. Ids follow file order; specials are guaranteed present."""

    def __init__(self, tokens: list[str]):
        tokens = [_ALIASES.get(t, t) for t in tokens]
        missing = [s for s in SPECIALS if s not in tokens]
        self.tokens: list[str] = missing + tokens
        self.index: dict[str, int] = {}
        for i, t in enumerate(self.tokens):
            if t in self.index:
                raise UserError(f"vocabulary has the token {t!r} twice (entries {self.index[t]} and {i})")
            self.index[t] = i
        self.bos, self.eos, self.unk = (self.index[s] for s in SPECIALS)

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        return self.index.get(token, self.unk)

    @property
    def identity(self) -> str:
        """sha256 of the token list: two vocabularies are interchangeable iff identities match."""
        return hashlib.sha256("\n".join(self.tokens).encode("utf-8")).hexdigest()[:16]

    @classmethod
    def load(cls, path: str) -> Vocab:
        if not os.path.isfile(path):
            raise UserError(f"--vocab_file {path!r} does not exist; run `bash download_data.sh --sample` "
                            f"or pass the vocabulary of your corpus")
        tokens = []
        first: dict[str, tuple[int, str]] = {}  # token (aliases resolved) -> (1-based line, as written there)
        for no, line in read_lines(path):
            tok = line.strip()
            if not tok:
                continue
            if " " in tok or "\t" in tok:  # bilm-tf count files: "word count" -> keep the word
                tok = tok.split()[0]
            key = _ALIASES.get(tok, tok)
            if key in first:
                was_no, was = first[key]
                spelled = "" if was == tok else f", as {was!r}"
                raise UserError(f"--vocab_file {path}: line {no} repeats {tok!r} (first at line {was_no}{spelled}); "
                                f"every token must appear once")
            first[key] = (no, tok)
            tokens.append(tok)
        if not tokens:
            raise UserError(f"--vocab_file {path}: no token on any line (the file is empty or blank)")
        return cls(tokens)

    def save(self, path: str) -> None:
        atomic_write_text(path, "\n".join(self.tokens) + "\n")


def count_tokens(paths: list[str], progress: bool = True) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for path in tqdm(paths, desc="counting tokens", unit="file", disable=not progress):
        for _, line in read_lines(path):
            counts.update(line.split())
    return counts


def build_vocab(paths: list[str], min_count: int = 1, max_size: int = 0, progress: bool = True) -> Vocab:
    """Vocabulary of tokenized files: words seen >= min_count times, at most max_size words (0 = no cap)."""
    counts = count_tokens(paths, progress)
    for s in SPECIALS:
        counts.pop(s, None)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size:
        words = words[:max_size]
    return Vocab(list(SPECIALS) + words)
