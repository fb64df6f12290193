"""PyTorch reference for the word LSTM LM comparison (bench/bench_vs_torch.py): the usual PyTorch eager recipe,
written here from the architecture — embedding -> dropout -> nn.LSTM -> dropout -> linear softmax over the
vocabulary, full cross-entropy, the state carried (detached) from batch to batch, global-norm clipping and an
SGD step. Needs torch (`pip install -e '.[bench]'`), never imported by paddle_lm.

    python bench/torch_lstm_lm.py [--vocab 10000] [--embedding 256] [--hidden 512] [--layers 2] [--batch 32]
                                  [--unroll 35] [--steps 30] [--threads 2]

Prints one JSON line: the median tokens/s over the steps after the first five (random token ids: the speed does
not depend on the values).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn


class WordLSTMLM(nn.Module):
    def __init__(self, vocab: int, embedding: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, embedding)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embedding, hidden, layers, dropout=dropout, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, ids, state):
        x = self.drop(self.embed(ids))  # [B, T, E]
        y, state = self.lstm(x, state)  # [B, T, H]
        return self.out(self.drop(y)), state  # [B, T, V]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vocab", type=int, default=10_000)
    p.add_argument("--embedding", type=int, default=256)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--unroll", type=int, default=35)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = WordLSTMLM(args.vocab, args.embedding, args.hidden, args.layers, args.dropout)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss()
    state = tuple(torch.zeros(args.layers, args.batch, args.hidden) for _ in range(2))
    gen = torch.Generator().manual_seed(1)
    times = []
    for _ in range(args.steps):
        ids = torch.randint(0, args.vocab, (args.batch, args.unroll + 1), generator=gen)
        t = time.perf_counter()
        logits, state = model(ids[:, :-1], state)
        state = tuple(s.detach() for s in state)
        loss = loss_fn(logits.reshape(-1, args.vocab), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        float(loss.detach())  # the step's one host read
        times.append(time.perf_counter() - t)
    step = statistics.median(times[5:] or times)
    print(json.dumps({"tokens_per_s": args.batch * args.unroll / step, "step_s": step, "torch": torch.__version__,
                      "threads": args.threads}))


if __name__ == "__main__":
    main()
