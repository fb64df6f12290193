"""A signal during start-up (before the training loop takes SIGTERM / SIGINT over) ends the run with one clean
line and leaves nothing on disk (issue 18 item 5). The run is held in start-up deterministically: the test
holds the lock of the first shard's encoding, which the run waits for after Paddle is loaded."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import ROOT
from test_faults import ENV, TINY, wait_for

from paddle_lm.data.shards import cache_keys
from paddle_lm.locks import file_lock

LINE = "interrupted before step 1; nothing was saved"


def _text(path: str) -> str:
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def _fresh_corpus(tiny_corpus, tmp_path) -> tuple[str, list[str]]:
    """A copy of the conftest corpus (nothing encoded yet) and its shards."""
    src = os.path.dirname(tiny_corpus["train"])
    dst = str(tmp_path / "train")
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*"))
    return os.path.join(dst, "*"), sorted(os.path.join(dst, n) for n in os.listdir(dst))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_start_up_prints_one_line(tiny_corpus, tmp_path, signum):
    pattern, shards = _fresh_corpus(tiny_corpus, tmp_path)
    keys, _ = cache_keys(shards[:1])
    save, err_path = str(tmp_path / "ck"), str(tmp_path / "stderr.txt")
    with file_lock(keys[0] + ".lock"), open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "run_pretrain.py", "--train_data_path", pattern, "--vocab_file",
                                 tiny_corpus["vocab"], *TINY, "--max_steps", "3", "--save_dir", save],
                                cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(lambda: "encoding shards" in _text(err_path), "the run to wait for the shard lock",
                     proc=proc)
            proc.send_signal(signum)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = _text(err_path)
    assert proc.returncode == 128 + signum, text[-2000:]
    assert text.rstrip().splitlines()[-1] == LINE, text[-2000:]
    assert "Traceback" not in text and "FatalError" not in text, text[-2000:]
    assert not os.path.exists(save)  # refused: no --save_dir, no lock file


def test_the_launcher_stopping_two_ranks_in_start_up(tiny_corpus, tmp_path):
    pattern, shards = _fresh_corpus(tiny_corpus, tmp_path)
    keys, _ = cache_keys(shards)
    save, logs = str(tmp_path / "ck"), str(tmp_path / "log")
    worker0 = os.path.join(logs, "workerlog.0")
    with file_lock(keys[0] + ".lock"), file_lock(keys[1] + ".lock"):
        proc = subprocess.Popen([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
                                 "--log_dir", logs, "run_pretrain.py", "--train_data_path", pattern, "--vocab_file",
                                 tiny_corpus["vocab"], *TINY, "--max_steps", "3", "--save_dir", save],
                                cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: "encoding shards" in _text(worker0),
                     "rank 0 to wait for the shard lock", proc=proc)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode != 0
    text = _text(worker0)
    assert LINE in text and "Traceback" not in text and "FatalError" not in text, text[-2000:]
    assert not os.path.exists(save)
