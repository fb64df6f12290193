"""The transformers side of bench/bench_generate.py and bench/bench_hf_parity.py: run with the Python of a venv
that has torch and transformers (``bash ../shared/tools/allennlp-venv.sh DIR`` builds one: transformers 4.57,
torch CPU), never in paddle-lm's own venv (transformers needs a huggingface_hub that paddlenlp 2.8.1 refuses).

    DIR/bin/python bench/transformers_side.py generate --model FOLDER --job JOB.json --result OUT.json
    DIR/bin/python bench/transformers_side.py tasks --job TASKS.json --result OUT.json

Everything is local (``local_files_only``); nothing is downloaded. `generate` loads the model, then times
``model.generate`` per setting of the job (greedy or sampled, ``max_new_tokens``), with no stop token, and writes
the new tokens and new tokens/s of each. `tasks` runs a list of `random` (save a randomly initialised model of a
config with ``save_pretrained``, safetensors: the import direction of the parity check), `logits` (the logits
of id sequences, with what transformers found missing or unexpected in the folder) and `tokenize` (AutoTokenizer's
class and ids for some texts) in one process.
"""

from __future__ import annotations

import argparse
import json
import time


def _load(folder: str, kind: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    cls = AutoModelForMaskedLM if kind == "bert" else AutoModelForCausalLM
    model, info = cls.from_pretrained(folder, local_files_only=True, output_loading_info=True,
                                      torch_dtype=torch.float32)
    model.eval()
    return model, {k: sorted(v) if isinstance(v, (list, set)) else str(v) for k, v in info.items()}


def generate(args) -> None:
    import torch

    with open(args.job, encoding="utf-8") as f:
        job = json.load(f)
    torch.set_num_threads(job["threads"])
    model, info = _load(args.model, "gpt2")
    model.generation_config.eos_token_id = None  # no stop token: every side makes all the new tokens
    model.generation_config.pad_token_id = 0
    prompt = torch.tensor([job["prompt"]], dtype=torch.long)
    runs = []
    for s in job["settings"]:
        torch.manual_seed(s.get("seed", 0))
        kw = dict(do_sample=False) if s["greedy"] else dict(do_sample=True, top_k=s["top_k"], top_p=1.0,
                                                             temperature=s["temperature"])
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(prompt, max_new_tokens=s["new_tokens"], attention_mask=torch.ones_like(prompt),
                                 use_cache=True, **kw)
        seconds = time.perf_counter() - start
        new = out[0, prompt.shape[1]:].tolist()
        runs.append({"name": s["name"], "new_tokens": len(new), "seconds": seconds,
                     "new_tokens_per_s": len(new) / seconds, "tokens": new})
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump({"runs": runs, "loading": info, "torch_threads": torch.get_num_threads()}, f)


def logits(task: dict) -> dict:
    """Logits of task["ids"] ([B, T] id lists) by the model in task["model"], saved to task["output"] (.npy)."""
    import numpy as np
    import torch

    model, info = _load(task["model"], task["kind"])
    with torch.no_grad():
        out = model(input_ids=torch.tensor(task["ids"], dtype=torch.long)).logits.numpy()
    np.save(task["output"], out)
    return {"loading": info}


def random(task: dict) -> dict:
    """A randomly initialised BertForMaskedLM / GPT2LMHeadModel of task["config"], saved (safetensors) to
    task["output"]; 1-d parameters (LayerNorms, biases) moved away from 1 / 0, so a weight left out would show."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, GPT2Config, GPT2LMHeadModel

    torch.manual_seed(task.get("seed", 0))
    if task["kind"] == "bert":
        model = BertForMaskedLM(BertConfig(**task["config"]))
    else:
        model = GPT2LMHeadModel(GPT2Config(**task["config"]))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(task["output"], safe_serialization=True)
    return {}


def tokenize(task: dict) -> dict:
    """AutoTokenizer of task["model"] (offline): its class and the ids of task["texts"], no special tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(task["model"], local_files_only=True)
    return {"class": type(tok).__name__, "ids": [tok.encode(t, add_special_tokens=False) for t in task["texts"]]}


def tasks(args) -> None:
    """Run the job's tasks ({"op": "random" | "logits", ...}) in order; write each one's report."""
    with open(args.job, encoding="utf-8") as f:
        job = json.load(f)
    reports = [{"random": random, "logits": logits, "tokenize": tokenize}[task["op"]](task) for task in job]
    with open(args.result, "w", encoding="utf-8") as f:
        json.dump(reports, f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--model", required=True)
    g.add_argument("--job", required=True)
    g.add_argument("--result", required=True)
    t = sub.add_parser("tasks")
    t.add_argument("--job", required=True)
    t.add_argument("--result", required=True)
    args = p.parse_args()
    {"generate": generate, "tasks": tasks}[args.command](args)


if __name__ == "__main__":
    main()
