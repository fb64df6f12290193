"""Dynamic masked-LM masking (BERT): a pure function of its inputs and an explicit RNG.

`mask_tokens` never mutates its input; it returns new ``masked_ids`` and ``labels`` arrays.

Choices (documented here once):

- **Selection is Bernoulli per unit** (a unit is a token, or a whole word with `word_starts`), with probability
  `mlm_probability`, as in BERT / HuggingFace's collator, so the selected fraction is ~15% in expectation.
  Special and padding positions (`special_mask`) are never units and never selected.
- **At least one unit per row**: a row that has maskable tokens but drew no unit gets one unit chosen
  uniformly among its units, so every row carries some loss. This raises the rate slightly only for very
  short rows (a row of n maskable units is selected at a rate of about ``p + (1-p)^n / n``).
- **80/10/10 per unit**: each selected unit gets one decision: `mask_fraction` -> all its pieces become
  `mask_id`; `random_fraction` -> each piece becomes an independently drawn random token; otherwise the pieces
  are kept. With whole-word masking a word is therefore never half-masked.
- **Random tokens** are uniform over `random_ids` when given (e.g. all non-special ids), else uniform over
  ``[random_low, vocab_size)`` (put the special ids first in the vocabulary and set `random_low` past them).
  A random token may equal the original (as in BERT).
- **Words** (`word_starts`): a word is a maskable start position plus the following maskable non-start
  positions. A maskable position right after a special/padding position (or at column 0) starts a word even
  when its `word_starts` entry is False, so words never span special tokens or rows.
- The RNG draws a fixed number of values for a given input (one uniform per unit for selection, one per unit
  for the decision, then the fallback picks and random tokens), so the same seed gives the same output.
"""

from __future__ import annotations

import numpy as np

IGNORE_INDEX = -100


def special_tokens_mask(input_ids: np.ndarray, special_ids: np.ndarray | list[int]) -> np.ndarray:
    """Bool ``[B, L]``: True where `input_ids` is one of `special_ids` (specials and padding: never masked)."""
    return np.isin(input_ids, np.asarray(special_ids, dtype=np.int64))


def _unit_ids(maskable: np.ndarray, word_starts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Number each maskable unit (token, or word) 0..U-1 in row-major order.

    Returns the unit of each position ``[B, L]`` (-1 where not maskable) and the row of each unit ``[U]``.
    """
    prev = np.zeros_like(maskable)  # [B, L] previous position is maskable (same row)
    prev[:, 1:] = maskable[:, :-1]
    if word_starts is None:
        starts = maskable  # every maskable token is its own unit
    else:
        starts = maskable & (np.asarray(word_starts, dtype=bool) | ~prev)  # [B, L]
    ids = np.cumsum(starts.ravel()).reshape(maskable.shape) - 1  # [B, L]
    return np.where(maskable, ids, -1), np.nonzero(starts)[0]


def mask_tokens(
    input_ids: np.ndarray,
    rng: np.random.Generator,
    *,
    mask_id: int,
    vocab_size: int,
    special_mask: np.ndarray,
    mlm_probability: float = 0.15,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
    word_starts: np.ndarray | None = None,
    random_low: int = 0,
    random_ids: np.ndarray | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply dynamic MLM masking to a batch (see the module doc for the exact rules).

    Args:
        input_ids: int ``[B, L]`` token ids (not modified).
        rng: the random generator; all randomness comes from it.
        mask_id: id of ``[MASK]``.
        vocab_size: number of ids; random tokens are drawn below it.
        special_mask: bool ``[B, L]``, True at special and padding positions (never selected).
        mlm_probability: chance that a unit (token or word) is selected.
        mask_fraction: share of selected units replaced by `mask_id`.
        random_fraction: share of selected units replaced by random tokens (the rest are kept).
        word_starts: optional bool ``[B, L]``, True where a word starts: enables whole-word masking.
        random_low: random tokens are uniform over ``[random_low, vocab_size)`` when `random_ids` is None.
        random_ids: optional int ``[K]`` allowed random tokens (e.g. all non-special ids).
        ignore_index: label at positions that are not selected.

    Returns:
        ``(masked_ids, labels)``: ``masked_ids`` ``[B, L]`` with the input's dtype, ``labels`` int64
        ``[B, L]`` = the original id at selected positions, `ignore_index` elsewhere.
    """
    ids = np.asarray(input_ids)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, seq_len], got shape {ids.shape}")
    special = np.asarray(special_mask, dtype=bool)
    if special.shape != ids.shape:
        raise ValueError(f"special_mask shape {special.shape} != input_ids shape {ids.shape}")
    if word_starts is not None and np.shape(word_starts) != ids.shape:
        raise ValueError(f"word_starts shape {np.shape(word_starts)} != input_ids shape {ids.shape}")
    if not (0.0 <= mask_fraction and 0.0 <= random_fraction and mask_fraction + random_fraction <= 1.0):
        raise ValueError("mask_fraction and random_fraction must be >= 0 and sum to at most 1")
    if random_ids is None and not 0 <= random_low < vocab_size:
        raise ValueError(f"random_low {random_low} must lie in [0, vocab_size={vocab_size})")

    maskable = ~special  # [B, L]
    unit, unit_row = _unit_ids(maskable, word_starts)  # [B, L] unit index or -1; [U] row of each unit
    n_units = len(unit_row)
    # Selection: Bernoulli per unit, then one fallback unit for rows that have units but none selected.
    picked = rng.random(n_units) < mlm_probability  # [U]
    decide = rng.random(n_units)  # [U] 80/10/10 decision draw
    units_per_row = np.bincount(unit_row, minlength=ids.shape[0])  # [B]
    hits_per_row = np.bincount(unit_row, weights=picked, minlength=ids.shape[0])  # [B]
    lacking = np.flatnonzero((units_per_row > 0) & (hits_per_row == 0))  # rows needing a fallback
    if lacking.size:
        row_first = np.concatenate([[0], np.cumsum(units_per_row)[:-1]])  # [B] first unit id of each row
        offs = rng.integers(0, units_per_row[lacking])  # [len(lacking)]
        picked[row_first[lacking] + offs] = True

    tok_unit = np.where(unit >= 0, unit, 0)  # [B, L] safe index
    selected = maskable & picked[tok_unit]  # [B, L]
    to_mask = selected & (decide[tok_unit] < mask_fraction)  # [B, L]
    to_random = selected & ~to_mask & (decide[tok_unit] < mask_fraction + random_fraction)  # [B, L]

    masked = ids.copy()  # [B, L]
    masked[to_mask] = mask_id
    n_random = int(to_random.sum())
    if n_random:
        if random_ids is not None:
            pool = np.asarray(random_ids, dtype=np.int64)
            draws = pool[rng.integers(0, len(pool), size=n_random)]
        else:
            draws = rng.integers(random_low, vocab_size, size=n_random)
        masked[to_random] = draws.astype(masked.dtype)
    labels = np.where(selected, ids, ignore_index).astype(np.int64)  # [B, L]
    return masked, labels
