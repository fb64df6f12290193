"""Hugging Face folders both ways, without torch: tiny BERT and GPT-2 folders written from numpy in transformers'
names and layouts (tests/hf_folders.py) give the logits of an independent numpy forward pass once imported; they
continue pretraining (BERT with whole-word masking), resume exactly and export back to the same names; config
fields paddle-lm cannot honour, pickled weights and broken shards are refused in one line."""

from __future__ import annotations

import json
import os
import shutil

import hf_folders as H
import numpy as np
import paddle
import pytest
from conftest import ROOT, assert_one_line_error, interrupted_copy, run_script
from safetensors import safe_open
from safetensors.numpy import save_file
from test_pretrain import metrics, without_speed

from paddle_lm.data.subword import train_bpe, train_wordpiece
from paddle_lm.errors import UserError
from paddle_lm.formats import hf
from paddle_lm.models.transformer_lm import TransformerLM, config_from_pretrained, load_pretrained_weights

IDS = [2, 7, 9, 11, 4, 13, 3, 5]


@pytest.fixture(scope="module")
def folders(tiny_corpus, tmp_path_factory) -> dict:
    """{'bert': folder, 'gpt2': folder, 'weights': {kind: HF state}} with tokenizers trained on the tiny corpus."""
    root = tmp_path_factory.mktemp("hf")
    out = {"weights": {}}
    for kind, train, make_w, make_c in (("bert", train_wordpiece, H.bert_weights, H.bert_config),
                                        ("gpt2", train_bpe, H.gpt2_weights, H.gpt2_config)):
        tok = str(root / f"{kind}-tok")
        vocab = train(tiny_corpus["train"], tok, vocab_size=300, progress=False)["vocab_size"]
        weights = make_w(vocab, np.random.default_rng(0))
        out[kind] = H.write_folder(str(root / kind), make_c(vocab), weights, tok)
        out["weights"][kind] = weights
    return out


def _imported(folder: str, kind: str) -> TransformerLM:
    model = TransformerLM(config_from_pretrained(folder, kind))
    load_pretrained_weights(model, folder)
    model.eval()
    return model


def _logits(model: TransformerLM, ids=IDS) -> np.ndarray:
    with paddle.no_grad():
        return model.logits(paddle.to_tensor([ids], dtype="int64"))[0].numpy()  # [T, V]


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_import_gives_the_reference_logits(folders, kind):
    reference = (H.bert_logits if kind == "bert" else H.gpt2_logits)(folders["weights"][kind], IDS)
    np.testing.assert_allclose(_logits(_imported(folders[kind], kind)), reference, atol=1e-4, rtol=0)


def test_gelu_new_is_honoured(folders, tmp_path):
    """The same GPT-2 weights with exact gelu differ: the activation field is read, not assumed."""
    folder = str(tmp_path / "gelu")
    shutil.copytree(folders["gpt2"], folder)
    config = hf.read_config(folder)
    config["activation_function"] = "gelu"
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    assert np.abs(_logits(_imported(folder, "gpt2")) - _logits(_imported(folders["gpt2"], "gpt2"))).max() > 1e-4


def test_sharded_weights_load(folders, tmp_path):
    folder = str(tmp_path / "sharded")
    shutil.copytree(folders["bert"], folder)
    os.remove(os.path.join(folder, "model.safetensors"))
    weights = folders["weights"]["bert"]
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, keys in shards.items():
        save_file({k: weights[k] for k in keys}, os.path.join(folder, shard), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)
    np.testing.assert_array_equal(_logits(_imported(folder, "bert")), _logits(_imported(folders["bert"], "bert")))
    os.remove(os.path.join(folder, "model-00002-of-00002.safetensors"))
    with pytest.raises(UserError, match="lists shard model-00002-of-00002.safetensors, which is not in"):
        _imported(folder, "bert")


@pytest.mark.parametrize("kind,field,value,needle", [
    ("bert", "position_embedding_type", "relative_key", "position_embedding_type = \"relative_key\" is not supported"),
    ("bert", "hidden_act", "quick_gelu", "hidden_act = \"quick_gelu\" is not supported"),
    ("bert", "tie_word_embeddings", False, "tie_word_embeddings = false is not supported"),
    ("bert", "attention_probs_dropout_prob", 0.2, "attention_probs_dropout_prob = 0.2 is not supported"),
    ("bert", "is_decoder", True, "is_decoder = true is not supported"),
    ("gpt2", "scale_attn_by_inverse_layer_idx", True, "scale_attn_by_inverse_layer_idx = true is not supported"),
    ("gpt2", "add_cross_attention", True, "add_cross_attention = true is not supported"),
    ("gpt2", "rotary_dim", 8, "field 'rotary_dim' is not one paddle-lm knows"),
])
def test_config_fields_are_honoured_or_refused(folders, tmp_path, kind, field, value, needle):
    folder = str(tmp_path / "f")
    shutil.copytree(folders[kind], folder)
    config = hf.read_config(folder)
    config[field] = value
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    with pytest.raises(UserError, match=f"--init_from_pretrained '{folder}': config.json .*") as e:
        config_from_pretrained(folder, kind)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_null_n_inner_is_four_times_n_embd(folders, tmp_path):
    folder = str(tmp_path / "n_inner")
    shutil.copytree(folders["gpt2"], folder)
    config = dict(hf.read_config(folder), n_inner=None, n_embd=H.SIZES["hidden"])
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    assert config_from_pretrained(folder, "gpt2").intermediate_size == 4 * H.SIZES["hidden"]


def test_pickled_weights_are_refused_not_read(folders, tmp_path):
    folder = str(tmp_path / "pt")
    shutil.copytree(folders["bert"], folder)
    os.remove(os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "pytorch_model.bin"), "wb") as f:
        f.write(b"\x80\x02crm -rf\n")  # never unpickled: any content is refused by name
    before = sorted(os.listdir(folder))
    r = run_script(["run_pretrain.py", "--model", "bert", "--init_from_pretrained", folder, "--device", "cpu",
                    "--save_dir", str(tmp_path / "run")], ROOT)
    assert_one_line_error(r.returncode, r.stderr, "pytorch_model.bin", "never unpickles", "safe_serialization=True")
    assert sorted(os.listdir(folder)) == before


def test_untied_head_is_refused(folders, tmp_path):
    folder = str(tmp_path / "untied")
    shutil.copytree(folders["gpt2"], folder)
    weights = dict(folders["weights"]["gpt2"])
    weights["lm_head.weight"] = weights["transformer.wte.weight"] + 1
    save_file(weights, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UserError, match="lm_head.weight differs from transformer.wte.weight"):
        _imported(folder, "gpt2")


def test_paddlenlp_folder_activation_is_honoured(folders, tmp_path):
    """A paddlenlp save_pretrained folder whose config says relu builds a relu model (it used to train gelu)."""
    model = _imported(folders["bert"], "bert")
    folder = str(tmp_path / "pd")
    model.net.save_pretrained(folder)
    config = hf.read_config(folder)
    config["hidden_act"] = "relu"
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    relu = TransformerLM(config_from_pretrained(folder, "bert"))
    assert relu.cfg.hidden_act == "relu"
    load_pretrained_weights(relu, folder)
    relu.eval()
    assert np.abs(_logits(relu) - _logits(model)).max() > 1e-3
    config["fuse"] = True
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    with pytest.raises(UserError, match="config.json fuse = true is not supported"):
        config_from_pretrained(folder, "bert")


# ------------------------------------------------------------------- continued pretraining, resume, export
ARGS = {"bert": ["--model", "bert", "--max_seq_len", "16", "--whole_word_masking"],
        "gpt2": ["--model", "gpt2", "--block_size", "16"]}


@pytest.mark.parametrize("kind", ["bert", "gpt2"])
def test_continue_resume_and_export(folders, tiny_corpus, tmp_path, kind):
    common = ["run_pretrain.py", "--train_data_path", tiny_corpus["train"], *ARGS[kind], "--batch_size", "4",
              "--lr", "1e-3", "--device", "cpu", "--max_steps", "2", "--save_steps", "1", "--logging_steps", "1",
              "--init_from_pretrained", folders[kind]]
    full = str(tmp_path / "full")
    r = run_script([*common, "--save_dir", full], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    resumed = str(tmp_path / "resumed")
    interrupted_copy(full, resumed)
    r = run_script([*common, "--save_dir", resumed, "--init_from_ckpt", os.path.join(resumed, "1")], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert without_speed(metrics(resumed)) == without_speed(metrics(full))

    out = str(tmp_path / "exported")
    r = run_script(["-m", "paddle_lm", "export-hf", "--init_from_ckpt", os.path.join(full, "final"), "--output",
                    out], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    with safe_open(os.path.join(out, "model.safetensors"), framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}
        names = set(f.keys())
    assert names == set(folders["weights"][kind])  # transformers' own names: nothing missing, nothing extra
    config = hf.read_config(out)
    assert config["architectures"] == [hf.ARCHITECTURES[kind]] and config["tie_word_embeddings"] is True
    with open(os.path.join(out, "tokenizer_config.json")) as f:
        tok_config = json.load(f)
    assert tok_config["tokenizer_class"] == ("BertTokenizer" if kind == "bert" else "GPT2Tokenizer")
    # the export reads back as the trained checkpoint, and its numbers are the numpy reference's
    from paddle_lm.evaluation import load_subword_model

    trained, _, _ = load_subword_model(os.path.join(full, "final"))
    back = _imported(out, kind)
    np.testing.assert_allclose(_logits(back), _logits(trained), atol=1e-5, rtol=0)
    with safe_open(os.path.join(out, "model.safetensors"), framework="numpy") as f:
        keys = f.keys()
        exported = {k: f.get_tensor(k) for k in keys}
    reference = (H.bert_logits if kind == "bert" else H.gpt2_logits)(exported, IDS)
    np.testing.assert_allclose(_logits(trained), reference, atol=1e-4, rtol=0)
    r = run_script(["-m", "paddle_lm", "export-hf", "--init_from_ckpt", os.path.join(full, "final"), "--output",
                    out], ROOT)
    assert_one_line_error(r.returncode, r.stderr, "--output", "--overwrite")


def test_generate_and_fill_mask_from_a_folder(folders):
    r = run_script(["-m", "paddle_lm", "generate", "--init_from_pretrained", folders["gpt2"], "--prompt",
                    "the market", "--greedy", "--max_length", "12", "--device", "cpu", "--json"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out) == {"texts", "new_tokens", "seconds", "new_tokens_per_s"} and len(out["texts"]) == 1
    assert 0 < out["new_tokens"] <= 12 and out["new_tokens_per_s"] > 0 and out["texts"][0].startswith("the market")
    r = run_script(["-m", "paddle_lm", "fill-mask", "--init_from_pretrained", folders["bert"], "--text",
                    "the [MASK] said [MASK] .", "--top_k", "3", "--device", "cpu", "--json"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    masks = json.loads(r.stdout.strip().splitlines()[-1])["masks"]
    assert len(masks) == 2 and all(len(m) == 3 for m in masks)
    probs = [b["probability"] for b in masks[0]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1
    r = run_script(["-m", "paddle_lm", "fill-mask", "--init_from_pretrained", folders["gpt2"], "--text",
                    "the [MASK] said", "--device", "cpu"], ROOT)
    assert_one_line_error(r.returncode, r.stderr, "'gpt2' model", "fill-mask needs a BERT")
    r = run_script(["-m", "paddle_lm", "generate", "--prompt", "x", "--device", "cpu"], ROOT)
    assert_one_line_error(r.returncode, r.stderr, "give one of --init_from_ckpt")


@pytest.mark.parametrize("kind,field", [("gpt2", "layer_norm_epsilon"), ("bert", "layer_norm_eps")])
def test_layer_norm_epsilon_is_honoured(folders, tmp_path, kind, field):
    """paddlenlp's GPT builds its LayerNorms at 1e-5 whatever its config says; the folder's value is used. Paddle's
    LayerNorm takes at most 1e-3: a larger one is refused by name."""
    folder = str(tmp_path / "eps")
    shutil.copytree(folders[kind], folder)
    logits = H.bert_logits if kind == "bert" else H.gpt2_logits
    for eps in (1e-3, 0.5):
        config = dict(hf.read_config(folder), **{field: eps})
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(config, f)
        if eps > 1e-3:
            with pytest.raises(UserError, match="a layer-norm epsilon of 0.5 is not supported"):
                config_from_pretrained(folder, kind)
            continue
        reference = logits(folders["weights"][kind], IDS, eps=eps)
        assert np.abs(reference - logits(folders["weights"][kind], IDS)).max() > 1e-4  # the test can tell
        np.testing.assert_allclose(_logits(_imported(folder, kind)), reference, atol=2e-5, rtol=0)
