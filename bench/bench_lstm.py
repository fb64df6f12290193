"""Time ELMo training steps on CPU: the clipped step-loop LSTM path vs the fused nn.LSTM path (clips 0).

    MKL_DEBUG_CPU_TYPE=5 python bench/bench_lstm.py [--preset elmo-small] [--batch_size 32] [--runs 10]

Variants (same architecture and parameter count; only the LSTM computation differs):
  loop, clipped     the preset as is: cell/proj clipping needs ProjectedLSTM's step loop
  nn.LSTM, clips 0  cell_clip = proj_clip = 0 and ProjectedLSTM forced to call nn.LSTM (path="fused")
  loop, clips 0     cell_clip = proj_clip = 0 with the default path="auto" (with a projection: the loop)
For each: the median time of a training step (forward + backward + Adagrad, state carried) and of forward +
backward through the two LSTM stacks alone. A benchmark, not a test: it prints numbers and ratios only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")  # before Paddle loads: faster MKL on AMD CPUs
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import paddle

from paddle_lm.config import apply_preset
from paddle_lm.models import build_model, count_parameters

VARIANTS = {
    "loop, clipped": ({}, "auto"),
    "nn.LSTM, clips 0": ({"cell_clip": 0.0, "proj_clip": 0.0}, "fused"),
    "loop, clips 0": ({"cell_clip": 0.0, "proj_clip": 0.0}, "auto"),
}


def make_batch(batch_size: int, steps: int, chars: int, vocab_size: int) -> dict:
    paddle.seed(0)
    return {
        "char_ids": paddle.randint(1, 262, [batch_size, steps, chars]).astype("int32"),
        "fw_targets": paddle.randint(0, vocab_size, [batch_size, steps]),
        "bw_targets": paddle.randint(0, vocab_size, [batch_size, steps]),
        "fw_mask": paddle.ones([batch_size, steps]),
        "bw_mask": paddle.ones([batch_size, steps]),
    }


def build(preset: str, vocab_size: int, changes: dict, path: str):
    cfg = apply_preset("elmo", preset)
    cfg.vocab_size = vocab_size
    for key, value in changes.items():
        setattr(cfg, key, value)
    paddle.seed(1)
    model = build_model(cfg)
    for stack in (model.forward_lstm, model.backward_lstm):
        for layer in stack.layers:
            layer.path = path
    model.train()
    return model


def median_seconds(fn, warmup: int, runs: int) -> float:
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_train_step(model, batch: dict, warmup: int, runs: int) -> float:
    opt = paddle.optimizer.Adagrad(learning_rate=0.2, parameters=model.parameters())
    state = [None]

    def step():
        _, loss, new_state = model(batch, state[0])
        loss.backward()
        opt.step()
        opt.clear_grad()
        state[0] = [s.detach() for s in new_state]
        float(loss)  # wait for the step to finish

    return median_seconds(step, warmup, runs)


def time_lstm_stacks(model, batch_size: int, steps: int, warmup: int, runs: int) -> float:
    x = paddle.randn([batch_size, steps, model.forward_lstm.layers[0].input_size])  # [B, T, P]
    x.stop_gradient = False
    state = model.forward_lstm.initial_state(batch_size)

    def step():
        fw, _ = model.forward_lstm(x, state)
        bw, _ = model.backward_lstm(paddle.flip(x, axis=[1]), state)
        (fw[-1].sum() + bw[-1].sum()).backward()
        model.clear_gradients()

    return median_seconds(step, warmup, runs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="elmo-small")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--unroll_steps", type=int, default=20)
    parser.add_argument("--vocab_size", type=int, default=20000)
    parser.add_argument("--max_characters_per_token", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)

    cfg = apply_preset("elmo", args.preset)
    print(f"preset={args.preset} batch={args.batch_size} T={args.unroll_steps} V={args.vocab_size} "
          f"cell={cfg.cell_size} proj={cfg.projection_dim} layers={cfg.num_layers} "
          f"device={paddle.get_device()} cpus={os.cpu_count()} "
          f"MKL_DEBUG_CPU_TYPE={os.environ['MKL_DEBUG_CPU_TYPE']}")
    batch = make_batch(args.batch_size, args.unroll_steps, args.max_characters_per_token, args.vocab_size)
    results = {}
    for name, (changes, path) in VARIANTS.items():
        model = build(args.preset, args.vocab_size, changes, path)
        step = time_train_step(model, batch, args.warmup, args.runs)
        lstm = time_lstm_stacks(model, args.batch_size, args.unroll_steps, args.warmup, args.runs)
        results[name] = (step, lstm)
        print(f"  {name:17s} train step {step * 1000:7.1f} ms   LSTM stacks fwd+bwd {lstm * 1000:7.1f} ms"
              f"   ({count_parameters(model):,} params)")
    base_step, base_lstm = results["nn.LSTM, clips 0"]
    for name in ("loop, clipped", "loop, clips 0"):
        step, lstm = results[name]
        print(f"  ratio [{name}] / [nn.LSTM, clips 0]: train step {step / base_step:.2f}x, "
              f"LSTM stacks {lstm / base_lstm:.2f}x")
    tokens = args.batch_size * args.unroll_steps
    rates = ", ".join(f"{name} {tokens / step:,.0f}" for name, (step, _) in results.items())
    print(f"  tokens/s per train step: {rates}")


if __name__ == "__main__":
    main()
