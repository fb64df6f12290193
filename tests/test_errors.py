"""Bad input: one clear line naming the problem, exit status 2, no traceback, nothing overwritten."""

from __future__ import annotations

import os
import runpy
import sys

import pytest
from conftest import ROOT

TINY = ["--preset", "elmo-tiny", "--batch_size", "4", "--unroll_steps", "5"]


def run_inproc(script: str, argv: list[str], capsys, monkeypatch) -> tuple[int, str]:
    """Run a top-level script in this process; returns (exit status, stderr)."""
    monkeypatch.setattr(sys, "argv", [script, *argv])
    capsys.readouterr()
    code = 0
    try:
        runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory) -> str:
    from paddle_lm.config import DataConfig, TrainConfig, apply_preset
    from paddle_lm.training.trainer import train

    save = str(tmp_path_factory.mktemp("ckpt"))
    train(DataConfig(train_data_path=tiny_corpus["train"], vocab_file=tiny_corpus["vocab"]),
          apply_preset("elmo", "elmo-tiny"),
          TrainConfig(save_dir=save, batch_size=4, unroll_steps=5, max_steps=2, save_steps=1), progress=False)
    return save


def _pretrain(c, *extra):
    return ["--train_data_path", c["train"], "--vocab_file", c["vocab"], *TINY, "--max_steps", "1", *extra]


def test_missing_vocab(tiny_corpus, tmp_path, capsys, monkeypatch):
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", str(tmp_path / "nope.txt"),
            "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "nope.txt", "does not exist")


def test_glob_matches_nothing(tiny_corpus, tmp_path, capsys, monkeypatch):
    argv = ["--train_data_path", str(tmp_path / "missing/*"), "--vocab_file", tiny_corpus["vocab"],
            "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "--train_data_path", "no file")


def test_undecodable_corpus(tiny_corpus, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat .\nthe \xff dog .\n")
    argv = ["--train_data_path", str(bad), "--vocab_file", tiny_corpus["vocab"], "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "bad.txt:2", "UTF-8")


def test_empty_files(tiny_corpus, tmp_path, capsys, monkeypatch):
    (tmp_path / "e1").write_text("")
    argv = ["--train_data_path", str(tmp_path / "e*"), "--vocab_file", tiny_corpus["vocab"],
            "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "empty")


def test_init_from_ckpt_nothing_and_suffix(tiny_corpus, trained, tmp_path, capsys, monkeypatch):
    argv = _pretrain(tiny_corpus, "--save_dir", str(tmp_path / "s"), "--init_from_ckpt", str(tmp_path / "77"))
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "no checkpoint there")
    argv = _pretrain(tiny_corpus, "--save_dir", trained, "--init_from_ckpt", os.path.join(trained, "1.pdparams"))
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "without '.pdparams'")
    code, err = run_inproc("run_eval.py", ["--init_from_ckpt", trained], capsys, monkeypatch)
    assert_one_line_error(code, err, "is a folder", "final")


def test_existing_checkpoints_are_not_overwritten(tiny_corpus, trained, capsys, monkeypatch):
    before = {f: os.path.getmtime(os.path.join(trained, f)) for f in os.listdir(trained)}
    argv = _pretrain(tiny_corpus, "--save_dir", trained)
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "already holds", "--overwrite")
    assert before == {f: os.path.getmtime(os.path.join(trained, f)) for f in os.listdir(trained)}


def test_vocab_mismatch_on_resume_and_eval(tiny_corpus, trained, tmp_path, capsys, monkeypatch):
    other = tmp_path / "other.txt"
    other.write_text("the\ncat\ndog\n")
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", str(other), *TINY,
            "--save_dir", trained, "--init_from_ckpt", os.path.join(trained, "1")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "does not match")
    argv = ["--init_from_ckpt", os.path.join(trained, "final"), "--vocab_file", str(other),
            "--dev_data_path", tiny_corpus["dev"]]
    assert_one_line_error(*run_inproc("run_eval.py", argv, capsys, monkeypatch), "does not match")


def test_resume_with_other_geometry(tiny_corpus, trained, capsys, monkeypatch):
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", tiny_corpus["vocab"], "--preset",
            "elmo-tiny", "--batch_size", "3", "--unroll_steps", "5", "--save_dir", trained,
            "--init_from_ckpt", os.path.join(trained, "1")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "batch_size was 4, now 3")


def test_unknown_preset_and_bad_flags(tiny_corpus, tmp_path, capsys, monkeypatch):
    argv = _pretrain(tiny_corpus, "--save_dir", str(tmp_path / "s"), "--preset", "elmo-huge")
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "elmo-huge")
    argv = _pretrain(tiny_corpus, "--save_dir", str(tmp_path / "s"), "--unroll_steps", "0")
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, capsys, monkeypatch), "--unroll_steps")


def test_truncated_checkpoint(tiny_corpus, trained, tmp_path, capsys, monkeypatch):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    data = (broken / "final.pdparams").read_bytes()
    (broken / "final.pdparams").write_bytes(data[: len(data) // 2])
    argv = ["--init_from_ckpt", str(broken / "final"), "--dev_data_path", tiny_corpus["dev"]]
    assert_one_line_error(*run_inproc("run_eval.py", argv, capsys, monkeypatch), "final.pdparams")
