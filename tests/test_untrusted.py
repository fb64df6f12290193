"""No path that reads weights executes code: a crafted pickle in place of any weights file is refused with one
`error:` line, and its payload (create a marker file) never runs.

Paths: `weights.safe_load`, `run_pretrain.py --init_from_pretrained` (a save_pretrained folder: no sidecar, so
only the restricted unpickler stands between the file and paddlenlp's), every `--init_from_ckpt` reader
(eval, embed, export, generate, save_pretrained, finetune, resume), and `load_exported`'s ``.pdiparams.info``.
A checkpoint's sidecar checksum may refuse a replaced file before the unpickler sees it; these tests hold
either way.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_inproc, run_script, train_tiny

from paddle_lm import weights
from paddle_lm.errors import UserError


class _Payload:
    """Unpickling this opens (creates) `marker`: the proof that a loader ran code from the file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def crafted(path: str, marker: str, legit: dict | None = None) -> None:
    """Write at `path` a state-dict-looking pickle (real arrays from `legit`) that also carries the payload."""
    state = {k: np.asarray(v) for k, v in (legit or {"w": np.zeros([2, 2], "float32")}).items()}
    state["evil"] = _Payload(marker)
    with open(path, "wb") as f:
        f.write(pickle.dumps(state, protocol=4))


def test_crafted_pickle_would_run_under_plain_pickle(tmp_path):
    """The fixture is real: plain pickle runs the payload (so the tests below prove a refusal)."""
    marker = str(tmp_path / "MARKER")
    crafted(str(tmp_path / "x.pdparams"), marker)
    with open(tmp_path / "x.pdparams", "rb") as f:
        pickle.load(f)
    assert os.path.exists(marker)


def test_safe_load_refuses_and_runs_nothing(tmp_path):
    marker = str(tmp_path / "MARKER")
    path = str(tmp_path / "x.pdparams")
    crafted(path, marker)
    with pytest.raises(UserError, match="x.pdparams.*refusing to load io.open") as e:
        weights.safe_load(path)
    assert "\n" not in str(e.value)
    with open(path, "rb") as f, pytest.raises(UserError):
        weights.loads_state(f.read(), path)
    assert not os.path.exists(marker)
    legit = {"a": np.arange(6, dtype="float32").reshape(2, 3)}
    with open(tmp_path / "ok.pdparams", "wb") as f:
        pickle.dump(legit, f, protocol=4)
    np.testing.assert_array_equal(weights.safe_load(str(tmp_path / "ok.pdparams"))["a"], legit["a"])


# ---------------------------------------------------------------------------------------------- pretrained
@pytest.fixture(scope="module")
def bert_folder(tiny_corpus, tmp_path_factory) -> str:
    """A save_pretrained folder (bert-tiny, random weights) with a WordPiece tokenizer trained on the corpus."""
    from paddle_lm.config import apply_preset
    from paddle_lm.data.subword import train_wordpiece
    from paddle_lm.models import build_model

    out = str(tmp_path_factory.mktemp("pretrained") / "bert")
    summary = train_wordpiece(tiny_corpus["train"], out, vocab_size=300, progress=False)
    cfg = apply_preset("bert", "bert-tiny")
    cfg.vocab_size = summary["vocab_size"]
    build_model(cfg).save_pretrained(out)
    assert os.path.isfile(os.path.join(out, "model_state.pdparams"))
    return out


def _continue(folder: str, tiny_corpus: dict, save_dir: str, monkeypatch) -> tuple[int, str, str]:
    return run_inproc("run_pretrain.py", ["--train_data_path", tiny_corpus["train"], "--model", "bert",
                                          "--max_seq_len", "16", "--batch_size", "4", "--max_steps", "1",
                                          "--device", "cpu", "--init_from_pretrained", folder,
                                          "--save_dir", save_dir], monkeypatch)


def test_init_from_pretrained_refuses_crafted_weights(bert_folder, tiny_corpus, tmp_path, monkeypatch):
    folder, marker = str(tmp_path / "bert"), str(tmp_path / "MARKER")
    shutil.copytree(bert_folder, folder)
    crafted(os.path.join(folder, "model_state.pdparams"), marker, weights.safe_load(
        os.path.join(bert_folder, "model_state.pdparams")))
    code, _, err = _continue(folder, tiny_corpus, str(tmp_path / "run"), monkeypatch)
    assert_one_line_error(code, err, "model_state.pdparams", "refusing to load")
    assert not os.path.exists(marker)
    assert not os.path.exists(tmp_path / "run" / "final.json")


@pytest.mark.parametrize("kind", ["pdparams", "safetensors"])
def test_init_from_pretrained_still_loads_legitimate_folders(kind, bert_folder, tiny_corpus, tmp_path, monkeypatch):
    folder = str(tmp_path / "bert")
    shutil.copytree(bert_folder, folder)
    if kind == "safetensors":
        from safetensors.numpy import save_file

        path = os.path.join(folder, "model_state.pdparams")
        save_file(weights.safe_load(path), os.path.join(folder, "model.safetensors"))
        os.remove(path)
    code, _, err = _continue(folder, tiny_corpus, str(tmp_path / "run"), monkeypatch)
    assert code == 0, err
    assert os.path.isfile(tmp_path / "run" / "final.json")


def test_pretrained_folder_weight_errors_are_one_line(bert_folder, tiny_corpus, tmp_path, monkeypatch):
    folder = str(tmp_path / "bert")
    shutil.copytree(bert_folder, folder)
    os.remove(os.path.join(folder, "model_state.pdparams"))
    code, _, err = _continue(folder, tiny_corpus, str(tmp_path / "a"), monkeypatch)
    assert_one_line_error(code, err, folder, "has no weights", "model_state.pdparams")
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(b"not safetensors at all")
    code, _, err = _continue(folder, tiny_corpus, str(tmp_path / "b"), monkeypatch)
    assert_one_line_error(code, err, "model.safetensors", "not a readable safetensors file")
    os.remove(os.path.join(folder, "model.safetensors"))
    state = weights.safe_load(os.path.join(bert_folder, "model_state.pdparams"))
    state["bert.embeddings.word_embeddings.weight"] = state["bert.embeddings.word_embeddings.weight"][:, :8]
    with open(os.path.join(folder, "model_state.pdparams"), "wb") as f:
        pickle.dump(state, f, protocol=4)
    code, _, err = _continue(folder, tiny_corpus, str(tmp_path / "c"), monkeypatch)
    assert_one_line_error(code, err, "word_embeddings.weight", "has shape")


def test_folder_state_holds_only_arrays(tmp_path, monkeypatch):
    folder = str(tmp_path)
    with open(os.path.join(folder, "model_state.pdparams"), "wb") as f:
        pickle.dump({"w": np.zeros(2), "note": "text"}, f, protocol=4)
    with pytest.raises(UserError, match="'note' holds a str, not an array"):
        weights.load_folder_state(folder)
    os.remove(os.path.join(folder, "model_state.pdparams"))
    (tmp_path / "model.safetensors").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "safetensors", None)  # as if not installed
    with pytest.raises(UserError, match="needs the safetensors package.*pip install safetensors"):
        weights.load_folder_state(folder)


# ---------------------------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def elmo_ckpt(tiny_corpus, tmp_path_factory) -> str:
    """A tiny ELMo checkpoint (2 steps, one at step 1); returns the save_dir."""
    return train_tiny(tiny_corpus, str(tmp_path_factory.mktemp("elmo")), "elmo-tiny", save_steps=1)


@pytest.fixture(scope="module")
def gpt2_ckpt(tiny_corpus, tmp_path_factory, request) -> str:
    """A tiny GPT-2 checkpoint (1 step); returns the save_dir."""
    save = str(tmp_path_factory.mktemp("gpt2") / "run")
    monkeypatch = pytest.MonkeyPatch()
    request.addfinalizer(monkeypatch.undo)
    code, _, err = run_inproc("run_pretrain.py", [
        "--train_data_path", tiny_corpus["train"], "--model", "gpt2", "--preset", "gpt2-tiny",
        "--subword_vocab_size", "300", "--block_size", "16", "--batch_size", "4", "--max_steps", "1",
        "--device", "cpu", "--save_dir", save], monkeypatch)
    assert code == 0, err
    return save


def tampered(save_dir: str, tmp_path, name: str = "final", suffixes=(".pdparams",)) -> tuple[str, str]:
    """A copy of `save_dir` whose checkpoint `name` has each of `suffixes` replaced by a crafted pickle.

    Returns (checkpoint prefix, marker path)."""
    copy, marker = str(tmp_path / "ckpt"), str(tmp_path / "MARKER")
    shutil.copytree(save_dir, copy)
    prefix = os.path.join(copy, name)
    for suf in suffixes:
        crafted(prefix + suf, marker, weights.safe_load(prefix + suf) if suf == ".pdparams" else None)
    return prefix, marker


def _polarity(folder) -> str:
    os.makedirs(folder)
    for name, word in (("rt-polarity.pos", "great"), ("rt-polarity.neg", "dull")):
        with open(os.path.join(folder, name), "w") as f:
            f.write("".join(f"the film was {word} and {word} {i} .\n" for i in range(30)))
    return str(folder)


CASES = {
    "eval": ("elmo", lambda p, t, c: ("run_eval.py", ["--init_from_ckpt", p, "--dev_data_path", c["dev"],
                                                      "--batch_size", "4"])),
    "embed": ("elmo", lambda p, t, c: ("paddle_lm", ["embed", "--init_from_ckpt", p, "--input", c["sents"],
                                                     "--output", str(t / "v.npz")])),
    "export": ("elmo", lambda p, t, c: ("paddle_lm", ["export", "--init_from_ckpt", p, "--output",
                                                      str(t / "exported" / "elmo")])),
    "finetune": ("elmo", lambda p, t, c: ("run_finetune.py", [
        "--data_dir", _polarity(t / "polarity"), "--encoder", "elmo", "--init_from_ckpt", p, "--epochs", "1",
        "--test_fraction", "0.2"])),
    "generate": ("gpt2", lambda p, t, c: ("paddle_lm", ["generate", "--init_from_ckpt", p, "--prompt", "the",
                                                        "--max_length", "4"])),
    "save_pretrained": ("gpt2", lambda p, t, c: ("paddle_lm", ["save_pretrained", "--init_from_ckpt", p,
                                                               "--output", str(t / "folder")])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_checkpoint_readers_refuse_crafted_params(case, elmo_ckpt, gpt2_ckpt, tiny_corpus, tmp_path, monkeypatch):
    kind, command = CASES[case]
    prefix, marker = tampered(elmo_ckpt if kind == "elmo" else gpt2_ckpt, tmp_path)
    (tmp_path / "sents.txt").write_text("the cat sees a ball .\n")
    target, argv = command(prefix, tmp_path, {**tiny_corpus, "sents": str(tmp_path / "sents.txt")})
    code, _, err = run_inproc(target, argv, monkeypatch)
    assert_one_line_error(code, err, ".pdparams")  # refused, by the unpickler or the sidecar's checksum
    assert not os.path.exists(marker)
    assert not os.path.exists(tmp_path / "v.npz") and not os.path.exists(tmp_path / "folder" / "config.json")


@pytest.mark.parametrize("suffixes", [(".pdparams",), (".pdopt",)])
def test_resume_refuses_crafted_checkpoint(suffixes, elmo_ckpt, tiny_corpus, tmp_path, monkeypatch):
    prefix, marker = tampered(elmo_ckpt, tmp_path, name="1", suffixes=suffixes)
    save_dir = os.path.dirname(prefix)
    code, _, err = run_inproc("run_pretrain.py", [
        "--train_data_path", tiny_corpus["train"], "--vocab_file", tiny_corpus["vocab"], "--preset", "elmo-tiny",
        "--batch_size", "4", "--unroll_steps", "5", "--max_steps", "2", "--save_dir", save_dir,
        "--init_from_ckpt", prefix], monkeypatch)
    assert_one_line_error(code, err, suffixes[0])
    assert not os.path.exists(marker)


# ---------------------------------------------------------------------------------------------- exports
@pytest.fixture(scope="module")
def exported(elmo_ckpt, tmp_path_factory) -> str:
    from paddle_lm.downstream.export import export_embedder

    prefix = str(tmp_path_factory.mktemp("exported") / "elmo")
    export_embedder(os.path.join(elmo_ckpt, "final"), prefix)
    return prefix


def test_load_exported_refuses_a_crafted_info_file(exported, tmp_path):
    from paddle_lm.downstream.export import load_exported

    folder, marker = str(tmp_path / "exp"), str(tmp_path / "MARKER")
    shutil.copytree(os.path.dirname(exported), folder)
    prefix = os.path.join(folder, "elmo")
    assert load_exported(prefix, progress=False).encode([["the", "cat"]])[0].shape[1] == 2  # a sound export loads
    crafted(prefix + ".pdiparams.info", marker)
    with pytest.raises(UserError, match="elmo.pdiparams.info.*refusing to load") as e:
        load_exported(prefix, progress=False)
    assert "\n" not in str(e.value) and not os.path.exists(marker)
    os.makedirs(prefix + ".d")
    shutil.copy(prefix + ".embedder-meta", prefix + ".d.embedder-meta")
    with pytest.raises(UserError, match="is a folder"):
        load_exported(prefix + ".d")


_LEGACY = """
import json, os, pickle, sys
import paddle
from paddle.static import InputSpec
from paddle_lm.downstream.export import EXPORT_FORMAT, META_SUFFIX, load_exported
from paddle_lm.errors import UserError
from test_untrusted import crafted
assert not paddle.framework.use_pir_api()
prefix, marker = sys.argv[1], sys.argv[2]
net = paddle.jit.to_static(paddle.nn.Linear(3, 2), input_spec=[InputSpec([None, 3], "float32")])
paddle.jit.save(net, prefix)
assert os.path.isfile(prefix + ".pdmodel") and os.path.isfile(prefix + ".pdiparams.info")
with open(prefix + META_SUFFIX, "w") as f:
    json.dump({"format": EXPORT_FORMAT, "max_chars": 50, "projection_dim": 1, "num_layers": 1}, f)
load_exported(prefix, progress=False)  # a sound legacy export loads
crafted(prefix + ".pdiparams.info", marker)
try:
    load_exported(prefix, progress=False)
except UserError as e:
    print("refused:", e)
"""


def test_load_exported_refuses_a_crafted_info_file_under_the_legacy_loader(tmp_path):
    """With FLAGS_enable_pir_api=0, paddle.jit.load itself would unpickle ``.pdiparams.info``."""
    marker = str(tmp_path / "MARKER")
    r = run_script(["-c", _LEGACY, str(tmp_path / "m"), marker], ROOT,
                   env={"FLAGS_enable_pir_api": "0", "PYTHONPATH": f"{ROOT}{os.pathsep}{os.path.dirname(__file__)}"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "refused:" in r.stdout and "refusing to load io.open" in r.stdout, r.stdout
    assert not os.path.exists(marker)

