"""Row-wise learning of a sampled softmax: the gradient and the Adagrad update of only the rows a step touched.

With a sampled softmax a micro-batch reads the rows of its scored targets and its K negatives, a few thousand
of V (793k for the full 1B-Word vocabulary). Autograd through a gather of the full weight would build a dense
``[V, P]`` gradient, and the optimizer would then update every row. Instead the trainer gathers the touched
rows into small leaf tensors before the forward (`RowwiseSoftmax.slice`, fed to the model as the batch's
``softmax_rows``), merges their gradients over the micro-steps and the ranks (`reduce`), and applies Adagrad to
those rows alone (`step`). A row without a gradient is left exactly where the dense Adagrad leaves it
(``moment += 0``, ``param -= lr * 0``), so this is the same optimizer, not an approximation; the softmax is kept
out of `paddle.DataParallel` (its parameters are not trainable to Paddle) and of the Paddle optimizer.

Merging is deterministic: every group of rows is added into the union of rows with unique indices, in a fixed
order, so every rank computes bit-identical updates. The accumulators are saved under the names Paddle's
Adagrad gives them (``{param.name}_moment_0``), so a checkpoint loads in either mode.
"""

from __future__ import annotations

import numpy as np
import paddle

from paddle_lm.training import distributed as dist

#: (targets, mask) batch keys whose scored targets the softmax reads (ELMo's two directions; the LSTM LM's one).
TARGET_KEYS = (("fw_targets", "fw_mask"), ("bw_targets", "bw_mask"))


def touched_rows(batch: dict[str, np.ndarray], samples: np.ndarray) -> np.ndarray:
    """Sorted unique int64 class ids a sampled-softmax micro-batch reads: the scored targets, the negatives and
    id 0 (where masked targets point)."""
    parts = [np.zeros(1, dtype=np.int64), samples.astype(np.int64)]
    for targets, mask in TARGET_KEYS:
        if targets in batch:
            parts.append(batch[targets][batch[mask] > 0].astype(np.int64))
    return np.unique(np.concatenate(parts))


def merge_rows(groups: list[tuple[paddle.Tensor, paddle.Tensor]]) -> tuple[paddle.Tensor, paddle.Tensor]:
    """Sum row gradients given as ``(ids [R_i], grad [R_i, D])`` groups, each with unique ids, into
    ``(ids [U], grad [U, D])`` over their sorted union; added group by group in order (deterministic)."""
    if len(groups) == 1:
        return groups[0]
    union = paddle.unique(paddle.concat([ids for ids, _ in groups]))  # [U]
    total = paddle.zeros([union.shape[0], groups[0][1].shape[1]], dtype=groups[0][1].dtype)  # [U, D]
    for ids, grad in groups:
        total = paddle.index_add(total, paddle.searchsorted(union, ids), 0, grad)  # [U, D]
    return union, total


class RowwiseSoftmax:
    """The row-wise softmax of one training run (see the module docstring).

    `weight` holds the classes along `class_axis` (``[P, V]`` with axis 1, ``[V, P]`` with axis 0); `bias` is
    ``[V]``. `initial_accumulator` and `epsilon` are the Adagrad optimizer's.
    """

    def __init__(self, weight, bias, class_axis: int, initial_accumulator: float, epsilon: float):
        self.weight, self.bias, self.axis, self.epsilon = weight, bias, class_axis, epsilon
        for p in (weight, bias):
            p.stop_gradient = True  # out of DataParallel's reducer and of the Paddle optimizer
        self.moments = {p.name: paddle.full(p.shape, initial_accumulator, dtype=p.dtype) for p in (weight, bias)}
        self.pending: list[tuple] = []  # (ids, weight rows, bias rows) of this step's micro-batches
        self.ids = self.grad = None  # the step's merged rows and gradient [U, P + 1] (bias last)

    def params(self) -> list:
        return [self.weight, self.bias]

    def slice(self, ids: paddle.Tensor) -> tuple:
        """``(ids, weight rows, bias rows)`` for the model (the batch's ``softmax_rows``): leaves whose gradient
        `reduce` collects."""
        with paddle.no_grad():
            w = paddle.gather(self.weight, ids, axis=self.axis)  # [P, R] or [R, P]
            b = paddle.gather(self.bias, ids)  # [R]
        w.stop_gradient = b.stop_gradient = False
        self.pending.append((ids, w, b))
        return ids, w, b

    @paddle.no_grad()
    def reduce(self, world_size: int) -> paddle.Tensor:
        """After the step's backward passes: merge the micro-steps' row gradients, then the ranks' (averaged, as
        DataParallel averages the dense gradients). Returns the merged gradient (for the global norm and
        clipping, which scale it in place)."""
        groups = []
        for ids, w, b in self.pending:
            gw = w.grad.T if self.axis == 1 else w.grad  # [R, P]
            groups.append((ids, paddle.concat([gw, b.grad.unsqueeze(1)], axis=1)))  # [R, P + 1]
        self.pending = []
        ids, grad = merge_rows(groups)
        if world_size > 1:
            ids, grad = merge_rows([tuple(g) for g in dist.all_gather_ragged([ids, grad], world_size)])
            grad = grad / world_size
        self.ids, self.grad = ids, grad
        return grad

    @paddle.no_grad()
    def step(self, lr: float) -> None:
        """Adagrad on the merged rows, with Paddle's formula: ``m += g * g; p -= lr * g / (sqrt(m) + eps)``."""
        gw = self.grad[:, :-1]  # [U, P]
        for param, g, axis in ((self.weight, gw.T if self.axis == 1 else gw, self.axis),
                               (self.bias, self.grad[:, -1], 0)):
            moment = self.moments[param.name]
            paddle.index_add_(moment, self.ids, axis, g * g)
            update = g / (paddle.sqrt(paddle.gather(moment, self.ids, axis=axis)) + self.epsilon)
            paddle.index_add_(param, self.ids, axis, -lr * update)
        self.ids = self.grad = None

    def state_dict(self) -> dict:
        return {f"{name}_moment_0": m for name, m in self.moments.items()}

    def set_state_dict(self, state: dict) -> None:
        """Take the accumulators from an optimizer state (either mode's); a key it lacks keeps its initial value
        (a checkpoint from before the first update)."""
        for key, moment in self.state_dict().items():
            if key in state:
                moment.set_value(np.asarray(state[key], dtype=np.float32).reshape(moment.shape))
