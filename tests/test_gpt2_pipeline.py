"""GPT-2 end to end: run_pretrain.py --model gpt2 (BPE trained on first use), exact resume on one and two
ranks, run_eval.py perplexity, and a tokenizer that does not match the checkpoint."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import ROOT, assert_one_line_error, interrupted_copy, launch_pretrain, run_script
from test_pretrain import metrics, read_json, without_speed

GPT2 = ["--model", "gpt2", "--preset", "gpt2-tiny", "--subword_vocab_size", "300", "--block_size", "16",
        "--batch_size", "4", "--optimizer", "adamw", "--lr", "1e-3", "--device", "cpu"]


@pytest.fixture(scope="module")
def gpt2_run(tiny_corpus, tmp_path_factory) -> str:
    """6 steps of gpt2-tiny, a checkpoint at step 3 and metrics every step; returns the save_dir."""
    save = str(tmp_path_factory.mktemp("gpt2") / "full")
    r = run_script(["run_pretrain.py", "--train_data_path", tiny_corpus["train"], *GPT2, "--max_steps", "6",
                    "--save_steps", "3", "--logging_steps", "1", "--save_dir", save], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return save


def test_gpt2_trains_with_its_own_tokenizer(gpt2_run):
    rows = metrics(gpt2_run)
    assert [x["step"] for x in rows] == list(range(1, 7))
    assert rows[-1]["loss"] < rows[0]["loss"]
    side = read_json(os.path.join(gpt2_run, "3.json"))
    assert side["model_config"]["model"] == "gpt2" and side["model_config"]["vocab_size"] == 300
    assert side["data"]["tokenizer_dir"] == "tokenizer" and len(side["data"]["tokenizer_identity"]) == 16
    assert side["tokens_seen"] == 3 * 4 * 16
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(gpt2_run, "tokenizer", name))


def test_gpt2_exact_resume_one_rank(gpt2_run, tiny_corpus, tmp_path):
    resumed = str(tmp_path / "resumed")
    interrupted_copy(gpt2_run, resumed)
    r = run_script(["run_pretrain.py", "--train_data_path", tiny_corpus["train"], *GPT2, "--max_steps", "6",
                    "--save_steps", "3", "--logging_steps", "1", "--save_dir", resumed,
                    "--init_from_ckpt", os.path.join(resumed, "3")], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert without_speed(metrics(resumed)) == without_speed(metrics(gpt2_run))


def test_gpt2_eval_perplexity(gpt2_run, tiny_corpus):
    r = run_script(["run_eval.py", "--init_from_ckpt", os.path.join(gpt2_run, "final"), "--dev_data_path",
                    tiny_corpus["dev"], "--batch_size", "4", "--json"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.strip().splitlines()
    assert out[0].startswith("Eval - average loss: ") and "average Perplexity: " in out[0]
    summary = json.loads(out[-1])
    assert set(summary) == {"ppl", "ppl_fw", "tokens"}
    assert 1.0 < summary["ppl"] < 300 and summary["ppl"] == pytest.approx(summary["ppl_fw"])
    assert summary["tokens"] > 100 and summary["tokens"] % 16 == 0  # whole blocks only


def test_gpt2_resume_with_another_tokenizer_is_one_line_error(gpt2_run, tiny_corpus, tmp_path):
    from paddle_lm.data.subword import train_bpe

    other = str(tmp_path / "other-tok")
    train_bpe(tiny_corpus["train"], other, vocab_size=280, progress=False)
    resumed = str(tmp_path / "resumed")
    shutil.copytree(gpt2_run, resumed)
    r = run_script(["run_pretrain.py", "--train_data_path", tiny_corpus["train"], *GPT2, "--max_steps", "6",
                    "--save_dir", resumed, "--init_from_ckpt", os.path.join(resumed, "3"), "--tokenizer_dir",
                    other], ROOT)
    assert_one_line_error(r.returncode, r.stderr, "--tokenizer_dir", "does not match checkpoint")


def test_gpt2_rejects_sampled_softmax(tiny_corpus, tmp_path):
    r = run_script(["run_pretrain.py", "--train_data_path", tiny_corpus["train"], *GPT2, "--max_steps", "2",
                    "--n_negative_samples", "8", "--save_dir", str(tmp_path / "x")], ROOT)
    assert_one_line_error(r.returncode, r.stderr, "--n_negative_samples")


def test_gpt2_two_rank_launch_and_exact_resume(tiny_corpus, tmp_path):
    full, resumed = str(tmp_path / "full"), str(tmp_path / "resumed")
    steps = ["--max_steps", "6", "--save_steps", "3", "--logging_steps", "1"]

    def launch(save_dir: str, *extra: str):
        return launch_pretrain(["--train_data_path", tiny_corpus["train"], *GPT2, *steps, "--save_dir", save_dir,
                                *extra], str(tmp_path / f"log-{os.path.basename(save_dir)}"))

    r = launch(full)
    assert r.returncode == 0, r.stdout[-3000:]
    rows = metrics(full)
    assert [x["step"] for x in rows] == list(range(1, 7))
    assert read_json(os.path.join(full, "3.json"))["geometry"]["world_size"] == 2
    interrupted_copy(full, resumed)
    r = launch(resumed, "--init_from_ckpt", os.path.join(resumed, "3"))
    assert r.returncode == 0, r.stdout[-3000:]
    assert without_speed(metrics(resumed)) == without_speed(rows)


def test_gradient_accumulation_matches_the_bigger_batch(tiny_corpus, tmp_path):
    """2 micro-batches of 2 blocks sum to the gradient of one batch of 4 (the same blocks, no dropout)."""
    from paddle_lm.config import DataConfig, TrainConfig, apply_preset
    from paddle_lm.training.trainer import train

    model = apply_preset("gpt2", "gpt2-tiny")
    model.dropout = 0.0
    data = DataConfig(train_data_path=tiny_corpus["train"], subword_vocab_size=300,
                      tokenizer_dir="")
    runs = {}
    for name, batch, accum in (("big", 4, 1), ("accum", 2, 2)):
        save = str(tmp_path / name)
        if runs:  # the same tokenizer for both
            data.tokenizer_dir = os.path.join(str(tmp_path / "big"), "tokenizer")
        train(data, model, TrainConfig(save_dir=save, batch_size=batch, gradient_accumulation_steps=accum,
                                       block_size=16, max_steps=3, logging_steps=1, save_steps=10,
                                       optimizer="adagrad", lr=0.2), progress=False)
        runs[name] = metrics(save)
    for big, acc in zip(runs["big"], runs["accum"], strict=True):
        assert acc["loss"] == pytest.approx(big["loss"], rel=1e-4)


def test_generate_cli(gpt2_run, monkeypatch):
    from conftest import run_inproc

    def gen(*extra: str) -> list[str]:
        code, out, err = run_inproc("paddle_lm", ["generate", "--init_from_ckpt", os.path.join(gpt2_run, "final"),
                                                  "--prompt", "the", "--max_length", "12", *extra], monkeypatch)
        assert code == 0, err
        return [line for line in out.splitlines() if line.startswith("[")]

    sampled = gen("--num_return_sequences", "3", "--top_k", "20", "--seed", "5")
    assert [s[:4] for s in sampled] == ["[1] ", "[2] ", "[3] "]
    assert all(s[4:].startswith("the") for s in sampled)
    assert gen("--num_return_sequences", "3", "--top_k", "20", "--seed", "5") == sampled  # seeded: repeatable
    assert gen("--greedy") == gen("--greedy")


@pytest.mark.parametrize("extra,needles", [
    (["--prompt", " ".join(["the"] * 200)], ("--prompt is", "longer than the model's context of 128")),
    (["--prompt", "the", "--top_p", "0"], ("--top_p",)),
])
def test_generate_bad_input_is_one_line(gpt2_run, monkeypatch, extra, needles):
    from conftest import run_inproc

    code, _, err = run_inproc("paddle_lm", ["generate", "--init_from_ckpt", os.path.join(gpt2_run, "final"),
                                            *extra], monkeypatch)
    assert_one_line_error(code, err, *needles)


def test_resume_with_other_accumulation_is_one_line_error(gpt2_run, tiny_corpus, tmp_path, monkeypatch):
    from conftest import run_inproc

    resumed = str(tmp_path / "resumed")
    shutil.copytree(gpt2_run, resumed)
    code, _, err = run_inproc("run_pretrain.py", ["--train_data_path", tiny_corpus["train"], *GPT2, "--max_steps",
                                                  "6", "--save_dir", resumed, "--init_from_ckpt",
                                                  os.path.join(resumed, "3"), "--gradient_accumulation_steps", "2"],
                              monkeypatch)
    assert_one_line_error(code, err, "cannot resume", "gradient_accumulation_steps was 1, now 2")
