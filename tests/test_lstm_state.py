"""Length-aware recurrent state: a padded row's (h, c) stop at its last real step, in every LSTM path (fused,
step loop, the traced export's while loop) and through ELMo.encode in both directions."""

from __future__ import annotations

import dataclasses

import numpy as np
import paddle
import pytest

from paddle_lm.config import apply_preset
from paddle_lm.data.chars import sentences_char_ids
from paddle_lm.models import build_model
from paddle_lm.models.layers import ProjectedLSTM

PATHS = [dict(proj_size=8, cell_clip=3.0, proj_clip=3.0), dict(path="fused"), dict(path="loop")]


@pytest.mark.parametrize("grad", [True, False], ids=["grad", "no_grad"])
@pytest.mark.parametrize("row_lengths", [[7, 3, 1], [3, 7, 1], [7, 2, 0], [0, 0, 0]],
                         ids=["longest-first", "unsorted", "with-empty", "all-empty"])
@pytest.mark.parametrize("kwargs", PATHS, ids=["loop-projected-clipped", "fused", "loop"])
def test_padded_rows_keep_the_state_of_their_last_real_step(kwargs, row_lengths, grad):
    """Rows longest first take the step loop's prefix path (ended rows leave the products), other orders its
    masked path; with and without a gradient recorded."""
    paddle.seed(3)
    layer = ProjectedLSTM(6, 16, **kwargs)
    x = paddle.randn([3, 7, 6])  # [B, T, I]
    lengths = paddle.to_tensor(row_lengths, dtype="int64")
    h0, c0 = paddle.randn([3, layer.output_size]), paddle.randn([3, 16])
    with paddle.set_grad_enabled(grad):
        out, (h, c) = layer(x, (h0, c0), lengths)
        _, (h_all, _) = layer(x, (h0, c0))  # no lengths: every step counts, as in training streams
        discarded, _ = layer(x, (h0, c0), lengths, keep_state=False)
    assert out.shape == discarded.shape == [3, 7, layer.output_size]
    for b, n in enumerate(row_lengths):
        if n == 0:  # no real step: the start state
            np.testing.assert_allclose(h[b].numpy(), h0[b].numpy(), atol=1e-6)
            np.testing.assert_allclose(c[b].numpy(), c0[b].numpy(), atol=1e-6)
            continue
        alone, (h1, c1) = layer(x[b:b + 1, :n], (h0[b:b + 1], c0[b:b + 1]))
        np.testing.assert_allclose(h[b].numpy(), h1[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(c[b].numpy(), c1[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(out[b, :n].numpy(), alone[0].numpy(), atol=1e-6)
        np.testing.assert_allclose(discarded[b, :n].numpy(), alone[0].numpy(), atol=1e-6)
    if 0 < row_lengths[1] < 7:
        assert not np.allclose(h_all[1].numpy(), h[1].numpy(), atol=1e-3)


def test_prefix_path_gradients_equal_each_row_alone():
    """The prefix path (rows longest first) under a backward: the gradients of the real outputs and the final
    state equal those of running each row alone."""
    paddle.seed(5)
    layer = ProjectedLSTM(6, 16, proj_size=8, cell_clip=3.0, proj_clip=3.0)
    x = paddle.randn([3, 7, 6])  # [B, T, I]
    row_lengths = [7, 4, 2]
    grads = []
    for together in (True, False):
        layer.clear_gradients()
        if together:
            out, (h, c) = layer(x, None, paddle.to_tensor(row_lengths, dtype="int64"))
            loss = sum(out[b, :n].sum() for b, n in enumerate(row_lengths)) + (h * h).sum() + c.sum()
        else:
            loss = 0
            for b, n in enumerate(row_lengths):
                out, (h, c) = layer(x[b:b + 1, :n])
                loss = loss + out.sum() + (h * h).sum() + c.sum()
        loss.backward()
        grads.append([p.grad.numpy().copy() for p in layer.parameters()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_traced_loop_is_length_aware():
    """The while loop paddle.jit.to_static makes of the step loop (what `export` saves) keeps the same state."""
    paddle.seed(4)
    layer = ProjectedLSTM(6, 16, proj_size=8, cell_clip=3.0, proj_clip=3.0)
    layer.eval()

    class Final(paddle.nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, lengths):
            _, (h, c) = self.inner(x, None, lengths)
            return paddle.concat([h, c], axis=-1)  # [B, P + H]

    spec = [paddle.static.InputSpec([None, None, 6], "float32"), paddle.static.InputSpec([None], "int64")]
    static = paddle.jit.to_static(Final(layer), input_spec=spec, full_graph=True)
    x, lengths = paddle.randn([2, 5, 6]), paddle.to_tensor([5, 2], dtype="int64")
    got = static(x, lengths).numpy()
    _, (h, c) = layer(x[1:, :2])
    np.testing.assert_allclose(got[1], np.concatenate([h[0].numpy(), c[0].numpy()]), atol=1e-6)


def test_elmo_state_of_a_padded_batch_equals_each_sentence_alone():
    cfg = dataclasses.replace(apply_preset("elmo", "elmo-tiny"), vocab_size=0)
    paddle.seed(5)
    model = build_model(cfg, with_softmax=False)
    model.eval()
    sentences = [["<S>", "a", "long", "sentence", "of", "words", "</S>"], ["<S>", "short", "</S>"]]
    ids, mask = sentences_char_ids(sentences, 50)  # [2, 7, 50], [2, 7]
    start = [paddle.randn(t.shape) for t in model.initial_state(2)]
    _, state = model.encode(paddle.to_tensor(ids), paddle.to_tensor(mask), start)
    for b, sent in enumerate(sentences):
        one_ids, one_mask = sentences_char_ids([sent], 50)
        _, alone = model.encode(paddle.to_tensor(one_ids), paddle.to_tensor(one_mask), [s[b:b + 1] for s in start])
        for padded, single in zip(state, alone):  # forward and backward, every layer, h and c
            np.testing.assert_allclose(padded[b].numpy(), single[0].numpy(), atol=1e-6)
