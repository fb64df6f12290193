"""Fixed-length block datasets over a 1-D token stream: GPT causal-LM blocks and BERT masked-LM blocks.

The stream is anything with ``n_tokens`` and ``gather(start, end) -> (ids int64 [n], ...)`` (an
`EncodedCorpus`), or a plain 1-D integer array; `as_token_stream` adapts both.

Block order (shared by both datasets):

- The stream is cut into ``n_blocks`` non-overlapping blocks; the tokens after the last full block (the tail,
  shorter than one block) are never read.
- Each epoch visits the blocks in a permutation seeded by ``(seed, epoch)``. Position i of that permutation
  goes to rank ``i % world_size`` (as torch's DistributedSampler), so ranks read disjoint blocks every epoch
  and each rank gathers only its own blocks. Each rank keeps ``n_blocks // world_size`` blocks per epoch and
  each step reads ``batch_size`` of them; the few blocks left over (at most ``world_size * batch_size - 1``,
  the end of that epoch's permutation) are skipped that epoch, so every rank runs the same number of steps
  and every batch has the same shape.
- **The data position is the global step.** ``batch(step, batch_size)`` is a pure function of
  ``(stream, geometry, seed, rank, step)``: epoch = ``step // steps_per_epoch``, so a resumed run only needs
  the step to see exactly the data it would have seen.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from paddle_lm.data.masking import IGNORE_INDEX, mask_tokens
from paddle_lm.errors import UserError


class TokenStream(Protocol):
    """A 1-D token stream: `EncodedCorpus` and `ArrayStream` both satisfy it."""

    n_tokens: int

    def gather(self, start: int, end: int) -> tuple: ...


class ArrayStream:
    """Adapts a 1-D integer array to the `TokenStream` interface (``gather`` returns ``(ids, None)``)."""

    def __init__(self, ids: np.ndarray):
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"a token stream must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        self.ids = ids  # [n_tokens]
        self.n_tokens = len(ids)

    def gather(self, start: int, end: int) -> tuple[np.ndarray, None]:
        return np.asarray(self.ids[max(start, 0): min(end, self.n_tokens)], dtype=np.int64), None


def as_token_stream(stream: TokenStream | np.ndarray) -> TokenStream:
    """`stream` itself when it has ``n_tokens`` and ``gather``, else an `ArrayStream` over the array."""
    if hasattr(stream, "n_tokens") and hasattr(stream, "gather"):
        return stream
    return ArrayStream(np.asarray(stream))


class _Blocks:
    """Block order, rank split and step arithmetic shared by `CausalBlocks` and `MaskedBlocks`."""

    def __init__(self, stream: TokenStream | np.ndarray, stride: int, window: int, rank: int, world_size: int,
                 seed: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.stream = as_token_stream(stream)
        self.stride, self.window = stride, window  # block i reads stream[i*stride : i*stride + window]
        self.rank, self.world_size, self.seed = rank, world_size, seed
        n = self.stream.n_tokens
        self.n_blocks = (n - window) // stride + 1 if n >= window else 0
        self.blocks_per_rank = self.n_blocks // world_size
        self._order: tuple[int, np.ndarray] | None = None  # cached (epoch, this rank's blocks)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Full batches per rank per epoch (the same on every rank)."""
        return self.blocks_per_rank // batch_size

    def _check(self, batch_size: int) -> int:
        spe = self.steps_per_epoch(batch_size)
        if spe == 0:
            raise UserError(
                f"the stream has {self.stream.n_tokens} tokens = {self.n_blocks} blocks of {self.window}, too "
                f"few for a batch of {batch_size} on each of {self.world_size} ranks; lower the batch size or "
                "the block length")
        return spe

    def epoch_order(self, epoch: int) -> np.ndarray:
        """This rank's block indices for `epoch`, in visiting order ``[blocks_per_rank]``."""
        if self._order is None or self._order[0] != epoch:
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_blocks)  # [n_blocks]
            mine = perm[self.rank::self.world_size][: self.blocks_per_rank]
            self._order = (epoch, mine)
        return self._order[1]

    def block_indices(self, step: int, batch_size: int) -> np.ndarray:
        """Indices ``[batch_size]`` of the blocks read at global step `step`."""
        if step < 0:
            raise IndexError(f"step {step} < 0")
        spe = self._check(batch_size)
        epoch, s = divmod(step, spe)
        return self.epoch_order(epoch)[s * batch_size: (s + 1) * batch_size]

    def make_batch(self, blocks: np.ndarray, step: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def batch(self, step: int, batch_size: int) -> dict[str, np.ndarray]:
        """The batch of global step `step` (see `make_batch` for its arrays)."""
        return self.make_batch(self.block_indices(step, batch_size), step)

    def epoch_of(self, step: int, batch_size: int) -> int:
        return step // self._check(batch_size)

    def _windows(self, blocks: np.ndarray) -> np.ndarray:
        """Token ids ``[len(blocks), window]`` int64 of the given blocks."""
        out = np.empty((len(blocks), self.window), dtype=np.int64)
        for j, b in enumerate(blocks):
            start = int(b) * self.stride
            out[j] = self.stream.gather(start, start + self.window)[0]
        return out

    @property
    def geometry(self) -> dict:
        """What a checkpoint records to check that a resumed run reads the same data."""
        return {"stride": self.stride, "window": self.window, "n_blocks": self.n_blocks,
                "world_size": self.world_size, "seed": self.seed, "n_tokens": self.stream.n_tokens,
                "corpus": getattr(self.stream, "identity", None)}


class CausalBlocks(_Blocks):
    """GPT causal-LM blocks: windows of ``block_size + 1`` tokens at stride ``block_size``.

    Block i covers stream positions ``i*block_size .. i*block_size + block_size``; its input is the first
    ``block_size`` tokens and its labels the last ``block_size`` (the input shifted by one). Every stream position
    except the tail is an input of exactly one block, and every label position is in the stream (no padding).
    """

    def __init__(self, stream: TokenStream | np.ndarray, block_size: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        super().__init__(stream, stride=block_size, window=block_size + 1, rank=rank, world_size=world_size,
                         seed=seed)
        self.block_size = block_size

    @property
    def seq_len(self) -> int:
        return self.block_size

    def make_batch(self, blocks: np.ndarray, step: int) -> dict[str, np.ndarray]:
        """``input_ids`` and ``labels`` int64 ``[len(blocks), block_size]`` of the given blocks (`step` unused)."""
        win = self._windows(blocks)  # [B, block_size + 1]
        return {"input_ids": win[:, :-1], "labels": win[:, 1:]}


class MaskedBlocks(_Blocks):
    """BERT masked-LM blocks: packed ``[CLS] t_1 .. t_{L-2} [SEP]`` rows with dynamic masking.

    Packing (RoBERTa FULL-SENTENCES style): the stream is cut into consecutive chunks of ``max_seq_len - 2``
    tokens regardless of sentence boundaries (the stream's own sentence markers, e.g. ``<S>``/``</S>``, stay in
    and should be listed in `special_ids`). Rows are never padded, so ``attention_mask`` is all ones and
    ``token_type_ids`` all zeros (one segment; no next-sentence prediction).

    Masking: `mask_tokens` with ``np.random.default_rng([seed, rank, step])``, so a batch is the same every time
    it is built and a different mask is drawn each time a block is revisited in a later epoch. Positions
    holding any of `special_ids` (always including `cls_id` and `sep_id`) are never masked. With
    `word_start_table` (bool ``[vocab_size]``, True for ids that begin a word, e.g. subword pieces without a
    continuation prefix) whole words are masked together.
    """

    def __init__(self, stream: TokenStream | np.ndarray, max_seq_len: int, *, cls_id: int, sep_id: int,
                 mask_id: int, vocab_size: int, special_ids: list[int] | np.ndarray = (), rank: int = 0,
                 world_size: int = 1, seed: int = 0, mlm_probability: float = 0.15, mask_fraction: float = 0.8,
                 random_fraction: float = 0.1, random_ids: np.ndarray | None = None,
                 word_start_table: np.ndarray | None = None, ignore_index: int = IGNORE_INDEX):
        if max_seq_len < 3:
            raise ValueError(f"max_seq_len must be >= 3 ([CLS] token [SEP]), got {max_seq_len}")
        chunk = max_seq_len - 2
        super().__init__(stream, stride=chunk, window=chunk, rank=rank, world_size=world_size, seed=seed)
        self.max_seq_len, self.cls_id, self.sep_id, self.mask_id = max_seq_len, cls_id, sep_id, mask_id
        self.vocab_size, self.ignore_index = vocab_size, ignore_index
        self.special_ids = np.unique(np.concatenate(
            [np.asarray(special_ids, dtype=np.int64).ravel(), [cls_id, sep_id, mask_id]]))  # [S]
        if random_ids is None:  # uniform over every non-special id
            random_ids = np.setdiff1d(np.arange(vocab_size, dtype=np.int64), self.special_ids)
        self.random_ids = np.asarray(random_ids, dtype=np.int64)  # [K]
        if len(self.random_ids) == 0:
            raise ValueError("no ids left to draw random replacement tokens from")
        self.word_start_table = None if word_start_table is None else np.asarray(word_start_table, dtype=bool)
        self.mlm = {"mlm_probability": mlm_probability, "mask_fraction": mask_fraction,
                    "random_fraction": random_fraction}

    @property
    def seq_len(self) -> int:
        return self.max_seq_len

    def make_batch(self, blocks: np.ndarray, step: int) -> dict[str, np.ndarray]:
        """The given blocks masked with the RNG of `step`, every array int64 ``[len(blocks), max_seq_len]``:

        ``input_ids`` (masked), ``labels`` (original id at selected positions, `ignore_index` elsewhere),
        ``attention_mask`` (ones), ``token_type_ids`` (zeros).
        """
        body = self._windows(blocks)  # [B, L-2]
        B = len(body)
        ids = np.empty((B, self.max_seq_len), dtype=np.int64)  # [B, L]
        ids[:, 0], ids[:, -1], ids[:, 1:-1] = self.cls_id, self.sep_id, body
        special = np.isin(ids, self.special_ids)  # [B, L]
        starts = None if self.word_start_table is None else self.word_start_table[ids]  # [B, L]
        rng = np.random.default_rng([self.seed, self.rank, step])
        masked, labels = mask_tokens(ids, rng, mask_id=self.mask_id, vocab_size=self.vocab_size,
                                     special_mask=special, word_starts=starts, random_ids=self.random_ids,
                                     ignore_index=self.ignore_index, **self.mlm)
        return {"input_ids": masked, "labels": labels, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}


class BlockBatches:
    """A `CausalBlocks` or `MaskedBlocks` dataset at a fixed batch size, with the trainer's stream interface.

    ``batch(step)`` takes the **global** step (the block order depends on the epoch); ``steps_per_epoch`` and
    ``geometry`` as `BPTTStream`'s. With ``ordered=True`` (evaluation) the blocks are read once, in stream
    order, and the last batch may be smaller: ``batch(s)`` for ``s < steps_per_epoch`` covers every full block
    (masked blocks draw their masks from the RNG of ``(seed, rank, s)``, so an evaluation is repeatable).
    """

    def __init__(self, blocks: CausalBlocks | MaskedBlocks, batch_size: int, ordered: bool = False):
        self.blocks, self.batch_size, self.ordered = blocks, batch_size, ordered
        self.corpus = blocks.stream
        if ordered:
            if blocks.n_blocks == 0:
                raise UserError(f"the stream has {blocks.stream.n_tokens} tokens, fewer than one block of "
                                f"{blocks.window}; lower the sequence length")
            self.steps_per_epoch = -(-blocks.n_blocks // batch_size)  # ceil
        else:
            self.steps_per_epoch = blocks._check(batch_size)

    @property
    def geometry(self) -> dict:
        return {**self.blocks.geometry, "batch_size": self.batch_size, "seq_len": self.blocks.seq_len,
                "steps_per_epoch": self.steps_per_epoch}

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """The batch (arrays ``[B, seq_len]``) at global step `step`."""
        if not self.ordered:
            return self.blocks.batch(step, self.batch_size)
        B = self.batch_size
        return self.blocks.make_batch(np.arange(step * B, min((step + 1) * B, self.blocks.n_blocks)), step)
