"""--amp: the start-up probe (a no-op is said, not hidden) and the fp16 loss scaler, which runs on the CPU too:
scaling is exact, an overflowing step is skipped and the scale halved, and its state resumes exactly."""

from __future__ import annotations

import json
import os

import pytest

from paddle_lm.config import PRESETS, DataConfig, TrainConfig, apply_preset
from paddle_lm.training import amp
from paddle_lm.training.amp import LossScaler, autocast_works, resolve_amp
from paddle_lm.training.trainer import train


def test_loss_scaler_halves_on_overflow_and_grows_after_a_streak(monkeypatch):
    monkeypatch.setattr(amp, "GROWTH_INTERVAL", 3)
    s = LossScaler(8.0)
    assert s.update(False) is False and s.scale == 4.0 and s.skipped == 1
    assert [s.update(True) for _ in range(3)] == [True, True, True] and s.scale == 8.0
    s.update(True)
    copy = LossScaler()
    copy.set_state_dict(json.loads(json.dumps(s.state_dict())))
    assert copy.state_dict() == s.state_dict() == {"scale": 8.0, "streak": 1, "skipped": 1}


def test_resolve_amp_says_when_autocast_does_nothing():
    assert resolve_amp("off", "cpu") == (None, "")
    for mode, dtype in (("bf16", "bfloat16"), ("fp16", "float16")):
        got, note = resolve_amp(mode, "cpu")
        if autocast_works(dtype):  # a build whose CPU autocast works: it is used
            assert (got, note) == (dtype, "")
        else:
            assert got is None and f"--amp {mode} is a no-op on cpu" in note and "float32" in note


def _train(corpus, save_dir, steps=6, **extra) -> list[dict]:
    train(DataConfig(train_data_path=corpus["train"], vocab_file=corpus["vocab"]),
          apply_preset(PRESETS["elmo-tiny"]["model"], "elmo-tiny"),
          TrainConfig(save_dir=save_dir, batch_size=4, unroll_steps=5, max_steps=steps, save_steps=3,
                      logging_steps=1, n_negative_samples=16, visualdl=False, device="cpu", **extra),
          progress=False)
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def fp16_scaler_on_cpu(monkeypatch):
    """Pretend autocast works: the fp16 path (loss scaler) runs, with the CPU's float32 math underneath."""
    monkeypatch.setattr(amp, "autocast_works", lambda dtype: True)


def test_cpu_amp_trains_like_fp32_and_says_so(tiny_corpus, tmp_path, capsys):
    if autocast_works("bfloat16"):
        pytest.skip("this build's CPU autocast runs bfloat16")
    plain = _train(tiny_corpus, str(tmp_path / "fp32"), steps=3)
    capsys.readouterr()
    train(DataConfig(train_data_path=tiny_corpus["train"], vocab_file=tiny_corpus["vocab"]),
          apply_preset(PRESETS["elmo-tiny"]["model"], "elmo-tiny"),
          TrainConfig(save_dir=str(tmp_path / "bf16"), batch_size=4, unroll_steps=5, max_steps=3, logging_steps=1,
                      n_negative_samples=16, visualdl=False, device="cpu", amp="bf16"))
    assert "--amp bf16 is a no-op on cpu" in capsys.readouterr().out
    with open(tmp_path / "bf16" / "metrics.jsonl") as f:
        assert [json.loads(x)["loss"] for x in f] == [m["loss"] for m in plain]


def test_loss_scaling_is_exact(tiny_corpus, tmp_path, fp16_scaler_on_cpu):
    """A power-of-two scale multiplies and divides exactly: the same losses and gradient norms as unscaled."""
    plain = _train(tiny_corpus, str(tmp_path / "plain"))
    scaled = _train(tiny_corpus, str(tmp_path / "scaled"), amp="fp16")
    assert [m[k] for m in scaled for k in ("loss", "grad_norm")] == pytest.approx(
        [m[k] for m in plain for k in ("loss", "grad_norm")], rel=1e-6)
    assert {m["loss_scale"] for m in scaled} == {amp.INIT_SCALE} and scaled[-1]["skipped_steps"] == 0


def test_overflow_skips_steps_and_resumes_exactly(tiny_corpus, tmp_path, fp16_scaler_on_cpu, monkeypatch):
    """At scale 2^68 the squared gradients overflow float32: those steps are skipped (no update, null norm) and
    the scale halves until they fit; a run resumed from step 3 carries the scaler on exactly."""
    monkeypatch.setattr(amp, "INIT_SCALE", 2.0**68)
    straight = _train(tiny_corpus, str(tmp_path / "straight"), steps=8, amp="fp16")
    skipped = [m for m in straight if m["grad_norm"] is None]
    assert skipped and straight[-1]["grad_norm"] is not None, straight
    assert straight[-1]["skipped_steps"] == len(skipped) and straight[-1]["loss_scale"] == 2.0**68 / 2 ** len(skipped)
    assert all(m["loss"] is not None for m in straight)  # the loss itself is unscaled and finite
    half = str(tmp_path / "half")
    _train(tiny_corpus, half, steps=3, amp="fp16")
    resumed = _train(tiny_corpus, half, steps=8, amp="fp16", init_from_ckpt="auto")
    assert resumed[3:] == [{**m, "tokens_per_s": r["tokens_per_s"]} for m, r in zip(straight[3:], resumed[3:])]
