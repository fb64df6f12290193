"""AllenNLP's ELMo side of bench/bench_vs_allennlp.py: encode tokenized sentences with
`allennlp.modules.elmo._ElmoBiLm` from bilm-tf's ``options.json`` + ``weights.hdf5``, timing the encode loop.

    $ALLENNLP_VENV/bin/python bench/allennlp_elmo.py --options O --weights W --sentences FILE \\
        --result R.json [--vectors V.npz --parity 100] [--threads 2] [--batch_size 64]

Runs under the AllenNLP venv's Python (`bash ../shared/tools/allennlp-venv.sh DIR`), which has no Paddle: it
imports nothing of paddle_lm. The sentences are sorted longest first (a stable sort, as paddle-lm's
`ELMoEmbedder.encode` does, so both sides run the same batches) and cut into batches of `--batch_size`; each
batch goes through `batch_to_ids` and `_ElmoBiLm` in eval mode under `torch.no_grad()`, with the biLM's LSTM
state reset to zeros first (AllenNLP's ELMo LSTM is stateful across calls; paddle-lm's embedder starts every
sentence from zeros). The <S> / </S> positions are stripped with `remove_sentence_boundaries`, and each
sentence's vectors become one numpy ``[L, n_tokens, 2P]`` array (layer 0 = the token layer duplicated, then
each LSTM layer forward || backward), as `ELMoEmbedder.encode` returns them.

The timer covers that loop alone (char ids, forward, stripping, numpy copies); loading the model does not
count. Peak RSS is the process's own high-water mark (VmHWM), model included. The helpers above `main` use only the standard
library and numpy, so the paddle-lm side of the bench imports them too: both sides read sentences, order
them and write their results the same way.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings


def read_sentences(path: str) -> list[list[str]]:
    """One tokenized sentence per non-empty line of UTF-8 file `path`, split on whitespace."""
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def length_order(sentences: list[list[str]]) -> list[int]:
    """Sentence indices longest first, ties in input order (paddle-lm's embedder.iter_encoded order)."""
    return sorted(range(len(sentences)), key=lambda i: len(sentences[i]), reverse=True)


def peak_rss_mib() -> float:
    """This process's peak resident set so far, MiB: /proc/self/status VmHWM, the high-water mark of this
    program's own memory. Not ``ru_maxrss``: Linux carries that over from the parent across fork and exec, so a
    child of the bench (which holds the model it exported) would report the bench's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_outputs(vectors: list, seconds: float, args: argparse.Namespace, side: str) -> None:
    """The result JSON (`args.result`) and, for the first `args.parity` sentences, their vectors concatenated
    over tokens (`args.vectors`, an .npz: ``vectors [L, sum n_tokens, 2P]`` and ``lengths [parity]``)."""
    import numpy as np

    n = len(vectors)
    tokens = sum(v.shape[1] for v in vectors)
    result = {"side": side, "sentences": n, "tokens": tokens, "seconds": seconds,
              "sentences_per_s": n / seconds, "tokens_per_s": tokens / seconds, "peak_rss_mib": peak_rss_mib(),
              "threads": args.threads, "batch_size": args.batch_size}
    if args.vectors and args.parity > 0:
        first = vectors[:args.parity]
        np.savez(args.vectors, vectors=np.concatenate(first, axis=1),  # [L, sum n, 2P]
                 lengths=np.array([v.shape[1] for v in first]))  # [parity]
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(result, f)


def side_parser(description: str) -> argparse.ArgumentParser:
    """The arguments both sides' child processes take (the model's own arguments are added by each side)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", required=True, help="tokenized text, one sentence per line")
    p.add_argument("--result", required=True, help="where to write the result JSON")
    p.add_argument("--vectors", default="", help="where to write the parity sentences' vectors (.npz)")
    p.add_argument("--parity", type=int, default=100, help="how many of the first sentences go to --vectors")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads")
    p.add_argument("--batch_size", type=int, default=64, help="sentences per batch")
    return p


def main() -> None:
    p = side_parser(__doc__)
    p.add_argument("--options", required=True, help="bilm-tf options.json")
    p.add_argument("--weights", required=True, help="bilm-tf weights.hdf5")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(args.threads)
    from allennlp.modules.elmo import _ElmoBiLm, batch_to_ids
    from allennlp.nn.util import remove_sentence_boundaries

    sentences = read_sentences(args.sentences)
    bilm = _ElmoBiLm(args.options, args.weights)
    bilm.eval()
    order = length_order(sentences)
    vectors: list = [None] * len(sentences)
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(order), args.batch_size):
            idx = order[first:first + args.batch_size]
            bilm._elmo_lstm.reset_states()  # zero start for every batch, as paddle-lm's embedder does
            char_ids = batch_to_ids([sentences[i] for i in idx])  # [B, T, 50]
            out = bilm(char_ids)  # activations: L x [B, T+2, 2P]; mask [B, T+2]
            layers = [remove_sentence_boundaries(a, out["mask"])[0] for a in out["activations"]]  # L x [B, T, 2P]
            stacked = torch.stack(layers, dim=1).numpy()  # [B, L, T, 2P]
            for row, i in enumerate(idx):
                vectors[i] = stacked[row, :, :len(sentences[i])].copy()  # [L, n, 2P]
    seconds = time.perf_counter() - start
    write_outputs(vectors, seconds, args, "allennlp")


if __name__ == "__main__":
    try:
        main()
    except ImportError as e:
        sys.exit(f"allennlp_elmo.py: {e}; run it with the AllenNLP venv's python "
                 f"(bash ../shared/tools/allennlp-venv.sh /tmp/allennlp-venv)")
