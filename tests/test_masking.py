"""Dynamic MLM masking: rates, specials, labels, determinism, no mutation, whole-word masking."""

from __future__ import annotations

import numpy as np
import pytest

from paddle_lm.data.masking import IGNORE_INDEX, mask_tokens, special_tokens_mask

PAD, CLS, SEP, MASK = 0, 1, 2, 3
N_SPECIAL, VOCAB = 4, 1000


def _batch(B: int, L: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """[CLS] words.. [SEP] PAD.. rows of random lengths, and their special mask."""
    rng = np.random.default_rng(seed)
    ids = np.full((B, L), PAD, dtype=np.int64)  # [B, L]
    for b in range(B):
        n = int(rng.integers(L // 2, L - 1))
        ids[b, 0], ids[b, 1: n + 1], ids[b, n + 1] = CLS, rng.integers(N_SPECIAL, VOCAB, size=n), SEP
    return ids, special_tokens_mask(ids, [PAD, CLS, SEP, MASK])


def _mask(ids, special, seed=0, **kw):
    return mask_tokens(ids, np.random.default_rng(seed), mask_id=MASK, vocab_size=VOCAB, special_mask=special,
                       random_low=N_SPECIAL, **kw)


def test_rates_over_many_tokens():
    ids, special = _batch(1600, 256)  # ~200k maskable tokens
    masked, labels = _mask(ids, special)
    selected = labels != IGNORE_INDEX
    n_maskable, n_sel = int((~special).sum()), int(selected.sum())
    assert n_maskable > 150_000
    assert abs(n_sel / n_maskable - 0.15) < 0.005
    is_mask = selected & (masked == MASK)
    kept = selected & (masked == ids)
    rand = selected & ~is_mask & ~kept  # a random draw equal to the original counts as kept (p = 1/996)
    assert abs(is_mask.sum() / n_sel - 0.8) < 0.01
    assert abs(rand.sum() / n_sel - 0.1) < 0.01
    assert abs(kept.sum() / n_sel - 0.1) < 0.01
    # Unselected positions are untouched.
    assert np.array_equal(masked[~selected], ids[~selected])


def test_specials_never_selected_and_labels_ignore_elsewhere():
    ids, special = _batch(64, 40, seed=3)
    masked, labels = _mask(ids, special, mlm_probability=0.9)
    assert np.all(labels[special] == IGNORE_INDEX)
    assert np.array_equal(masked[special], ids[special])
    sel = labels != IGNORE_INDEX
    assert np.array_equal(labels[sel], ids[sel])
    assert labels.dtype == np.int64 and masked.dtype == ids.dtype and masked.shape == ids.shape


def test_random_replacements_are_never_special():
    ids, special = _batch(200, 64, seed=1)
    masked, labels = _mask(ids, special, mask_fraction=0.0, random_fraction=1.0, mlm_probability=0.5)
    sel = labels != IGNORE_INDEX
    assert sel.sum() > 1000
    assert masked[sel].min() >= N_SPECIAL and masked[sel].max() < VOCAB
    allowed = np.array([7, 11, 13])
    masked, labels = mask_tokens(ids, np.random.default_rng(0), mask_id=MASK, vocab_size=VOCAB,
                                 special_mask=special, mask_fraction=0.0, random_fraction=1.0,
                                 random_ids=allowed)
    assert set(np.unique(masked[labels != IGNORE_INDEX]).tolist()) == {7, 11, 13}


def test_same_seed_same_output_different_seed_differs_and_input_unchanged():
    ids, special = _batch(32, 64, seed=2)
    before, special_before = ids.copy(), special.copy()
    a = _mask(ids, special, seed=5)
    b = _mask(ids, special, seed=5)
    c = _mask(ids, special, seed=6)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert np.array_equal(ids, before) and np.array_equal(special, special_before)
    assert a[0] is not ids


def test_at_least_one_selection_per_row():
    ids, special = _batch(500, 8, seed=4)  # short rows: many would draw nothing at 15%
    _, labels = _mask(ids, special, mlm_probability=0.01)
    assert np.all((labels != IGNORE_INDEX).sum(axis=1) >= 1)
    # A row of only specials/padding selects nothing.
    ids[0] = PAD
    special = special_tokens_mask(ids, [PAD, CLS, SEP, MASK])
    _, labels = _mask(ids, special)
    assert np.all(labels[0] == IGNORE_INDEX)


def _words(labels_or_sel: np.ndarray, starts: np.ndarray, maskable: np.ndarray) -> list[np.ndarray]:
    """Per-word slices of a [B, L] array (a word = maskable start + following maskable non-starts)."""
    out = []
    for b in range(starts.shape[0]):
        j, L = 0, starts.shape[1]
        while j < L:
            if not maskable[b, j]:
                j += 1
                continue
            k = j + 1
            while k < L and maskable[b, k] and not starts[b, k]:
                k += 1
            out.append(labels_or_sel[b, j:k])
            j = k
    return out


def test_whole_word_masking_selects_and_decides_per_word():
    ids, special = _batch(400, 64, seed=7)
    rng = np.random.default_rng(9)
    starts = rng.random(ids.shape) < 0.4  # [B, L] words of ~2.5 pieces
    masked, labels = _mask(ids, special, word_starts=starts)
    sel = labels != IGNORE_INDEX
    words_sel = _words(sel, starts, ~special)
    assert all(w.all() or not w.any() for w in words_sel)  # every word fully selected or not at all
    frac = np.mean([w[0] for w in words_sel])
    assert abs(frac - 0.15) < 0.02  # words selected at ~15% (some rows get the one-word fallback)
    # One 80/10/10 decision per word: a selected word is all [MASK] or has no [MASK] at all.
    for w in _words(np.where(sel, masked == MASK, -1), starts, ~special):
        if w[0] != -1:
            assert w.all() or not w.any()
    assert np.all(labels[special] == IGNORE_INDEX)


def test_rejects_bad_shapes_and_fractions():
    ids, special = _batch(2, 10)
    with pytest.raises(ValueError):
        _mask(ids[0], special[0])
    with pytest.raises(ValueError):
        _mask(ids, special[:, :5])
    with pytest.raises(ValueError):
        _mask(ids, special, mask_fraction=0.8, random_fraction=0.3)
