"""Downstream polarity classifier: learning, folds, significance tests, word vectors, compare, bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_inproc, run_script

from paddle_lm.config import FinetuneConfig
from paddle_lm.errors import UserError

FAST = ["--lr", "0.01", "--epochs", "30", "--batch_size", "8", "--hidden_size", "16", "--dropout", "0.0",
        "--patience", "4"]


# ---------------------------------------------------------------------------------------------- learning
def test_classifier_learns_separable_task(polarity, vector_files):
    from paddle_lm.downstream.finetune import finetune

    cfg = FinetuneConfig(data_dir=polarity, encoder="word2vec", pretrained_word2vec_file=vector_files["text"],
                         folds=3, epochs=30, batch_size=8, hidden_size=16, dropout=0.0, lr=1e-2)
    r = finetune(cfg, progress=False)["results"][0]
    assert len(r["accuracies"]) == 3 and r["mean"] > 0.9, r
    assert r["oov_rate"] == 0.0  # "The" is found lowercased


@pytest.mark.parametrize("combine", ["mix", "concat"])
def test_multi_layer_classifier_learns(combine):
    """Three pooled layers through ScalarMix or concatenated (one informative): still separable."""
    from paddle_lm.downstream.bow import BowClassifier, fit, predict_logits
    from paddle_lm.downstream.finetune import FrozenFeatures

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    pooled = rng.normal(0, 1, (80, 3, 6)).astype(np.float32)  # [N, L, D]
    pooled[:, 1, 0] += 3.0 * (2 * labels - 1)
    feats = FrozenFeatures(pooled)
    model = BowClassifier(6, 16, 0.0, num_layers=3, combine=combine)
    first = model.mlp[1].weight.shape[0]  # input width of the MLP
    assert first == (18 if combine == "concat" else 6) and (model.mix is None) == (combine == "concat")
    idx = rng.permutation(80)
    fit(model, feats, labels, idx[:50], idx[50:60], lr=1e-2, epochs=30, batch_size=10, patience=5)
    pred = predict_logits(model, feats, idx[60:]).argmax(axis=1)
    assert (pred == labels[idx[60:]]).mean() > 0.9


def test_masked_mean_ignores_padding():
    import paddle

    from paddle_lm.downstream.bow import masked_mean

    x = paddle.to_tensor([[[1.0], [3.0], [100.0]], [[2.0], [0.0], [0.0]]])  # [2, 3, 1]
    mask = paddle.to_tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # [2, 3]
    np.testing.assert_allclose(masked_mean(x, mask).numpy(), [[2.0], [2.0]])


# ---------------------------------------------------------------------------------------------- folds, tests
def test_kfold_tests_each_sentence_once():
    from paddle_lm.downstream.finetune import dev_split, make_splits

    labels = np.array([0] * 23 + [1] * 17)
    splits = make_splits(labels, 5, 0.1, seed=7)
    tested = np.concatenate([test for _, test in splits])
    assert sorted(tested.tolist()) == list(range(40))
    for train, test in splits:
        assert not set(train) & set(test) and len(train) + len(test) == 40
        assert 3 <= labels[test].sum() <= 4  # stratified: 17 positives over 5 folds
        fit_idx, dev_idx = dev_split(train, labels, 0.25, seed=1)
        assert sorted([*fit_idx, *dev_idx]) == sorted(train)
    again = make_splits(labels, 5, 0.1, seed=7)
    assert all((a[1] == b[1]).all() for a, b in zip(splits, again))
    ((train, test),) = make_splits(labels, 0, 0.1, seed=7)
    assert len(test) == 4 and labels[test].sum() == 2


def test_mcnemar_against_hand_computed():
    from paddle_lm.evaluation import mcnemar_exact

    def pairs(b, c, both_right=5, both_wrong=3):
        a = [True] * b + [False] * c + [True] * both_right + [False] * both_wrong
        o = [False] * b + [True] * c + [True] * both_right + [False] * both_wrong
        return a, o

    r = mcnemar_exact(*pairs(10, 2))  # 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 158 / 4096
    assert (r["b"], r["c"], r["n"]) == (10, 2, 20) and r["p"] == pytest.approx(158 / 4096)
    assert mcnemar_exact(*pairs(0, 6))["p"] == pytest.approx(2 / 64)
    assert mcnemar_exact(*pairs(5, 5))["p"] == pytest.approx(1.0)
    assert mcnemar_exact(*pairs(0, 0))["p"] == 1.0


def test_paired_ttest_and_accuracy():
    from paddle_lm.evaluation import accuracy, mean_std, paired_ttest

    r = paired_ttest([0.8, 0.7, 0.9], [0.7, 0.7, 0.8])  # d = (.1, 0, .1): t = 2, df = 2
    assert r["t"] == pytest.approx(2.0) and r["p"] == pytest.approx(1 - 2 / np.sqrt(6))
    assert paired_ttest([0.8], [0.7])["p"] is None
    assert paired_ttest([0.8, 0.9], [0.7, 0.8])["p"] is None  # constant difference
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert mean_std([0.5, 0.7]) == pytest.approx((0.6, np.sqrt(0.02)))


# ---------------------------------------------------------------------------------------------- word vectors
def test_vector_formats_detected(vector_files):
    from paddle_lm.downstream.baselines import detect_format, load_vectors

    assert detect_format(vector_files["text"]) == (False, False)
    assert detect_format(vector_files["glove"]) == (False, True)
    assert detect_format(vector_files["binary"]) == (True, False)
    loaded = [load_vectors(vector_files[k]) for k in ("text", "glove", "binary")]
    for wv in loaded:
        np.testing.assert_allclose(wv.kv["great"], loaded[0].kv["great"], atol=1e-5)
    means, stats = loaded[0].sentence_means([["Great", "zzz"], ["zzz"]])
    np.testing.assert_allclose(means[0], loaded[0].kv["great"])
    assert not means[1].any() and stats["oov_rate"] == pytest.approx(2 / 3)
    assert stats["sentences_without_known_token"] == 1


def test_bad_vector_files(vector_files, tmp_path):
    from paddle_lm.downstream.baselines import load_vectors

    (tmp_path / "x.json").write_text('{"not": "vectors"}\n')
    with pytest.raises(UserError, match="not a word-vector file"):
        load_vectors(str(tmp_path / "x.json"))
    with open(vector_files["binary"], "rb") as f:
        data = f.read()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="cut.bin"):
        load_vectors(str(tmp_path / "cut.bin"))


def test_train_word2vec_is_cached(tiny_corpus, tmp_path):
    from paddle_lm.downstream.baselines import train_word2vec

    kw = dict(dim=8, epochs=1, min_count=2, seed=3, cache_dir=str(tmp_path), progress=False)
    wv, path, cached = train_word2vec(tiny_corpus["train"], **kw)
    assert not cached and os.path.isfile(path) and wv.dim == 8 and "cat" in wv.kv.key_to_index
    wv2, path2, cached2 = train_word2vec(tiny_corpus["train"], **kw)
    assert cached2 and path2 == path
    np.testing.assert_array_equal(wv.kv["cat"], wv2.kv["cat"])
    assert train_word2vec(tiny_corpus["train"], **{**kw, "dim": 6})[1] != path


def test_clean_and_latin1_fallback(tmp_path):
    from paddle_lm.downstream.finetune import clean_text, load_polarity

    assert clean_text("It 's a &quot; Great &quot; film -- really ! ...") == ["it", "'s", "a", "great", "film",
                                                                                "really"]
    (tmp_path / "rt-polarity.pos").write_bytes("a caf\u00e9 gem .\n".encode("cp1252"))
    (tmp_path / "rt-polarity.neg").write_bytes(b"dull .\n")
    sents, labels, notes = load_polarity(str(tmp_path))
    assert sents[0] == ["a", "caf\u00e9", "gem", "."] and labels.tolist() == [1, 0]
    assert len(notes) == 1 and "Windows-1252" in notes[0]


# ---------------------------------------------------------------------------------------------- scripts
def test_compare_prints_table_and_json(polarity, vector_files, elmo_ckpt, monkeypatch):
    argv = ["--data_dir", polarity, "--folds", "3", *FAST, "--json", "--compare", f"w2v:file={vector_files['text']}",
            f"w2v:file={vector_files['glove']},name=glove", f"elmo:ckpt={elmo_ckpt}"]
    code, out, err = run_inproc("run_finetune.py", argv, monkeypatch)
    assert code == 0, err
    for needle in ("w2v:w2v", "glove", "elmo-mix", "accuracy mean ± std", "McNemar", "paired t-test",
                   "each tested exactly once"):
        assert needle in out, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert [e["name"] for e in summary["encoders"]] == ["w2v:w2v", "glove", "elmo-mix"]
    assert all(len(e["accuracies"]) == 3 for e in summary["encoders"])
    assert len(summary["comparisons"]) == 3
    same = summary["comparisons"][0]  # identical vectors in two formats -> identical predictions
    assert same["mcnemar_b"] == same["mcnemar_c"] == 0 and same["mcnemar_p"] == 1.0
    assert summary["encoders"][0]["mean"] > 0.9


def test_elmo_top_trainable(polarity, elmo_ckpt, monkeypatch):
    argv = ["--data_dir", polarity, "--init_from_ckpt", elmo_ckpt, "--elmo_layers", "top", "--trainable",
            "--epochs", "2", "--batch_size", "16", "--hidden_size", "8", "--test_fraction", "0.2", "--json"]
    code, out, err = run_inproc("run_finetune.py", argv, monkeypatch)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["encoders"][0]["name"] == "elmo-top-finetuned" and summary["folds"] == 0


def test_elmo_concat_layers(polarity, elmo_ckpt, monkeypatch):
    """layers=concat feeds 3 x 2P features: the table says so, and it runs frozen and in --compare."""
    argv = ["--data_dir", polarity, "--folds", "2", *FAST, "--json", "--compare", f"elmo:ckpt={elmo_ckpt}",
            f"elmo:ckpt={elmo_ckpt},layers=concat"]
    code, out, err = run_inproc("run_finetune.py", argv, monkeypatch)
    assert code == 0, err
    mix, concat = json.loads(out.strip().splitlines()[-1])["encoders"]
    assert concat["name"] == "elmo-concat" and concat["dim"] == 3 * mix["dim"]


def _bad(tmp_path, pos: bytes | None, neg: bytes | None) -> str:
    d = tmp_path / "data"
    d.mkdir()
    for name, body in (("rt-polarity.pos", pos), ("rt-polarity.neg", neg)):
        if body is not None:
            (d / name).write_bytes(body)
    return str(d)


@pytest.mark.parametrize("pos, neg, extra, needles", [
    (b"good .\n", None, [], ["rt-polarity.neg", "does not exist"]),
    (b"good .\n", b"\n  \n", [], ["rt-polarity.neg", "is empty"]),
    (b"good .\n", b"bad \x00\x01 .\n", [], ["rt-polarity.neg", "binary"]),
    (b"good .\nbad \xff .\n", b"bad .\n", ["--encoding", "utf-8"], ["rt-polarity.pos:2", "UTF-8"]),
    (b"good .\n" * 5, b"bad .\n" * 3, ["--folds", "4"], ["--folds 4", "3 sentences of the smaller class"]),
    (b"good .\n" * 5, b"bad .\n" * 5, ["--folds", "1"], ["--folds 1", "at least 2"]),
])
def test_bad_data(tmp_path, monkeypatch, vector_files, pos, neg, extra, needles):
    argv = ["--data_dir", _bad(tmp_path, pos, neg), "--encoder", "word2vec", "--pretrained_word2vec_file",
            vector_files["text"], *extra]
    code, _, err = run_inproc("run_finetune.py", argv, monkeypatch)
    assert_one_line_error(code, err, *needles)


def test_bad_encoders(polarity, elmo_ckpt, tmp_path, monkeypatch):
    import shutil

    w2v = ["--data_dir", polarity, "--encoder", "word2vec"]
    (tmp_path / "v.dat").write_bytes(b"\x93NUMPY junk\n")
    assert_one_line_error(*_err(w2v + ["--pretrained_word2vec_file", str(tmp_path / "v.dat")], monkeypatch),
                          "v.dat", "not a word-vector file")
    assert_one_line_error(*_err(w2v, monkeypatch), "exactly one of")
    elmo = ["--data_dir", polarity, "--encoder", "elmo"]
    lstm = tmp_path / "lstm"
    shutil.copytree(os.path.dirname(elmo_ckpt), lstm)
    side = json.loads((lstm / "final.json").read_text())
    side["model_config"]["model"] = "lstm"
    (lstm / "final.json").write_text(json.dumps(side))
    assert_one_line_error(*_err(elmo + ["--init_from_ckpt", str(lstm / "final")], monkeypatch), "not an ELMo")
    (tmp_path / "other.txt").write_text("the\ncat\n")
    argv = elmo + ["--init_from_ckpt", elmo_ckpt, "--vocab_file", str(tmp_path / "other.txt")]
    assert_one_line_error(*_err(argv, monkeypatch), "other.txt", "does not match")
    assert_one_line_error(*_err(elmo + ["--init_from_ckpt", str(tmp_path / "nope")], monkeypatch), "no checkpoint")
    assert_one_line_error(*_err(["--data_dir", str(tmp_path / "nodir")], monkeypatch), "not a folder")
    assert_one_line_error(*_err(["--compare", "bert"], monkeypatch), "unknown encoder")
    assert_one_line_error(*_err(["--compare", f"elmo:ckpt={elmo_ckpt},layers=all"], monkeypatch),
                          "--elmo_layers 'all'", "mix, top, concat")


def _err(argv, monkeypatch) -> tuple[int, str]:
    code, _, err = run_inproc("run_finetune.py", argv, monkeypatch)
    return code, err


def test_layer_probe_script(polarity, vector_files, elmo_ckpt, tmp_path):
    """bench/probe_elmo_layers.py: one row per checkpoint (3 layers + all) and per vector file, real accuracies."""
    r = run_script(["bench/probe_elmo_layers.py", "--data_dir", polarity, "--folds", "2", "--ckpt",
                    f"tiny={elmo_ckpt}", "--vectors", f"toy={vector_files['binary']}"], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.split()[:1] in (["tiny"], ["toy"])}
    assert len([c for c in rows["tiny"] if c == "±"]) == 4  # layers 0, 1, 2 and all three
    assert float(rows["toy"][-4]) > 0.9  # the toy vectors separate the classes along one axis


def test_compare_shares_elmo_features_and_shows_classifier_overrides(polarity, elmo_ckpt, monkeypatch):
    """Two specs on one checkpoint pool its layers once; a spec's own classifier settings are printed."""
    from paddle_lm.downstream import embedder

    calls = []
    real = embedder.ELMoEmbedder.iter_encode
    monkeypatch.setattr(embedder.ELMoEmbedder, "iter_encode", lambda self, s: calls.append(1) or real(self, s))
    argv = ["--data_dir", polarity, "--folds", "2", *FAST, "--json", "--compare", f"elmo:ckpt={elmo_ckpt}",
            f"elmo:ckpt={elmo_ckpt},layers=top,patience=2,name=top-p2"]
    code, out, err = run_inproc("run_finetune.py", argv, monkeypatch)
    assert code == 0, err
    assert len(calls) == 1
    assert "top-p2: " in out and "pooled once for an earlier encoder" in out and "classifier: patience 2" in out
    mix, top = json.loads(out.strip().splitlines()[-1])["encoders"]
    assert mix["classifier"]["patience"] == 4 and top["classifier"]["patience"] == 2 and top["dim"] == mix["dim"]


def test_head_names_apart_from_the_encoder():
    """Fine-tuning optimizes the head and the encoder with one Adam, which keys its moments by parameter name:
    the encoder (build_model, names from a fresh counter) and the head (its own "head_" counter) never share one,
    whatever was built before in the process."""
    import dataclasses

    from paddle_lm.config import PRESETS, apply_preset
    from paddle_lm.downstream.bow import BowClassifier
    from paddle_lm.models import build_model

    cfg = dataclasses.replace(apply_preset(PRESETS["elmo-tiny"]["model"], "elmo-tiny"), vocab_size=20)
    for _ in range(2):
        encoder = build_model(cfg, with_softmax=False)
        head = BowClassifier(2 * cfg.projection_dim, 8, num_layers=cfg.num_layers + 1)
        names = [p.name for p in encoder.parameters()] + [p.name for p in head.parameters()]
        assert len(set(names)) == len(names)
        assert all(p.name.startswith("head_") for p in head.parameters())
