"""BPTT stream batches for the LSTM LM and the ELMo biLM (bilm-tf's data layout).

The corpus stream (sentences as ``<S> w1 .. wn </S>``) is cut into ``batch_size * world_size`` contiguous
rows; rank r owns rows ``r*B .. r*B+B-1`` (disjoint parts of the data). Step s of an epoch reads positions
``start_row + s*T .. +T`` of each of its rows, so consecutive batches continue each row and the model's
recurrent state is carried from one step to the next. Every stream position is an input exactly once per
epoch; the last step of an epoch may be partly padded (mask 0).

Targets: forward = next token, backward = previous token. Cross-sentence targets are not counted: the
forward target ``<S>`` (after ``</S>``) and the backward target ``</S>`` (before ``<S>``) have mask 0, so the
loss is that of predicting each sentence's words plus its end (forward) or start (backward) marker.

The data position is just the step: batch(s) is a pure function of (corpus, geometry, s).
"""

from __future__ import annotations

import numpy as np

from paddle_lm.data.chars import distinct_rows
from paddle_lm.data.shards import EncodedCorpus
from paddle_lm.errors import UserError


class BPTTStream:
    def __init__(self, corpus: EncodedCorpus, batch_size: int, unroll_steps: int, rank: int = 0,
                 world_size: int = 1):
        rows = batch_size * world_size
        n = corpus.n_tokens
        if n < 2 * rows:
            raise UserError(f"the corpus has {n} tokens, too few for {rows} rows "
                            f"(--batch_size {batch_size} x {world_size} ranks); lower --batch_size")
        self.corpus, self.batch_size, self.unroll = corpus, batch_size, unroll_steps
        bounds = [r * n // rows for r in range(rows + 1)]
        mine = range(rank * batch_size, (rank + 1) * batch_size)
        self.row_start = np.array([bounds[r] for r in mine], dtype=np.int64)  # [B]
        self.row_end = np.array([bounds[r + 1] for r in mine], dtype=np.int64)  # [B]
        longest = max(bounds[r + 1] - bounds[r] for r in range(rows))
        self.steps_per_epoch = -(-longest // unroll_steps)  # ceil: every position is an input once

    @property
    def geometry(self) -> dict:
        return {"batch_size": self.batch_size, "unroll_steps": self.unroll,
                "steps_per_epoch": self.steps_per_epoch, "corpus": self.corpus.identity,
                "n_tokens": self.corpus.n_tokens}

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """Arrays for step `step` of an epoch: token_ids/fw_targets/bw_targets [B,T] int64, masks [B,T]
        float32, and char_ids [B,T,C] int32 when the corpus has char ids, with its distinct tokens char_unique
        [U,C] and char_inverse [B*T] (data.chars.distinct_rows: the char-CNN runs once per distinct token)."""
        if not 0 <= step < self.steps_per_epoch:
            raise IndexError(f"step {step} outside the epoch's {self.steps_per_epoch} steps")
        B, T, vocab = self.batch_size, self.unroll, self.corpus.vocab
        C = self.corpus.max_chars
        n = self.corpus.n_tokens
        # window[:, j] is stream position p0 - 1 + j, j in [0, T+2): previous token, T inputs, next token.
        win = np.zeros((B, T + 2), dtype=np.int64)  # [B, T+2]
        valid = np.zeros((B, T + 2), dtype=bool)  # [B, T+2]
        chars = np.zeros((B, T, C), dtype=np.int32) if C else None  # [B, T, C]
        in_row = np.zeros((B, T), dtype=bool)  # [B, T] input position belongs to this row
        for b in range(B):
            p0 = int(self.row_start[b]) + step * T
            p1 = min(p0 + T, int(self.row_end[b]))  # inputs p0..p1-1
            if p1 <= p0:
                continue
            in_row[b, : p1 - p0] = True
            lo, hi = max(p0 - 1, 0), min(p1 + 1, n)
            words, ch = self.corpus.gather(lo, hi)
            j0 = lo - (p0 - 1)
            win[b, j0: j0 + len(words)] = words
            valid[b, j0: j0 + len(words)] = True
            if chars is not None:
                chars[b, : p1 - p0] = ch[p0 - lo: p1 - lo]
        token_ids = np.where(in_row, win[:, 1:-1], 0)  # [B, T]
        fw_targets, bw_targets = win[:, 2:], win[:, :-2]  # [B, T] each
        fw_mask = in_row & valid[:, 2:] & (fw_targets != vocab.bos)
        bw_mask = in_row & valid[:, :-2] & (bw_targets != vocab.eos)
        out = {
            "token_ids": token_ids,
            "fw_targets": fw_targets, "bw_targets": bw_targets,
            "fw_mask": fw_mask.astype(np.float32), "bw_mask": bw_mask.astype(np.float32),
        }
        if chars is not None:
            out["char_ids"] = chars
            out["char_unique"], out["char_inverse"] = distinct_rows(chars)  # [U, C], [B*T]
        return out
