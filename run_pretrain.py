"""Pretrain an ELMo biLM, an LSTM LM or GPT-2 (--model gpt2: a byte-level BPE is trained into
{save_dir}/tokenizer on first use unless --tokenizer_dir is given).

    python run_pretrain.py                                # sample data, small ELMo, CPU
    python -m paddle.distributed.launch --nproc_per_node 2 run_pretrain.py --device cpu --max_steps 200
    python -m paddle.distributed.launch --gpus '0,1' run_pretrain.py \
        --train_data_path='./data/1-billion-word/training-tokenized-shuffled/*' \
        --vocab_file='./data/1-billion-word/vocab-15w.txt' --preset elmo-original --device gpu
    python run_pretrain.py --model gpt2 --preset gpt2-tiny --block_size 128 --optimizer adamw --lr 3e-4
"""

from paddle_lm.cli import quiet_startup, run_main

quiet_startup()


def main() -> None:
    from args import parse_pretrain

    data, model, train_cfg = parse_pretrain()  # every flag validated before Paddle is imported
    from paddle_lm.training.signals import load_paddle

    load_paddle()  # a signal from here on ends the run with one line (`run_main`)
    from paddle_lm.training.trainer import train

    last = train(data, model, train_cfg)
    if last:
        print(f"[paddle-lm] done: step {last['step']} loss {last['loss']:.4f} ppl {last['ppl']:.2f}; "
              f"checkpoints in {train_cfg.save_dir}", flush=True)


if __name__ == "__main__":
    run_main(main, interrupted="interrupted before step 1; nothing was saved")
