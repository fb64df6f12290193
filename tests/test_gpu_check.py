"""The GPU acceptance run cannot rot: `bash bench/gpu_check.sh --device cpu` (what CI runs) runs every check at
tiny sizes on the CPU and its JSON last line says PASS, or SKIP with a reason, with sensible figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT

CHECKS = {"device", "elmo_2000", "elmo_8000", "amp_bf16", "amp_fp16", "resume", "generate", "embed", "epoch"}


def test_gpu_check_cpu_mode_runs_every_check():
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    r = subprocess.run(["bash", "bench/gpu_check.sh", "--device", "cpu"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    report = json.loads(lines[-1])  # one JSON line, last
    assert report["device"] == "cpu" and report["ok"] is True
    checks = report["checks"]
    assert set(checks) == CHECKS
    for name, c in checks.items():
        assert c["status"] in ("PASS", "SKIP"), (name, c["summary"])
        assert c["summary"].strip(), name  # a SKIP says why
        assert c["kind"] == ("arithmetic" if name == "epoch" else "measured")
        assert any(line.startswith(name) and c["status"] in line for line in lines[:-1]), name  # a table row

    assert checks["device"]["auto"] == "cpu" and checks["device"]["status"] == "PASS"
    for name in ("elmo_2000", "elmo_8000"):
        c = checks[name]
        assert c["status"] == "PASS" and c["tokens_per_s"] > 0 and c["peak_rss_kib"] > 0 and c["steps"] == 8
        assert c["trainer_device"] == "auto"  # the trainer's own --device auto landed on the CPU
    for name in ("amp_bf16", "amp_fp16"):  # the CPU build's autocast is a no-op: the run says so and trains fp32
        c = checks[name]
        assert c["status"] == "SKIP" and "no-op" in c["summary"] and c["tokens_per_s"] > 0
        assert c["loss_diff_last"] == 0.0
    resume = checks["resume"]
    assert resume["status"] == "PASS" and resume["equal"] is True and resume["max_loss_diff"] == 0.0
    assert resume["exit_status"] == 143 and resume["interrupted_at"] >= 2
    assert resume["resumed_losses"] == resume["uninterrupted_losses"] and len(resume["resumed_losses"]) == 3
    assert checks["generate"]["new_tokens"] > 0 and checks["generate"]["new_tokens_per_s"] > 0
    assert checks["embed"]["sentences"] == 256 and checks["embed"]["sentences_per_s"] > 0
    epoch = checks["epoch"]
    for vocab in (2000, 8000):
        hours = epoch[f"hours_{vocab}"]
        assert 0 < hours["8"] < hours["1"]
