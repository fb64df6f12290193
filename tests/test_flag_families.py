"""A flag the chosen model does not use is refused with one line naming it and the families it is for; run_eval
checks against the checkpoint's family; `--vocab_file` given to BERT / GPT-2 is a one-line note (issue 18 item 8)."""

from __future__ import annotations

import pytest
from conftest import assert_one_line_error, run_inproc
from test_validation import BERT, GPT2, TINY, _data


@pytest.mark.parametrize("extra,needles", [
    ([*BERT, "--unroll_steps", "5"], ["--unroll_steps does not apply to --model bert", "is for elmo, lstm"]),
    ([*GPT2, "--max_seq_len", "64", "--whole_word_masking"],
     ["--max_seq_len, --whole_word_masking do not apply to --model gpt2", "drop them"]),
    (["--n_negative_samples", "8", "--block_size", "64"], ["--block_size does not apply to --model elmo"]),
    (["--model", "lstm", "--preset", "lstm-tiny", "--cell_size", "64"], ["--cell_size", "is for elmo"]),
    ([*BERT, "--n_negative_samples", "8"], ["--n_negative_samples does not apply to --model bert"]),
])
def test_a_flag_the_model_does_not_use_is_refused(extra, needles, tiny_corpus, tmp_path, monkeypatch):
    tiny = [*TINY[:4], *TINY[6:]] if {"bert", "gpt2"} & set(extra) else TINY
    argv = [*_data(tiny_corpus), *tiny, "--save_dir", str(tmp_path / "s"), *extra]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], *needles)
    assert not (tmp_path / "s").exists()


def test_a_vocab_file_given_to_a_subword_model_is_a_note(tiny_corpus, capsys):
    from args import parse_pretrain

    data, model, _ = parse_pretrain([*_data(tiny_corpus), *GPT2, "--max_steps", "1"])
    assert model.model == "gpt2" and data.vocab_file == tiny_corpus["vocab"]
    err = capsys.readouterr().err
    assert err.strip() == "note: --vocab_file is not used by --model gpt2: it is for elmo, lstm; ignored", err


def test_eval_refuses_a_flag_the_checkpoint_does_not_use(elmo_ckpt, monkeypatch):
    argv = ["--init_from_ckpt", elmo_ckpt, "--seed", "3", "--max_steps", "1"]
    assert_one_line_error(*run_inproc("run_eval.py", argv, monkeypatch)[::2],
                          f"--seed does not apply to checkpoint {elmo_ckpt} (--model elmo)", "is for bert")
