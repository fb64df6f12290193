"""Vocabulary, char ids, encoded shards and the BPTT stream."""

from __future__ import annotations

import glob

import numpy as np
import pytest

from paddle_lm.data.chars import BOW_CHAR, EOW_CHAR, PAD_CHAR, token_char_ids
from paddle_lm.data.shards import EncodedCorpus
from paddle_lm.data.stream import BPTTStream
from paddle_lm.data.vocab import Vocab, build_vocab
from paddle_lm.errors import UserError


def test_vocab_loads_bilm_and_paddlenlp_styles(tmp_path):
    bilm = tmp_path / "bilm.txt"
    bilm.write_text("<S>\n</S>\n<UNK>\nthe\ncat\n")
    words_only = tmp_path / "vocab-15w.txt"
    words_only.write_text("the\ncat\n")
    a, b = Vocab.load(str(bilm)), Vocab.load(str(words_only))
    assert a.tokens == b.tokens == ["<S>", "</S>", "<UNK>", "the", "cat"]
    assert a.identity == b.identity
    assert a.id("dog") == a.unk and a.id("cat") == 4


def test_vocab_rejects_duplicates_and_missing(tmp_path):
    dup = tmp_path / "dup.txt"
    dup.write_text("the\ncat\nthe\n")
    with pytest.raises(UserError, match=r"dup.txt: line 3 repeats 'the' \(first at line 1\)"):
        Vocab.load(str(dup))
    with pytest.raises(UserError, match="does not exist"):
        Vocab.load(str(tmp_path / "nope.txt"))


def test_build_vocab_min_count_max_size_and_roundtrip(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("a a a b b c\nb a d\n")
    v = build_vocab([str(f)], min_count=2, progress=False)
    assert v.tokens == ["<S>", "</S>", "<UNK>", "a", "b"]
    assert build_vocab([str(f)], max_size=1, progress=False).tokens[3:] == ["a"]
    v.save(str(tmp_path / "v.txt"))
    assert Vocab.load(str(tmp_path / "v.txt")).identity == v.identity


def test_char_ids_layout():
    ids = token_char_ids("ab", 6)
    assert ids.tolist() == [BOW_CHAR, ord("a") + 1, ord("b") + 1, EOW_CHAR, PAD_CHAR, PAD_CHAR]
    long = token_char_ids("x" * 100, 10)
    assert long[0] == BOW_CHAR and long[-1] == EOW_CHAR and len(long) == 10


def test_encoded_corpus_roundtrip_and_cache(tiny_corpus, tmp_path):
    vocab = Vocab.load(tiny_corpus["vocab"])
    corpus = EncodedCorpus(tiny_corpus["train"], vocab, cache_dir=str(tmp_path), progress=False)
    lines = []
    for p in sorted(glob.glob(tiny_corpus["train"])):
        with open(p) as f:
            lines += f.read().split("\n")
    stream = []
    for line in lines:
        if line.strip():
            stream += ["<S>", *line.split(), "</S>"]
    assert corpus.n_tokens == len(stream)
    words, chars = corpus.gather(0, corpus.n_tokens)
    assert words.tolist() == [vocab.id(t) for t in stream]
    # OOV words keep their own characters.
    rare = next(i for i, t in enumerate(stream) if t.startswith("w") and vocab.id(t) == vocab.unk)
    assert chars[rare].tolist() == token_char_ids(stream[rare], 50).tolist()
    # Cached: a second open encodes nothing and gives the same arrays; a window across shards matches.
    again = EncodedCorpus(tiny_corpus["train"], vocab, cache_dir=str(tmp_path), progress=False)
    mid = corpus.shards[0].n_tokens
    w2, c2 = again.gather(mid - 3, mid + 4)
    assert w2.tolist() == words[mid - 3: mid + 4].tolist() and (c2 == chars[mid - 3: mid + 4]).all()


def test_undecodable_and_empty_inputs(tmp_path):
    vocab = Vocab(["a"])
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a a\n\xff\xfe a\n")
    with pytest.raises(UserError, match=r"bad.txt:2: not valid UTF-8"):
        EncodedCorpus(str(bad), vocab, cache_dir=str(tmp_path / "c"), progress=False)
    with pytest.raises(UserError, match="no file matches"):
        EncodedCorpus(str(tmp_path / "none*"), vocab, progress=False)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty"):
        EncodedCorpus(str(tmp_path / "empty.txt"), vocab, progress=False)


@pytest.mark.parametrize("world", [1, 2])
def test_stream_covers_every_position_once_with_correct_targets(tiny_corpus, tmp_path, world):
    vocab = Vocab.load(tiny_corpus["vocab"])
    corpus = EncodedCorpus(tiny_corpus["train"], vocab, cache_dir=str(tmp_path), progress=False)
    words, _ = corpus.gather(0, corpus.n_tokens)
    B, T = 3, 7
    fw_seen = np.zeros(corpus.n_tokens, dtype=int)
    streams = [BPTTStream(corpus, B, T, rank=r, world_size=world) for r in range(world)]
    assert len({s.steps_per_epoch for s in streams}) == 1
    for st in streams:
        for s in range(st.steps_per_epoch):
            b = st.batch(s)
            assert b["char_ids"].shape == (B, T, 50)
            unique = b["char_unique"]  # the distinct tokens the char-CNN encodes once each
            assert len(np.unique(unique, axis=0)) == len(unique) <= B * T
            assert (unique[b["char_inverse"]] == b["char_ids"].reshape(B * T, 50)).all()
            for row in range(B):
                for t in range(T):
                    p = int(st.row_start[row]) + s * T + t
                    if p >= st.row_end[row]:
                        assert b["fw_mask"][row, t] == 0 and b["bw_mask"][row, t] == 0
                        continue
                    fw_seen[p] += 1
                    assert b["token_ids"][row, t] == words[p]
                    if p + 1 < len(words):
                        assert b["fw_targets"][row, t] == words[p + 1]
                        assert b["fw_mask"][row, t] == float(words[p + 1] != vocab.bos)
                    if p >= 1:
                        assert b["bw_targets"][row, t] == words[p - 1]
                        assert b["bw_mask"][row, t] == float(words[p - 1] != vocab.eos)
                    else:
                        assert b["bw_mask"][row, t] == 0
    assert (fw_seen == 1).all()  # disjoint across ranks, nothing skipped


def test_stream_too_small_is_a_clear_error(tiny_corpus, tmp_path):
    vocab = Vocab.load(tiny_corpus["vocab"])
    corpus = EncodedCorpus(tiny_corpus["dev"], vocab, cache_dir=str(tmp_path), progress=False)
    with pytest.raises(UserError, match="lower --batch_size"):
        BPTTStream(corpus, batch_size=corpus.n_tokens, unroll_steps=5)
