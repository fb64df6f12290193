"""The shard encoder: the same ids as a plain per-token loop whatever the chunking, undecodable bytes named by
file and line across chunks, and ranks that open a corpus together encode each shard once, in parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from paddle_lm.data import shards
from paddle_lm.data.chars import BOS_CHAR, BOW_CHAR, EOS_CHAR, EOW_CHAR, PAD_CHAR, char_table
from paddle_lm.data.vocab import BOS, EOS, Vocab
from paddle_lm.errors import UserError

TRICKY = "the cat .\n\n  a  dog\tbarks \r\n<S> odd </S>\nthe end\n\n\nno newline at the end"


def plain_encoding(text: str) -> tuple[list[int], list[int], list[str]]:
    """The obvious per-token loop: what the vectorized encoder must reproduce."""
    types, ids, starts = {BOS: 0, EOS: 1}, [], []
    for line in text.split("\n"):
        words = line.split()
        if words:
            starts.append(len(ids))
            ids += [0, *(types.setdefault(w, len(types)) for w in words), 1]
    return ids, starts, list(types)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_vectorized_encoder_matches_the_plain_loop(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(shards, "CHUNK_BYTES", chunk)
    path = tmp_path / "shard.txt"
    path.write_text(TRICKY, encoding="utf-8")
    meta = shards.encode_shard(str(path), str(tmp_path / "k"))
    ids, starts, types = plain_encoding(TRICKY)
    assert np.load(tmp_path / "k.ids.npy").tolist() == ids
    assert np.load(tmp_path / "k.sents.npy").tolist() == starts
    assert (tmp_path / "k.types.txt").read_text(encoding="utf-8").split("\n")[:-1] == types
    assert (meta["n_tokens"], meta["n_sentences"], meta["n_types"]) == (len(ids), len(starts), len(types))


def test_undecodable_byte_is_named_by_line_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "CHUNK_BYTES", 10)
    path = tmp_path / "bad.txt"
    path.write_bytes(b"one two\nthree four five\nsix\nseven \xff eight\n")
    with pytest.raises(UserError, match=r"bad.txt:4: not valid UTF-8 \(invalid start byte at byte 6\)"):
        shards.encode_shard(str(path), str(tmp_path / "k"))


CHILD = """
import json, sys
from paddle_lm.data import shards
from paddle_lm.data.chars import BOS_CHAR, BOW_CHAR, EOS_CHAR, EOW_CHAR, PAD_CHAR, char_table
from paddle_lm.data.vocab import Vocab
encoded, plain = [], shards.encode_shard
def counting(path, prefix):
    encoded.append(path)
    return plain(path, prefix)
shards.encode_shard = counting
c = shards.EncodedCorpus(sys.argv[1], Vocab.load(sys.argv[2]), cache_dir=sys.argv[3], progress=False,
                         rank=int(sys.argv[4]), world=2)
print(json.dumps({"encoded": encoded, "words": c.gather(0, c.n_tokens)[0].tolist()}))
"""


def test_two_ranks_encode_each_shard_once_and_agree(tiny_corpus, tmp_path):
    """Ranks 0 and 1 started together: every shard encoded by exactly one of them, and both read the same
    corpus as one process alone."""
    cache = str(tmp_path / "cache")
    env = {**os.environ, "PYTHONPATH": ROOT}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, tiny_corpus["train"], tiny_corpus["vocab"], cache, str(r)],
                              env=env, stdout=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    first, second = (set(o["encoded"]) for o in outs)
    assert not first & second and len(first | second) == 2  # the corpus has two shards
    alone = shards.EncodedCorpus(tiny_corpus["train"], Vocab.load(tiny_corpus["vocab"]),
                                 cache_dir=str(tmp_path / "alone"), progress=False)
    assert outs[0]["words"] == outs[1]["words"] == alone.gather(0, alone.n_tokens)[0].tolist()


def test_rank_order_gives_each_rank_its_share_first():
    assert shards.rank_order(5, 0, 2) == [0, 2, 4, 1, 3]
    assert shards.rank_order(5, 1, 2) == [1, 3, 0, 2, 4]
    assert shards.rank_order(3, 0, 1) == [0, 1, 2]


def plain_char_ids(token: str, max_chars: int) -> list[int]:
    body = [BOS_CHAR] if token == BOS else [EOS_CHAR] if token == EOS else [
        b + 1 for b in token.encode("utf-8")[: max_chars - 2]]
    ids = [BOW_CHAR, *body, EOW_CHAR]
    return ids + [PAD_CHAR] * (max_chars - len(ids))


@pytest.mark.parametrize("max_chars", [3, 6, 50])
def test_char_table_matches_the_per_token_scheme(max_chars):
    tokens = ["", "a", "h\u00e9llo", "x" * 100, BOS, EOS, "\u65e5\u672c\u8a9e", "<S>x"]
    table = char_table(tokens, max_chars)
    assert table.dtype == np.uint16 and table.shape == (len(tokens), max_chars)
    assert table.tolist() == [plain_char_ids(t, max_chars) for t in tokens]

