"""Long runs survive: signals (1 and 2 ranks, exact resume), divergence, kill -9 mid-save, two runs in one
folder, --overwrite, pruning, a full disk and unusable folders. Every wait is for a condition, bounded."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, assert_one_line_error, launch_pretrain, run_inproc, run_script
from test_pretrain import data_flags, metrics, read_json, without_speed

# Constant LR: an interrupted run with a large --max_steps follows the same curve as a short reference run.
TINY = ["--preset", "elmo-tiny", "--batch_size", "4", "--unroll_steps", "5", "--dropout", "0.1",
        "--n_negative_samples", "8", "--lr_decay", "none", "--device", "cpu", "--logging_steps", "1"]
INTERRUPTED = re.compile(r"^interrupted at step (\d+); saved (\S+); resume with --init_from_ckpt=(\S+)$", re.MULTILINE)
ENV = {**os.environ, "PYTHONPATH": ROOT, "MKL_DEBUG_CPU_TYPE": "5"}


def wait_for(cond, what: str, timeout: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    """Poll `cond()` until true; fail after `timeout` seconds or when `proc` exits first."""
    deadline = time.monotonic() + timeout
    while not cond():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"process exited ({proc.returncode}) before {what}: {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def logged_steps(save_dir: str) -> int:
    path = os.path.join(save_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return sum(1 for line in f if line.endswith("\n"))


def start(args: list[str], log_dir: str | None = None) -> subprocess.Popen:
    launcher = ["-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir", log_dir] if log_dir else []
    return subprocess.Popen([sys.executable, *launcher, "run_pretrain.py", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigint_one_process_saves_and_resumes_exactly(tiny_corpus, tmp_path):
    save, ref = str(tmp_path / "int"), str(tmp_path / "ref")
    proc = start([*data_flags(tiny_corpus), *TINY, "--max_steps", "100000", "--save_dir", save])
    wait_for(lambda: logged_steps(save) >= 3, "3 logged steps", proc=proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err[-2000:]
    m = INTERRUPTED.search(err)
    assert m, err[-2000:]
    step, prefix = int(m.group(1)), m.group(2)
    assert m.group(3) == prefix == os.path.join(save, str(step)) and step >= 3
    r = run_script(["run_pretrain.py", *data_flags(tiny_corpus), *TINY, "--max_steps", str(step + 3),
                    "--save_dir", save, "--init_from_ckpt", prefix], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    r = run_script(["run_pretrain.py", *data_flags(tiny_corpus), *TINY, "--max_steps", str(step + 3),
                    "--save_dir", ref], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert without_speed(metrics(save)) == without_speed(metrics(ref))  # losses and grad norms, exactly


def test_sigterm_to_the_launcher_saves_on_two_ranks_and_resumes_exactly(tiny_corpus, tmp_path):
    save, ref, logs = str(tmp_path / "int"), str(tmp_path / "ref"), str(tmp_path / "log")
    proc = start([*data_flags(tiny_corpus), *TINY, "--max_steps", "100000", "--save_dir", save], logs)
    wait_for(lambda: logged_steps(save) >= 3, "3 logged steps", proc=proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    with open(os.path.join(logs, "workerlog.0")) as f:
        m = INTERRUPTED.search(f.read())
    assert m
    step, prefix = int(m.group(1)), m.group(2)
    assert os.path.isfile(prefix + ".json") and read_json(prefix + ".json")["step"] == step
    end = ["--max_steps", str(step + 2)]
    r = launch_pretrain([*data_flags(tiny_corpus), *TINY, *end, "--save_dir", save, "--init_from_ckpt", prefix],
                        str(tmp_path / "log-resume"))
    assert r.returncode == 0, r.stdout[-3000:]
    r = launch_pretrain([*data_flags(tiny_corpus), *TINY, *end, "--save_dir", ref], str(tmp_path / "log-ref"))
    assert r.returncode == 0, r.stdout[-3000:]
    assert without_speed(metrics(save)) == without_speed(metrics(ref))


def test_the_same_command_line_restarts_a_preempted_run(tiny_corpus, tmp_path, monkeypatch):
    """--init_from_ckpt auto: a fresh start the first time, then the newest checkpoint; a finished run is left
    alone; the resumed curve is the uninterrupted one."""
    save, ref = str(tmp_path / "auto"), str(tmp_path / "ref")
    cmd = [*data_flags(tiny_corpus), *TINY, "--save_steps", "2", "--save_dir", save, "--init_from_ckpt", "auto"]
    assert_one_line_error(*run_inproc("run_pretrain.py", [*cmd[:-1], "latest"], monkeypatch)[::2],
                          "--init_from_ckpt latest", "no checkpoint yet")
    proc = start([*cmd, "--max_steps", "100000"])
    wait_for(lambda: logged_steps(save) >= 3, "3 logged steps", proc=proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    step = int(INTERRUPTED.search(err).group(1))
    for _ in range(2):  # the second time the run is complete: nothing is trained or saved
        r = run_script(["run_pretrain.py", *cmd, "--max_steps", str(step + 3)], ROOT)
        assert r.returncode == 0, r.stderr[-2000:]
    assert "nothing to train" in r.stdout
    r = run_script(["run_pretrain.py", *data_flags(tiny_corpus), *TINY, "--max_steps", str(step + 3),
                    "--save_dir", ref], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert without_speed(metrics(save)) == without_speed(metrics(ref))


def test_newest_checkpoint_is_the_last_committed(tmp_path):
    from paddle_lm.training import checkpoint as ckpt

    folder = str(tmp_path)
    for name, step, saved_at in (("4", 4, 10.0), ("3", 3, 20.0), ("2", 2, 5.0)):  # 3 re-saved after a resume
        ckpt.save_checkpoint(os.path.join(folder, name), {"w": np.ones(2, np.float32)}, {}, {},
                             {"step": step, "saved_at": saved_at})
    assert ckpt.newest(folder) == "3"
    assert ckpt.resolve_resume("latest", folder) == os.path.join(folder, "3")
    assert ckpt.resolve_resume("auto", str(tmp_path / "empty")) == ""


def test_divergence_stops_before_saving_anything_non_finite(tiny_corpus, tmp_path, monkeypatch):
    save = str(tmp_path / "nan")
    argv = [*data_flags(tiny_corpus), *TINY, "--lr", "1e30", "--max_grad_norm", "0", "--max_steps", "50",
            "--save_steps", "1", "--keep_last", "1", "--save_dir", save]
    code, _, err = run_inproc("run_pretrain.py", argv, monkeypatch)
    line = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 3 and len(line) == 1 and "Traceback" not in err, err[-2000:]
    m = re.search(r"non-finite training loss or gradient norm at step (\d+)", line[0])
    assert m, line[0]
    bad = int(m.group(1))
    from paddle_lm.training import checkpoint as ckpt

    names = ckpt.list_checkpoints(save)
    assert "final" not in names and str(bad) not in names
    if bad > 1:  # the step before is the last good checkpoint, named in the line, kept by pruning
        assert names == [str(bad - 1)] and f"last good checkpoint is {os.path.join(save, str(bad - 1))}" in line[0]
        side = ckpt.read_sidecar(os.path.join(save, names[0]))
        assert all(np.isfinite(v).all() for v in ckpt.load_params(os.path.join(save, names[0]), side).values())
    with open(os.path.join(save, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]  # strict JSON: a bare NaN would not parse
    assert all(r["step"] < bad for r in rows)


def test_kill_9_while_one_name_is_saved_again_and_again(tmp_path):
    """Fork a writer that re-saves checkpoint `final` in a loop, kill -9 it at random moments; each time what
    loads afterwards is one complete checkpoint whose files agree with its sidecar."""
    from paddle_lm.training import checkpoint as ckpt

    folder = str(tmp_path)
    prefix = os.path.join(folder, "final")

    def save(i: int) -> None:
        ckpt.save_checkpoint(prefix, {"w": np.full(300_000, i, np.float32)}, {"m": np.full(200_000, i, np.float32)},
                             {"s0": np.full((2, 3), i, np.float32)}, {"step": i})

    save(0)
    rng = np.random.default_rng(7)
    hits, seen = 0, set()
    for trial in range(20):
        before = ckpt.read_sidecar(prefix)["step"]
        pid = os.fork()
        if pid == 0:  # the writer: never returns into pytest
            try:
                i = before
                while True:
                    i += 1
                    save(i)
            finally:
                os._exit(0)
        wait_for(lambda b=before: ckpt.read_sidecar(prefix)["step"] > b, "a commit", timeout=60)
        time.sleep(float(rng.uniform(0, 0.05)))  # where the kill lands; every outcome is checked below
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        hits += bool(ckpt.clean_folder(folder))  # leftovers of the killed save, removed at the next start
        side = ckpt.read_sidecar(prefix)
        step = side["step"]
        assert ckpt.load_params(prefix, side)["w"][0] == step
        assert ckpt.load_optimizer(prefix, side)["m"][0] == step
        assert ckpt.load_carried(prefix, side)["s0"][0, 0] == step
        assert sorted(os.listdir(folder)) == sorted(["final.json", *(v["file"] for v in side["files"].values())])
        seen.add(step)
    assert hits >= 1 and len(seen) == 20  # kills landed mid-save, and every trial committed new checkpoints


def test_the_writer_refuses_non_finite_weights(tmp_path):
    from paddle_lm.errors import UserError
    from paddle_lm.training import checkpoint as ckpt

    prefix = str(tmp_path / "final")
    ckpt.save_checkpoint(prefix, {"w": np.ones(4, np.float32)}, {}, {}, {"step": 1})
    with pytest.raises(UserError, match="refusing to save .*: w holds non-finite values"):
        ckpt.save_checkpoint(prefix, {"w": np.array([1, np.nan], np.float32)}, {}, {}, {"step": 2})
    with pytest.raises(UserError, match="refusing to save .*: acc holds non-finite values"):
        ckpt.save_checkpoint(prefix, {"w": np.ones(4, np.float32)}, {"acc": np.array([np.inf], np.float32)}, {},
                             {"step": 2})
    assert ckpt.read_sidecar(prefix)["step"] == 1 and len(os.listdir(tmp_path)) == 4


def test_damaged_and_missing_files_are_refused_with_one_line(tiny_corpus, tmp_path, monkeypatch):
    from conftest import train_tiny

    save = train_tiny(tiny_corpus, str(tmp_path / "run"))
    side = read_json(os.path.join(save, "1.json"))
    params = os.path.join(save, side["files"][".pdparams"]["file"])
    with open(params, "rb") as f:
        data = bytearray(f.read())
    data[-20] ^= 0xFF  # same size, different bytes
    with open(params, "wb") as f:
        f.write(bytes(data))
    eval_argv = ["--init_from_ckpt", os.path.join(save, "1"), "--dev_data_path", tiny_corpus["dev"]]
    assert_one_line_error(*run_inproc("run_eval.py", eval_argv, monkeypatch)[::2], "checksum", "1.pdparams")
    os.remove(os.path.join(save, side["files"][".pdopt"]["file"]))
    resume = [*data_flags(tiny_corpus), "--preset", "elmo-tiny", "--batch_size", "4", "--unroll_steps", "5",
              "--max_steps", "3", "--save_dir", save, "--init_from_ckpt", os.path.join(save, "final")]
    fin = read_json(os.path.join(save, "final.json"))
    os.remove(os.path.join(save, fin["files"][".pdstate"]["file"]))
    assert_one_line_error(*run_inproc("run_pretrain.py", resume, monkeypatch)[::2], "final.pdstate", "missing")


def test_two_runs_in_one_save_dir(tiny_corpus, tmp_path, monkeypatch):
    save = str(tmp_path / "shared")
    first = start([*data_flags(tiny_corpus), *TINY, "--max_steps", "100000", "--save_dir", save])
    try:
        wait_for(lambda: logged_steps(save) >= 1, "the first run to train", proc=first)
        argv = [*data_flags(tiny_corpus), *TINY, "--max_steps", "2", "--save_dir", save, "--overwrite"]
        code, _, err = run_inproc("run_pretrain.py", argv, monkeypatch)
        assert_one_line_error(code, err, "in use by another run", f'"pid": {first.pid}')
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGINT  # the refused run left the first one's files alone


def test_overwrite_replaces_the_old_run_and_pruning_keeps_the_newest(tiny_corpus, tmp_path):
    from paddle_lm.training import checkpoint as ckpt

    save = str(tmp_path / "run")
    base = [*data_flags(tiny_corpus), *TINY, "--save_steps", "1", "--save_dir", save]
    r = run_script(["run_pretrain.py", *base, "--max_steps", "5"], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert ckpt.list_checkpoints(save) == ["1", "2", "3", "4", "final"]
    # Resumed from 2 with --keep_last 1: the abandoned steps 3 and 4 are not "older", step 3 is re-saved.
    r = run_script(["run_pretrain.py", *base, "--max_steps", "5", "--keep_last", "1", "--init_from_ckpt",
                    os.path.join(save, "2")], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert ckpt.list_checkpoints(save) == ["4", "final"]
    assert ckpt.read_sidecar(os.path.join(save, "4"))["train_config"]["keep_last"] == 1  # the new run's 4
    r = run_script(["run_pretrain.py", *base, "--max_steps", "2", "--keep_last", "1", "--overwrite"], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert ckpt.list_checkpoints(save) == ["1", "final"]
    assert [x["step"] for x in metrics(save)] == [1, 2]
    assert ckpt.read_sidecar(os.path.join(save, "final"))["step"] == 2


@pytest.fixture
def tmpfs(tmp_path):
    """A 1.5 MB tmpfs (needs root and mount; skipped where the sandbox cannot mount)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mnt)], capture_output=True,
                       check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield str(mnt)
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(tmpfs):
    from paddle_lm.training import checkpoint as ckpt

    prefix = os.path.join(tmpfs, "final")
    ckpt.save_checkpoint(prefix, {"w": np.ones(100_000, np.float32)}, {}, {}, {"step": 1})
    from paddle_lm.errors import UserError

    with pytest.raises(UserError, match="No space left on device"):
        ckpt.save_checkpoint(prefix, {"w": np.full(300_000, 2, np.float32)}, {}, {}, {"step": 2})
    side = ckpt.read_sidecar(prefix)
    assert side["step"] == 1 and ckpt.load_params(prefix, side)["w"][0] == 1
    assert sorted(os.listdir(tmpfs)) == sorted(["final.json", *(v["file"] for v in side["files"].values())])


def test_disk_full_in_a_real_run_stops_with_one_line(tiny_corpus, tmpfs, monkeypatch):
    """A run that saves every step into a 1.5 MB folder: the save that does not fit ends the run with one line;
    every checkpoint before it loads, and nothing half-written is left."""
    from paddle_lm.training import checkpoint as ckpt

    save = os.path.join(tmpfs, "run")
    argv = [*data_flags(tiny_corpus), *TINY, "--max_steps", "1000", "--save_steps", "1", "--keep_last", "0",
            "--save_dir", save]
    code, _, err = run_inproc("run_pretrain.py", argv, monkeypatch)
    assert_one_line_error(code, err, "No space left on device", "previous files are intact")
    names = ckpt.list_checkpoints(save)
    assert len(names) >= 2 and "final" not in names
    for name in names:
        prefix = os.path.join(save, name)
        side = ckpt.read_sidecar(prefix)
        ckpt.load_params(prefix, side), ckpt.load_optimizer(prefix, side), ckpt.load_carried(prefix, side)
    assert ckpt.clean_folder(save) == []  # the failed save removed its own temporary files


def test_unusable_save_dirs(tiny_corpus, tmp_path, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir()
    cases = [(str(a_file), "not a folder"), ("/proc/paddle-lm-test", "cannot be created")]
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], check=False).returncode == 0:
        cases.append((str(ro / "run"), "cannot be created"))
    try:
        for save_dir, needle in cases:
            argv = [*data_flags(tiny_corpus), *TINY, "--max_steps", "1", "--save_dir", save_dir]
            assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "--save_dir", needle)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False, capture_output=True)
