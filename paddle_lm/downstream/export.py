"""ELMo vectors and the ELMo encoder out of Python: a vector dump of a text file, and a static inference model.

- ``embed_file``: a tokenized text file (one sentence per line) -> ``.npz`` (or ``.h5`` with h5py), one
  ``[L, n_tokens, 2P]`` entry per line under keys "0", "1", ... (``python -m paddle_lm embed``).
- ``export_embedder``: ``paddle.jit.save`` of the encoder as a static graph (``python -m paddle_lm export``);
  ``load_exported`` loads it back with ``paddle.jit.load`` and encodes sentences like ``ELMoEmbedder``.

Shape letters: B batch, T tokens (with ``<S>``/``</S>`` in the exported graph), C characters per token,
P projection_dim, H cell size, L output layers.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Sequence

import numpy as np
import paddle
from paddle import nn
from paddle.static import InputSpec

from paddle_lm.data.vocab import read_lines
from paddle_lm.device import set_device
from paddle_lm.downstream.embedder import ELMoEmbedder, iter_encoded, validate_sentences
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_path, atomic_write_text, move_files, read_json, tmp_name
from paddle_lm.training import checkpoint as ckpt
from paddle_lm.weights import safe_load

EXPORT_FORMAT = "paddle-lm-elmo-export/1"
# JSON inside, but not named *.json: paddle.jit.load would read ``{prefix}.NAME.json`` as a method's program.
META_SUFFIX = ".embedder-meta"


# ---------------------------------------------------------------------------------------------- static graph
class StackedEncoder(nn.Layer):
    """``ELMo.encode(char_ids, mask)`` from a zero state, the layers stacked: the graph ``export_embedder``
    traces (``paddle.jit.to_static``; ``ProjectedLSTM``'s step loop becomes a while loop over any T).

    ``forward(char_ids [B, T, C] int32, mask [B, T] float32) -> [B, L, T, 2P]``.
    """

    def __init__(self, elmo: nn.Layer):
        super().__init__()
        self.elmo = elmo

    def forward(self, char_ids, mask):
        layers, _ = self.elmo.encode(char_ids, mask, keep_state=False)  # L x [B, T, 2P]
        return paddle.stack(layers, axis=1)  # [B, L, T, 2P]


def export_embedder(params_file: str, output: str, device: str = "auto", flag: str = "--init_from_ckpt") -> list:
    """Save checkpoint ``params_file``'s encoder as a static inference model at prefix ``output``.

    Writes ``{output}.json`` + ``{output}.pdiparams`` (``paddle.jit.save``; inputs ``char_ids`` int32
    ``[B, T, C]`` and ``mask`` float32 ``[B, T]``, both with any B and T, sentences already wrapped in
    ``<S>``/``</S>`` and right-padded; output ``[B, L, T, 2P]``) and ``{output}.embedder-meta`` (JSON: what
    ``load_exported`` needs), each renamed into place, the metadata last. Returns the paths written.
    """
    if not output or output.endswith(("/", os.sep)) or os.path.isdir(output):
        raise UserError(f"--output {output!r}: pass a file prefix such as exported/elmo (files get suffixes)")
    if ckpt.is_checkpoint(output):
        raise UserError(f"--output {output!r} is a training checkpoint prefix; export to another prefix, "
                        f"e.g. {os.path.join(os.path.dirname(output) or '.', 'exported', 'elmo')}")
    emb = ELMoEmbedder(params_file, device=device, progress=False, flag=flag)
    net = StackedEncoder(emb.model)
    net.eval()
    spec = [InputSpec([None, None, emb.max_chars], "int32", "char_ids"), InputSpec([None, None], "float32", "mask")]
    static = paddle.jit.to_static(net, input_spec=spec, full_graph=True)
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(output)
    tmp = tmp_name(os.path.join(folder, base))
    os.makedirs(tmp)
    try:
        paddle.jit.save(static, os.path.join(tmp, base))
        meta = {
            "format": EXPORT_FORMAT, "checkpoint": emb.prefix, "step": emb.sidecar.get("step"),
            "max_chars": emb.max_chars, "projection_dim": emb.projection_dim, "num_layers": emb.num_layers,
            "inputs": {"char_ids": ["B", "T", emb.max_chars], "mask": ["B", "T"]},
            "output": ["B", emb.num_layers, "T", 2 * emb.projection_dim],
        }
        atomic_write_text(os.path.join(tmp, base + META_SUFFIX), json.dumps(meta, indent=1))
        names = sorted(os.listdir(tmp), key=lambda n: n.endswith(META_SUFFIX))  # metadata last
        return move_files(tmp, folder, names)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class ExportedELMo:
    """An exported encoder loaded with ``paddle.jit.load`` (`_jit_load`); ``encode`` works like
    ``ELMoEmbedder.encode``.

    ``prefix`` is what ``export_embedder`` was given. ``model(char_ids, mask)`` runs the raw graph (inputs
    as in ``export_embedder``); ``encode(sentences)`` adds the boundaries, batches by length and strips them.
    """

    def __init__(self, prefix: str, batch_size: int = 64, device: str = "auto", progress: bool = True):
        meta_path = prefix + META_SUFFIX
        if not os.path.isfile(meta_path):
            raise UserError(f"{prefix!r} is not an exported paddle-lm ELMo (no {meta_path}); "
                            f"create it with `python -m paddle_lm export`")
        self.meta = read_json(meta_path)
        if self.meta.get("format") != EXPORT_FORMAT:
            raise UserError(f"{meta_path} has format {self.meta.get('format')!r}, expected {EXPORT_FORMAT!r}")
        set_device(device)
        self.model = _jit_load(prefix)
        self.model.eval()
        self.batch_size, self.progress = batch_size, progress
        self.max_chars = int(self.meta["max_chars"])
        self.projection_dim = int(self.meta["projection_dim"])
        self.num_layers = int(self.meta["num_layers"])

    def _run_batch(self, char_ids: np.ndarray, mask: np.ndarray, start: int = 0) -> np.ndarray:
        with paddle.no_grad():  # the exported graph always starts from zeros: `start` does not matter
            return self.model(paddle.to_tensor(char_ids), paddle.to_tensor(mask)).numpy()  # [B, L, T+2, 2P]

    def encode(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """One ``float32 [L, n_tokens, 2P]`` array per tokenized sentence, in input order."""
        validate_sentences(sentences)
        out: list = [None] * len(sentences)
        for i, vectors in iter_encoded(sentences, self.max_chars, self.batch_size, self._run_batch, self.progress):
            out[i] = vectors
        return out


def load_exported(prefix: str, **kwargs) -> ExportedELMo:
    """Load an encoder saved by ``export_embedder`` (keyword arguments as ``ExportedELMo``)."""
    return ExportedELMo(prefix, **kwargs)


def _jit_load(prefix: str):
    """``paddle.jit.load(prefix)``, refusing a crafted export before Paddle could run code from it.

    Paddle 3.3.1's PIR loader (the default; ``jit/pir_translated_layer.py``) reads only the program
    ``{prefix}.json`` (C++ JSON parser) and ``{prefix}.pdiparams`` (C++ ``load_combine``): no pickle. The legacy
    loader (``FLAGS_enable_pir_api=0``; ``jit/translated_layer.py`` ``_load_persistable_vars``, line 728)
    ``pickle.load``s ``{prefix}.pdiparams.info``, or ``{dir}/None.info`` when given a folder, with no
    restriction. So: prefixes only, and an ``.info`` file (PIR exports write none) must pass the restricted
    unpickler first.
    """
    if os.path.isdir(prefix):
        raise UserError(f"{prefix!r} is a folder; pass the prefix `python -m paddle_lm export --output` was given")
    info = prefix + ".pdiparams.info"
    if os.path.exists(info):
        safe_load(info)  # a crafted pickle is refused here, never run
    try:
        return paddle.jit.load(prefix)
    except (ValueError, RuntimeError, OSError) as e:
        raise UserError(f"{prefix!r}: paddle cannot load this export ({str(e).strip().splitlines()[0][:200]})") from None


# ---------------------------------------------------------------------------------------------- vector dump
def read_tokenized(path: str, flag: str = "--input") -> list[list[str]]:
    """Sentences of a tokenized UTF-8 file (one per line, tokens split on whitespace); no blank lines."""
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path!r} does not exist (expected a tokenized text file, one sentence per line)")
    sentences = []
    for no, line in read_lines(path):
        tokens = line.split()
        if not tokens:
            raise UserError(f"{flag} {path}:{no}: blank line; every line must hold one tokenized sentence "
                            f"(the output has one entry per line)")
        sentences.append(tokens)
    if not sentences:
        raise UserError(f"{flag} {path!r} is empty; nothing to embed")
    return sentences


def embed_file(params_file: str, input_path: str, output: str, batch_size: int = 64, device: str = "auto",
               progress: bool = True) -> int:
    """Encode every line of ``input_path`` and write ``output`` (``.npz``, or ``.h5``/``.hdf5`` with h5py).

    Entry ``str(i)`` holds line ``i + 1``'s ``float32 [L, n_tokens, 2P]`` vectors. The file is written under
    a temporary name and renamed, so a failure leaves no partial output. Returns the number of sentences.
    """
    kind = os.path.splitext(output)[1].lower()
    if kind not in (".npz", ".h5", ".hdf5"):
        raise UserError(f"--output {output!r}: name it *.npz (numpy) or *.h5 (HDF5, needs h5py)")
    if kind != ".npz":
        try:
            import h5py  # noqa: F401
        except ImportError:
            raise UserError(f"--output {output!r}: writing HDF5 needs h5py (`pip install h5py`); "
                            f"or write .npz instead") from None
    sentences = read_tokenized(input_path)
    emb = ELMoEmbedder(params_file, batch_size=batch_size, device=device, progress=progress,
                       flag="--init_from_ckpt")
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    with atomic_path(output) as tmp:
        (_write_npz if kind == ".npz" else _write_h5)(tmp, emb.iter_encode(sentences))
    return len(sentences)


def _write_npz(path: str, entries) -> None:
    """Stream ``(index, array)`` pairs into an uncompressed npz (what ``np.savez`` writes), key ``str(index)``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for i, vectors in entries:
            with zf.open(f"{i}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, vectors, allow_pickle=False)


def _write_h5(path: str, entries) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        for i, vectors in entries:
            f.create_dataset(str(i), data=vectors)
