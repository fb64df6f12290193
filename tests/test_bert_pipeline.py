"""BERT end to end: run_pretrain.py --model bert (WordPiece trained on first use, whole-word masking), exact
resume on one rank and on two ranks with gradient accumulation, the masked-token evaluation, save_pretrained
export and continued pretraining from it, and the bad-input errors of the transformer path."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import ROOT, assert_one_line_error, interrupted_copy, launch_pretrain, run_inproc, run_script
from test_pretrain import metrics, read_json, without_speed

BERT = ["--model", "bert", "--preset", "bert-tiny", "--subword_vocab_size", "300", "--max_seq_len", "16",
        "--batch_size", "4", "--lr", "2e-3", "--device", "cpu"]
STEPS = ["--max_steps", "6", "--save_steps", "3", "--logging_steps", "1"]


@pytest.fixture(scope="module")
def bert_run(tiny_corpus, tmp_path_factory) -> str:
    """6 steps of bert-tiny with whole-word masking, a checkpoint at step 3, metrics every step."""
    save = str(tmp_path_factory.mktemp("bert") / "full")
    r = run_script(["run_pretrain.py", "--train_data_path", tiny_corpus["train"], *BERT, *STEPS,
                    "--whole_word_masking", "--save_dir", save], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return save


def test_bert_trains_with_its_own_wordpiece(bert_run):
    rows = metrics(bert_run)
    assert [x["step"] for x in rows] == list(range(1, 7))
    assert rows[-1]["loss"] < rows[0]["loss"]
    side = read_json(os.path.join(bert_run, "3.json"))
    with open(os.path.join(bert_run, "tokenizer", "vocab.txt")) as f:
        vocab = f.read().splitlines()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert 100 < len(vocab) <= 300  # the tiny corpus has fewer WordPiece merges than the 300 asked for
    assert side["model_config"]["model"] == "bert" and side["model_config"]["vocab_size"] == len(vocab)
    assert side["train_config"]["optimizer"] == "adamw"  # the transformer defaults, not bilm-tf's Adagrad
    assert side["train_config"]["whole_word_masking"] is True
    assert side["tokens_seen"] == 3 * 4 * 16


def test_bert_exact_resume_one_rank(bert_run, tiny_corpus, tmp_path):
    resumed = str(tmp_path / "resumed")
    interrupted_copy(bert_run, resumed)
    r = run_script(["run_pretrain.py", "--train_data_path", tiny_corpus["train"], *BERT, *STEPS,
                    "--whole_word_masking", "--save_dir", resumed, "--init_from_ckpt",
                    os.path.join(resumed, "3")], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert without_speed(metrics(resumed)) == without_speed(metrics(bert_run))


def test_bert_masked_token_eval(bert_run, tiny_corpus, monkeypatch):
    args = ["--init_from_ckpt", os.path.join(bert_run, "final"), "--dev_data_path", tiny_corpus["dev"],
            "--batch_size", "4", "--json"]
    code, out, err = run_inproc("run_eval.py", args, monkeypatch)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("Eval - masked-LM loss: ") and "masked-token perplexity: " in lines[0]
    assert "not comparable to a causal" in lines[1]
    summary = json.loads(lines[-1])
    assert set(summary) == {"ppl", "tokens", "objective"}
    assert summary["objective"] == "masked-lm" and 1.0 < summary["ppl"] < 300
    again = json.loads(run_inproc("run_eval.py", args, monkeypatch)[1].strip().splitlines()[-1])
    assert again == summary  # one fixed masking: the same figure every time
    other = json.loads(run_inproc("run_eval.py", [*args, "--seed", "7"], monkeypatch)[1].strip().splitlines()[-1])
    assert other["tokens"] != summary["tokens"] or other["ppl"] != summary["ppl"]


def test_bert_two_rank_launch_with_accumulation_and_exact_resume(tiny_corpus, tmp_path):
    full, resumed = str(tmp_path / "full"), str(tmp_path / "resumed")
    steps = ["--max_steps", "4", "--save_steps", "2", "--logging_steps", "1", "--gradient_accumulation_steps", "2"]

    def launch(save_dir: str, *extra: str):
        return launch_pretrain(["--train_data_path", tiny_corpus["train"], *BERT, *steps, "--save_dir", save_dir,
                                *extra], str(tmp_path / f"log-{os.path.basename(save_dir)}"))

    r = launch(full)
    assert r.returncode == 0, r.stdout[-5000:]
    rows = metrics(full)
    assert [x["step"] for x in rows] == [1, 2, 3, 4]
    side = read_json(os.path.join(full, "2.json"))
    assert side["geometry"]["world_size"] == 2 and side["geometry"]["gradient_accumulation_steps"] == 2
    assert side["tokens_seen"] == 2 * (4 * 16) * 2 * 2  # steps x batch tokens x accumulation x ranks
    interrupted_copy(full, resumed)
    r = launch(resumed, "--init_from_ckpt", os.path.join(resumed, "2"))
    assert r.returncode == 0, r.stdout[-5000:]
    assert without_speed(metrics(resumed)) == without_speed(metrics(full))


def test_save_pretrained_and_continued_pretraining(bert_run, tiny_corpus, tmp_path, monkeypatch):
    out = str(tmp_path / "bert-sample")
    code, stdout, err = run_inproc("paddle_lm", ["save_pretrained", "--init_from_ckpt",
                                                 os.path.join(bert_run, "final"), "--output", out], monkeypatch)
    assert code == 0, err
    assert stdout.startswith(f"wrote {out}: ") and "config.json" in stdout
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        assert os.path.isfile(os.path.join(out, name)), os.listdir(out)
    from paddlenlp.transformers import BertForMaskedLM, BertTokenizer

    vocab_size = read_json(os.path.join(bert_run, "final.json"))["model_config"]["vocab_size"]
    assert BertForMaskedLM.from_pretrained(out).config.vocab_size == vocab_size
    assert BertTokenizer.from_pretrained(out).convert_tokens_to_ids("[MASK]") == 4
    code, _, err = run_inproc("paddle_lm", ["save_pretrained", "--init_from_ckpt", os.path.join(bert_run, "final"),
                                            "--output", out], monkeypatch)
    assert_one_line_error(code, err, "--output", "not empty")

    # continued pretraining on another corpus (the held-out shard), from the exported folder
    cont, scratch = str(tmp_path / "continued"), str(tmp_path / "scratch")
    common = ["--train_data_path", tiny_corpus["dev"], "--model", "bert", "--max_seq_len", "16", "--batch_size", "4",
              "--max_steps", "2", "--logging_steps", "1", "--save_steps", "2"]
    r = run_script(["run_pretrain.py", *common, "--init_from_pretrained", out, "--save_dir", cont], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    side = read_json(os.path.join(cont, "final.json"))
    assert side["model_config"]["hidden_size"] == 128 and side["model_config"]["vocab_size"] == vocab_size
    assert side["data"]["tokenizer_identity"] == read_json(os.path.join(bert_run, "final.json"))["data"][
        "tokenizer_identity"]
    r = run_script(["run_pretrain.py", *common, "--preset", "bert-tiny", "--tokenizer_dir", out, "--save_dir",
                    scratch], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert metrics(cont)[0]["loss"] < metrics(scratch)[0]["loss"] - 0.1  # it starts from the learned weights


@pytest.mark.parametrize("case", ["seq_len", "pretrained_missing", "pretrained_other_model", "gpt2_tokenizer"])
def test_transformer_bad_input_is_one_line(case, bert_run, tiny_corpus, tmp_path, monkeypatch):
    base = ["--train_data_path", tiny_corpus["train"], "--model", "bert", "--max_steps", "1", "--save_dir",
            str(tmp_path / "x")]
    if case == "seq_len":
        argv, needles = [*base, "--preset", "bert-tiny", "--max_seq_len", "200", "--tokenizer_dir",
                         os.path.join(bert_run, "tokenizer")], ("--max_seq_len 200", "128 positions")
    elif case == "pretrained_missing":
        argv, needles = [*base, "--init_from_pretrained", str(tmp_path / "nowhere")], ("--init_from_pretrained",
                                                                                       "not a local folder")
    elif case == "pretrained_other_model":
        gpt = str(tmp_path / "gpt")
        from paddle_lm.config import apply_preset
        from paddle_lm.models import build_model

        cfg = apply_preset("gpt2", "gpt2-tiny")
        cfg.vocab_size = 300
        build_model(cfg).save_pretrained(gpt)
        shutil.copy(os.path.join(bert_run, "tokenizer", "vocab.txt"), gpt)
        argv, needles = [*base, "--init_from_pretrained", gpt], ("holds a gpt2 model", "--model is bert")
    else:
        from paddle_lm.data.subword import train_bpe

        tok = str(tmp_path / "bpe")
        train_bpe(tiny_corpus["train"], tok, vocab_size=280, progress=False)
        argv, needles = [*base, "--tokenizer_dir", tok], ("gpt2 tokenizer", "--model is bert")
    code, _, err = run_inproc("run_pretrain.py", argv, monkeypatch)
    assert_one_line_error(code, err, *needles)
