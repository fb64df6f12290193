"""Autoregressive text generation for causal LMs (GPT-2): logits processors, sampling and the decoding loop.

The processors are pure functions over paddle logits ``[N, V]`` (N sequences, V vocabulary) that return new
tensors and never mutate their inputs. ``generate`` applies them in the usual order -- repetition penalty,
temperature, top-k, top-p -- then draws the next token with ``sample_next``.

Randomness: sampling happens on the host with an explicit ``numpy.random.Generator`` built from ``seed``,
drawn from the processed probabilities. Paddle's global RNG is process-wide state shared with dropout,
initialisers and anything else the caller runs, so seeding it would both disturb and be disturbed by other
code; a private generator makes ``generate(..., seed=s)`` reproducible on its own, on any device.

Decoding: a model with ``decode(ids, cache) -> (logits, cache)`` (the project's GPT-2, over paddlenlp's
key/value cache) runs the prompt once and then one new token per step; any other causal LM re-runs the whole
prefix at every step (quadratic in the output length, the same tokens).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import paddle
from paddle import nn

from paddle_lm.errors import UserError

NEG_INF = float("-inf")


# ----------------------------------------------------------------------------------------------- processors


def apply_repetition_penalty(logits: paddle.Tensor, generated_ids: paddle.Tensor, penalty: float) -> paddle.Tensor:
    """Penalise every token already present in ``generated_ids`` (the CTRL rule, Keskar et al. 2019).

    logits ``[N, V]``; generated_ids int ``[N, t]`` (the prefix so far, prompt included). For tokens present
    in row n, positive logits are divided by ``penalty`` and negative ones multiplied by it, so ``penalty > 1``
    always lowers their probability and ``penalty == 1`` is the identity. Returns ``[N, V]``.
    """
    if penalty == 1.0 or generated_ids.shape[1] == 0:
        return logits
    seen = paddle.put_along_axis(paddle.zeros_like(logits), generated_ids.astype("int64"), 1.0, axis=1)  # [N, V]
    penalised = paddle.where(logits > 0, logits / penalty, logits * penalty)  # [N, V]
    return paddle.where(seen > 0, penalised, logits)  # [N, V]


def apply_temperature(logits: paddle.Tensor, temperature: float) -> paddle.Tensor:
    """Logits ``[N, V]`` divided by ``temperature`` (> 0): below 1 sharpens, above 1 flattens the softmax."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return logits if temperature == 1.0 else logits / temperature


def top_k_filter(logits: paddle.Tensor, k: int) -> paddle.Tensor:
    """Keep exactly the ``k`` largest logits of each row ``[N, V]``, set the rest to -inf; ``k == 0`` disables.

    Ties at the k-th value are broken by ``paddle.topk``, so exactly k tokens survive.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    vocab = logits.shape[-1]
    if k == 0 or k >= vocab:
        return logits
    _, idx = paddle.topk(logits, k, axis=-1)  # [N, k]
    keep = paddle.put_along_axis(paddle.zeros_like(logits), idx, 1.0, axis=1)  # [N, V]
    return paddle.where(keep > 0, logits, paddle.full_like(logits, NEG_INF))  # [N, V]


def top_p_filter(logits: paddle.Tensor, p: float) -> paddle.Tensor:
    """Nucleus filtering: per row ``[N, V]`` keep the smallest set of most probable tokens whose total
    probability is >= ``p`` and set the rest to -inf. The most probable token is always kept; ``p == 1``
    disables (it keeps everything).
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if p == 1.0:
        return logits
    order = paddle.argsort(logits, axis=-1, descending=True)  # [N, V]
    sorted_logits = paddle.take_along_axis(logits, order, axis=1)  # [N, V]
    probs = paddle.nn.functional.softmax(sorted_logits, axis=-1)  # [N, V]
    mass_before = paddle.cumsum(probs, axis=-1) - probs  # [N, V] probability of the strictly better tokens
    keep_sorted = (mass_before < p).astype(logits.dtype)  # [N, V]; position 0 has mass 0 < p: always kept
    keep = paddle.put_along_axis(paddle.zeros_like(logits), order, keep_sorted, axis=1)  # [N, V] original order
    return paddle.where(keep > 0, logits, paddle.full_like(logits, NEG_INF))  # [N, V]


def process_logits(logits: paddle.Tensor, generated_ids: paddle.Tensor, *, temperature: float = 1.0,
                   top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0) -> paddle.Tensor:
    """All processors in order (repetition penalty, temperature, top-k, top-p) over logits ``[N, V]``."""
    logits = apply_repetition_penalty(logits.astype("float32"), generated_ids, repetition_penalty)
    logits = apply_temperature(logits, temperature)
    logits = top_k_filter(logits, top_k)
    return top_p_filter(logits, top_p)  # [N, V]


def probabilities(logits: paddle.Tensor | np.ndarray) -> np.ndarray:
    """Softmax of logits ``[N, V]`` (-inf allowed, not a whole row of them) in float64 on the host."""
    x = logits.numpy() if isinstance(logits, paddle.Tensor) else np.asarray(logits)
    x = x.astype(np.float64)
    x = np.exp(x - x.max(axis=-1, keepdims=True))  # [N, V]; exp(-inf) = 0
    return x / x.sum(axis=-1, keepdims=True)


def sample_next(logits: paddle.Tensor | np.ndarray, rng: np.random.Generator | int,
                greedy: bool = False) -> np.ndarray:
    """The next token of each row of (already processed) logits ``[N, V]``; returns int64 ``[N]``.

    ``greedy`` takes the argmax; otherwise one token per row is drawn from the softmax with ``rng`` (a
    ``numpy.random.Generator``, or an int seed for a fresh one). Tokens with probability 0 (-inf logits) are
    never drawn.
    """
    if greedy:
        x = logits.numpy() if isinstance(logits, paddle.Tensor) else np.asarray(logits)
        return x.argmax(axis=-1).astype(np.int64)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    probs = probabilities(logits)  # [N, V]
    cdf = np.cumsum(probs, axis=-1)  # [N, V]
    u = rng.random(probs.shape[0])[:, None] * cdf[:, -1:]  # [N, 1] uniform in [0, total)
    idx = (cdf <= u).sum(axis=-1)  # [N] first index whose cdf exceeds u: a zero-probability token never is
    last = probs.shape[1] - 1 - np.argmax(probs[:, ::-1] > 0, axis=-1)  # [N] last token with probability > 0
    return np.minimum(idx, last).astype(np.int64)  # guards against u rounding up to the total


# ----------------------------------------------------------------------------------------------- validation


def validate_generation_args(prompt_len: int, *, max_length: int, temperature: float = 1.0, top_k: int = 0,
                             top_p: float = 1.0, repetition_penalty: float = 1.0, num_return_sequences: int = 1,
                             greedy: bool = False, max_positions: int | None = None) -> None:
    """UserError (naming the flag) for any setting ``generate`` cannot honour.

    ``max_length`` counts the prompt: it is the total length of each returned sequence (at most).
    """
    if prompt_len < 1:
        raise UserError("--prompt is empty: give at least one token to continue from")
    if max_positions is not None and prompt_len > max_positions:
        raise UserError(f"--prompt is {prompt_len} tokens, longer than the model's context of {max_positions} "
                        f"positions; shorten the prompt")
    if max_length <= prompt_len:
        raise UserError(f"--max_length {max_length} must exceed the prompt length ({prompt_len} tokens): it "
                        f"counts the prompt plus the new tokens")
    if max_positions is not None and max_length > max_positions:
        raise UserError(f"--max_length {max_length} is beyond the model's context of {max_positions} positions")
    if not greedy and not temperature > 0:
        raise UserError(f"--temperature must be > 0 (got {temperature}); use --greedy for argmax decoding")
    if top_k < 0:
        raise UserError(f"--top_k must be >= 0 (got {top_k}; 0 disables it)")
    if not 0.0 < top_p <= 1.0:
        raise UserError(f"--top_p must be in (0, 1] (got {top_p}; 1 disables it)")
    if not repetition_penalty > 0:
        raise UserError(f"--repetition_penalty must be > 0 (got {repetition_penalty}; 1 disables it)")
    if num_return_sequences < 1:
        raise UserError(f"--num_return_sequences must be >= 1 (got {num_return_sequences})")
    if greedy and num_return_sequences > 1:
        raise UserError(f"--num_return_sequences {num_return_sequences} with --greedy would return identical "
                        f"sequences; drop one of them")


# ----------------------------------------------------------------------------------------------- model glue


def causal_logits(model: nn.Layer, input_ids: paddle.Tensor) -> paddle.Tensor:
    """Logits ``[N, t, V]`` of a causal LM for input_ids ``[N, t]``.

    Uses ``model.logits(ids)`` when the model has one (the project's ``TransformerLM``), else
    ``model(ids)``. paddlenlp 2.8.1's ``GPTForCausalLM(ids)`` returns the logits tensor itself; a tuple
    (logits first) or a ModelOutput with ``.logits`` is unwrapped too.
    """
    logits_fn = getattr(model, "logits", None)
    out = logits_fn(input_ids) if callable(logits_fn) else model(input_ids)
    if isinstance(out, (tuple, list)):
        out = out[0]
    elif not isinstance(out, paddle.Tensor) and hasattr(out, "logits"):
        out = out.logits
    return out


def model_max_positions(model: nn.Layer) -> int | None:
    """``max_position_embeddings`` from a paddlenlp model's config (or the wrapped ``.net``'s), else None."""
    for holder in (model, getattr(model, "net", None)):
        value = getattr(getattr(holder, "config", None), "max_position_embeddings", None)
        if value:
            return int(value)
    return None


# ----------------------------------------------------------------------------------------------- the loop


def generate(model: nn.Layer, input_ids: np.ndarray | Sequence[int], *, max_length: int, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0, num_return_sequences: int = 1,
             greedy: bool = False, seed: int = 0, eos_id: int | None = None,
             max_positions: int | None = None) -> list[list[int]]:
    """Continue one prompt ``num_return_sequences`` times; returns each sequence (prompt included) as ids.

    input_ids: the prompt, ``[1, t0]`` array or a list of ids. Each sequence grows to ``max_length`` tokens
    (prompt included) or stops right after ``eos_id``, which it keeps. ``max_positions`` (the context) defaults
    to the model config's ``max_position_embeddings`` when it has one. ``greedy`` takes the argmax of the
    (repetition-penalised) logits; temperature, top-k and top-p cannot change it and are ignored. The same
    ``seed`` gives the same sequences. The model runs in eval mode under ``no_grad`` and its training flag is
    restored afterwards.
    """
    prompt = np.asarray(input_ids, dtype=np.int64).reshape(-1)  # [t0]
    if max_positions is None:
        max_positions = model_max_positions(model)
    validate_generation_args(len(prompt), max_length=max_length, temperature=temperature, top_k=top_k,
                             top_p=top_p, repetition_penalty=repetition_penalty,
                             num_return_sequences=num_return_sequences, greedy=greedy, max_positions=max_positions)
    if greedy:
        temperature, top_k, top_p = 1.0, 0, 1.0
    rng = np.random.default_rng(seed)
    seqs = np.tile(prompt[None, :], (num_return_sequences, 1))  # [N, t0]
    done = np.zeros(num_return_sequences, dtype=bool)  # [N]
    was_training = model.training
    model.eval()
    decode = getattr(model, "decode", None)
    cached = callable(decode) and getattr(model, "kind", "gpt2") == "gpt2"
    cache = None
    try:
        with paddle.no_grad():
            while seqs.shape[1] < max_length and not done.all():
                ids = paddle.to_tensor(seqs)  # [N, t]
                if cached:  # the prompt once, then only the token the last step added
                    if cache is None:
                        cache = model.new_cache(num_return_sequences, max_length)
                    fresh = ids if cache.length == 0 else ids[:, -1:]  # [N, t] or [N, 1]
                    logits = decode(fresh, cache)  # [N, V] the next-token logits
                else:
                    logits = causal_logits(model, ids)[:, -1, :]  # [N, V]
                logits = process_logits(logits, ids, temperature=temperature, top_k=top_k, top_p=top_p,
                                        repetition_penalty=repetition_penalty)  # [N, V]
                nxt = sample_next(logits, rng, greedy=greedy)  # [N]
                if eos_id is not None:
                    nxt = np.where(done, eos_id, nxt)  # finished rows idle on eos; trimmed below
                    done |= nxt == eos_id
                seqs = np.concatenate([seqs, nxt[:, None]], axis=1)  # [N, t+1]
    finally:
        if was_training:
            model.train()
    return [_trim_after_eos(row, len(prompt), eos_id) for row in seqs]


def _trim_after_eos(row: np.ndarray, prompt_len: int, eos_id: int | None) -> list[int]:
    """``row`` as a list, cut just after the first ``eos_id`` generated past the prompt."""
    out = row.tolist()
    if eos_id is None:
        return out
    for i in range(prompt_len, len(out)):
        if out[i] == eos_id:
            return out[: i + 1]
    return out
