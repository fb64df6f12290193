"""End to end: the real run_pretrain.py / run_eval.py, one rank and a 2-rank launch, exact resume, plots."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from conftest import ROOT, interrupted_copy, launch_pretrain, run_script

# Dropout and a sampled softmax on, so exact resume also covers both random streams.
TINY = ["--preset", "elmo-tiny", "--batch_size", "4", "--unroll_steps", "5", "--dropout", "0.1",
        "--n_negative_samples", "8", "--lr_decay", "linear", "--device", "cpu"]


def data_flags(c: dict) -> list[str]:
    return ["--train_data_path", c["train"], "--vocab_file", c["vocab"]]


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def read_text(path: str) -> str:
    with open(path) as f:
        return f.read()


def metrics(save_dir: str) -> list[dict]:
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def without_speed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rows]


def test_single_rank_train_resume_eval_plot(tiny_corpus, tmp_path):
    full, resumed = str(tmp_path / "full"), str(tmp_path / "resumed")
    steps = ["--max_steps", "12", "--save_steps", "6", "--logging_steps", "3"]
    r = run_script(["run_pretrain.py", *data_flags(tiny_corpus), *TINY, *steps, "--save_dir", full], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = metrics(full)
    assert [x["step"] for x in rows] == [3, 6, 9, 12]
    assert set(rows[0]) == {"step", "loss", "ppl", "lr", "grad_norm", "tokens_per_s"}
    assert all(0 < r["grad_norm"] < 1e6 for r in rows)
    from visualdl import LogReader  # the same scalars for VisualDL

    (records,) = os.listdir(os.path.join(full, "vdl"))
    reader = LogReader(file_path=os.path.join(full, "vdl", records))
    assert [round(x.value, 4) for x in reader.get_data("scalar", "train/loss")] == [round(r["loss"], 4) for r in rows]
    assert {f"train/{k}" for k in ("loss", "ppl", "lr", "grad_norm", "tokens_per_s")} <= set(
        reader.get_tags()["scalar"])
    for name in ("6", "final"):
        for suf in (".pdparams", ".pdopt", ".pdstate", ".json"):
            assert os.path.isfile(os.path.join(full, name + suf))
    side = read_json(os.path.join(full, "6.json"))
    assert side["step"] == 6 and side["data"]["vocab_size"] > 3 and side["model_config"]["model"] == "elmo"

    # "Interrupted" copy: everything up to step 6, then resumed to the same end.
    interrupted_copy(full, resumed)
    r = run_script(["run_pretrain.py", *data_flags(tiny_corpus), *TINY, *steps, "--save_dir", resumed,
                    "--init_from_ckpt", os.path.join(resumed, "6")], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert without_speed(metrics(resumed)) == without_speed(rows)

    r = run_script(["run_eval.py", "--init_from_ckpt", os.path.join(full, "final"), "--dev_data_path",
                    tiny_corpus["dev"], "--batch_size", "4", "--json"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout.strip().splitlines()
    assert out[0].startswith("Eval - average loss: ") and "average Perplexity: " in out[0]
    summary = json.loads(out[-1])
    assert set(summary) == {"ppl", "ppl_fw", "ppl_bw", "tokens"}
    assert 1.0 < summary["ppl"] < 100 and summary["tokens"] > 100

    png = str(tmp_path / "curve.png")
    r = run_script(["-m", "paddle_lm", "plot", "--metrics", os.path.join(full, "metrics.jsonl"), "--output", png],
                   ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_two_rank_launch_and_exact_resume(tiny_corpus, tmp_path):
    full, resumed = str(tmp_path / "full"), str(tmp_path / "resumed")
    steps = ["--max_steps", "8", "--save_steps", "4", "--logging_steps", "1"]

    def launch(save_dir: str, *extra: str):
        return launch_pretrain([*data_flags(tiny_corpus), *TINY, *steps, "--save_dir", save_dir, *extra],
                               str(tmp_path / f"log-{os.path.basename(save_dir)}"))

    r = launch(full)
    logs = str(tmp_path / "log-full")
    assert r.returncode == 0, r.stdout[-3000:] + read_text(os.path.join(logs, "workerlog.0"))[-3000:]
    rows = metrics(full)
    assert [x["step"] for x in rows] == list(range(1, 9))
    side = read_json(os.path.join(full, "4.json"))
    assert side["geometry"]["world_size"] == 2
    shutil.copytree(full, resumed)
    r = launch(resumed, "--init_from_ckpt", os.path.join(resumed, "4"))
    assert r.returncode == 0, r.stdout[-3000:]
    assert without_speed(metrics(resumed)) == without_speed(rows)


def test_lstm_lm_train_and_eval(tiny_corpus, tmp_path):
    save = str(tmp_path / "lstm")
    r = run_script(["run_pretrain.py", *data_flags(tiny_corpus), "--model", "lstm", "--preset", "lstm-tiny",
                    "--max_steps", "6", "--batch_size", "4", "--unroll_steps", "5", "--optimizer", "adamw",
                    "--lr", "0.01", "--warmup_steps", "2", "--save_dir", save, "--logging_steps", "2"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_script(["run_eval.py", "--init_from_ckpt", os.path.join(save, "final"), "--dev_data_path",
                    tiny_corpus["dev"], "--json", "--batch_size", "2"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert "ppl_bw" not in summary and summary["ppl"] == pytest.approx(summary["ppl_fw"])
