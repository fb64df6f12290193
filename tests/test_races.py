"""Two commands writing one output cannot both succeed (issue 18 item 4), and a refused run changes nothing on
disk (item 9): no empty --save_dir, no lock file, no cache folder in a corpus folder, no output folders."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, run_inproc, run_script

from paddle_lm.errors import UserError
from paddle_lm.locks import OUTPUT_LOCK_SUFFIX, HeldLock, claim_output, file_lock


def _tree(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, dirs, files in os.walk(root) for n in dirs + files)


def test_claim_output_refuses_a_second_writer_and_leaves_nothing(tmp_path):
    out = tmp_path / "new" / "deeper" / "v.npz"
    with claim_output(str(out), "--output", False):
        lock = tmp_path / "new" / "deeper" / f".v.npz{OUTPUT_LOCK_SUFFIX}"
        assert lock.exists() and str(os.getpid()) in lock.read_text()
        with pytest.raises(UserError, match=r"--output '.*v\.npz' is in use by another run \(.*pid"), \
                claim_output(str(out), "--output", False):
            pass
        out.write_bytes(b"done")
    assert _tree(tmp_path) == ["new", "new/deeper", "new/deeper/v.npz"]  # the lock file is gone
    with pytest.raises(UserError, match="already exists"), claim_output(str(out), "--output", False):
        pass  # the check runs under the claim
    with pytest.raises(RuntimeError), claim_output(str(tmp_path / "a" / "b" / "x.png"), "--output", False):
        raise RuntimeError("the work failed")
    assert not (tmp_path / "a").exists()  # the folders made for a failed output are removed again


def test_locks_survive_a_holder_that_removed_the_file(tmp_path):
    """A released lock's file is removed; a waiter that opened the old file takes the new one (no two holders)."""
    path = str(tmp_path / "x.lock")
    first = HeldLock(path, "x")
    first.release()
    assert not os.path.exists(path)
    second = HeldLock(path, "x")
    with pytest.raises(UserError, match="in use"):
        HeldLock(path, "x")
    second.release()
    with file_lock(path):
        assert os.path.exists(path)
    assert not os.path.exists(path)


def test_embed_is_refused_while_another_command_writes_its_output(elmo_ckpt, tmp_path, monkeypatch):
    (tmp_path / "in.txt").write_text("the cat sat\na dog\n")
    out = tmp_path / "v.npz"
    argv = ["embed", "--init_from_ckpt", elmo_ckpt, "--input", str(tmp_path / "in.txt"), "--output", str(out)]
    with claim_output(str(out), "--output", False):  # another command is writing v.npz
        code, _, err = run_inproc("paddle_lm", argv, monkeypatch)
        assert_one_line_error(code, err, "--output", "in use by another run", "pid")
        assert not out.exists()
    code, stdout, err = run_inproc("paddle_lm", argv, monkeypatch)
    assert code == 0 and "2 sentences" in stdout, err
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "v.npz"]


def test_two_embeds_racing_for_one_output_never_both_succeed(elmo_ckpt, tmp_path):
    (tmp_path / "in.txt").write_text("the cat sat\na dog\n")
    out = tmp_path / "v.npz"
    cmd = [sys.executable, "-m", "paddle_lm", "embed", "--init_from_ckpt", elmo_ckpt, "--input",
           str(tmp_path / "in.txt"), "--output", str(out)]
    env = {**os.environ, "PYTHONPATH": ROOT}
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(r[0] for r in results)
    assert codes == [0, 2], results  # one wrote, the other was refused with one line
    refused = next(r for r in results if r[0] == 2)
    assert_one_line_error(2, refused[2], "--output")
    assert "in use by another run" in refused[2] or "already exists" in refused[2]
    with np.load(out) as z:
        assert sorted(z.files) == ["0", "1"]
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "v.npz"]


def test_a_refused_pretraining_run_leaves_nothing_on_disk(tiny_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "shard.bin").write_bytes(b"\x80\x81 not text\n")
    before = _tree(tmp_path)
    r = run_script(["run_pretrain.py", "--train_data_path", str(corpus / "*"), "--vocab_file", tiny_corpus["vocab"],
                    "--save_dir", str(tmp_path / "runs" / "ck"), "--max_steps", "2", "--preset", "elmo-tiny"],
                   ROOT)
    assert_one_line_error(r.returncode, r.stderr, "shard.bin", "not valid UTF-8")
    assert _tree(tmp_path) == before  # no save_dir, no lock file, no .paddle_lm_cache in the corpus folder
    r = run_script(["run_pretrain.py", "--train_data_path", tiny_corpus["train"], "--vocab_file", str(corpus),
                    "--save_dir", str(tmp_path / "ck2"), "--max_steps", "2", "--preset", "elmo-tiny"], ROOT)
    assert r.returncode == 2 and "--vocab_file" in r.stderr, r.stderr
    assert _tree(tmp_path) == before


def test_a_finished_run_leaves_no_lock_file(tiny_corpus, tmp_path):
    from conftest import train_tiny

    from paddle_lm.training.run_dir import LOCK_FILE

    save_dir = train_tiny(tiny_corpus, str(tmp_path / "ck"), save_steps=2)
    assert LOCK_FILE not in os.listdir(save_dir) and "final.json" in os.listdir(save_dir)


def test_a_refused_export_leaves_no_output_folders(tmp_path, monkeypatch):
    for argv in (["export-hf", "--init_from_ckpt", str(tmp_path / "missing"), "--output", str(tmp_path / "a/b/hf")],
                 ["export-elmo", "--init_from_ckpt", str(tmp_path / "missing"), "--output", str(tmp_path / "c/d")],
                 ["plot", "--metrics", str(tmp_path / "none.jsonl"), "--output", str(tmp_path / "e/loss.png")]):
        code, _, err = run_inproc("paddle_lm", argv, monkeypatch)
        assert code == 2 and "Traceback" not in err, err
        assert _tree(tmp_path) == [], (argv, _tree(tmp_path))
