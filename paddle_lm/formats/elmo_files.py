"""ELMo in and out of bilm-tf's format, as commands:

    python -m paddle_lm import-elmo --options options.json --weights weights.hdf5 --output elmo/original
    python -m paddle_lm export-elmo --init_from_ckpt checkpoints/final --output exported/bilm

`import_elmo` writes an ordinary paddle-lm checkpoint holding the encoder alone (bilm-tf's files hold no
softmax): its sidecar says ``encoder_only`` and records the source files with their SHA-256. The embedder, the
``embed`` / ``export`` commands and fine-tuning take it as any checkpoint; ``run_pretrain.py --model elmo
--init_from_pretrained PREFIX`` continues pretraining from it with a fresh softmax. `export_elmo` writes
``options.json`` + ``weights.hdf5`` that bilm-tf and AllenNLP's ``Elmo`` load. The layout itself is in
`paddle_lm.formats.bilm_tf`.
"""

from __future__ import annotations

import dataclasses
import os
import time

from paddle_lm.config import DataConfig, ModelConfig
from paddle_lm.errors import UserError
from paddle_lm.formats import bilm_tf
from paddle_lm.fsio import atomic_path, atomic_write_json, built_dir, os_error, refuse_existing, sha256_file
from paddle_lm.training import checkpoint as ckpt
from paddle_lm.weights import fit_state

SOURCE_FORMAT = "bilm-tf"
EXPORT_FILES = ("options.json", "weights.hdf5")
#: what AllenNLP's batch_to_ids always makes per token
ALLENNLP_CHARS = 50


def check_import_output(output: str, overwrite: bool) -> None:
    """What `import_elmo` checks of --output before any work (also run by the CLI before Paddle loads)."""
    if not output or output.endswith(("/", os.sep)) or os.path.isdir(output):
        raise UserError(f"--output {output!r}: pass a checkpoint prefix such as elmo/original (files get "
                        f"suffixes), not a folder")
    refuse_existing([output + s for s in ckpt.SUFFIXES], "--output", overwrite, shown=output)


def import_elmo(options: str, weights: str, output: str, overwrite: bool = False) -> dict:
    """Convert bilm-tf's `options` + `weights` into a paddle-lm encoder checkpoint at prefix `output`.

    Everything is read and checked before anything is written; the checkpoint is committed atomically (see
    training/checkpoint.py), so a refused or failed import leaves no output. Returns the sidecar written.
    """
    from paddle_lm.models import build_model

    check_import_output(output, overwrite)
    opts = bilm_tf.read_options(options)
    cfg, max_chars = bilm_tf.options_to_config(opts, options)
    values = bilm_tf.read_weights(weights, cfg, options)
    model = build_model(cfg, with_softmax=False)
    bilm_tf.set_weights(model, cfg, values)
    source = {"format": SOURCE_FORMAT, "options": os.path.abspath(options), "options_sha256": sha256_file(options),
              "weights": os.path.abspath(weights), "weights_sha256": sha256_file(weights), "options_json": opts}
    return save_encoder(model, cfg, max_chars, output, source)


def save_encoder(model, cfg, max_chars: int, output: str, source: dict) -> dict:
    """Commit ELMo encoder `model` (built from `cfg`, no softmax) as an encoder-only checkpoint at prefix `output`;
    `source` says where its weights came from. Returns the sidecar."""
    sidecar = {
        "step": 0, "tokens_seen": 0, "encoder_only": True,
        "model_config": dataclasses.asdict(cfg), "data": {"max_characters_per_token": max_chars},
        "source": source, "saved_at": time.time(),
    }
    ckpt.save_checkpoint(output, ckpt.host_state(model.state_dict()), None, None, sidecar)
    return sidecar


def export_notes(cfg, max_chars: int) -> list[str]:
    """What a user of the export should know about where it loads: one line each."""
    notes = []
    if not cfg.residual:
        notes.append("this model has no skip connections (--no-residual): AllenNLP's Elmo refuses it (its LSTM "
                     "always adds them); bilm-tf itself loads it")
    if max_chars != ALLENNLP_CHARS:
        notes.append(f"this model reads {max_chars} characters per token; AllenNLP's batch_to_ids makes "
                     f"{ALLENNLP_CHARS}, which changes the vectors: build its character ids with "
                     f"max_characters_per_token = {max_chars}")
    return notes


def export_elmo(prefix: str, output: str, overwrite: bool = False, flag: str = "--init_from_ckpt") -> tuple:
    """Write ELMo checkpoint `prefix` as bilm-tf's ``options.json`` + ``weights.hdf5`` in folder `output`.

    The folder is built under a temporary name and renamed into place (replacing an existing one only with
    `overwrite`). Returns (paths written, notes from `export_notes`).
    """
    import h5py

    from paddle_lm.evaluation import load_model

    check_export_output(output, overwrite)
    model, side, _ = load_model(prefix, flag=flag, allow_suffix=True, with_softmax=False)
    cfg = ModelConfig(**side["model_config"])
    if cfg.model != "elmo":
        raise UserError(f"{flag} {prefix!r} holds a {cfg.model!r} model; export-elmo needs an ELMo checkpoint")
    max_chars = int(side["data"]["max_characters_per_token"])
    values = bilm_tf.get_weights(model, cfg)
    with built_dir(output) as tmp:
        atomic_write_json(os.path.join(tmp, "options.json"), bilm_tf.config_to_options(cfg, max_chars))
        with atomic_path(os.path.join(tmp, "weights.hdf5")) as path:
            try:
                with h5py.File(path, "w") as f:
                    for name, value in values.items():
                        f.create_dataset(name, data=value)
            except OSError as e:
                raise os_error(e, os.path.join(output, "weights.hdf5")) from None
    return [os.path.join(output, name) for name in EXPORT_FILES], export_notes(cfg, max_chars)


def check_export_output(output: str, overwrite: bool) -> None:
    """What `export_elmo` checks of --output before any work (also run by the CLI before Paddle loads)."""
    if os.path.lexists(output) and not os.path.isdir(output):
        raise UserError(f"--output {output!r} exists and is not a folder; export-elmo writes a folder "
                        f"({' + '.join(EXPORT_FILES)})")
    refuse_existing(output, "--output", overwrite)


def describe_import(side: dict) -> str:
    """One line on an imported checkpoint's architecture."""
    m = side["model_config"]
    return (f"{m['num_layers']} x {m['cell_size']} -> {m['projection_dim']} LSTMs per direction, "
            f"{sum(c for _, c in m['filters'])} char-CNN filters, {m['num_highways']} highways, skip connections "
            f"{'on' if m['residual'] else 'off'}")


# ------------------------------------------------------------------------------------ continued pretraining
def elmo_start(prefix: str) -> tuple[str, dict]:
    """(prefix, sidecar) of the ELMo checkpoint ``--init_from_pretrained`` names (one line if it is not one);
    needs no Paddle, so run_pretrain.py checks it with the other flags."""
    prefix = ckpt.resolve_prefix(prefix, "--init_from_pretrained", allow_suffix=True)
    side = ckpt.read_sidecar(prefix)
    kind = side["model_config"].get("model")
    if kind != "elmo":
        raise UserError(f"--init_from_pretrained {prefix} holds a {kind!r} model, not an ELMo")
    return prefix, side


def elmo_from_pretrained(prefix: str, model_cfg: ModelConfig, data: DataConfig) -> tuple:
    """(checkpoint prefix, model config, data config) of a run that starts from the ELMo encoder at `prefix`
    (``--init_from_pretrained``): its architecture and characters per token, `model_cfg`'s dropout."""
    prefix, side = elmo_start(prefix)
    saved = dataclasses.replace(ModelConfig(**side["model_config"]), dropout=model_cfg.dropout, vocab_size=0)
    return prefix, saved, dataclasses.replace(data, max_characters_per_token=side["data"]["max_characters_per_token"])


def load_elmo_encoder(model, prefix: str) -> None:
    """The encoder weights of ELMo checkpoint `prefix` into `model` (built from its config); the softmax stays
    as built (fresh, over this run's vocabulary)."""
    from paddle_lm.evaluation import SOFTMAX_PREFIX

    side = ckpt.read_sidecar(prefix)
    state = {k: v for k, v in ckpt.load_params(prefix, side).items() if not k.startswith(SOFTMAX_PREFIX)}
    fit_state(model, state, f"--init_from_pretrained {prefix}", optional=lambda k: k.startswith(SOFTMAX_PREFIX))
