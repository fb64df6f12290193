"""Models: shapes, losses, gradients, state carry, padding invariance, LSTM path equivalence, presets."""

from __future__ import annotations

import math
import os

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

import numpy as np
import paddle
import pytest

from paddle_lm.config import PRESETS, apply_preset
from paddle_lm.models import LSTMLM, ELMo, build_model, count_parameters
from paddle_lm.models.layers import ProjectedLSTM, reverse_padded

V = 50
C = 50


def make_cfg(preset: str, vocab_size: int = V, **changes):
    cfg = apply_preset(PRESETS[preset]["model"], preset)
    cfg.vocab_size = vocab_size
    for key, value in changes.items():
        setattr(cfg, key, value)
    return cfg


def make_model(preset: str, seed: int = 0, **changes):
    paddle.seed(seed)
    model = build_model(make_cfg(preset, **changes))
    model.eval()
    return model


def make_batch(model_kind: str, b: int = 3, t: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    batch = {
        "fw_targets": paddle.to_tensor(rng.integers(0, V, [b, t]), dtype="int64"),
        "fw_mask": paddle.ones([b, t]),
    }
    if model_kind == "elmo":
        batch["char_ids"] = paddle.to_tensor(rng.integers(1, 262, [b, t, C]), dtype="int32")
        batch["bw_targets"] = paddle.to_tensor(rng.integers(0, V, [b, t]), dtype="int64")
        batch["bw_mask"] = paddle.ones([b, t])
    else:
        batch["token_ids"] = paddle.to_tensor(rng.integers(0, V, [b, t]), dtype="int64")
    return batch


def window(batch: dict, start: int, stop: int) -> dict:
    return {k: v[:, start:stop] for k, v in batch.items()}


def close(a, b, atol=1e-5):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=atol, rtol=1e-5)


@pytest.mark.parametrize("longest", [3, 20, C])
def test_char_cnn_without_backward_equals_the_training_path(longest):
    """The gradient-free char-CNN (position-major window matmul, running max, the columns after every row's final
    run of one id trimmed) gives the training path's values (Conv1D + max_pool2d over all C columns): words of
    every length up to ``longest`` characters, a missing-token row (all 0), the widest filter's edge, and a row
    that fills all C columns (nothing trimmed)."""
    from paddle_lm.data.chars import sentences_char_ids
    from paddle_lm.models.layers import _trim_tail

    rng = np.random.default_rng(longest)
    words = ["".join(chr(97 + int(k)) for k in rng.integers(0, 26, n)) for n in range(1, longest + 1)]
    ids, _ = sentences_char_ids([words, words[:2]], C)  # [2, longest, C], row 1 padded with missing tokens
    rows = paddle.to_tensor(ids.reshape(-1, C))  # [N, C]
    model = make_model("elmo-tiny", filters=[[1, 4], [3, 4], [7, 8]])
    encoder = model.token_encoder
    encoder.char_embedding.weight.set_value(paddle.randn(encoder.char_embedding.weight.shape))  # no zero rows
    kept = _trim_tail(rows, encoder.widest).shape[1]
    assert kept == min(C, longest + 2 + encoder.widest)  # BOW, the word, EOW, then the widest filter
    with paddle.no_grad():
        fast = encoder.encode_rows(rows).numpy()
    reference = encoder.encode_rows(rows).numpy()  # gradients recorded: the training path
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset", ["elmo-tiny", "lstm-tiny"])
def test_shapes_and_initial_loss(preset):
    model = make_model(preset)
    kind = PRESETS[preset]["model"]
    outputs, loss, state = model(make_batch(kind, b=3, t=5))
    assert loss.shape == [] and abs(float(loss) - math.log(V)) < 0.1
    keys = ["fw_loss_sum", "fw_count"] + (["bw_loss_sum", "bw_count"] if kind == "elmo" else [])
    for key in keys:
        assert outputs[key].shape == []
    assert float(outputs["fw_count"]) == 15
    zeros = model.initial_state(3)
    assert [s.shape for s in state] == [s.shape for s in zeros]
    assert all(float(s.abs().sum()) == 0 for s in zeros)
    if kind == "elmo":  # fw (h [B, P], c [B, H]) per layer, then bw
        assert [s.shape for s in zeros] == [[3, 16], [3, 32]] * 4
    else:
        assert [s.shape for s in zeros] == [[3, 16], [3, 16]]


def test_elmo_encode_layers():
    model = make_model("elmo-tiny")
    layers, state = model.encode(make_batch("elmo", b=2, t=4)["char_ids"])
    assert len(layers) == 3 and all(x.shape == [2, 4, 32] for x in layers)
    close(layers[0][..., :16], layers[0][..., 16:], atol=0)  # token layer duplicated for both directions
    assert len(state) == 8


def test_loss_counts_only_masked_targets():
    model = make_model("elmo-tiny")
    batch = make_batch("elmo")
    full, _, _ = model(batch)
    mask = np.ones([3, 5], "float32")
    mask[:, 3:] = 0
    targets = np.where(mask > 0, batch["fw_targets"].numpy(), -1)  # ids of uncounted targets may be invalid
    masked = dict(batch, fw_mask=paddle.to_tensor(mask), fw_targets=paddle.to_tensor(targets, dtype="int64"))
    out, loss, _ = model(masked)
    assert float(out["fw_count"]) == 9 and float(out["bw_count"]) == 15
    assert float(out["fw_loss_sum"]) < float(full["fw_loss_sum"])
    expected = 0.5 * (float(out["fw_loss_sum"]) / 9 + float(out["bw_loss_sum"]) / 15)
    assert abs(float(loss) - expected) < 1e-5


def test_distinct_token_char_cnn_is_exact():
    """The char-CNN run once per distinct token and gathered (the batch's char_unique / char_inverse, as the data
    stream adds them) gives the loss and every gradient of running it per occurrence, to float rounding."""
    from paddle_lm.data.chars import distinct_rows

    batch = make_batch("elmo", b=4, t=6)
    chars = batch["char_ids"].numpy()
    chars[1] = chars[0]  # repeated tokens, as text has them
    chars[2, :3] = chars[3, 3:]
    chars[3, 5] = 0  # a missing-token row
    batch["char_ids"] = paddle.to_tensor(chars)
    unique, inverse = distinct_rows(chars)
    assert len(unique) < chars.shape[0] * chars.shape[1]
    fast = {**batch, "char_unique": paddle.to_tensor(unique), "char_inverse": paddle.to_tensor(inverse)}
    results = []
    for inputs in (batch, fast):
        model = make_model("elmo-tiny")
        _, loss, state = model(inputs)
        loss.backward()
        results.append((loss, state, {n: p.grad.numpy() for n, p in model.named_parameters()}))
    (loss_a, state_a, grads_a), (loss_b, state_b, grads_b) = results
    close(loss_a, loss_b, atol=1e-6)
    for a, b in zip(state_a, state_b):
        close(a, b)
    for name, grad in grads_a.items():
        np.testing.assert_allclose(grads_b[name], grad, rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("preset", ["elmo-tiny", "lstm-tiny"])
def test_gradients_reach_every_parameter(preset):
    model = make_model(preset)
    model.train()
    _, loss, _ = model(make_batch(PRESETS[preset]["model"]))
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert float(param.grad.abs().sum()) > 0, name


def test_lstm_lm_state_carry():
    model = make_model("lstm-tiny", num_layers=2)
    batch = make_batch("lstm", t=8)
    out_full, _, state_full = model(batch)
    out_a, _, state_a = model(window(batch, 0, 4))
    out_b, _, state_b = model(window(batch, 4, 8), state_a)
    close(out_full["fw_loss_sum"], out_a["fw_loss_sum"] + out_b["fw_loss_sum"], atol=1e-4)
    for s_full, s_b in zip(state_full, state_b):
        close(s_full, s_b)


def test_elmo_state_carry():
    """Forward direction: windows left to right; backward direction: its state flows right to left."""
    model = make_model("elmo-tiny")
    chars = make_batch("elmo", t=8)["char_ids"]
    n = len(model.initial_state(3)) // 2
    full, state_full = model.encode(chars)
    first, state_first = model.encode(chars[:, :4])
    second, state_second = model.encode(chars[:, 4:], state=state_first[:n] + model.initial_state(3)[n:])
    for layer_full, layer_a, layer_b in zip(full, first, second):  # forward halves
        close(layer_full[:, :4, :16], layer_a[:, :, :16])
        close(layer_full[:, 4:, :16], layer_b[:, :, :16])
    for s_full, s_b in zip(state_full[:n], state_second[:n]):
        close(s_full, s_b)
    # backward direction: encode the right window first, carry its state into the left window
    _, right_state = model.encode(chars[:, 4:])
    left, left_state = model.encode(chars[:, :4], state=model.initial_state(3)[:n] + right_state[n:])
    for layer_full, layer_left in zip(full, left):
        close(layer_full[:, :4, 16:], layer_left[:, :, 16:])
    for s_full, s_left in zip(state_full[n:], left_state[n:]):
        close(s_full, s_left)


def test_elmo_forward_state_carry_loss():
    model = make_model("elmo-tiny")
    batch = make_batch("elmo", t=6)
    out_full, _, _ = model(batch)
    out_a, _, state = model(window(batch, 0, 3))
    out_b, _, _ = model(window(batch, 3, 6), state)
    close(out_full["fw_loss_sum"], out_a["fw_loss_sum"] + out_b["fw_loss_sum"], atol=1e-4)


def test_encode_is_invariant_to_padding():
    model = make_model("elmo-tiny")
    rng = np.random.default_rng(3)
    long = rng.integers(1, 262, [1, 6, C])
    short = rng.integers(1, 262, [1, 3, C])
    alone, _ = model.encode(paddle.to_tensor(short, dtype="int32"))
    padded_short = np.concatenate([short, np.zeros([1, 3, C], np.int64)], axis=1)  # [1, 6, C]
    chars = paddle.to_tensor(np.concatenate([long, padded_short]), dtype="int32")  # [2, 6, C]
    mask = paddle.to_tensor([[1.0] * 6, [1.0] * 3 + [0.0] * 3])
    batched, _ = model.encode(chars, mask=mask)
    long_alone, _ = model.encode(paddle.to_tensor(long, dtype="int32"))
    for layer_alone, layer_long, layer_batched in zip(alone, long_alone, batched):
        close(layer_batched[1:, :3], layer_alone)
        close(layer_batched[:1], layer_long)
    # without the mask, padding would leak into the backward direction of the short sentence
    unmasked, _ = model.encode(chars)
    assert not np.allclose(unmasked[-1][1:, :3, 16:].numpy(), alone[-1][:, :, 16:].numpy(), atol=1e-4)


def test_reverse_padded():
    x = paddle.arange(8, dtype="float32").reshape([2, 4, 1])
    rev = reverse_padded(x, paddle.to_tensor([4, 2]))
    assert rev[..., 0].numpy().tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]
    close(reverse_padded(rev, paddle.to_tensor([4, 2])), x, atol=0)
    assert reverse_padded(x)[..., 0].numpy().tolist() == [[3, 2, 1, 0], [7, 6, 5, 4]]


@pytest.mark.parametrize("proj_size", [0, 6])
def test_step_loop_matches_fused_lstm(proj_size):
    paddle.seed(0)
    loop = ProjectedLSTM(8, 16, proj_size, cell_clip=1e9, proj_clip=1e9)
    fused = ProjectedLSTM(8, 16, proj_size, path="fused")
    assert not loop.fused and fused.fused
    fused.set_state_dict(loop.state_dict())
    x = paddle.randn([3, 7, 8])
    state = (paddle.randn([3, proj_size or 16]), paddle.randn([3, 16]))
    results = []
    for layer in (loop, fused):
        xi = x.clone()
        xi.stop_gradient = False
        out, (h, c) = layer(xi, state)
        (out.square().sum() + h.sum() + c.sum()).backward()
        results.append((out, h, c, xi.grad))
    for a, b in zip(*results):  # outputs, final h, final c, input gradient
        close(a, b)
    for p_loop, p_fused in zip(loop.parameters(), fused.parameters()):
        close(p_loop.grad, p_fused.grad, atol=1e-4)


def test_clipping_bounds_cell_and_output():
    paddle.seed(0)
    layer = ProjectedLSTM(8, 16, 6, cell_clip=0.05, proj_clip=0.01)
    out, (_, c) = layer(paddle.randn([3, 7, 8]) * 10)
    assert float(out.abs().max()) <= 0.01 + 1e-7 and float(c.abs().max()) <= 0.05 + 1e-7


def test_step_loop_traces_for_any_length():
    """``paddle.jit.to_static(full_graph=True)`` turns the step loop into a graph that takes any B and T."""

    class Outputs(paddle.nn.Layer):
        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, x):
            out, (h, c) = self.layer(x)
            return out, h, c

    paddle.seed(0)
    layer = ProjectedLSTM(8, 16, 6, cell_clip=0.5, proj_clip=0.3)
    spec = [paddle.static.InputSpec([None, None, 8], "float32")]
    static = paddle.jit.to_static(Outputs(layer), input_spec=spec, full_graph=True)
    for b, t in [(3, 7), (2, 1), (1, 11)]:
        x = paddle.randn([b, t, 8])
        out, (h, c) = layer(x)  # eager
        for a, e in zip(static(x), (out, h, c)):
            close(a, e)


def test_auto_path_choice():
    assert ProjectedLSTM(4, 8).fused
    assert not ProjectedLSTM(4, 8, cell_clip=3.0).fused
    assert not ProjectedLSTM(4, 8, 4).fused  # with a projection the loop beats nn.LSTM's own loop
    with pytest.raises(ValueError):
        _ = ProjectedLSTM(4, 8, cell_clip=3.0, path="fused").fused


@pytest.mark.parametrize("preset", ["elmo-tiny", "lstm-tiny"])
def test_a_few_steps_reduce_loss(preset):
    model = make_model(preset)
    model.train()
    batch = make_batch(PRESETS[preset]["model"], b=4, t=6)
    opt = paddle.optimizer.Adam(learning_rate=0.01, parameters=model.parameters())
    losses = []
    for _ in range(15):
        _, loss, _ = model(batch)
        loss.backward()
        opt.step()
        opt.clear_grad()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.5


def test_build_model_checks():
    with pytest.raises(ValueError):
        build_model(make_cfg("elmo-tiny", vocab_size=0))
    assert isinstance(make_model("elmo-tiny"), ELMo) and isinstance(make_model("lstm-tiny"), LSTMLM)


def test_untied_lstm_lm():
    model = make_model("lstm-tiny", tie_weights=False)
    assert count_parameters(model) == count_parameters(make_model("lstm-tiny")) + 16 * V
    _, loss, _ = model(make_batch("lstm"))
    assert abs(float(loss) - math.log(V)) < 0.1


# bilm-tf's published biLM without the softmax: 93,600,848 = char embedding 261x16 + convs 199,168 +
# highways 16,785,408 + projection 1,049,088 + 4 LSTMs x 18,890,752. Ours adds a 262nd character row (16)
# and Paddle's second LSTM bias (4 LSTMs x 4 x 4096 = 65,536).
BILM_TF_WITHOUT_SOFTMAX = 93_600_848


@pytest.mark.parametrize("preset,without_softmax", [
    ("elmo-original", BILM_TF_WITHOUT_SOFTMAX + 16 + 65_536),
    ("elmo-paddlenlp", 26_442_848),
])
def test_preset_parameter_counts(preset, without_softmax):
    model = build_model(make_cfg(preset, vocab_size=20000))
    softmax = count_parameters(model.softmax)
    assert softmax == 20000 * (512 + 1)
    assert count_parameters(model) - softmax == without_softmax
    # with the 793,471-word 1B-word vocabulary, elmo-original's softmax alone adds 407,050,623
    print(f"{preset}: {count_parameters(model):,} parameters at V=20000; "
          f"{without_softmax + 793_471 * 513:,} at V=793471")


def test_flop_count_by_hand():
    """models/flops.py against hand counts: the word LSTM LM of bench_vs_torch, and ELMo's token encoder scaled
    by the share of positions it runs on (once per distinct token)."""
    from paddle_lm.models.flops import forward_macs, train_flops_per_token

    lm = make_cfg("lstm-tiny", vocab_size=10000, embedding_dim=256, hidden_size=512, num_layers=2)
    lstms = 4 * 512 * (256 + 512) + 4 * 512 * (512 + 512)  # gates over [input, recurrent], two layers
    assert train_flops_per_token(lm) == 6 * (lstms + 512 * 10000)
    elmo = make_cfg("elmo-paddlenlp", vocab_size=1000)
    full, half = forward_macs(elmo), forward_macs(elmo, encoded_share=0.5)
    for part in ("char_cnn", "highways", "projection"):
        assert half[part] == full[part] / 2
    assert half["lstms"] == full["lstms"] and half["softmax"] == full["softmax"] == 2 * 512 * 1000
    assert full["highways"] == 2 * 2048 * 4096 and full["char_cnn"] == 16 * sum(
        w * n * (50 - w + 1) for w, n in elmo.filters)
