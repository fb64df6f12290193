"""ELMoEmbedder, ScalarMix, the `embed` vector dump and the `export` static model, on tiny checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")

import numpy as np
import paddle
import pytest
from conftest import ROOT, assert_one_line_error, run_inproc, train_tiny

from paddle_lm import ELMoEmbedder, ScalarMix, UserError
from paddle_lm.data.chars import sentences_char_ids
from paddle_lm.data.vocab import BOS, EOS
from paddle_lm.downstream.export import load_exported

SENTS = [
    ["the", "cat", "sees", "a", "ball", "."],
    ["Anna", "."],
    ["a", "dog", "buys", "new", "shares", "in", "London", "today", "."],
    ["w123"],
    ["my", "sister", "likes", "the", "game", "."],
]


@pytest.fixture(scope="module")
def ckpts(tiny_corpus, tmp_path_factory) -> dict:
    """Two tiny checkpoints trained for 2 steps: an ELMo (elmo-tiny) and a word LSTM LM (lstm-tiny)."""
    out = {}
    for model, preset in (("elmo", "elmo-tiny"), ("lstm", "lstm-tiny")):
        save = train_tiny(tiny_corpus, str(tmp_path_factory.mktemp(model)), preset, save_steps=100)
        out[model] = os.path.join(save, "final")
    return out


@pytest.fixture(scope="module")
def emb(ckpts) -> ELMoEmbedder:
    return ELMoEmbedder(ckpts["elmo"], batch_size=2, progress=False)


# ---------------------------------------------------------------------------------------------- embedder
def test_shapes_and_attributes(emb):
    assert (emb.num_layers, emb.projection_dim, emb.max_chars) == (3, 16, 50)
    assert emb.model.__class__.__name__ == "ELMo" and not emb.model.training
    vectors = emb.encode(SENTS)
    assert [v.shape for v in vectors] == [(3, len(s), 32) for s in SENTS]
    assert all(v.dtype == np.float32 for v in vectors)
    np.testing.assert_array_equal(vectors[0][0, :, :16], vectors[0][0, :, 16:])  # token layer, both halves
    assert emb.encode([]) == []


def test_the_embedder_builds_no_softmax(ckpts, emb):
    """The encoder alone: the [P, V] softmax is neither built nor trained (--trainable fine-tunes these
    parameters), and the vectors equal those of the full model's encode."""
    from paddle_lm.evaluation import load_model

    full, _, _ = load_model(ckpts["elmo"])
    assert emb.model.softmax is None and full.softmax is not None
    assert not any(name.startswith("softmax") for name, _ in emb.model.named_parameters())
    ours = {name for name, _ in emb.model.named_parameters()}
    assert ours == {name for name, _ in full.named_parameters()} - {"softmax.weight", "softmax.bias"}
    ids, mask = sentences_char_ids([["<S>", *SENTS[0], "</S>"]])
    a, _ = emb.model.encode(paddle.to_tensor(ids), paddle.to_tensor(mask))
    b, _ = full.encode(paddle.to_tensor(ids), paddle.to_tensor(mask))
    assert all(np.array_equal(x.numpy(), y.numpy()) for x, y in zip(a, b))


def test_boundaries_added_and_stripped(emb):
    """n tokens in, n vectors out: those of positions 1..n of `<S> tokens </S>` through ELMo.encode."""
    sent = SENTS[0]
    ids, mask = sentences_char_ids([[BOS, *sent, EOS]])
    with paddle.no_grad():
        layers, _ = emb.model.encode(paddle.to_tensor(ids), paddle.to_tensor(mask))  # 3 x [1, n+2, 2P]
    expected = np.stack([h.numpy()[0, 1:-1] for h in layers])  # [3, n, 2P]
    np.testing.assert_allclose(emb.encode([sent])[0], expected, atol=1e-6)


def test_padding_invariance_and_order(emb, ckpts, capsys):
    batched = emb.encode(SENTS)  # batch_size 2: length-sorted batches with padding
    for sent, vectors in zip(SENTS, batched):
        np.testing.assert_allclose(emb.encode([sent])[0], vectors, atol=1e-5)
    shuffled = [SENTS[i] for i in (3, 0, 4, 2, 1)]
    for sent, vectors in zip(shuffled, emb.encode(shuffled)):
        np.testing.assert_allclose(vectors, batched[SENTS.index(sent)], atol=1e-5)
    with_bar = ELMoEmbedder(ckpts["elmo"], batch_size=2, progress=True)
    capsys.readouterr()
    with_bar.encode(SENTS)
    assert "embedding" in capsys.readouterr().err


def test_token_cache_gives_the_same_vectors(ckpts):
    """The per-call char-CNN cache (TokenCache) gives the uncached vectors: with room for every token, for 20
    (the second batch's new tokens do not fit: it starts over) and for 8 (a batch alone holds more: encoded
    directly); weights changed between two calls are not served from the first call's cache."""
    from paddle_lm.data.chars import distinct_rows
    from paddle_lm.downstream.embedder import TokenCache

    plain = ELMoEmbedder(ckpts["elmo"], batch_size=2, progress=False, token_cache_mib=0)
    assert plain.token_cache_rows == 0
    expected = plain.encode(SENTS)
    for rows in (None, 20, 8):
        mib = 64 if rows is None else rows * 4 * plain.projection_dim / 2**20
        cached = ELMoEmbedder(ckpts["elmo"], batch_size=2, progress=False, token_cache_mib=mib)
        assert cached.token_cache_rows == (rows or 2**20)
        for got, want in zip(cached.encode(SENTS), expected):
            np.testing.assert_allclose(got, want, atol=1e-6)
    cache = TokenCache(plain.model.token_encoder, 20)
    batches = [sentences_char_ids([[BOS, *SENTS[i], EOS] for i in idx], 50)[0] for idx in ((2, 0), (4, 1))]
    with paddle.no_grad():
        sizes = [(len(distinct_rows(ids)[0]), cache(distinct_rows(ids)[0]).shape[0], len(cache.slots))
                 for ids in batches]
    assert sizes[0][0] == sizes[0][1] == sizes[0][2] and sizes[1][0] == sizes[1][1] == sizes[1][2] < 20  # over
    cached = ELMoEmbedder(ckpts["elmo"], batch_size=2, progress=False)  # room for every token
    weight = cached.model.token_encoder.projection.weight
    before = cached.encode(SENTS)
    weight.set_value(weight.numpy() * 2)
    after = cached.encode(SENTS)
    assert not np.allclose(after[0][0], before[0][0], atol=1e-3)
    cached.token_cache_rows = 0
    for got, want in zip(after, cached.encode(SENTS)):
        np.testing.assert_allclose(got, want, atol=1e-6)
    for bad in (-1, "64", float("nan")):
        with pytest.raises(UserError, match="token_cache_mib"):
            ELMoEmbedder(ckpts["elmo"], progress=False, token_cache_mib=bad)


@pytest.mark.parametrize("bad, needle", [
    ([["a", "b"], []], "sentence 1 is empty"),
    ([["a"], "the cat ."], "sentence 1 is a string"),
    ([["a"], ["b"], ["two words"]], "sentence 2, token 0"),
    ([["a", ""]], "sentence 0, token 1"),
    ("the cat .", "list of tokenized sentences"),
])
def test_bad_sentences(emb, bad, needle):
    with pytest.raises(UserError, match=needle):
        emb.encode(bad)


def test_checkpoint_paths(ckpts, emb):
    by_file = ELMoEmbedder(ckpts["elmo"] + ".pdparams", progress=False)
    for a, b in zip(by_file.encode(SENTS[:2]), emb.encode(SENTS[:2])):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(UserError, match="not an ELMo"):
        ELMoEmbedder(ckpts["lstm"])
    with pytest.raises(UserError, match="no checkpoint there"):
        ELMoEmbedder(ckpts["elmo"] + "-missing")


def test_batch_layers_matches_encode_and_trains(ckpts):
    emb = ELMoEmbedder(ckpts["elmo"], progress=False)
    layers, mask = emb.batch_layers(SENTS[:3])
    assert [tuple(h.shape) for h in layers] == [(3, 9, 32)] * 3 and tuple(mask.shape) == (3, 9)
    np.testing.assert_array_equal(mask.numpy().sum(axis=1), [6, 2, 9])
    for row, vectors in enumerate(emb.encode(SENTS[:3])):
        n = vectors.shape[1]
        np.testing.assert_allclose(np.stack([h.numpy()[row, :n] for h in layers]), vectors, atol=1e-5)
    mix = ScalarMix(3)
    (mix(layers, mask) * mask.unsqueeze(-1)).sum().backward()
    assert emb.model.token_encoder.char_embedding.weight.grad is not None  # gradients reach ELMo itself
    emb.model.clear_gradients()


# ---------------------------------------------------------------------------------------------- scalar mix
def test_scalar_mix_mean_and_gradients():
    paddle.seed(0)
    layers = [paddle.randn([2, 4, 6]) for _ in range(3)]  # 3 x [B, T, D]
    mix = ScalarMix(3)
    out = mix(layers)  # [B, T, D]
    np.testing.assert_allclose(out.numpy(), np.mean([h.numpy() for h in layers], axis=0), atol=1e-6)
    (out ** 2).sum().backward()
    assert mix.scalar_parameters.grad is not None and np.abs(mix.scalar_parameters.grad.numpy()).sum() > 0
    assert mix.gamma.grad is not None and abs(float(mix.gamma.grad.numpy()[0])) > 0
    with pytest.raises(ValueError, match="list of 3"):
        mix(layers[:2])


def test_scalar_mix_layer_norm_ignores_padding():
    paddle.seed(1)
    layers = [paddle.randn([2, 5, 4]) * 3 + 1 for _ in range(2)]  # 2 x [B, T, D]
    mask = paddle.to_tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype="float32")  # [B, T]
    mix = ScalarMix(2, do_layer_norm=True)
    out = mix(layers, mask).numpy()
    noisy = [paddle.where(mask.unsqueeze(-1) > 0, h, paddle.full_like(h, 100.0)) for h in layers]
    np.testing.assert_allclose(mix(noisy, mask).numpy()[0, :3], out[0, :3], atol=1e-5)  # padding ignored
    alone = mix([h[:1, :3] for h in layers], mask[:1, :3]).numpy()
    np.testing.assert_allclose(alone[0], out[0, :3], atol=1e-5)  # per-sentence statistics
    normed = mix([layers[0], layers[0]], mask).numpy()[1]  # one layer, normalised over a full row
    assert abs(normed.mean()) < 1e-5 and abs(normed.std() - 1) < 1e-3


# ---------------------------------------------------------------------------------------------- CLI: embed
def test_embed_cli_npz(ckpts, emb, tmp_path, monkeypatch):
    src = tmp_path / "in.txt"
    src.write_text("the cat sees a ball .\nAnna .\n  a dog buys new shares in London today . \n")
    out = tmp_path / "sub" / "vectors.npz"
    code, stdout, err = run_inproc("paddle_lm", ["embed", "--init_from_ckpt", ckpts["elmo"], "--input", str(src),
                                                 "--output", str(out), "--batch_size", "2"], monkeypatch)
    assert code == 0, err
    assert "3 sentences" in stdout
    with np.load(out) as z:
        assert sorted(z.files, key=int) == ["0", "1", "2"]
        for i, vectors in enumerate(emb.encode(SENTS[:3])):
            np.testing.assert_allclose(z[str(i)], vectors, atol=1e-5)
    assert os.listdir(out.parent) == ["vectors.npz"]  # no temporary file left behind


def test_embed_cli_h5(ckpts, emb, tmp_path, monkeypatch):
    h5py = pytest.importorskip("h5py")
    src = tmp_path / "in.txt"
    src.write_text("the cat sees a ball .\nAnna .\n")
    out = tmp_path / "vectors.h5"
    code, _, err = run_inproc("paddle_lm", ["embed", "--init_from_ckpt", ckpts["elmo"], "--input", str(src),
                                            "--output", str(out)], monkeypatch)
    assert code == 0, err
    with h5py.File(out, "r") as f:
        assert sorted(f.keys(), key=int) == ["0", "1"]
        for i, vectors in enumerate(emb.encode(SENTS[:2])):
            np.testing.assert_allclose(f[str(i)][()], vectors, atol=1e-5)


def test_embed_cli_bad_input(ckpts, tmp_path, monkeypatch):
    def embed(src, output="v.npz", ckpt=ckpts["elmo"]):
        return run_inproc("paddle_lm", ["embed", "--init_from_ckpt", ckpt, "--input", str(src), "--output",
                                        str(tmp_path / output)], monkeypatch)

    (tmp_path / "blank.txt").write_text("the cat .\n\nAnna .\n")
    code, _, err = embed(tmp_path / "blank.txt")
    assert_one_line_error(code, err, "blank.txt:2", "blank line")
    (tmp_path / "bad.txt").write_bytes(b"the cat .\nthe \xff dog .\n")
    assert_one_line_error(*embed(tmp_path / "bad.txt")[::2], "bad.txt:2", "UTF-8")
    assert_one_line_error(*embed(tmp_path / "missing.txt")[::2], "missing.txt", "does not exist")
    (tmp_path / "empty.txt").write_text("")
    assert_one_line_error(*embed(tmp_path / "empty.txt")[::2], "empty")
    (tmp_path / "ok.txt").write_text("Anna .\n")
    assert_one_line_error(*embed(tmp_path / "ok.txt", "v.txt")[::2], ".npz")
    assert_one_line_error(*embed(tmp_path / "ok.txt", ckpt=ckpts["lstm"])[::2], "not an ELMo")
    try:
        import h5py  # noqa: F401
    except ImportError:
        assert_one_line_error(*embed(tmp_path / "ok.txt", "v.h5")[::2], "pip install h5py")
    assert not any(p.name.startswith(("v.", ".v.")) for p in tmp_path.iterdir())  # nothing written


# ---------------------------------------------------------------------------------------------- export
def test_export_round_trip(ckpts, emb, tmp_path, monkeypatch):
    prefix = str(tmp_path / "exported" / "elmo")
    code, stdout, err = run_inproc("paddle_lm", ["export", "--init_from_ckpt", ckpts["elmo"], "--output", prefix],
                                   monkeypatch)
    assert code == 0, err
    assert "load_exported" in stdout
    assert sorted(os.listdir(tmp_path / "exported")) == ["elmo.embedder-meta", "elmo.json", "elmo.pdiparams"]
    exported = load_exported(prefix, batch_size=2, progress=False)
    assert (exported.num_layers, exported.projection_dim, exported.max_chars) == (3, 16, 50)
    for a, b in zip(exported.encode(SENTS), emb.encode(SENTS)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5)
    code, _, err = run_inproc("paddle_lm", ["export", "--init_from_ckpt", ckpts["elmo"], "--output", ckpts["elmo"]],
                              monkeypatch)
    assert_one_line_error(code, err, "checkpoint prefix")
    with pytest.raises(UserError, match="not an exported"):
        load_exported(str(tmp_path / "nothing"))


def test_import_is_light():
    """`import paddle_lm` loads no Paddle; the embedder names resolve lazily."""
    code = ("import sys, paddle_lm, paddle_lm.downstream; assert 'paddle' not in sys.modules; "
            "from paddle_lm import ELMoEmbedder, ScalarMix; assert 'paddle' in sys.modules; "
            "print(ELMoEmbedder.__name__, ScalarMix.__name__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": ROOT}, check=False)
    assert r.returncode == 0 and "ELMoEmbedder ScalarMix" in r.stdout, r.stderr
