"""Sentence polarity with a bag-of-words classifier on ELMo or word2vec vectors; compare encoders honestly.

    python run_finetune.py --data_dir=./sentence-polarity-dataset-v1/ --init_from_ckpt=./checkpoints/final
    python run_finetune.py --encoder word2vec --pretrained_word2vec_file vectors.bin --folds 10
    python run_finetune.py --folds 10 --compare elmo "w2v:train_on=data/.../training-tokenized-shuffled/*" \
        "w2v:file=data/sample/glove.6B.50d/glove.6B.50d.w2v.bin" --json

`--compare` with no specs compares ELMo, word2vec trained on the sample LM corpus and the sample GloVe.
"""

from paddle_lm.cli import quiet_startup, run_main

quiet_startup()


def main() -> None:
    import json
    import logging

    from args import parse_finetune

    cfg = parse_finetune()  # every flag validated before Paddle is imported
    from paddle_lm.device import set_device
    from paddle_lm.downstream.finetune import finetune
    from paddle_lm.downstream.report import format_report, report_json

    logging.getLogger("gensim").setLevel(logging.WARNING)  # its INFO lines would bury the table
    set_device(cfg.device)
    report = finetune(cfg)
    print(format_report(report), flush=True)
    if cfg.json:
        print(json.dumps(report_json(report)))


if __name__ == "__main__":
    run_main(main)
