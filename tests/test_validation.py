"""Every flag is validated in one place (paddle_lm.config) before any work: one `error: ...` line naming the flag
and its legal range, exit status 2, no traceback, nothing written, Paddle not even imported. Also: architecture
flags that contradict a resumed checkpoint (outputs and vocabulary lines: tests/test_existing_outputs.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
from conftest import ROOT, assert_one_line_error, run_inproc, train_tiny

from paddle_lm import config
from paddle_lm.data import prep
from paddle_lm.errors import UserError

TINY = ["--preset", "elmo-tiny", "--batch_size", "4", "--unroll_steps", "5", "--max_steps", "1"]
GPT2 = ["--model", "gpt2", "--preset", "gpt2-tiny"]
BERT = ["--model", "bert", "--preset", "bert-tiny"]


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory) -> str:
    return train_tiny(tiny_corpus, str(tmp_path_factory.mktemp("ckpt")), save_steps=1)  # elmo-tiny, cell_size 32


def _data(c) -> list[str]:
    return ["--train_data_path", c["train"], "--vocab_file", c["vocab"]]


# ------------------------------------------------------------------------------------------ run_pretrain.py
PRETRAIN_CASES = [
    # TrainConfig
    (["--batch_size", "0"], ["--batch_size 0", ">= 1"]),
    (["--unroll_steps", "-3"], ["--unroll_steps -3", ">= 1"]),
    (["--block_size", "0"], ["--block_size 0", ">= 1"]),
    (["--max_seq_len", "2"], ["--max_seq_len 2", ">= 3"]),
    (["--mlm_probability", "0"], ["--mlm_probability 0", "(0, 1)"]),
    (["--mlm_probability", "1"], ["--mlm_probability 1", "(0, 1)"]),
    (["--gradient_accumulation_steps", "0"], ["--gradient_accumulation_steps 0", ">= 1"]),
    (["--max_steps", "-1"], ["--max_steps -1", ">= 0"]),
    (["--epochs", "0"], ["--epochs 0", ">= 1"]),
    (["--n_negative_samples", "-5"], ["--n_negative_samples -5", ">= 0"]),
    (["--lr", "0"], ["--lr 0", "> 0"]),
    (["--lr", "nan"], ["--lr nan", "finite"]),
    (["--weight_decay", "-0.1"], ["--weight_decay -0.1", ">= 0"]),
    (["--max_grad_norm", "-1"], ["--max_grad_norm -1", ">= 0"]),
    (["--max_grad_norm", "inf"], ["--max_grad_norm inf", "finite"]),
    (["--warmup_steps", "-2"], ["--warmup_steps -2", ">= -1"]),
    (["--seed", "-1"], ["--seed -1", "[0, 4294967295]"]),
    (["--seed", str(2**32)], ["--seed 4294967296", "[0, 4294967295]"]),
    (["--save_steps", "0"], ["--save_steps 0", ">= 1"]),
    (["--save_freq", "0"], ["--save_steps 0"]),  # the PaddleNLP alias
    (["--logging_steps", "0"], ["--logging_steps 0", ">= 1"]),
    (["--keep_last", "-1"], ["--keep_last -1", ">= 0"]),
    (["--save_dir", ""], ["--save_dir", "empty"]),
    # ModelConfig
    (["--char_embed_dim", "0"], ["--char_embed_dim 0", ">= 1"]),
    (["--num_highways", "-1"], ["--num_highways -1", ">= 0"]),
    (["--projection_dim", "0"], ["--projection_dim 0", ">= 1"]),
    (["--cell_size", "0"], ["--cell_size 0", ">= 1"]),
    (["--num_layers", "0"], ["--num_layers 0", ">= 1"]),
    (["--cell_clip", "-1"], ["--cell_clip -1", ">= 0"]),
    (["--proj_clip", "-0.5"], ["--proj_clip -0.5", ">= 0"]),
    (["--dropout", "1"], ["--dropout 1", "[0, 1)"]),
    (["--dropout", "-0.1"], ["--dropout -0.1", "[0, 1)"]),
    (["--embedding_dim", "0"], ["--embedding_dim 0", ">= 1"]),
    (["--hidden_size", "-8"], ["--hidden_size -8", ">= 1"]),
    (["--num_attention_heads", "0"], ["--num_attention_heads 0", ">= 1"]),
    (["--intermediate_size", "0"], ["--intermediate_size 0", ">= 1"]),
    (["--max_position_embeddings", "0"], ["--max_position_embeddings 0", ">= 1"]),
    # DataConfig
    (["--max_characters_per_token", "2"], ["--max_characters_per_token 2", ">= 3"]),
    (["--subword_vocab_size", "0"], ["--subword_vocab_size 0", ">= 1"]),
    (["--train_data_path", ""], ["--train_data_path", "empty"]),
    # flags against each other and against the model
    (["--cell_size", "8"], ["--cell_size 8", "--projection_dim 16"]),
    (["--preset", "elmo-small", "--max_characters_per_token", "3"],
     ["--max_characters_per_token 3", "widest filter (4 characters", "at least 4"]),
    (["--model", "lstm", "--preset", "lstm-tiny", "--embedding_dim", "8"], ["--tie_weights", "--embedding_dim"]),
    ([*GPT2, "--num_attention_heads", "3"], ["--hidden_size 128", "--num_attention_heads 3"]),
    ([*GPT2, "--block_size", "200"], ["--block_size 200", "128 positions"]),
    ([*GPT2, "--max_position_embeddings", "64"], ["--block_size 128", "64 positions"]),
    ([*BERT, "--max_seq_len", "129"], ["--max_seq_len 129", "128 positions"]),
    ([*GPT2, "--n_negative_samples", "8"], ["--n_negative_samples", "--model gpt2"]),
    (["--softmax_update", "rows"], ["--softmax_update rows", "--n_negative_samples > 0", "dense"]),
    (["--softmax_update", "rows", "--n_negative_samples", "8", "--optimizer", "adamw"],
     ["--softmax_update rows", "--optimizer adagrad"]),
    (["--model", "lstm", "--preset", "lstm-tiny", "--softmax_update", "rows", "--n_negative_samples", "8"],
     ["--softmax_update rows", "tied softmax"]),
    ([*GPT2, "--subword_vocab_size", "100"], ["--subword_vocab_size", ">= 258"]),
    ([*BERT, "--subword_vocab_size", "5"], ["--subword_vocab_size", ">= 6"]),
    (["--model", "lstm", "--preset", "lstm-tiny", "--init_from_pretrained", "somewhere"],
     ["--init_from_pretrained does not apply to --model lstm", "is for elmo, bert, gpt2"]),
    (["--init_from_pretrained", "somewhere"], ["--init_from_pretrained", "no checkpoint there"]),
    (["--preset", "elmo-huge"], ["elmo-huge", "unknown"]),
]


@pytest.mark.parametrize("extra,needles", PRETRAIN_CASES, ids=[" ".join(c[0]) for c in PRETRAIN_CASES])
def test_pretrain_bad_flag(extra, needles, tiny_corpus, tmp_path, monkeypatch):
    save = tmp_path / "s"
    tiny = [*TINY[:4], *TINY[6:]] if {"bert", "gpt2"} & set(extra) else TINY  # (--unroll_steps is the LSTMs')
    argv = [*_data(tiny_corpus), *tiny, "--save_dir", str(save), *extra]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], *needles)
    assert not save.exists()  # refused before the trainer touched anything


# ------------------------------------------------------------------------------------------ run_eval.py
EVAL_CASES = [
    (["--batch_size", "0"], ["--batch_size 0", ">= 1"]),
    (["--unroll_steps", "0"], ["--unroll_steps 0", ">= 1"]),
    (["--max_steps", "-1"], ["--max_steps -1", ">= 0"]),
    (["--seed", "-1"], ["--seed -1", "[0, 4294967295]"]),
    (["--dev_data_path", ""], ["--dev_data_path", "empty"]),
]


@pytest.mark.parametrize("extra,needles", EVAL_CASES, ids=[" ".join(c[0]) for c in EVAL_CASES])
def test_eval_bad_flag(extra, needles, tmp_path, monkeypatch):
    argv = ["--init_from_ckpt", str(tmp_path / "not-even-there"), *extra]  # the flags are checked first
    assert_one_line_error(*run_inproc("run_eval.py", argv, monkeypatch)[::2], *needles)


def test_eval_needs_a_checkpoint(monkeypatch):
    assert_one_line_error(*run_inproc("run_eval.py", [], monkeypatch)[::2], "--init_from_ckpt is required")


# ------------------------------------------------------------------------------------------ run_finetune.py
FINETUNE_CASES = [
    (["--hidden_size", "0"], ["--hidden_size 0", ">= 1"]),
    (["--dropout", "1"], ["--dropout 1", "[0, 1)"]),
    (["--lr", "-1"], ["--lr -1", "> 0"]),
    (["--epochs", "0"], ["--epochs 0", ">= 1"]),
    (["--batch_size", "0"], ["--batch_size 0", ">= 1"]),
    (["--patience", "0"], ["--patience 0", ">= 1"]),
    (["--dev_fraction", "0"], ["--dev_fraction 0", "(0, 1)"]),
    (["--test_fraction", "1"], ["--test_fraction 1", "(0, 1)"]),
    (["--folds", "1"], ["--folds 1", "at least 2"]),
    (["--folds", "-2"], ["--folds -2", "at least 2"]),
    (["--seed", "-1"], ["--seed -1", "[0, 4294967295]"]),
    (["--folds", "10", "--seed", str(2**32 - 100)], ["--seed 4294967196", "[0, 4294958295]", "1000 * k"]),
    (["--elmo_batch_size", "0"], ["--elmo_batch_size 0", ">= 1"]),
    (["--word2vec_dim", "0"], ["--word2vec_dim 0", ">= 1"]),
    (["--word2vec_epochs", "0"], ["--word2vec_epochs 0", ">= 1"]),
    (["--word2vec_window", "0"], ["--word2vec_window 0", ">= 1"]),
    (["--word2vec_min_count", "0"], ["--word2vec_min_count 0", ">= 1"]),
    (["--encoding", "no-such-codec"], ["--encoding 'no-such-codec'", "not a known text encoding"]),
    (["--init_from_ckpt", ""], ["--init_from_ckpt", "empty"]),
    (["--data_dir", ""], ["--data_dir", "empty"]),
]


@pytest.mark.parametrize("extra,needles", FINETUNE_CASES, ids=[" ".join(c[0]) for c in FINETUNE_CASES])
def test_finetune_bad_flag(extra, needles, monkeypatch):
    assert_one_line_error(*run_inproc("run_finetune.py", extra, monkeypatch)[::2], *needles)


# ------------------------------------------------------------------------------------------ python -m paddle_lm
GENERATE_CASES = [
    (["--max_length", "1"], ["--max_length 1", ">= 2"]),
    (["--temperature", "0"], ["--temperature 0", "> 0", "--greedy"]),
    (["--temperature", "-1"], ["--temperature -1", "> 0"]),
    (["--top_k", "-1"], ["--top_k -1", ">= 0"]),
    (["--top_p", "0"], ["--top_p 0", "(0, 1]"]),
    (["--top_p", "1.5"], ["--top_p 1.5", "(0, 1]"]),
    (["--repetition_penalty", "0"], ["--repetition_penalty 0", "> 0"]),
    (["--num_return_sequences", "0"], ["--num_return_sequences 0", ">= 1"]),
    (["--greedy", "--num_return_sequences", "2"], ["--num_return_sequences 2", "--greedy"]),
    (["--seed", "-1"], ["--seed -1", "[0, 4294967295]"]),
    (["--prompt", "   "], ["--prompt is empty"]),
]


@pytest.mark.parametrize("extra,needles", GENERATE_CASES, ids=[" ".join(c[0]) for c in GENERATE_CASES])
def test_generate_bad_flag(extra, needles, tmp_path, monkeypatch):
    argv = ["generate", "--init_from_ckpt", str(tmp_path / "nothing"), "--prompt", "the", *extra]
    assert_one_line_error(*run_inproc("paddle_lm", argv, monkeypatch)[::2], *needles)


def test_generate_greedy_ignores_temperature():
    config.validate_generate(config.GenerateConfig(greedy=True, temperature=0.0), "the")


def test_embed_bad_batch_size(tmp_path, monkeypatch):
    argv = ["embed", "--init_from_ckpt", str(tmp_path / "x"), "--input", str(tmp_path / "in.txt"), "--output",
            str(tmp_path / "v.npz"), "--batch_size", "0"]
    assert_one_line_error(*run_inproc("paddle_lm", argv, monkeypatch)[::2], "--batch_size 0", ">= 1")


# ------------------------------------------------------------------------------------------ python -m paddle_lm.data.prep
PREP_CASES = [
    (["--heldout_fraction", "1"], ["--heldout_fraction 1", "[0, 1)"]),
    (["--heldout_fraction", "-0.1"], ["--heldout_fraction -0.1", "[0, 1)"]),
    (["--num_shards", "0"], ["--num_shards 0", ">= 1"]),
    (["--num_heldout_shards", "0"], ["--num_heldout_shards 0", ">= 1"]),
    (["--seed", "-1"], ["--seed -1", "[0, 4294967295]"]),
    (["--min_count", "0"], ["--min_count 0", ">= 1"]),
    (["--max_vocab_size", "-1"], ["--max_vocab_size -1", ">= 0"]),
    (["--workers", "-1"], ["--workers -1", ">= 0"]),
]


def _raw_docs(folder) -> str:
    folder.mkdir(exist_ok=True)
    for i in range(4):
        (folder / f"{i}.txt").write_text(f"Doc {i} says hello. The cat sees a dog.\n\nIt is fine.\n", encoding="utf-8")
    return str(folder / "*.txt")


@pytest.mark.parametrize("extra,needles", PREP_CASES, ids=[" ".join(c[0]) for c in PREP_CASES])
def test_prep_bad_flag(extra, needles, tmp_path, capsys):
    out = tmp_path / "out"
    assert prep.main(["--input", _raw_docs(tmp_path / "raw"), "--output_dir", str(out), "--quiet", *extra]) == 2
    assert_one_line_error(2, capsys.readouterr().err, *needles)
    assert not out.exists()


# ------------------------------------------------------------------------------------------ resume contradictions
RESUME_CASES = [
    (["--cell_size", "64"], ["--cell_size 64 contradicts checkpoint", "(trained with 32); drop the flag to resume"]),
    (["--preset", "elmo-small"], ["--preset elmo-small contradicts checkpoint", "char_embed_dim 4, not 16"]),
    (["--model", "lstm"], ["--model 'lstm' contradicts checkpoint", "(trained with 'elmo')"]),
    (["--no-residual"], ["--no-residual contradicts checkpoint", "(trained with --residual)"]),
    (["--dropout", "0.5"], ["--dropout 0.5 contradicts", "(trained with 0)"]),
    (["--cell_size", "64", "--num_layers", "3"], ["--cell_size 64 (trained with 32)", "--num_layers 3 (trained with 2)",
                                                 "contradict checkpoint", "drop these flags"]),
    (["--max_characters_per_token", "30"], ["--max_characters_per_token 30 contradicts checkpoint",
                                            "(trained with 50)"]),
]


@pytest.mark.parametrize("extra,needles", RESUME_CASES, ids=[" ".join(c[0]) for c in RESUME_CASES])
def test_resume_with_contradicting_architecture(extra, needles, tiny_corpus, trained, monkeypatch):
    before = {f: os.path.getmtime(os.path.join(trained, f)) for f in os.listdir(trained)}
    argv = [*_data(tiny_corpus), "--batch_size", "4", "--unroll_steps", "5", "--save_dir", trained,
            "--init_from_ckpt", os.path.join(trained, "1"), *extra]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], *needles)
    assert before == {f: os.path.getmtime(os.path.join(trained, f)) for f in os.listdir(trained)}


def test_resume_flags_that_agree_are_fine(tiny_corpus, trained):
    from args import parse_pretrain

    prefix = os.path.join(trained, "1")
    base = [*_data(tiny_corpus), "--save_dir", trained, "--init_from_ckpt", prefix]
    with open(prefix + ".json", encoding="utf-8") as f:
        saved = config.model_config_from_dict(json.load(f)["model_config"])
    for extra in ([], ["--preset", "elmo-tiny"], ["--cell_size", "32", "--model", "elmo"],
                  ["--preset", "elmo-tiny", "--residual", "--dropout", "0"]):
        _, model, _ = parse_pretrain([*base, *extra])
        assert model == saved  # the checkpoint's architecture, whatever the defaults of the flags not given
    with pytest.raises(UserError, match="--preset elmo-small contradicts"):
        parse_pretrain([*base, "--preset", "elmo-small", "--char_embed_dim", "4"])  # its filters still differ


def test_resume_takes_the_checkpoints_family(tiny_corpus, trained, tmp_path):
    """Without --model, a resumed run is the checkpoint's family (and gets that family's training defaults)."""
    import shutil

    from args import parse_pretrain

    for name in os.listdir(trained):  # checkpoint "1", relabelled as a gpt2-tiny one (only its sidecar is read)
        if name.startswith("1."):
            shutil.copy(os.path.join(trained, name), tmp_path / name)
    side = json.loads((tmp_path / "1.json").read_text())
    side["model_config"] = dataclasses.asdict(config.apply_preset("gpt2", "gpt2-tiny"))
    (tmp_path / "1.json").write_text(json.dumps(side))
    base = ["--train_data_path", tiny_corpus["train"], "--save_dir", str(tmp_path), "--init_from_ckpt",
            str(tmp_path / "1")]
    _, model, train = parse_pretrain([*base, "--block_size", "16"])
    assert model.model == "gpt2" and train.optimizer == "adamw"
    with pytest.raises(UserError, match="--block_size 200 exceeds the model's 128 positions"):
        parse_pretrain([*base, "--block_size", "200"])


# ------------------------------------------------------------------------------------------ no Paddle before validation
_PROBE = r"""
import contextlib, io, json, os, runpy, sys
sys.path.insert(0, os.getcwd())
results = []
for target, argv in json.loads(sys.argv[1]):
    sys.argv = [target, *argv]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            if target.endswith(".py"):
                runpy.run_path(target, run_name="__main__")
            else:
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as e:
            code = e.code
    results.append([code, err.getvalue(), sorted(m for m in sys.modules if m == "paddle" or m.startswith("paddle."))])
print(json.dumps(results))
"""


def test_bad_flags_are_refused_before_paddle_is_imported(tiny_corpus, trained, tmp_path):
    """Each script's validation runs, and fails, without importing Paddle (a fresh interpreter runs them all)."""
    cases = [
        ("run_pretrain.py", ["--seed", "-1"]),
        ("run_pretrain.py", [*_data(tiny_corpus), "--cell_clip", "-1", "--save_dir", str(tmp_path / "s")]),
        ("run_pretrain.py", [*_data(tiny_corpus), "--save_dir", trained, "--init_from_ckpt",
                             os.path.join(trained, "1"), "--cell_size", "64"]),
        ("run_eval.py", ["--init_from_ckpt", os.path.join(trained, "final"), "--batch_size", "0"]),
        ("run_finetune.py", ["--seed", "-1"]),
        ("paddle_lm", ["generate", "--init_from_ckpt", "x", "--prompt", "the", "--top_p", "1.5"]),
        ("paddle_lm", ["embed", "--init_from_ckpt", "x", "--input", "y", "--output", "z.npz", "--batch_size", "0"]),
        ("paddle_lm", ["export", "--init_from_ckpt", "x", "--output", os.path.join(trained, "final")]),
        ("paddle_lm.data.prep", ["--input", tiny_corpus["train"], "--output_dir", str(tmp_path / "p"),
                                 "--seed", "-1"]),
    ]
    env = {**os.environ, "PYTHONPATH": ROOT}
    r = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(cases)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    for (target, argv), (code, err, paddle_modules) in zip(cases, json.loads(r.stdout.splitlines()[-1])):
        assert_one_line_error(2, err, "--")
        assert code == 2, (target, argv, err)
        assert paddle_modules == [], (target, argv, paddle_modules[:5])


# ------------------------------------------------------------------------------------------ the configs themselves
EXEMPT = {("FinetuneConfig", "folds"), ("FinetuneConfig", "seed"), ("GenerateConfig", "temperature")}


def test_every_numeric_field_has_a_legal_range():
    """Every int / float field of every config declares its range (or is checked by hand: EXEMPT)."""
    for cls in (config.DataConfig, config.ModelConfig, config.TrainConfig, config.EvalConfig,
                config.FinetuneConfig, config.GenerateConfig):
        for f in dataclasses.fields(cls):
            if f.type in ("int", "float") and (cls.__name__, f.name) not in EXEMPT:
                assert "legal" in f.metadata, f"{cls.__name__}.{f.name} has no legal range"
                config.within(0, f.metadata["legal"])  # the range parses


def test_defaults_and_presets_are_legal():
    for name, values in config.PRESETS.items():
        model = config.apply_preset(values["model"], name)
        train = config.TrainConfig(**config.FAMILY_TRAIN_DEFAULTS.get(model.model, {}))
        config.validate_pretrain(config.DataConfig(), model, train)
    config.validate_eval(config.EvalConfig(init_from_ckpt="x"), config.DataConfig())
    config.validate_finetune(config.FinetuneConfig())
    config.validate_generate(config.GenerateConfig(), "the")


def test_library_configs_are_checked_too():
    """Configs built in code (a --compare spec, a sidecar) get the same messages."""
    with pytest.raises(UserError, match=r"--cnn_activation 'gelu': choose one of relu, tanh"):
        config.validate_model(dataclasses.replace(config.ModelConfig(), cnn_activation="gelu"))
    with pytest.raises(UserError, match="filters must be a non-empty list"):
        config.validate_model(dataclasses.replace(config.ModelConfig(), filters=[[0, 4]]))
    with pytest.raises(UserError, match=r"--num_layers '2' must be a number >= 1"):
        config.validate_model(dataclasses.replace(config.ModelConfig(), num_layers="2"))
    with pytest.raises(UserError, match=r"--word2vec_dim 0 must be >= 1"):
        config.validate_finetune(dataclasses.replace(config.FinetuneConfig(), word2vec_dim=0))


def test_device_auto_picks_the_gpu_only_when_there_is_one(monkeypatch):
    import paddle

    from paddle_lm.device import resolve_device

    assert resolve_device("cpu") == "cpu" and resolve_device("gpu") == "gpu"
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(paddle, "is_compiled_with_cuda", lambda: True)
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 0)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(paddle.device.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == "gpu"


def test_a_run_that_is_not_learning_says_so(tiny_corpus, tmp_path, monkeypatch):
    """--lr 1e6: the loss stays above its first logged value; one warning line (issue 18 item 10)."""
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", tiny_corpus["vocab"], "--preset",
            "elmo-tiny", "--batch_size", "4", "--unroll_steps", "5", "--max_steps", "8", "--logging_steps", "1",
            "--save_steps", "100", "--lr", "1e6", "--not_learning_logs", "3", "--device", "cpu",
            "--save_dir", str(tmp_path / "run")]
    code, _, err = run_inproc("run_pretrain.py", argv, monkeypatch)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "the run is not learning" in line]
    assert len(warnings) == 1 and "for 3 logged steps in a row" in warnings[0] and "--lr" in warnings[0], err
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert max(r["loss"] for r in rows) > 50  # the old cap: its perplexity was exp(50), not exp(loss)
    assert all(abs(r["ppl"] - math.exp(r["loss"])) <= 1e-3 * r["ppl"] for r in rows)
