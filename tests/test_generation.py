"""Generation: each knob's effect on the output distribution, reproducibility, eos, validation, and a tiny GPT-2."""

from __future__ import annotations

import numpy as np
import paddle
import pytest
from paddle import nn

from paddle_lm.errors import UserError
from paddle_lm.generation import (
    apply_repetition_penalty,
    apply_temperature,
    causal_logits,
    generate,
    probabilities,
    sample_next,
    top_k_filter,
    top_p_filter,
)

# Fixed next-token logits of the fake LM: token 0 is the argmax, token 7 the least likely.
LOGITS = np.array([3.0, 2.5, 2.0, 1.0, 0.5, 0.0, -1.0, -2.0], dtype=np.float32)
V = len(LOGITS)
PROBS = np.exp(LOGITS - LOGITS.max()) / np.exp(LOGITS - LOGITS.max()).sum()


class FixedLM(nn.Layer):
    """A causal LM whose logits ``[N, t, V]`` are LOGITS at every position, whatever the input."""

    def __init__(self, logits: np.ndarray = LOGITS):
        super().__init__()
        self.table = paddle.to_tensor(logits)  # [V]

    def forward(self, input_ids: paddle.Tensor) -> paddle.Tensor:
        n, t = input_ids.shape
        return paddle.expand(self.table.reshape([1, 1, -1]), [n, t, self.table.shape[0]])  # [N, t, V]


def _new_tokens(seqs: list[list[int]], prompt_len: int) -> np.ndarray:
    return np.array([tok for s in seqs for tok in s[prompt_len:]])


def _entropy(tokens: np.ndarray) -> float:
    freq = np.bincount(tokens, minlength=V) / len(tokens)
    freq = freq[freq > 0]
    return float(-(freq * np.log(freq)).sum())


def _sample(n: int = 400, steps: int = 5, **kw) -> np.ndarray:
    """n sequences of `steps` new tokens from FixedLM after the prompt [7]; the new tokens, flattened."""
    return _new_tokens(generate(FixedLM(), [7], max_length=1 + steps, num_return_sequences=n, **kw), 1)


# ----------------------------------------------------------------------------------------------- processors


def test_top_k_filter_keeps_exactly_the_k_best_and_zero_disables():
    logits = paddle.to_tensor(np.stack([LOGITS, LOGITS[::-1].copy()]))  # [2, V]
    before = logits.numpy().copy()
    out = top_k_filter(logits, 3).numpy()
    assert np.isfinite(out).sum(axis=1).tolist() == [3, 3]
    assert set(np.flatnonzero(np.isfinite(out[0]))) == {0, 1, 2}
    assert set(np.flatnonzero(np.isfinite(out[1]))) == {5, 6, 7}
    np.testing.assert_array_equal(top_k_filter(logits, 0).numpy(), before)
    np.testing.assert_array_equal(logits.numpy(), before)  # inputs are never mutated


def test_top_p_filter_keeps_the_smallest_nucleus():
    logits = paddle.to_tensor(LOGITS[None, :])
    cum = np.cumsum(PROBS)  # PROBS is already sorted descending
    for p in (0.2, 0.5, 0.8, 0.95):
        kept = np.flatnonzero(np.isfinite(top_p_filter(logits, p).numpy()[0]))
        size = int(np.searchsorted(cum, p) + 1)  # smallest prefix whose mass >= p
        assert kept.tolist() == list(range(size)), p
        assert PROBS[kept].sum() >= p and (size == 1 or PROBS[: size - 1].sum() < p)
    assert np.flatnonzero(np.isfinite(top_p_filter(logits, 1e-9).numpy()[0])).tolist() == [0]
    assert np.isfinite(top_p_filter(logits, 1.0).numpy()).all()


def test_repetition_penalty_ctrl_rule_lowers_seen_token_probability():
    logits = paddle.to_tensor(LOGITS[None, :])
    seen = paddle.to_tensor([[1, 6, 6]])  # token 1 has a positive logit, token 6 a negative one
    out = apply_repetition_penalty(logits, seen, 2.0).numpy()[0]
    expected = LOGITS.copy()
    expected[1], expected[6] = LOGITS[1] / 2.0, LOGITS[6] * 2.0
    np.testing.assert_allclose(out, expected)
    before, after = probabilities(LOGITS[None, :])[0], probabilities(out[None, :])[0]
    assert after[1] < before[1] and after[6] < before[6]
    assert all(after[i] > before[i] for i in range(V) if i not in (1, 6))
    np.testing.assert_array_equal(apply_repetition_penalty(logits, seen, 1.0).numpy(), logits.numpy())


def test_temperature_scales_logits():
    logits = paddle.to_tensor(LOGITS[None, :])
    np.testing.assert_allclose(apply_temperature(logits, 0.5).numpy()[0], LOGITS * 2)
    with pytest.raises(ValueError):
        apply_temperature(logits, 0.0)


def test_sample_next_never_draws_filtered_tokens_and_is_seeded():
    filtered = top_k_filter(paddle.to_tensor(np.tile(LOGITS, (2000, 1))), 2)  # [2000, V]
    draws = sample_next(filtered, np.random.default_rng(0))
    assert set(draws.tolist()) == {0, 1}
    np.testing.assert_array_equal(sample_next(filtered, 5), sample_next(filtered, 5))  # int seed
    assert sample_next(paddle.to_tensor(LOGITS[None, :]), 0, greedy=True).tolist() == [0]


# ----------------------------------------------------------------------------------------------- generate


def test_top_k_never_emits_outside_the_k_best():
    tokens = _sample(top_k=3, seed=1)
    assert set(tokens.tolist()) == {0, 1, 2}  # all three used, nothing else
    assert len(set(_sample(seed=1).tolist())) > 3  # without top-k the tail does appear


def test_top_p_never_emits_outside_the_nucleus_and_tiny_p_is_greedy():
    tokens = _sample(top_p=0.8, seed=2)
    nucleus = set(range(int(np.searchsorted(np.cumsum(PROBS), 0.8) + 1)))
    assert set(tokens.tolist()) == nucleus
    assert set(_sample(top_p=1e-6, seed=2).tolist()) == {0}


def test_temperature_low_is_greedy_and_high_flattens():
    assert set(_sample(temperature=1e-3, seed=3).tolist()) == {0}
    h_low, h_one, h_high = (_entropy(_sample(temperature=t, seed=3)) for t in (0.5, 1.0, 100.0))
    assert h_low < h_one < h_high
    assert h_high > 0.97 * np.log(V)  # close to uniform


def test_repetition_penalty_lowers_empirical_repeats():
    def repeat_rate(seqs: list[list[int]]) -> float:
        repeats = [tok in s[:i] for s in seqs for i, tok in enumerate(s) if i >= 1]
        return float(np.mean(repeats))

    kw = dict(max_length=6, num_return_sequences=300, seed=4)
    plain = repeat_rate(generate(FixedLM(), [7], **kw))
    penalised = repeat_rate(generate(FixedLM(), [7], repetition_penalty=5.0, **kw))
    assert penalised < plain - 0.2
    # greedy with a penalty: token 0 wins first, then is penalised below token 1, and so on
    assert generate(FixedLM(), [7], max_length=4, greedy=True, repetition_penalty=100.0) == [[7, 0, 1, 2]]


def test_same_seed_same_outputs_different_seed_different():
    kw = dict(max_length=12, num_return_sequences=4, top_k=5, top_p=0.9, temperature=1.3)
    a = generate(FixedLM(), [3, 4], seed=11, **kw)
    assert a == generate(FixedLM(), [3, 4], seed=11, **kw)
    assert a != generate(FixedLM(), [3, 4], seed=12, **kw)


def test_greedy_is_deterministic_argmax_and_counts():
    out = generate(FixedLM(), np.array([[5, 6]]), max_length=6, greedy=True, seed=0)
    assert out == [[5, 6, 0, 0, 0, 0]] == generate(FixedLM(), [5, 6], max_length=6, greedy=True, seed=99)
    many = generate(FixedLM(), [5], max_length=4, num_return_sequences=7, seed=0)
    assert len(many) == 7 and all(len(s) == 4 and s[0] == 5 for s in many)


def test_eos_stops_a_sequence():
    assert generate(FixedLM(), [5], max_length=10, greedy=True, eos_id=0) == [[5, 0]]
    seqs = generate(FixedLM(), [5], max_length=10, num_return_sequences=50, eos_id=1, seed=5)
    assert len({len(s) for s in seqs}) > 1
    for s in seqs:
        assert 1 not in s[1:-1]  # nothing after the first eos
        assert s[-1] == 1 or len(s) == 10


@pytest.mark.parametrize("kwargs, flag", [
    (dict(max_length=3), "--max_length"),  # not longer than the 3-token prompt
    (dict(max_length=20, max_positions=10), "--max_length"),
    (dict(max_length=20, max_positions=2), "--prompt"),
    (dict(max_length=8, temperature=0.0), "--temperature"),
    (dict(max_length=8, top_p=0.0), "--top_p"),
    (dict(max_length=8, top_p=1.5), "--top_p"),
    (dict(max_length=8, top_k=-1), "--top_k"),
    (dict(max_length=8, repetition_penalty=0.0), "--repetition_penalty"),
    (dict(max_length=8, num_return_sequences=0), "--num_return_sequences"),
    (dict(max_length=8, greedy=True, num_return_sequences=2), "--num_return_sequences"),
])
def test_bad_settings_are_user_errors_naming_the_flag(kwargs, flag):
    with pytest.raises(UserError, match=flag):
        generate(FixedLM(), [1, 2, 3], **kwargs)


def test_empty_prompt_and_greedy_ignores_temperature():
    with pytest.raises(UserError, match="--prompt"):
        generate(FixedLM(), [], max_length=4)
    assert generate(FixedLM(), [1], max_length=3, greedy=True, temperature=0.0) == [[1, 0, 0]]


# ----------------------------------------------------------------------------------------------- tiny GPT-2


@pytest.fixture(scope="module")
def tiny_gpt():
    from paddlenlp.transformers import GPTConfig, GPTForCausalLM

    paddle.seed(0)
    cfg = GPTConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=32)
    return GPTForCausalLM(cfg)  # built locally from a config: nothing is downloaded


def test_tiny_gpt2_generation(tiny_gpt):
    tiny_gpt.train()
    prompt = [3, 14, 15]
    with paddle.no_grad():
        raw = tiny_gpt(paddle.to_tensor([prompt]))
    assert isinstance(raw, paddle.Tensor) and raw.shape == [1, 3, 50]  # paddlenlp 2.8.1 returns bare logits

    greedy = generate(tiny_gpt, prompt, max_length=8, greedy=True)[0]
    assert tiny_gpt.training  # training flag restored
    tiny_gpt.eval()
    ids = list(prompt)
    with paddle.no_grad():
        while len(ids) < 8:  # reference greedy loop
            ids.append(int(causal_logits(tiny_gpt, paddle.to_tensor([ids]))[0, -1].argmax()))
    assert greedy == ids

    kw = dict(max_length=10, num_return_sequences=3, top_k=5, top_p=0.9, temperature=0.8, repetition_penalty=1.2)
    sampled = generate(tiny_gpt, prompt, seed=7, **kw)
    assert sampled == generate(tiny_gpt, prompt, seed=7, **kw)
    assert all(len(s) == 10 and s[:3] == prompt and all(0 <= t < 50 for t in s) for s in sampled)
    with pytest.raises(UserError, match="--max_length"):  # context inferred from max_position_embeddings
        generate(tiny_gpt, prompt, max_length=40)


def test_key_value_cache_gives_the_tokens_of_the_full_recompute():
    """The project's GPT-2 decodes with its preallocated key/value cache (prompt once, then one token per step);
    the same model without `decode` re-runs the whole prefix. Greedy and seeded sampled tokens are the same."""
    import dataclasses

    from paddle_lm.config import apply_preset
    from paddle_lm.models.transformer_lm import TransformerLM

    paddle.seed(0)
    model = TransformerLM(dataclasses.replace(apply_preset("gpt2", "gpt2-tiny"), vocab_size=60))

    class Uncached(nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def logits(self, ids):
            return self.inner.logits(ids)

    calls = []
    decode = model.decode
    model.decode = lambda ids, cache: calls.append(ids.shape[1]) or decode(ids, cache)
    prompt = [3, 14, 15, 9]
    for kw in (dict(greedy=True), dict(num_return_sequences=3, top_k=8, top_p=0.9, temperature=0.9,
                                       repetition_penalty=1.3, seed=5)):
        calls.clear()
        cached = generate(model, prompt, max_length=20, **kw)
        assert calls == [4] + [1] * 15  # the prompt, then one new token per step
        assert cached == generate(Uncached(model), prompt, max_length=20, max_positions=64, **kw)


@pytest.mark.parametrize("act", ["gelu_new", "relu"])
def test_cached_logits_equal_paddlenlp_forward(act):
    """`decode` (kv_cache.decode_step) computes paddlenlp's GPT: the prompt's and each step's next-token logits
    equal the full forward pass's at that position, for two rows, with the model's activation and LayerNorms."""
    import dataclasses

    from paddle_lm.config import apply_preset
    from paddle_lm.models.transformer_lm import TransformerLM

    paddle.seed(1)
    cfg = dataclasses.replace(apply_preset("gpt2", "gpt2-tiny"), vocab_size=70, hidden_act=act, layer_norm_eps=1e-4)
    model = TransformerLM(cfg)
    model.eval()
    ids = paddle.to_tensor(np.random.default_rng(0).integers(0, 70, size=(2, 12)))  # [2, 12]
    with paddle.no_grad():
        full = model.logits(ids).numpy()  # [2, 12, V]
        cache = model.new_cache(2, 12)
        got = [model.decode(ids[:, :5], cache).numpy()]  # the prompt: 5 tokens
        got += [model.decode(ids[:, i:i + 1], cache).numpy() for i in range(5, 12)]
    assert cache.length == 12
    np.testing.assert_allclose(np.stack(got, axis=1), full[:, 4:], atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="holds 12 positions"):
        model.decode(ids[:, :1], cache)
