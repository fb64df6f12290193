"""ELMo in bilm-tf's format: bilm-tf's own test reproduced from its fixture, import/export round trips, the
encoder-only checkpoint in every command that takes one, continued pretraining, and every bad input refused."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_inproc, run_script

from paddle_lm import ELMoEmbedder
from paddle_lm.training.checkpoint import SUFFIXES, read_sidecar

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "bilm-tf")
OPTIONS, WEIGHTS = os.path.join(FIXTURE, "options.json"), os.path.join(FIXTURE, "lm_weights.hdf5")


def import_cli(monkeypatch, options, weights, output, *extra):
    return run_inproc("paddle_lm", ["import-elmo", "--options", str(options), "--weights", str(weights),
                                    "--output", str(output), *extra], monkeypatch)


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> str:
    """bilm-tf's fixture model imported through the CLI."""
    prefix = str(tmp_path_factory.mktemp("imported") / "fixture")
    r = run_script(["-m", "paddle_lm", "import-elmo", "--options", OPTIONS, "--weights", WEIGHTS, "--output",
                    prefix], ROOT)
    assert r.returncode == 0, r.stderr
    assert "an ELMo encoder (2 x 64 -> 16 LSTMs per direction" in r.stdout
    return prefix


def fixture_batches():
    """bilm-tf's test_bilm: call i encodes sentence i of each of the 3 lists (3 rows); the expected top layer."""
    with open(os.path.join(FIXTURE, "lm_embeddings_sentences.json")) as f:
        lists = json.load(f)
    for i in range(10):
        expected = []
        for k in range(3):
            with h5py.File(os.path.join(FIXTURE, f"lm_embeddings_{k}.hdf5"), "r") as f:
                expected.append(f[str(i)][...])  # [2, n, 16]: forward, backward
        yield [lists[k][i].split() for k in range(3)], expected


def top_layer(vectors: np.ndarray) -> np.ndarray:
    """``[L, n, 2P]`` -> the top layer as bilm-tf stores it, ``[2, n, P]`` (forward, backward)."""
    top = vectors[-1]  # [n, 2P]
    p = top.shape[1] // 2
    return np.stack([top[:, :p], top[:, p:]])


def test_reproduces_bilm_tf_test_bilm(imported):
    """Stateful, as bilm-tf: 10 calls of 3 sentences, each row carrying its state, within atol 1e-6."""
    emb = ELMoEmbedder(imported, stateful=True, progress=False)
    worst = 0.0
    for sentences, expected in fixture_batches():
        for got, want in zip(emb.encode(sentences), expected):
            assert top_layer(got).shape == want.shape
            worst = max(worst, float(np.abs(top_layer(got) - want).max()))
    assert worst <= 1e-6, worst
    # the state matters: with a zero start every call, the second call on no longer matches
    plain = ELMoEmbedder(imported, progress=False)
    batches = list(fixture_batches())
    assert np.abs(top_layer(plain.encode(batches[0][0])[0]) - batches[0][1][0]).max() <= 1e-6
    assert np.abs(top_layer(plain.encode(batches[1][0])[0]) - batches[1][1][0]).max() > 1e-3


def test_stateful_rows_batches_and_reset(imported):
    """Row r continues row r whatever the batch size; a shorter call leaves the other rows' state alone;
    reset_state() starts again from zeros."""
    batches = [s for s, _ in fixture_batches()][:3]
    one = ELMoEmbedder(imported, stateful=True, progress=False)  # 3 rows per batch
    two = ELMoEmbedder(imported, stateful=True, batch_size=2, progress=False)  # rows 0-1, then row 2
    for sentences in batches:
        for a, b in zip(one.encode(sentences), two.encode(sentences)):
            np.testing.assert_allclose(a, b, atol=1e-6)
    short = one.encode(batches[0][:1])  # row 0 only
    fresh = ELMoEmbedder(imported, stateful=True, progress=False)
    for sentences in batches:
        fresh.encode(sentences)
    fresh.encode(batches[0][:1])
    np.testing.assert_allclose(fresh.encode(batches[1])[2], one.encode(batches[1])[2], atol=1e-6)  # row 2 kept
    assert not np.allclose(short[0], ELMoEmbedder(imported, progress=False).encode(batches[0][:1])[0], atol=1e-4)
    one.reset_state()
    np.testing.assert_allclose(one.encode(batches[0])[1],
                               ELMoEmbedder(imported, progress=False).encode(batches[0])[1], atol=1e-6)


def test_export_of_the_import_is_the_fixture(imported, tmp_path, monkeypatch):
    """export-elmo(import-elmo(bilm-tf files)) gives bilm-tf's datasets back; our own export round-trips."""
    out = tmp_path / "bilm"
    code, stdout, err = run_inproc("paddle_lm", ["export-elmo", "--init_from_ckpt", imported, "--output", str(out)],
                                   monkeypatch)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["options.json", "weights.hdf5"]
    assert "AllenNLP's Elmo refuses it" in stdout  # the fixture has no skip connections
    with h5py.File(WEIGHTS, "r") as a, h5py.File(out / "weights.hdf5", "r") as b:
        names = []
        a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            np.testing.assert_allclose(b[name][...], a[name][...], atol=1e-6, err_msg=name)
    with open(OPTIONS) as f, open(out / "options.json") as g:
        assert json.load(g) == json.load(f)


def test_round_trip_of_a_trained_checkpoint(elmo_ckpt, tmp_path, monkeypatch):
    """A paddle-lm ELMo (skip connections on, trained 2 steps) -> bilm-tf files -> paddle-lm: the same vectors."""
    out, back = tmp_path / "bilm", tmp_path / "back"
    code, stdout, err = run_inproc("paddle_lm", ["export-elmo", "--init_from_ckpt", elmo_ckpt, "--output", str(out)],
                                   monkeypatch)
    assert code == 0 and "note:" not in stdout, err + stdout
    code, _, err = import_cli(monkeypatch, out / "options.json", out / "weights.hdf5", back)
    assert code == 0, err
    side = read_sidecar(str(back))
    assert side["encoder_only"] and side["source"]["format"] == "bilm-tf"
    assert len(side["source"]["weights_sha256"]) == 64
    assert sorted(os.listdir(tmp_path)) == ["back.json", "back.pdparams", "bilm"]  # no optimizer or state files
    sentences = [["the", "cat", "sees", "a", "ball", "."], ["Anna", "."], ["w12", "x"]]
    for a, b in zip(ELMoEmbedder(elmo_ckpt, progress=False).encode(sentences),
                    ELMoEmbedder(str(back), progress=False).encode(sentences)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    code, _, err = run_inproc("paddle_lm", ["export-elmo", "--init_from_ckpt", elmo_ckpt, "--output", str(out)],
                              monkeypatch)
    assert_one_line_error(code, err, "--output", "already exists")


def test_imported_encoder_in_every_command(imported, tiny_corpus, polarity, tmp_path, monkeypatch):
    """embed, export and run_finetune take the import as any checkpoint; run_eval and resuming say what to do."""
    text = tmp_path / "in.txt"
    text.write_text("the cat .\nAnna sees a dog\n")
    code, _, err = run_inproc("paddle_lm", ["embed", "--init_from_ckpt", imported, "--input", str(text), "--output",
                                            str(tmp_path / "v.npz")], monkeypatch)
    assert code == 0, err
    with np.load(tmp_path / "v.npz") as z:
        assert z["1"].shape == (3, 4, 32)
    code, _, err = run_inproc("paddle_lm", ["export", "--init_from_ckpt", imported, "--output",
                                            str(tmp_path / "static" / "elmo")], monkeypatch)
    assert code == 0, err
    code, _, err = run_inproc("run_eval.py", ["--init_from_ckpt", imported, "--dev_data_path", tiny_corpus["dev"]],
                              monkeypatch)
    assert_one_line_error(code, err, "without a softmax", "--init_from_pretrained")
    code, _, err = run_inproc("run_pretrain.py", ["--init_from_ckpt", imported, "--train_data_path",
                                                  tiny_corpus["train"], "--vocab_file", tiny_corpus["vocab"],
                                                  "--save_dir", str(tmp_path / "ck")], monkeypatch)
    assert_one_line_error(code, err, "without training state", "--init_from_pretrained")
    code, _, err = run_inproc("run_finetune.py", ["--data_dir", polarity, "--init_from_ckpt", imported, "--folds",
                                                    "2", "--epochs", "1", "--device", "cpu"], monkeypatch)
    assert code == 0, err
    code, _, err = run_inproc("run_finetune.py", ["--data_dir", polarity, "--init_from_ckpt", imported,
                                                  "--vocab_file", tiny_corpus["vocab"]], monkeypatch)
    assert_one_line_error(code, err, "--vocab_file", "without a word vocabulary")


def test_continued_pretraining_from_the_import(imported, tiny_corpus, tmp_path, monkeypatch):
    """--init_from_pretrained: the encoder's architecture and weights, a fresh softmax over the run's vocabulary;
    a contradicting flag is refused by name; the run resumes exactly."""
    base = ["--model", "elmo", "--init_from_pretrained", imported, "--train_data_path", tiny_corpus["train"],
            "--vocab_file", tiny_corpus["vocab"], "--batch_size", "3", "--unroll_steps", "5", "--device", "cpu",
            "--logging_steps", "1", "--save_steps", "2"]
    code, _, err = run_inproc("run_pretrain.py", [*base, "--save_dir", str(tmp_path / "x"), "--cell_size", "32"],
                              monkeypatch)
    assert_one_line_error(code, err, "--cell_size 32 contradicts", "trained with 64", "start from it")
    save = str(tmp_path / "cont")
    code, _, err = run_inproc("run_pretrain.py", [*base, "--save_dir", save, "--max_steps", "4", "--lr", "1e-9"],
                              monkeypatch)
    assert code == 0, err
    side = read_sidecar(os.path.join(save, "final"))
    assert side["model_config"]["cell_size"] == 64 and side["model_config"]["residual"] is False
    assert side["data"]["vocab_size"] > 0
    sentences = [["the", "cat", "sees", "a", "ball", "."]]
    a = ELMoEmbedder(os.path.join(save, "final"), progress=False).encode(sentences)[0]
    b = ELMoEmbedder(imported, progress=False).encode(sentences)[0]
    np.testing.assert_allclose(a, b, atol=1e-4)  # the imported encoder, barely moved at lr 1e-9
    with open(os.path.join(save, "metrics.jsonl")) as f:
        full = [json.loads(line)["loss"] for line in f if '"loss"' in line]
    shutil.copytree(save, tmp_path / "again")
    for suf in SUFFIXES:
        os.remove(os.path.join(tmp_path / "again", "final" + suf))
    os.remove(os.path.join(tmp_path / "again", "metrics.jsonl"))
    code, _, err = run_inproc("run_pretrain.py", [*base, "--save_dir", str(tmp_path / "again"), "--max_steps", "4",
                                                  "--lr", "1e-9", "--init_from_ckpt", "latest"], monkeypatch)
    assert code == 0, err
    with open(os.path.join(tmp_path / "again", "metrics.jsonl")) as f:
        resumed = [json.loads(line)["loss"] for line in f if '"loss"' in line]
    assert resumed == full[-len(resumed):] and len(resumed) == 2


# ---------------------------------------------------------------------------------------------- bad inputs
def _options(tmp_path, change) -> str:
    with open(OPTIONS) as f:
        opts = json.load(f)
    change(opts)
    path = tmp_path / "options.json"
    path.write_text(json.dumps(opts))
    return str(path)


def _weights(tmp_path, change) -> str:
    path = tmp_path / "w.hdf5"
    shutil.copy(WEIGHTS, path)
    with h5py.File(path, "a") as f:
        change(f)
    return str(path)


BAD_OPTIONS = [
    (lambda o: o["lstm"].update(projection_dim=128), "projection_dim 128 > lstm.dim 64"),
    (lambda o: o.pop("char_cnn"), "token-embedding biLM"),
    (lambda o: o["char_cnn"].update(n_characters=300), "n_characters 300"),
    (lambda o: o.update(magic=1), "option 'magic'"),
    (lambda o: o["lstm"].update(n_layers=3), "lacks dataset 'RNN_0/RNN/MultiRNNCell/Cell2/LSTMCell/W_0'"),
    (lambda o: o["lstm"].update(dim=32), "has shape [32, 256], --options"),
    (lambda o: o["char_cnn"].update(activation="sigmoid"), "activation \"sigmoid\""),
    (lambda o: o["lstm"].update(cell_clip="3"), "lstm.cell_clip must be"),
    (lambda o: o.pop("lstm"), "no 'lstm' section"),
]


@pytest.mark.parametrize("change,needle", BAD_OPTIONS)
def test_options_refused_by_name(tmp_path, monkeypatch, change, needle):
    code, _, err = import_cli(monkeypatch, _options(tmp_path, change), WEIGHTS, tmp_path / "out")
    assert_one_line_error(code, err, needle)
    assert not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())


BAD_WEIGHTS = [
    (lambda f: f.__delitem__("CNN_proj/b_proj"), "lacks dataset 'CNN_proj/b_proj'"),
    (lambda f: f.create_dataset("softmax/W", data=np.zeros((3, 16), np.float32)), "holds 'softmax/W'"),
    (lambda f: (f.__delitem__("char_embed"), f.create_dataset("char_embed", data=np.zeros((262, 4), np.float32))),
     "char_embed has shape [262, 4]"),
    (lambda f: f["CNN/b_cnn_0"].__setitem__(0, np.nan), "non-finite"),
]


@pytest.mark.parametrize("change,needle", BAD_WEIGHTS)
def test_weights_refused(tmp_path, monkeypatch, change, needle):
    code, _, err = import_cli(monkeypatch, OPTIONS, _weights(tmp_path, change), tmp_path / "out")
    assert_one_line_error(code, err, needle)
    assert not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())


def test_unreadable_files_refused(tmp_path, monkeypatch, imported):
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5\n")
    truncated = tmp_path / "cut.hdf5"
    truncated.write_bytes(Path(WEIGHTS).read_bytes()[:100_000])
    for options, weights, needle in ((OPTIONS, text, "not a readable HDF5 file"),
                                     (OPTIONS, truncated, "cut.hdf5"),
                                     (text, WEIGHTS, "is not JSON"),
                                     (tmp_path / "none.json", WEIGHTS, f"cannot read {tmp_path / 'none.json'}"),
                                     (OPTIONS, tmp_path / "none.hdf5", "does not exist")):
        code, _, err = import_cli(monkeypatch, options, weights, tmp_path / "out")
        assert_one_line_error(code, err, needle)
    (tmp_path / "list.json").write_text("[1, 2]")
    code, _, err = import_cli(monkeypatch, tmp_path / "list.json", WEIGHTS, tmp_path / "out")
    assert_one_line_error(code, err, "not bilm-tf options")
    assert not any(p.name.startswith(("out", ".out")) for p in tmp_path.iterdir())
    code, _, err = import_cli(monkeypatch, OPTIONS, WEIGHTS, imported)  # an existing checkpoint
    assert_one_line_error(code, err, "--output", "--overwrite")


def test_unprojected_model_round_trip(tmp_path, monkeypatch):
    """No projection anywhere (filters add up to projection_dim = cell_size, as elmo-paddlenlp's LSTMs): the
    export adds the identity CNN_proj / W_P_0 AllenNLP reads, the import accepts exactly those, and says what
    AllenNLP refuses."""
    import dataclasses

    import paddle

    from paddle_lm.config import apply_preset
    from paddle_lm.formats.elmo_files import save_encoder
    from paddle_lm.models import build_model

    cfg = dataclasses.replace(apply_preset("elmo", "elmo-tiny"), filters=[[1, 4], [2, 12]], projection_dim=16,
                              cell_size=16, cell_clip=0.0, proj_clip=0.0, residual=False, vocab_size=0)
    paddle.seed(7)
    model = build_model(cfg, with_softmax=False)
    with paddle.no_grad():
        model.token_encoder.projection.weight.set_value(np.eye(16, dtype=np.float32))
        model.token_encoder.projection.bias.set_value(np.zeros(16, np.float32))
    save_encoder(model, cfg, 20, str(tmp_path / "plain"), {"format": "test"})
    code, stdout, err = run_inproc("paddle_lm", ["export-elmo", "--init_from_ckpt", str(tmp_path / "plain"),
                                                 "--output", str(tmp_path / "bilm")], monkeypatch)
    assert code == 0, err
    assert "no skip connections" in stdout and "20 characters per token" in stdout
    with h5py.File(tmp_path / "bilm" / "weights.hdf5", "r") as f:
        np.testing.assert_array_equal(f["CNN_proj/W_proj"][...], np.eye(16))
        np.testing.assert_array_equal(f["RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_P_0"][...], np.eye(16))
        assert f["RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0"].shape == (32, 64)
    code, _, err = import_cli(monkeypatch, tmp_path / "bilm" / "options.json", tmp_path / "bilm" / "weights.hdf5",
                              tmp_path / "back")
    assert code == 0, err
    sentences = [["a", "short", "one"], ["x"]]
    for a, b in zip(ELMoEmbedder(str(tmp_path / "plain"), progress=False).encode(sentences),
                    ELMoEmbedder(str(tmp_path / "back"), progress=False).encode(sentences)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with h5py.File(tmp_path / "bilm" / "weights.hdf5", "a") as f:
        f["CNN_proj/W_proj"][0, 1] = 0.5
    code, _, err = import_cli(monkeypatch, tmp_path / "bilm" / "options.json", tmp_path / "bilm" / "weights.hdf5",
                              tmp_path / "back2")
    assert_one_line_error(code, err, "CNN_proj/W_proj is not the identity")
    with paddle.no_grad():
        model.token_encoder.projection.bias.set_value(np.ones(16, np.float32))
    save_encoder(model, cfg, 20, str(tmp_path / "biased"), {"format": "test"})
    code, _, err = run_inproc("paddle_lm", ["export-elmo", "--init_from_ckpt", str(tmp_path / "biased"), "--output",
                                            str(tmp_path / "bilm2")], monkeypatch)
    assert_one_line_error(code, err, "projection is not the identity")
    assert not (tmp_path / "bilm2").exists()
