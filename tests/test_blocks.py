"""Fixed-length block datasets: GPT causal blocks and BERT masked blocks."""

from __future__ import annotations

import numpy as np
import pytest

from paddle_lm.data.blocks import ArrayStream, CausalBlocks, MaskedBlocks
from paddle_lm.data.masking import IGNORE_INDEX
from paddle_lm.data.shards import EncodedCorpus
from paddle_lm.data.vocab import Vocab
from paddle_lm.errors import UserError

PAD, CLS, SEP, MASK, BOS, EOS = 0, 1, 2, 3, 4, 5
VOCAB = 500


def test_causal_blocks_cover_each_token_once_and_labels_shift():
    n, bs, B = 1003, 10, 4
    stream = np.arange(n, dtype=np.int64)  # token id == position
    ds = CausalBlocks(stream, bs, seed=1)
    spe = ds.steps_per_epoch(B)
    assert ds.n_blocks == (n - 1) // bs and spe == ds.n_blocks // B
    seen = []
    for s in range(spe):
        b = ds.batch(s, B)
        assert b["input_ids"].shape == (B, bs) and b["input_ids"].dtype == np.int64
        assert np.array_equal(b["labels"], b["input_ids"] + 1)  # shifted by one
        assert np.all(np.diff(b["input_ids"], axis=1) == 1)  # contiguous windows
        seen += b["input_ids"].ravel().tolist()
    assert len(seen) == len(set(seen))  # no token is an input twice
    assert len(seen) == spe * B * bs and len(seen) >= n - bs * B - bs  # all but the tail/leftover


def test_causal_blocks_resume_shuffle_and_ranks():
    stream = np.arange(2000, dtype=np.int64)
    ds = CausalBlocks(stream, 8, seed=3)
    spe = ds.steps_per_epoch(4)
    again = CausalBlocks(stream, 8, seed=3)  # a fresh object (a resumed run) gives the same batch
    for s in (0, 5, spe + 2):
        assert np.array_equal(ds.batch(s, 4)["input_ids"], again.batch(s, 4)["input_ids"])
    e0 = np.concatenate([ds.block_indices(s, 4) for s in range(spe)])
    e1 = np.concatenate([ds.block_indices(spe + s, 4) for s in range(spe)])
    assert not np.array_equal(e0, e1)  # each epoch has its own order
    assert len(set(e0)) == len(e0) and len(set(e1)) == len(e1)
    assert ds.epoch_of(spe, 4) == 1 and ds.epoch_of(spe - 1, 4) == 0
    assert not np.array_equal(CausalBlocks(stream, 8, seed=4).block_indices(0, 4), ds.block_indices(0, 4))
    # Ranks: disjoint blocks every epoch, same number of steps.
    W = 3
    ranks = [CausalBlocks(stream, 8, rank=r, world_size=W, seed=3) for r in range(W)]
    assert len({r.steps_per_epoch(4) for r in ranks}) == 1
    for epoch in (0, 1):
        per_rank = [set(r.epoch_order(epoch).tolist()) for r in ranks]
        for i in range(W):
            for j in range(i + 1, W):
                assert not per_rank[i] & per_rank[j]
        assert sum(map(len, per_rank)) == (ds.n_blocks // W) * W


def test_causal_blocks_errors():
    with pytest.raises(UserError):
        CausalBlocks(np.arange(20), 8).batch(0, 4)
    with pytest.raises(ValueError):
        CausalBlocks(np.arange(20), 8, rank=2, world_size=2)
    with pytest.raises(ValueError):
        ArrayStream(np.zeros((2, 3), dtype=np.int64))


def test_causal_blocks_over_encoded_corpus(tiny_corpus, tmp_path):
    vocab = Vocab.load(tiny_corpus["vocab"])
    corpus = EncodedCorpus(tiny_corpus["train"], vocab, cache_dir=str(tmp_path), progress=False, max_chars=None)
    ds = CausalBlocks(corpus, 16, seed=0)
    words, _ = corpus.gather(0, corpus.n_tokens)
    idx = ds.block_indices(0, 2)
    b = ds.batch(0, 2)
    for j, i in enumerate(idx):
        assert np.array_equal(b["input_ids"][j], words[i * 16: i * 16 + 16])
        assert np.array_equal(b["labels"][j], words[i * 16 + 1: i * 16 + 17])
    assert ds.geometry["corpus"] == corpus.identity


def _stream(n: int, seed: int = 0) -> np.ndarray:
    """Sentences <S> w.. </S> of word ids >= 6."""
    rng = np.random.default_rng(seed)
    out: list[int] = []
    while len(out) < n:
        out += [BOS, *rng.integers(6, VOCAB, size=int(rng.integers(3, 12))).tolist(), EOS]
    return np.array(out[:n], dtype=np.int64)


def _masked(stream, **kw) -> MaskedBlocks:
    return MaskedBlocks(stream, 32, cls_id=CLS, sep_id=SEP, mask_id=MASK, vocab_size=VOCAB,
                        special_ids=[PAD, BOS, EOS], **kw)


def test_masked_blocks_layout_labels_and_specials():
    stream = _stream(20_000)
    ds = _masked(stream, seed=2)
    spe = ds.steps_per_epoch(8)
    seen = []
    n_sel = n_tok = 0
    for s in range(spe):
        b = ds.batch(s, 8)
        ids, labels = b["input_ids"], b["labels"]
        assert ids.shape == labels.shape == (8, 32)
        assert np.all(b["attention_mask"] == 1) and np.all(b["token_type_ids"] == 0)
        assert np.all(ids[:, 0] == CLS) and np.all(ids[:, -1] == SEP)
        # Original rows: labels where selected, the input elsewhere (unselected positions are untouched).
        orig = np.where(labels != IGNORE_INDEX, labels, ids)
        for j, blk in enumerate(ds.block_indices(s, 8)):
            assert np.array_equal(orig[j, 1:-1], stream[blk * 30: blk * 30 + 30])
        seen += ds.block_indices(s, 8).tolist()
        special = np.isin(orig, [PAD, CLS, SEP, MASK, BOS, EOS])
        assert np.all(labels[special] == IGNORE_INDEX)  # specials never selected
        assert np.array_equal(ids[special], orig[special])
        changed = ids != orig
        assert np.all(labels[changed] != IGNORE_INDEX)  # labels exactly where tokens were selected
        rand = changed & (ids != MASK)
        assert not np.isin(ids[rand], [PAD, CLS, SEP, MASK, BOS, EOS]).any()  # random ids are non-special
        n_sel += int((labels != IGNORE_INDEX).sum())
        n_tok += int((~special).sum())
    assert len(seen) == len(set(seen)) == spe * 8
    assert abs(n_sel / n_tok - 0.15) < 0.02


def test_masked_blocks_reproducible_per_step_and_rank():
    stream = _stream(10_000)
    a, b = _masked(stream, seed=1), _masked(stream, seed=1)
    for s in (0, 3):
        x, y = a.batch(s, 4), b.batch(s, 4)
        assert all(np.array_equal(x[k], y[k]) for k in x)
    spe = a.steps_per_epoch(4)
    assert not np.array_equal(a.batch(0, 4)["input_ids"], a.batch(1, 4)["input_ids"])
    # The same block in a later epoch gets a fresh mask.
    blk = a.block_indices(0, 4)[0]
    later = next(s for s in range(spe, 2 * spe) if blk in a.block_indices(s, 4))
    j = int(np.flatnonzero(a.block_indices(later, 4) == blk)[0])
    assert not np.array_equal(a.batch(0, 4)["labels"][0], a.batch(later, 4)["labels"][j])
    r0, r1 = (_masked(stream, seed=1, rank=r, world_size=2) for r in range(2))
    assert not set(r0.epoch_order(0).tolist()) & set(r1.epoch_order(0).tolist())


def test_masked_blocks_whole_word():
    stream = _stream(5_000)
    table = np.zeros(VOCAB, dtype=bool)
    table[::2] = True  # even ids start words; odd ids continue them
    ds = _masked(stream, seed=0, word_start_table=table, mlm_probability=0.3)
    b = ds.batch(0, 16)
    ids, labels = b["input_ids"], b["labels"]
    orig = np.where(labels != IGNORE_INDEX, labels, ids)
    maskable = ~np.isin(orig, [PAD, CLS, SEP, MASK, BOS, EOS])
    starts = table[orig] | ~np.roll(maskable, 1, axis=1)
    sel = labels != IGNORE_INDEX
    for r in range(ids.shape[0]):
        word = -1
        for c in range(ids.shape[1]):
            if not maskable[r, c]:
                word = -1
                continue
            if starts[r, c]:
                word = sel[r, c]
            assert sel[r, c] == word  # each piece shares its word's selection
