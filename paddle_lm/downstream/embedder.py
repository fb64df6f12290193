"""Contextual word vectors from a pretrained ELMo checkpoint, and the learned scalar mix of its layers.

    from paddle_lm import ELMoEmbedder
    emb = ELMoEmbedder("checkpoints/final")
    vectors = emb.encode([["The", "first", "sentence", "."], ["Another", "one", "."]])
    vectors[0].shape  # (3, 4, 2 * projection_dim)

Shape letters: B batch, T tokens (boundaries stripped), C characters per token, P projection_dim,
L output layers (= LSTM layers + 1), D feature size.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn
from tqdm import tqdm

from paddle_lm.data.chars import distinct_rows, sentences_char_ids
from paddle_lm.data.vocab import BOS, EOS
from paddle_lm.device import set_device
from paddle_lm.errors import UserError
from paddle_lm.training import checkpoint as ckpt

#: run_batch(char_ids [B, T+2, C] int32, mask [B, T+2] float32, start) -> [B, L, T+2, 2P] float32 (numpy); `start`
#: is the batch's first row within the call (a stateful embedder's rows start..start+B-1 carry their state)
BatchFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def validate_sentences(sentences, allow_empty_list: bool = True) -> None:
    """Raise a UserError naming the first sentence that is not a non-empty list of whitespace-free tokens."""
    if isinstance(sentences, str) or not isinstance(sentences, Sequence):
        raise UserError(f"sentences must be a list of tokenized sentences (lists of strings), "
                        f"not {type(sentences).__name__}")
    if not sentences and not allow_empty_list:
        raise UserError("sentences is empty: pass at least one tokenized sentence")
    for i, sent in enumerate(sentences):
        if isinstance(sent, str):
            raise UserError(f"sentence {i} is a string, not a list of tokens; tokenize it first, e.g. "
                            f"{sent[:30]!r}.split()")
        if not isinstance(sent, (list, tuple)):
            raise UserError(f"sentence {i} is a {type(sent).__name__}, not a list of tokens")
        if not sent:
            raise UserError(f"sentence {i} is empty; every sentence needs at least one token")
        for j, tok in enumerate(sent):
            if not isinstance(tok, str) or not tok or any(ch.isspace() for ch in tok):
                raise UserError(f"sentence {i}, token {j} ({tok!r}) is not a non-empty string without "
                                f"whitespace; split sentences into tokens first")


def iter_encoded(sentences: Sequence[Sequence[str]], max_chars: int, batch_size: int, run_batch: BatchFn,
                 progress: bool = True, in_order: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, vectors [L, n_tokens, 2P])`` for every sentence, one length-sorted batch at a time.

    Sentences are sorted longest first (kept in input order with `in_order`) and cut into batches of
    ``batch_size`` (little padding); each is wrapped in ``<S>`` ... ``</S>``, run through ``run_batch``, and the
    boundary positions are stripped. Yields in batch order; memory holds one batch. Sentences must be validated
    already.
    """
    order = list(range(len(sentences)))
    if not in_order:
        order.sort(key=lambda i: len(sentences[i]), reverse=True)
    show = progress and len(sentences) > batch_size
    with tqdm(total=len(sentences), desc="embedding", unit="sent", disable=not show, dynamic_ncols=True) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            char_ids, mask = sentences_char_ids([[BOS, *sentences[i], EOS] for i in idx], max_chars)
            stacked = run_batch(char_ids, mask, start)  # [B, L, T+2, 2P]
            for row, i in enumerate(idx):
                yield i, stacked[row, :, 1:len(sentences[i]) + 1].copy()  # [L, n, 2P]
            bar.update(len(idx))


class TokenCache:
    """The char-CNN encodings of the distinct tokens one ``encode`` call has seen, so each is computed once per
    call and not once per batch (2,000 polarity sentences in batches of 64: 8,368 distinct tokens against 21,539
    per-batch ones). Each token's encoding depends on its characters alone, so the vectors are the same.

    At most ``max_rows`` encodings are held (host memory, ``[max_rows, P]`` float32); when a batch's new tokens
    would not fit, the cache starts over. Built per call (``ELMoEmbedder.iter_encode``), so weights changed
    between calls are never served stale; the gradient path (``batch_layers``) does not use it.
    """

    def __init__(self, encoder: nn.Layer, max_rows: int):
        self.encoder = encoder  # the model's CharCNNEncoder
        self.max_rows = max_rows
        self.slots: dict[bytes, int] = {}  # a token's char ids (raw bytes) -> its row in ``vectors``
        self.vectors = np.zeros((0, encoder.output_dim), dtype=np.float32)  # [rows, P], grown as needed

    def __call__(self, unique: np.ndarray) -> paddle.Tensor:
        """``unique [U, C]`` distinct char-id rows (``distinct_rows``) -> their encodings ``[U, P]`` (a tensor on Paddle's device)."""
        keys = [row.tobytes() for row in unique]
        new = [i for i, key in enumerate(keys) if key not in self.slots]  # rows of ``unique`` are distinct
        if len(self.slots) + len(new) > self.max_rows:
            self.slots.clear()
            if len(keys) > self.max_rows:  # one batch holds more tokens than the cache: encode them directly
                return self.encoder.encode_rows(paddle.to_tensor(unique))  # [U, P]
            new = list(range(len(keys)))
        if new:
            rows = self.encoder.encode_rows(paddle.to_tensor(unique[new])).numpy()  # [len(new), P]
            first = len(self.slots)
            if first + len(new) > len(self.vectors):  # grow by doubling (at most max_rows)
                size = min(self.max_rows, max(2 * len(self.vectors), first + len(new), 1024))
                grown = np.zeros((size, self.vectors.shape[1]), dtype=np.float32)
                grown[:first] = self.vectors[:first]
                self.vectors = grown
            self.vectors[first:first + len(new)] = rows
            self.slots.update((keys[i], first + j) for j, i in enumerate(new))
        return paddle.to_tensor(self.vectors[[self.slots[key] for key in keys]])  # [U, P]


class ELMoEmbedder:
    """Tokenized sentences -> ELMo vectors of every layer, from a paddle-lm checkpoint.

    ``params_file`` is a checkpoint prefix such as ``checkpoints/final`` or its ``.pdparams`` file; the
    architecture and vocabulary come from the checkpoint. ``device`` is passed to ``paddle.set_device``
    (Paddle's global device). ``batch_size`` sentences are encoded at a time; ``progress`` shows a bar when
    there is more than one batch. ``flag`` names the checkpoint argument in error messages.

    ``stateful=True`` carries the LSTM state from call to call, as bilm-tf and AllenNLP do: each ``encode``
    call runs its sentences as rows 0..n-1 in the given order (no sorting), row r starting from the state row r
    ended with in the previous call (at its last real token; zeros at first, and for rows no call has used
    yet; rows a shorter call leaves out keep theirs). ``reset_state()`` clears it. The default is a zero start
    for every sentence, so a sentence's vectors do not depend on what was encoded before.

    ``token_cache_mib``: host memory for the char-CNN encodings of the tokens one ``encode`` call has seen
    (``TokenCache``; each distinct token is encoded once per call instead of once per batch); 0 turns it off.

    Attributes: ``model`` (the ``ELMo`` layer, in eval mode), ``sidecar`` (the checkpoint's metadata),
    ``projection_dim`` (P; vectors are 2P wide), ``num_layers`` (output layers L: the token layer plus one
    per LSTM layer, 3 for the usual 2-layer biLM), ``max_chars`` (characters per token, from training).

    Two ways in:

    - ``encode(sentences)`` -> one ``float32 [L, n_tokens, 2P]`` numpy array per sentence: inference
      (eval mode, no gradients), batched by length, input order kept.
    - ``batch_layers(sentences)`` -> ``(layers, mask)`` Paddle tensors in the model's current mode and with
      gradients, to train a downstream model on top of ELMo (and fine-tune it).
    """

    def __init__(self, params_file: str, batch_size: int = 64, device: str = "auto", progress: bool = True,
                 *, stateful: bool = False, token_cache_mib: float = 64, flag: str = "params_file"):
        from paddle_lm.evaluation import load_model

        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"batch_size must be a positive integer, not {batch_size!r}")
        if not isinstance(token_cache_mib, (int, float)) or not 0 <= token_cache_mib < float("inf"):
            raise UserError(f"token_cache_mib must be a number >= 0 (0 = no cache), not {token_cache_mib!r}")
        set_device(device)
        prefix = ckpt.resolve_prefix(os.fspath(params_file), flag, allow_suffix=True)
        side = ckpt.read_sidecar(prefix)
        kind = side.get("model_config", {}).get("model")
        if kind != "elmo":
            raise UserError(f"{flag} {prefix!r} holds a {kind!r} model, not an ELMo biLM; ELMoEmbedder needs a "
                            f"checkpoint trained with --model elmo")
        self.model, self.sidecar, self.vocab = load_model(prefix, flag=flag, allow_suffix=True, with_softmax=False)
        self.prefix = prefix
        self.batch_size = batch_size
        self.progress = progress
        self.projection_dim = int(side["model_config"]["projection_dim"])
        self.num_layers = int(side["model_config"]["num_layers"]) + 1
        self.max_chars = int(side["data"]["max_characters_per_token"])
        self.stateful = bool(stateful)
        self.token_cache_rows = int(token_cache_mib * 2**20) // (4 * self.projection_dim)  # [rows, P] float32
        self._state: list[np.ndarray] | None = None  # stateful: the model's flat state list, [rows, size] each

    def reset_state(self) -> None:
        """Forget the carried state (``stateful=True``): the next call starts every row from zeros."""
        self._state = None

    def _rows_state(self, start: int, rows: int) -> list:
        """The carried state of rows ``start .. start+rows-1`` as tensors (zeros for rows never run)."""
        if self._state is None:
            self._state = [t.numpy() for t in self.model.initial_state(start + rows)]
        grow = start + rows - self._state[0].shape[0]
        if grow > 0:
            self._state = [np.concatenate([s, np.zeros((grow, s.shape[1]), s.dtype)]) for s in self._state]
        return [paddle.to_tensor(s[start:start + rows]) for s in self._state]  # each [rows, size]

    def __repr__(self) -> str:
        return (f"ELMoEmbedder({self.prefix!r}, layers={self.num_layers}, dim={2 * self.projection_dim}, "
                f"batch_size={self.batch_size})")

    def _encode(self, char_ids: np.ndarray, mask: np.ndarray, state: list | None = None,
                cache: TokenCache | None = None):
        """``ELMo.encode`` of numpy ``char_ids [B, T, C]`` and ``mask [B, T]``, the char-CNN once per distinct token
        (of the batch, or of the call with a ``cache``); from ``state`` (the model's flat state list) or zeros. The
        new state is kept only when ``stateful``."""
        unique, inverse = distinct_rows(char_ids)  # [U, C], [B*T]
        inverse = paddle.to_tensor(inverse)
        if cache is None:  # the char-CNN runs inside encode, once per distinct token of the batch
            distinct, tokens = (paddle.to_tensor(unique), inverse), None
        else:
            b, t, _ = char_ids.shape
            distinct, tokens = None, paddle.gather(cache(unique), inverse, axis=0).reshape([b, t, -1])  # [B, T, P]
        return self.model.encode(paddle.to_tensor(char_ids), paddle.to_tensor(mask), state, distinct,
                                 keep_state=self.stateful, tokens=tokens)

    def _run_batch(self, char_ids: np.ndarray, mask: np.ndarray, start: int = 0,
                   cache: TokenCache | None = None) -> np.ndarray:
        """Eval-mode, gradient-free ``ELMo.encode`` of one batch (rows ``start..`` of a stateful call carry their
        state): ``[B, L, T+2, 2P]`` numpy."""
        was_training = self.model.training
        self.model.eval()
        try:
            with paddle.no_grad():
                rows = char_ids.shape[0]
                state = self._rows_state(start, rows) if self.stateful else None
                layers, new_state = self._encode(char_ids, mask, state, cache)  # L x [B, T+2, 2P]
                if self.stateful:
                    for kept, t in zip(self._state, new_state):
                        kept[start:start + rows] = t.numpy()  # [B, size]
                return paddle.stack(layers, axis=1).numpy()  # [B, L, T+2, 2P]
        finally:
            if was_training:
                self.model.train()

    def iter_encode(self, sentences: Sequence[Sequence[str]]) -> Iterator[tuple[int, np.ndarray]]:
        """Like ``encode`` but yields ``(index, vectors)`` batch by batch (length order, not input order).

        For large inputs: memory holds one batch, not every sentence's vectors.
        """
        validate_sentences(sentences)
        run = self._run_batch
        if self.token_cache_rows > 0:  # one cache per call: weights changed between calls are never served stale
            run = functools.partial(run, cache=TokenCache(self.model.token_encoder, self.token_cache_rows))
        return iter_encoded(sentences, self.max_chars, self.batch_size, run, self.progress, in_order=self.stateful)

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One ``float32 [L, n_tokens, 2P]`` array per tokenized sentence, in input order.

        Layer 0 is the char-CNN token encoding repeated for both directions; layer k >= 1 is the k-th forward
        LSTM output concatenated with the k-th backward one. Each sentence is wrapped in ``<S>`` ... ``</S>``
        as in training (those positions are not returned) and starts from a zero LSTM state (or, with
        ``stateful``, from its row's carried state); padding in a batch never changes a sentence's vectors. An empty sentence, a sentence given as a string, or a token
        with whitespace raises a UserError naming the sentence.
        """
        validate_sentences(sentences)
        out: list = [None] * len(sentences)
        for i, vectors in self.iter_encode(sentences):
            out[i] = vectors
        return out

    def mean_layers(self, sentences: Sequence[Sequence[str]]) -> np.ndarray:
        """Every sentence's vectors averaged over its tokens, per layer: ``float32 [N, L, 2P]``."""
        out = np.zeros((len(sentences), self.num_layers, 2 * self.projection_dim), dtype=np.float32)  # [N, L, 2P]
        for i, vectors in self.iter_encode(sentences):  # vectors [L, n, 2P]
            out[i] = vectors.mean(axis=1)  # [L, 2P]
        return out

    def batch_layers(self, sentences: Sequence[Sequence[str]]):
        """Differentiable ELMo layers of one batch, for training a model on top (and fine-tuning ELMo).

        Returns ``(layers, mask)``: ``layers`` is a list of L tensors ``[B, T, 2P]`` (boundaries stripped, T
        the longest sentence, values at padded positions unspecified) and ``mask`` float32 ``[B, T]`` (1 =
        real token). Runs in the model's current mode (call ``embedder.model.train()`` for dropout) and
        records gradients unless the caller is inside ``paddle.no_grad()``; pass the model's parameters to
        the optimizer to fine-tune them. Feed the result to ``ScalarMix``.
        """
        validate_sentences(sentences, allow_empty_list=False)
        char_ids, mask = sentences_char_ids([[BOS, *s, EOS] for s in sentences], self.max_chars)
        layers, _ = self._encode(char_ids, mask)  # L x [B, T+2, 2P]
        lengths = np.array([len(s) for s in sentences])  # [B]
        token_mask = (np.arange(lengths.max())[None, :] < lengths[:, None]).astype(np.float32)  # [B, T]
        return [h[:, 1:-1] for h in layers], paddle.to_tensor(token_mask)  # L x [B, T, 2P], [B, T]


class ScalarMix(nn.Layer):
    """Learned weighted sum of ELMo layers: ``gamma * sum_j softmax(w)_j * h_j`` (Peters et al., 2018).

    ``w`` (``[num_layers]``) starts at 0 and ``gamma`` (``[1]``) at 1, so initially the mix is the mean of
    the layers. ``forward(layers, mask=None)``: ``layers`` is a list (or tuple) of ``num_layers`` tensors
    ``[B, T, D]`` (as ``ELMoEmbedder.batch_layers`` returns), ``mask`` ``[B, T]`` (1 = real token); returns
    ``[B, T, D]``.

    With ``do_layer_norm`` each layer is first normalised to zero mean and unit variance over the real
    tokens of each sentence (all D features together; ``mask`` None = every position is real). AllenNLP
    takes these statistics over the whole batch instead; per sentence keeps a sentence's output
    independent of what it is batched with.
    """

    def __init__(self, num_layers: int, do_layer_norm: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"ScalarMix needs at least one layer, got {num_layers}")
        self.num_layers = num_layers
        self.do_layer_norm = do_layer_norm
        self.scalar_parameters = self.create_parameter(
            [num_layers], attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0)))
        self.gamma = self.create_parameter([1], attr=paddle.ParamAttr(initializer=nn.initializer.Constant(1.0)))

    def forward(self, layers, mask=None):
        if not isinstance(layers, (list, tuple)) or len(layers) != self.num_layers:
            got = len(layers) if isinstance(layers, (list, tuple)) else type(layers).__name__
            raise ValueError(f"ScalarMix expects a list of {self.num_layers} tensors [B, T, D], got {got}")
        if self.do_layer_norm:
            if mask is None:
                mask = paddle.ones(layers[0].shape[:2], dtype=layers[0].dtype)  # [B, T]
            layers = [_masked_norm(h, mask) for h in layers]
        weights = F.softmax(self.scalar_parameters)  # [L]
        stacked = paddle.stack(list(layers), axis=0)  # [L, B, T, D]
        mixed = (stacked * weights.reshape([-1, 1, 1, 1])).sum(axis=0)  # [B, T, D]
        return self.gamma * mixed  # [B, T, D]


def _masked_norm(h, mask, eps: float = 1e-12):
    """``h [B, T, D]`` normalised per row over the positions where ``mask [B, T]`` is 1 (and all of D)."""
    m = mask.astype(h.dtype).unsqueeze(-1)  # [B, T, 1]
    count = paddle.clip(m.sum(axis=[1, 2]) * h.shape[-1], min=1.0).reshape([-1, 1, 1])  # [B, 1, 1]
    mean = (h * m).sum(axis=[1, 2], keepdim=True) / count  # [B, 1, 1]
    var = (((h - mean) * m) ** 2).sum(axis=[1, 2], keepdim=True) / count  # [B, 1, 1]
    return (h - mean) / paddle.sqrt(var + eps)  # [B, T, D]
