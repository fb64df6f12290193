"""Faults at the launcher level: kill -9 of one rank, and two emulated nodes (two `--nnodes 2` launchers on
this machine) where SIGTERM reaches one node's launcher. Every wait is for a condition, bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from conftest import ROOT
from test_faults import ENV, INTERRUPTED, TINY, logged_steps, start, wait_for
from test_pretrain import data_flags, metrics, without_speed


def _ranks_of(save_dir: str, launcher: int) -> list[int]:
    """Pids of the processes (other than the launcher) whose command line names `save_dir`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != launcher:
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if save_dir.encode() in cmd and b"run_pretrain.py" in cmd:
                pids.append(int(entry))
    return pids


def test_kill_9_of_one_rank_stops_the_launch_without_orphans(tiny_corpus, tmp_path):
    save, logs = str(tmp_path / "k9"), str(tmp_path / "log")
    proc = start([*data_flags(tiny_corpus), *TINY, "--max_steps", "100000", "--save_dir", save], logs)
    wait_for(lambda: logged_steps(save) >= 1, "training on both ranks", proc=proc)
    ranks = _ranks_of(save, proc.pid)
    assert len(ranks) == 2, ranks
    os.kill(ranks[-1], signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    wait_for(lambda: not _ranks_of(save, proc.pid), "the other rank to be gone", timeout=60)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_two_nodes(args: list[str], log_dir: str) -> list[subprocess.Popen]:
    """Two `paddle.distributed.launch --nnodes 2` launchers on this machine, one rank each: two emulated nodes."""
    port = _free_port()
    return [subprocess.Popen([sys.executable, "-m", "paddle.distributed.launch", "--nnodes", "2", "--master",
                              f"127.0.0.1:{port}", "--rank", str(r), "--nproc_per_node", "1", "--log_dir",
                              os.path.join(log_dir, f"node{r}"), "run_pretrain.py", *args],
                             cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for r in (0, 1)]


def finish(nodes: list[subprocess.Popen]) -> list[int]:
    for p in nodes:
        p.communicate(timeout=180)
    return [p.returncode for p in nodes]


def node_logs(log_dir: str) -> str:
    """The ends of both emulated nodes' worker logs (for an assertion message)."""
    out = ""
    for r in (0, 1):
        path = os.path.join(log_dir, f"node{r}", "workerlog.0")
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                out += f"\n--- node {r} ---\n" + f.read()[-1500:]
    return out


def test_two_nodes_sigterm_to_one_launcher_then_exact_resume(tiny_corpus, tmp_path):
    save, ref, logs = str(tmp_path / "int"), str(tmp_path / "ref"), str(tmp_path / "log")
    nodes = start_two_nodes([*data_flags(tiny_corpus), *TINY, "--max_steps", "100000", "--save_dir", save], logs)
    wait_for(lambda: logged_steps(save) >= 3, "3 logged steps", proc=nodes[0])
    nodes[1].send_signal(signal.SIGTERM)  # preempt the second node only
    assert all(code != 0 for code in finish(nodes))
    with open(os.path.join(logs, "node0", "workerlog.0")) as f:
        m = INTERRUPTED.search(f.read())
    assert m, "rank 0 did not save on the other node's signal"
    step, prefix = int(m.group(1)), m.group(2)
    end = ["--max_steps", str(step + 2)]
    resume_logs, ref_logs = str(tmp_path / "log-resume"), str(tmp_path / "log-ref")
    codes = finish(start_two_nodes([*data_flags(tiny_corpus), *TINY, *end, "--save_dir", save, "--init_from_ckpt",
                                    prefix], resume_logs))
    assert codes == [0, 0], node_logs(resume_logs)
    codes = finish(start_two_nodes([*data_flags(tiny_corpus), *TINY, *end, "--save_dir", ref], ref_logs))
    assert codes == [0, 0], node_logs(ref_logs)
    assert without_speed(metrics(save)) == without_speed(metrics(ref))

