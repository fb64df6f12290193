"""Downstream polarity classifier: learning, folds, significance tests, word vectors, compare, bad input."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_inproc, run_script, train_tiny

from paddle_lm.config import FinetuneConfig
from paddle_lm.errors import UserError

POS = ["great", "wonderful", "superb", "delightful", "brilliant"]
NEG = ["awful", "boring", "terrible", "dull", "horrible"]
NEUTRAL = ["the", "movie", "film", "was", "is", "and", "very", "plot", "acting", "."]


def _sentences(words: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"The {rng.choice(['movie', 'film', 'plot'])} was {rng.choice(['very ', ''])}{rng.choice(words)} and "
            f"{rng.choice(words)} ." for _ in range(n)]


@pytest.fixture(scope="module")
def polarity(tmp_path_factory) -> str:
    """30 positive and 30 negative sentences, separable by their adjectives."""
    d = tmp_path_factory.mktemp("polarity")
    (d / "rt-polarity.pos").write_text("\n".join(_sentences(POS, 30, 1)) + "\n")
    (d / "rt-polarity.neg").write_text("\n".join(_sentences(NEG, 30, 2)) + "\n\n")
    return str(d)


def _toy_vectors(dim: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    vecs = {w: rng.normal(0, 0.3, dim).astype(np.float32) for w in POS + NEG + NEUTRAL}
    for w in POS:
        vecs[w][0] += 2.0
    for w in NEG:
        vecs[w][0] -= 2.0
    return vecs


@pytest.fixture(scope="module")
def vector_files(tmp_path_factory) -> dict[str, str]:
    """The same toy vectors as word2vec text, GloVe text (no header) and word2vec binary."""
    from gensim.models import KeyedVectors

    d = tmp_path_factory.mktemp("vectors")
    vecs = _toy_vectors()
    rows = [f"{w} " + " ".join(f"{x:.6f}" for x in v) for w, v in vecs.items()]
    (d / "w2v.txt").write_text(f"{len(rows)} 8\n" + "\n".join(rows) + "\n")
    (d / "glove.txt").write_text("\n".join(rows) + "\n")
    kv = KeyedVectors(8)
    kv.add_vectors(list(vecs), np.stack(list(vecs.values())))
    kv.save_word2vec_format(str(d / "w2v.bin"), binary=True)
    return {"text": str(d / "w2v.txt"), "glove": str(d / "glove.txt"), "binary": str(d / "w2v.bin")}


@pytest.fixture(scope="module")
def elmo_ckpt(tiny_corpus, tmp_path_factory) -> str:
    """A tiny ELMo trained for 2 steps on the conftest corpus; returns the `final` prefix."""
    return os.path.join(train_tiny(tiny_corpus, str(tmp_path_factory.mktemp("elmo")), save_steps=2), "final")


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


def test_start_state_probe_script(polarity, elmo_ckpt, tmp_path):
    """bench/probe_start_state.py: zeros, the checkpoint's mean carried state and two warm-up starts, each scored
    with a paired test against zeros; the starts really differ (the tiny model's states are not zero)."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import probe_start_state as probe

    emb = probe.StartedEmbedder(elmo_ckpt, None)
    text = str(tmp_path / "warmup.txt")
    with open(text, "w") as f:
        f.write("the movie was good .\nit was dull .\nnever read .\n")
    starts = {how: probe.start_state(emb, how, 2, text) for how in probe.STARTS}
    assert starts["zeros"] is None
    for how in ("mean", "warmup", "text"):
        assert len(starts[how]) == 8 and all(s.shape[0] == 1 for s in starts[how])
        assert max(float(np.abs(s).max()) for s in starts[how]) > 0
    sentence = [["good", "movie", "."]]
    plain = emb.encode(sentence)[0]
    emb.start = starts["warmup"]
    warm = emb.encode(sentence)[0]
    assert warm.shape == plain.shape and not np.allclose(warm[1:], plain[1:])
    np.testing.assert_allclose(warm[0], plain[0], rtol=1e-5, atol=1e-6)  # the char-CNN layer has no state
    padded = emb.encode(sentence + [["a", "much", "longer", "sentence", "than", "that", "."]])[0]
    np.testing.assert_allclose(padded, warm, rtol=1e-4, atol=1e-5)  # padding-invariant from a fixed start
    r = run_script(["bench/probe_start_state.py", "--data_dir", polarity, "--folds", "2", "--ckpt",
                    f"tiny={elmo_ckpt}", "--warmup_text", text, "--per_layer"], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    assert [row["start"] for row in rows] == ["zeros", "mean", "warmup", "text"]
    assert all(0 <= row["mcnemar_p"] <= 1 for row in rows[1:])


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


# ---------------------------------------------------------------------------------------------- linear head
def test_linear_head_picks_c_on_dev_and_learns(polarity, vector_files, elmo_ckpt, monkeypatch):
    """--classifier linear: the separable toy task is learned; C comes from the grid, chosen per fold on that
    fold's dev split (never seeing the test fold); the report and --compare specs name both heads; ELMo's
    layers are fed side by side."""
    from paddle_lm.downstream import linear
    from paddle_lm.downstream.finetune import finetune, load_polarity, make_splits

    seen_test = []
    real = linear.fit_linear

    def spy(x, labels, fit_idx, dev_idx, grid=linear.C_GRID):
        seen_test.append(set(fit_idx.tolist()) | set(dev_idx.tolist()))
        return real(x, labels, fit_idx, dev_idx, grid)

    monkeypatch.setattr("paddle_lm.downstream.finetune.fit_linear", spy)
    cfg = FinetuneConfig(data_dir=polarity, encoder="word2vec", pretrained_word2vec_file=vector_files["text"],
                         folds=3, classifier="linear",
                         compare=[f"w2v:file={vector_files['text']},classifier=linear",
                                  f"w2v:file={vector_files['text']},classifier=mlp,lr=0.01,hidden_size=16",
                                  f"elmo:ckpt={elmo_ckpt},classifier=linear"])
    report = finetune(cfg, progress=False)
    lin, mlp, elmo = report["results"]
    assert lin["name"] == "w2v:w2v-linear" and mlp["name"] == "w2v:w2v" and elmo["name"] == "elmo-mix-linear"
    assert lin["mean"] > 0.9 and len(lin["best_c"]) == 3 and set(lin["best_c"]) <= set(linear.C_GRID)
    assert "best_epochs" in mlp and "best_c" not in mlp
    _, labels, _ = load_polarity(polarity)
    tests = [test for _, test in make_splits(labels, 3, 0.1, cfg.seed)] * 2  # the two linear encoders
    assert len(seen_test) == len(tests)
    for used, test in zip(seen_test, tests):
        assert not used & set(test.tolist())  # the choice of C never sees the test fold
    from paddle_lm.downstream.report import format_report, report_json

    text = format_report(report)
    assert "classifier linear: " in text and "classifier mlp: " in text and "L2 logistic regression" in text
    assert report_json(report)["encoders"][0]["best_c"] == lin["best_c"]


def test_linear_head_sees_every_layer_and_refuses_fine_tuning(polarity, elmo_ckpt):
    from paddle_lm.downstream.finetune import FrozenFeatures

    pooled = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # [N, L, D]
    assert FrozenFeatures(pooled).vectors().tolist() == pooled.reshape(2, 12).tolist()
    with pytest.raises(UserError, match="--classifier linear fits on frozen features"):
        from paddle_lm.config import validate_finetune

        validate_finetune(FinetuneConfig(data_dir=polarity, init_from_ckpt=elmo_ckpt, classifier="linear",
                                         trainable=True))


def test_linear_head_choice_is_the_dev_loss_minimum():
    """fit_linear keeps the C with the lowest dev log-loss: a strongly regularized fit wins on noisy features."""
    from sklearn.metrics import log_loss

    from paddle_lm.downstream.linear import fit_linear

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = rng.normal(size=(200, 50)) + 0.3 * y[:, None] * (np.arange(50) < 3)  # 3 weak signal columns, 47 noise
    fit_idx, dev_idx = np.arange(150), np.arange(150, 200)
    r = fit_linear(x, y, fit_idx, dev_idx, grid=(0.001, 0.01, 1.0, 100.0))
    losses = {}
    for c in (0.001, 0.01, 1.0, 100.0):
        losses[c] = log_loss(y[dev_idx], fit_linear(x, y, fit_idx, dev_idx, grid=(c,))["model"].predict_proba(
            x[dev_idx]))
    assert r["c"] == min(losses, key=losses.get) and abs(r["dev_loss"] - min(losses.values())) < 1e-9
