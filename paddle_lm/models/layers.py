"""Building blocks shared by the recurrent models: char-CNN token encoder, highway, projected LSTM.

Shape letters used in the comments: B batch, T time steps, C characters per token, E char embedding
size, F total char-CNN filters, I LSTM input size, H LSTM cell size, P LSTM output (projection) size.
"""

from __future__ import annotations

import paddle
import paddle.nn.functional as F
from paddle import nn

#: Rows of the character embedding table: 0 = missing-token padding, 1..256 = utf-8 byte + 1,
#: 257 begin-of-word, 258 end-of-word, 259 char padding, 260/261 begin/end-of-sentence chars.
NUM_CHAR_IDS = 262

_ACTIVATIONS = {"relu": F.relu, "tanh": paddle.tanh}


class Highway(nn.Layer):
    """Highway layers, bilm-tf style: ``y = g * relu(W_t x) + (1 - g) * x`` with a sigmoid gate ``g``.

    The gate bias starts at -2 so that, at initialisation, each layer mostly carries its input through.
    """

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.dim = dim
        self.layers = nn.LayerList([nn.Linear(dim, 2 * dim) for _ in range(num_layers)])
        for layer in self.layers:
            bias = paddle.concat([paddle.zeros([dim]), paddle.full([dim], -2.0)])  # [2*dim]: transform | gate
            layer.bias.set_value(bias)

    def forward(self, x):
        for layer in self.layers:
            transform, gate = paddle.split(layer(x), 2, axis=-1)  # 2 x [N, dim]
            gate = F.sigmoid(gate)
            x = gate * F.relu(transform) + (1.0 - gate) * x  # [N, dim]
        return x


class CharCNNEncoder(nn.Layer):
    """Token encoder from characters: embed, convolve, max-pool, highway, project.

    Input ``char_ids`` int ``[B, T, C]`` (any C at least as wide as the widest filter); output
    ``[B, T, projection_dim]``.
    """

    def __init__(self, char_embed_dim: int, filters: list, num_highways: int, projection_dim: int,
                 activation: str = "relu"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown char-CNN activation {activation!r}")
        self.activation = _ACTIVATIONS[activation]
        self.char_embedding = nn.Embedding(
            NUM_CHAR_IDS, char_embed_dim,
            weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-1.0, 1.0)),
        )
        # Convolutions without bias: the bias is added after max-pooling (same result, much cheaper on CPU).
        self.convs = nn.LayerList([
            nn.Conv1D(char_embed_dim, int(count), int(width), data_format="NLC", bias_attr=False)
            for width, count in filters
        ])
        self.num_filters = sum(int(count) for _, count in filters)
        self.conv_bias = self.create_parameter(
            [self.num_filters], attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)), is_bias=True
        )
        self.highway = Highway(self.num_filters, num_highways)
        self.projection = nn.Linear(self.num_filters, projection_dim)
        self.output_dim = projection_dim
        self.widest = max(int(width) for width, _ in filters)

    def forward(self, char_ids, distinct=None):
        """``char_ids [B, T, C]`` -> ``[B, T, P]``. ``distinct = (unique [U, C], inverse [B*T])`` (from
        ``data.chars.distinct_rows`` of these ``char_ids``) encodes each distinct token once and gathers: the
        same values, with the work of U tokens instead of B*T."""
        b, t, c = char_ids.shape
        if distinct is None:
            return self.encode_rows(char_ids.reshape([b * t, c])).reshape([b, t, self.output_dim])  # [B, T, P]
        unique, inverse = distinct
        tokens = paddle.gather(self.encode_rows(unique), inverse, axis=0)  # [B*T, P]
        return tokens.reshape([b, t, self.output_dim])  # [B, T, P]

    def encode_rows(self, char_ids):
        """``char_ids [N, C]`` (one token per row) -> ``[N, P]``."""
        if paddle.is_grad_enabled():
            chars = self.char_embedding(char_ids)  # [N, C, E]
            pooled = [_conv_max(conv, chars) for conv in self.convs]  # F x [N, count]
        else:
            chars = self.char_embedding(_trim_tail(char_ids, self.widest).transpose([1, 0]).contiguous())  # [C', N, E]
            pooled = [_window_max(conv, chars) for conv in self.convs]  # F x [N, count]
        tokens = self.activation(paddle.concat(pooled, axis=-1) + self.conv_bias)  # [N, F]
        tokens = self.highway(tokens)  # [N, F]
        return self.projection(tokens)  # [N, P]


def _conv_max(conv: nn.Conv1D, chars):
    """Max over char positions of a bias-free NLC ``Conv1D``: ``chars [N, C, E]`` -> ``[N, count]``. The path with
    a backward (training): max_pool2d, because Paddle 3.3.1's CPU max() backward is ~100x slower."""
    features = conv(chars)  # [N, C - width + 1, count]
    features = F.max_pool2d(features.unsqueeze(2), (features.shape[1], 1), data_format="NHWC")  # [N, 1, 1, count]
    return features.reshape([-1, features.shape[-1]])  # [N, count]


def _window_max(conv: nn.Conv1D, chars):
    """``_conv_max`` without a backward (embedding, evaluation, export), position-major: ``chars [C, N, E]`` ->
    ``[N, count]``. The convolution is one matmul over the stacked character windows ``[C-w+1, N, w*E]`` and the
    max a running ``maximum`` over its C-w+1 contiguous ``[N, count]`` slices. The same values (to ~1e-6); on CPU
    Paddle's max over a middle axis (``max``, ``max_pool2d``) is ~6x slower than that running maximum
    (elmo-original's filters, 669 tokens, 2 threads: 154 ms against 26 ms), and the char-CNN as a whole went from
    413 to 265 ms."""
    count, embed, width = conv.weight.shape  # weight [count, E, width]
    positions = chars.shape[0] - width + 1
    stacked = paddle.concat([chars[k:positions + k] for k in range(width)], axis=-1)  # [C-w+1, N, w*E]
    kernel = conv.weight.transpose([2, 1, 0]).reshape([width * embed, count])  # [w*E, count], rows as stacked
    features = paddle.matmul(stacked, kernel)  # [C-w+1, N, count]
    if not paddle.in_dynamic_mode():  # traced (export): one op, any number of positions
        return features.max(axis=0)  # [N, count]
    best = features[0]  # [N, count]
    for k in range(1, positions):
        best = paddle.maximum(best, features[k])  # [N, count]
    return best


def _trim_tail(char_ids, widest: int):
    """``char_ids [N, C]`` without the char columns that cannot change any token's max-pooled convolution, in eager
    mode (traced: as it is). Each row ends in a run of one id (the padding char, or the missing token's 0); every
    window of width w that starts inside that run sees the same characters. Keeping ``longest + widest`` columns,
    ``longest`` the latest start of a row's run, keeps for every filter and row all its windows that reach a real
    character and at least one of its run-only windows, so the max over positions is unchanged. For a batch of
    polarity words it keeps ~24 of 50 columns (the convolutions' work halves)."""
    if not paddle.in_dynamic_mode():
        return char_ids
    ids = char_ids.numpy()  # [N, C]
    varies = (ids != ids[:, -1:]).any(axis=0)  # [C]: some row is not yet in its final run at this column
    keep = int(varies.nonzero()[0].max()) + 1 + widest if varies.any() else widest
    return char_ids if keep >= ids.shape[1] else char_ids[:, :keep]


class ProjectedLSTM(nn.Layer):
    """One LSTM layer with an optional output projection and optional clipping (TF ``LSTMCell`` semantics).

    ``c_t = clip(f * c_{t-1} + i * g, cell_clip)``, ``h_t = clip(W_proj (o * tanh(c_t)), proj_clip)``; the
    projection is used when ``proj_size`` is in ``(0, hidden_size)``, ``proj_clip`` only applies with a
    projection, and a clip of 0 disables it. Gate order (as in Paddle): input, forget, cell, output.

    Parameters always live in one single-layer ``nn.LSTM`` (so checkpoints do not depend on the path
    taken). Two ways to compute the layer, chosen by ``path``:

    - ``"fused"``: call that ``nn.LSTM`` (no clipping possible). Without a projection this is Paddle's
      fused RNN kernel (cuDNN on GPU). With a projection, Paddle 3.3.1 has no fused kernel: ``nn.LSTM``
      then runs ``LSTMCell`` in a Python loop, on CPU and GPU alike.
    - ``"loop"``: a step loop that computes the input-to-gates product for all T steps in one matmul and
      only the recurrent product per step; supports clipping, and traces with
      ``paddle.jit.to_static(full_graph=True)`` for any B and T (what ``python -m paddle_lm export`` saves).
    - ``"auto"`` (default): ``"fused"`` when nothing is clipped and there is no projection, else
      ``"loop"`` (measured faster than ``nn.LSTM``'s own loop with a projection; see bench/bench_lstm.py).

    ``forward(x [B, T, I], state=(h [B, P], c [B, H]) | None, lengths=None, keep_state=True) -> (out [B, T, P],
    (h, c))``. ``lengths`` int64 ``[B]`` (right-padded rows): row b's ``(h, c)`` stop changing after its first
    ``lengths[b]`` steps, so the returned state is the one at each row's last real step (what running each row
    alone gives; bilm-tf's ``dynamic_rnn(sequence_length=...)``); outputs at padded steps are unspecified.
    ``keep_state=False``: the caller discards the returned state, so unsorted rows skip that bookkeeping (the
    state is then the one after the padding). In eager mode, rows sorted longest first (``lengths``
    non-increasing) always stop at their length: the step loop drops each row from its products once it ends.
    """

    def __init__(self, input_size: int, hidden_size: int, proj_size: int = 0, cell_clip: float = 0.0,
                 proj_clip: float = 0.0, forget_bias: float = 1.0, path: str = "auto"):
        super().__init__()
        if path not in ("auto", "fused", "loop"):
            raise ValueError(f"path must be 'auto', 'fused' or 'loop', not {path!r}")
        self.path = path
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.proj_size = proj_size if 0 < proj_size < hidden_size else 0
        self.output_size = self.proj_size or hidden_size
        self.cell_clip = float(cell_clip)
        self.proj_clip = float(proj_clip) if self.proj_size else 0.0
        self.lstm = nn.LSTM(input_size, hidden_size, proj_size=self.proj_size)
        cell = self.lstm[0].cell
        with paddle.no_grad():
            h = hidden_size
            bias = paddle.zeros([4 * h])
            bias[h:2 * h] = forget_bias  # forget-gate chunk
            cell.bias_ih.set_value(bias)
            cell.bias_hh.set_value(paddle.zeros([4 * h]))

    @property
    def fused(self) -> bool:
        """True when ``forward`` calls the stock ``nn.LSTM`` (see the class docstring)."""
        clipped = self.cell_clip > 0 or self.proj_clip > 0
        if self.path == "fused" and clipped:
            raise ValueError("ProjectedLSTM path='fused' cannot clip; set cell_clip = proj_clip = 0")
        return self.path == "fused" or (self.path == "auto" and not clipped and not self.proj_size)

    def initial_state(self, batch_size: int):
        return (paddle.zeros([batch_size, self.output_size]), paddle.zeros([batch_size, self.hidden_size]))

    def forward(self, x, state=None, lengths=None, keep_state: bool = True):
        if state is None:
            state = self.initial_state(x.shape[0])
        h, c = state
        if self.fused:
            # [B, T, P], [1, B, P], [1, B, H]
            held = lengths if keep_state else None
            out, (h_n, c_n) = self.lstm(x, (h.unsqueeze(0), c.unsqueeze(0)), sequence_length=held)
            return out, (h_n.squeeze(0), c_n.squeeze(0))
        return self._step_loop(x, h, c, lengths, keep_state)

    def _step_loop(self, x, h, c, lengths=None, keep_state: bool = True):
        cell = self.lstm[0].cell
        # Time-major from the start (transposing x [B, T, I] is cheap, transposing the gates [B, T, 4H] is not),
        # and the bias added in place: out of place, that add cost ~80 ms of a ~650 ms elmo-original layer call
        # on CPU (a fresh 109 MB tensor), in place ~20 ms (matmul's backward does not need its output).
        steps = paddle.matmul(x.transpose([1, 0, 2]), cell.weight_ih, transpose_y=True)  # [T, B, 4H]
        bias = cell.bias_ih + cell.bias_hh  # [4H]
        steps = steps.add_(bias) if paddle.in_dynamic_mode() else steps + bias  # [T, B, 4H]
        running = None if lengths is None else running_rows(lengths, steps.shape[0])  # T ints, or None
        if running is not None:
            return self._running_loop(paddle.unbind(steps, axis=0), h, c, running)
        masked = lengths is not None and keep_state
        if masked:  # each step carries its rows' "still real" flag as one more column (also traces as one tensor)
            t = paddle.arange(steps.shape[0], dtype="int64").unsqueeze(1)  # [T, 1]
            real = (t < lengths.astype("int64").unsqueeze(0)).astype(steps.dtype).unsqueeze(-1)  # [T, B, 1]
            steps = paddle.concat([steps, real], axis=-1)  # [T, B, 4H + 1]
        if paddle.in_dynamic_mode():
            # Eager: T tensors with one cheap backward (indexing step t instead costs a full [T, B, 4H]
            # gradient per step: ~1.9x slower LSTM fwd+bwd). Under paddle.jit.to_static, where T may be unknown,
            # ``steps`` stays a tensor and the loop below becomes a while loop over its rows.
            steps = paddle.unbind(steps, axis=0)  # T x [B, 4H]
        outputs = []
        for step_gates in steps:  # [B, 4H] (+ 1 with lengths)
            if masked:
                h_prev, c_prev = h, c
                step_gates, real = step_gates[:, :-1], step_gates[:, -1:]  # [B, 4H], [B, 1]
            h, c = self._cell(step_gates, h, c)  # [B, P], [B, H]
            if masked:  # a padded step leaves the row's state as it was
                keep = real > 0  # [B, 1]
                h, c = paddle.where(keep, h, h_prev), paddle.where(keep, c, c_prev)  # [B, P], [B, H]
            outputs.append(h)
        return paddle.stack(outputs, axis=1), (h, c)  # [B, T, P]

    def _running_loop(self, steps, h, c, running):
        """The eager step loop over rows sorted longest first: ``running[k]`` rows are real at step k (a prefix
        of the batch), so a row that has ended leaves the products, and its (h, c) are set aside as they were
        at its last real step; outputs at ended rows' steps are zeros. ``steps``: T x ``[B, 4H]``."""
        rows = h.shape[0]
        zeros = paddle.zeros([rows, self.output_size], dtype=h.dtype)  # [B, P]: outputs of ended rows
        outputs, ended = [], []  # ended: (h, c) of the rows that stopped, in the order they stopped
        for k, step_gates in enumerate(steps):
            n = running[k]
            if n < h.shape[0]:  # rows n.. have ended
                ended.append((h[n:], c[n:]))  # [ended rows, P], [ended rows, H]
                h, c = h[:n], c[:n]
            if n == 0:
                outputs.append(zeros)
                continue
            h, c = self._cell(step_gates[:n], h, c)  # [n, P], [n, H]
            outputs.append(h if n == rows else paddle.concat([h, zeros[n:]]))  # [B, P]
        ended.reverse()  # rows in order: still running, then those that ended last, ..., those that ended first
        h = paddle.concat([h] + [e[0] for e in ended], axis=0)  # [B, P]
        c = paddle.concat([c] + [e[1] for e in ended], axis=0)  # [B, H]
        return paddle.stack(outputs, axis=1), (h, c)  # [B, T, P]

    def _cell(self, step_gates, h, c):
        """One step: ``step_gates [N, 4H]`` (the input's product and the bias), ``h [N, P]``, ``c [N, H]`` -> the
        new ``(h, c)``."""
        cell = self.lstm[0].cell
        gates = step_gates + paddle.matmul(h, cell.weight_hh, transpose_y=True)  # [N, 4H]
        i, f, g, o = paddle.split(gates, 4, axis=-1)  # 4 x [N, H]
        c = F.sigmoid(f) * c + F.sigmoid(i) * paddle.tanh(g)  # [N, H]
        if self.cell_clip > 0:
            c = paddle.clip(c, -self.cell_clip, self.cell_clip)
        h = F.sigmoid(o) * paddle.tanh(c)  # [N, H]
        if self.proj_size:
            h = paddle.matmul(h, cell.weight_ho)  # [N, P]
            if self.proj_clip > 0:
                h = paddle.clip(h, -self.proj_clip, self.proj_clip)
        return h, c


def running_rows(lengths, steps: int) -> list | None:
    """In eager mode, for rows sorted longest first (``lengths [B]`` non-increasing): how many rows are still
    within their length at each of ``steps`` steps (a prefix of the batch each time); else None (traced, or
    rows in another order)."""
    if not paddle.in_dynamic_mode():
        return None
    n = lengths.numpy().astype("int64")  # [B]
    if (n[1:] > n[:-1]).any():
        return None
    return [int((n > k).sum()) for k in range(steps)]


def reverse_padded(x, lengths=None):
    """Reverse ``x [B, T, ...]`` along time; with ``lengths [B]`` reverse each row within its own length.

    Positions at or after a row's length stay where they are, so applying it twice gives ``x`` back.
    """
    if lengths is None:
        return paddle.flip(x, axis=[1])
    b, t = x.shape[0], x.shape[1]
    steps = paddle.arange(t, dtype="int64").unsqueeze(0)  # [1, T]
    lengths = lengths.astype("int64").unsqueeze(1)  # [B, 1]
    index = paddle.where(steps < lengths, lengths - 1 - steps, steps)  # [B, T]
    index = index + paddle.arange(b, dtype="int64").unsqueeze(1) * t  # [B, T] rows of the flattened x
    flat = x.reshape([b * t] + list(x.shape[2:]))  # [B*T, ...]
    return paddle.gather(flat, index.reshape([-1]), axis=0).reshape(x.shape)  # [B, T, ...]


def masked_token_losses(logits, targets, mask):
    """Per-target cross-entropy times the mask.

    ``logits [N, V]``, ``targets [N]`` int64 (ignored where ``mask`` is 0, so they may be any value there),
    ``mask [N]`` float (1 = this target counts). Returns ``[N]`` float.
    """
    mask = mask.astype(logits.dtype)
    targets = paddle.where(mask > 0, targets, paddle.zeros_like(targets))  # [N]
    ce = F.cross_entropy(logits, targets.unsqueeze(-1), reduction="none").reshape([-1])  # [N]
    return ce * mask


def mean_loss(loss_sum, count):
    """Token-weighted mean: ``loss_sum / max(count, 1)``."""
    return loss_sum / paddle.clip(count, min=1.0)
