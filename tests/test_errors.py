"""Bad input: one clear line naming the problem, exit status 2, no traceback, nothing overwritten."""

from __future__ import annotations

import os

import pytest
from conftest import assert_one_line_error, run_inproc, train_tiny

TINY = ["--preset", "elmo-tiny", "--batch_size", "4", "--unroll_steps", "5"]


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory) -> str:
    return train_tiny(tiny_corpus, str(tmp_path_factory.mktemp("ckpt")), save_steps=1)  # keeps checkpoint "1"


def _pretrain(c, *extra):
    return ["--train_data_path", c["train"], "--vocab_file", c["vocab"], *TINY, "--max_steps", "1", *extra]


def test_missing_vocab(tiny_corpus, tmp_path, monkeypatch):
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", str(tmp_path / "nope.txt"),
            "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "nope.txt", "does not exist")


def test_glob_matches_nothing(tiny_corpus, tmp_path, monkeypatch):
    argv = ["--train_data_path", str(tmp_path / "missing/*"), "--vocab_file", tiny_corpus["vocab"],
            "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "--train_data_path", "no file")


def test_undecodable_corpus(tiny_corpus, tmp_path, monkeypatch):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"the cat .\nthe \xff dog .\n")
    argv = ["--train_data_path", str(bad), "--vocab_file", tiny_corpus["vocab"], "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "bad.txt:2", "UTF-8")


def test_empty_files(tiny_corpus, tmp_path, monkeypatch):
    (tmp_path / "e1").write_text("")
    argv = ["--train_data_path", str(tmp_path / "e*"), "--vocab_file", tiny_corpus["vocab"],
            "--save_dir", str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "empty")


def test_init_from_ckpt_nothing_and_suffix(tiny_corpus, trained, tmp_path, monkeypatch):
    argv = _pretrain(tiny_corpus, "--save_dir", str(tmp_path / "s"), "--init_from_ckpt", str(tmp_path / "77"))
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "no checkpoint there")
    argv = _pretrain(tiny_corpus, "--save_dir", trained, "--init_from_ckpt", os.path.join(trained, "1.pdparams"))
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "without '.pdparams'")
    code, _, err = run_inproc("run_eval.py", ["--init_from_ckpt", trained], monkeypatch)
    assert_one_line_error(code, err, "is a folder", "final")


def test_existing_checkpoints_are_not_overwritten(tiny_corpus, trained, monkeypatch):
    from paddle_lm.training.run_dir import LOCK_FILE

    def files():  # the lock file is rewritten by every run that takes it, also one that then refuses
        return {f: os.path.getmtime(os.path.join(trained, f)) for f in os.listdir(trained) if f != LOCK_FILE}

    before = files()
    argv = _pretrain(tiny_corpus, "--save_dir", trained)
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "already holds", "--overwrite")
    assert before == files()


def test_vocab_mismatch_on_resume_and_eval(tiny_corpus, trained, tmp_path, monkeypatch):
    other = tmp_path / "other.txt"
    other.write_text("the\ncat\ndog\n")
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", str(other), *TINY,
            "--save_dir", trained, "--init_from_ckpt", os.path.join(trained, "1")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "does not match")
    argv = ["--init_from_ckpt", os.path.join(trained, "final"), "--vocab_file", str(other),
            "--dev_data_path", tiny_corpus["dev"]]
    assert_one_line_error(*run_inproc("run_eval.py", argv, monkeypatch)[::2], "does not match")


def test_resume_with_other_geometry(tiny_corpus, trained, monkeypatch):
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", tiny_corpus["vocab"], "--preset",
            "elmo-tiny", "--batch_size", "3", "--unroll_steps", "5", "--save_dir", trained,
            "--init_from_ckpt", os.path.join(trained, "1")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "batch_size was 4, now 3")


def test_resume_refuses_the_weights_of_another_model(tiny_corpus, trained, tmp_path, monkeypatch):
    """A checkpoint whose .pdparams belongs to another model, with its sidecar's size and checksum made to match,
    is refused with one line naming a mis-shaped weight (it used to resume silently from fresh weights)."""
    import hashlib
    import json
    import shutil

    other = train_tiny(tiny_corpus, str(tmp_path / "other"), preset="lstm-tiny")
    run = str(tmp_path / "run")
    shutil.copytree(trained, run)
    shutil.copy(os.path.join(other, "final.pdparams"), os.path.join(run, "1.pdparams"))
    with open(os.path.join(run, "1.json")) as f:
        side = json.load(f)
    with open(os.path.join(run, "1.pdparams"), "rb") as f:
        data = f.read()
    side["files"][".pdparams"].update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    with open(os.path.join(run, "1.json"), "w") as f:
        json.dump(side, f)
    argv = _pretrain(tiny_corpus, "--save_dir", run, "--init_from_ckpt", os.path.join(run, "1"), "--max_steps", "2")
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "1.pdparams")


def test_unknown_preset_and_bad_flags(tiny_corpus, tmp_path, monkeypatch):
    argv = _pretrain(tiny_corpus, "--save_dir", str(tmp_path / "s"), "--preset", "elmo-huge")
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "elmo-huge")
    argv = _pretrain(tiny_corpus, "--save_dir", str(tmp_path / "s"), "--unroll_steps", "0")
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "--unroll_steps")


def test_truncated_checkpoint(tiny_corpus, trained, tmp_path, monkeypatch):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(trained, broken)
    data = (broken / "final.pdparams").read_bytes()
    (broken / "final.pdparams").write_bytes(data[: len(data) // 2])
    argv = ["--init_from_ckpt", str(broken / "final"), "--dev_data_path", tiny_corpus["dev"]]
    assert_one_line_error(*run_inproc("run_eval.py", argv, monkeypatch)[::2], "final.pdparams")


@pytest.mark.parametrize("target,argv", [
    ("run_pretrain.py", ["-h"]), ("run_eval.py", ["-h"]), ("run_finetune.py", ["-h"]),
    *[("paddle_lm", [cmd, "-h"]) for cmd in ("plot", "embed", "export", "save_pretrained", "generate")],
])
def test_every_help_page_renders(target, argv, monkeypatch):
    """argparse formats help text with %: every flag's help must survive it (a literal % must be %%)."""
    code, out, err = run_inproc(target, argv, monkeypatch)
    assert code == 0, err
    assert out.startswith("usage:") and "Traceback" not in err


@pytest.mark.parametrize("target,argv,needle", [
    ("run_pretrain.py", ["--model", "elmoo"], "argument --model: invalid choice: 'elmoo'"),
    ("run_eval.py", ["--batch_size", "x"], "argument --batch_size: invalid int value: 'x'"),
    ("paddle_lm", ["embedd"], "invalid choice: 'embedd'"),
    ("paddle_lm", ["generate", "--prompt", "x", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_usage_errors_are_one_line_and_a_hint(target, argv, needle, monkeypatch):
    """Not the whole usage block (42 lines for run_pretrain.py): the error, and where the usage is."""
    code, _, err = run_inproc(target, argv, monkeypatch)
    assert_one_line_error(code, err, needle)
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("see `") and lines[1].endswith("--help`"), err


def test_paddle_lm_command():
    """The console command of pyproject's [project.scripts]: the subcommands of `python -m paddle_lm`, --version."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("paddle-lm") or os.path.join(os.path.dirname(sys.executable), "paddle-lm")
    assert os.path.isfile(exe), "paddle-lm is not installed: pip install -e ."
    from paddle_lm import __version__

    r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stdout.strip() == f"paddle-lm {__version__}", r.stderr
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0 and r.stdout.startswith("usage: paddle-lm")
    for command in ("embed", "export", "generate", "fill-mask", "import-elmo", "export-elmo", "export-hf"):
        assert command in r.stdout
    r = subprocess.run([exe, "embedd"], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and r.stderr.splitlines()[-1] == "see `paddle-lm --help`", r.stderr
