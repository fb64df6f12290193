"""Input files go through one opener (`fsio.open_input`): a byte-order mark at the start is skipped everywhere
text is read, and an input that cannot be read is one `cannot read PATH: REASON` line (issue 18, items 1 and 6)."""

from __future__ import annotations

import codecs
import os

import numpy as np
import pytest
from conftest import assert_one_line_error, run_inproc

from paddle_lm.data.shards import encode_shard
from paddle_lm.data.vocab import Vocab, read_lines
from paddle_lm.downstream.export import read_tokenized
from paddle_lm.errors import UserError
from paddle_lm.fsio import open_input, read_input

BOM = codecs.BOM_UTF8


def test_byte_order_mark_is_not_part_of_the_first_token(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes(BOM + b"<S>\n</S>\n<UNK>\nthe\n")
    assert Vocab.load(str(vocab)).tokens[:4] == ["<S>", "</S>", "<UNK>", "the"]
    sents = tmp_path / "sents.txt"
    sents.write_bytes(BOM + b"the cat\n")
    assert read_tokenized(str(sents)) == [["the", "cat"]]
    assert [line for _, line in read_lines(str(sents))] == ["the cat\n"]
    assert read_input(str(sents)) == b"the cat\n"
    plain = tmp_path / "plain.txt"
    plain.write_bytes("\ufeffx".encode("utf-16"))  # not UTF-8's mark: left alone
    assert read_input(str(plain)) == "\ufeffx".encode("utf-16")


def test_byte_order_mark_in_a_corpus_shard(tmp_path):
    encoded = []
    for name, data in (("shard", BOM + b"the cat\n"), ("plain", b"the cat\n")):
        (tmp_path / name).write_bytes(data)
        prefix = str(tmp_path / f"cache-{name}")
        encode_shard(str(tmp_path / name), prefix)
        encoded.append((np.load(prefix + ".ids.npy").tolist(), (tmp_path / f"cache-{name}.types.txt").read_text()))
    assert encoded[0] == encoded[1] and "\ufeff" not in encoded[0][1]


def test_an_unreadable_input_is_one_line(tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(UserError, match=f"cannot read {folder}: Is a directory"), open_input(str(folder)):
        pass
    with pytest.raises(UserError, match="cannot read .*: No such file or directory"):
        read_input(str(tmp_path / "missing"))


def test_json_inputs_go_through_the_one_opener(tmp_path, monkeypatch):
    """Sidecars, options, HF / tokenizer configs, shard indexes, metrics: `fsio.read_json` (or `read_input`)."""
    from paddle_lm.formats.hf import read_config
    from paddle_lm.fsio import read_json
    from paddle_lm.training.checkpoint import read_sidecar

    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    with pytest.raises(UserError, match=f"cannot read {folder}: Is a directory"):
        read_json(str(folder))
    (tmp_path / "ck.json").mkdir()
    with pytest.raises(UserError, match=f"cannot read {tmp_path / 'ck.json'}: Is a directory"):
        read_sidecar(str(tmp_path / "ck"))
    (tmp_path / "bad.json").write_bytes(b"{not json")
    with pytest.raises(UserError, match="checkpoint sidecar .*bad.json is not JSON"):
        read_sidecar(str(tmp_path / "bad"))
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_bytes(BOM + b'{"model_type": "gpt2"}')
    assert read_config(str(hf)) == {"model_type": "gpt2"}  # a byte-order mark is skipped
    code, _, err = run_inproc("paddle_lm", ["plot", "--metrics", str(folder), "--output", str(tmp_path / "p.png")],
                              monkeypatch)
    assert_one_line_error(code, err, f"cannot read {folder}")
    assert not (tmp_path / "p.png").exists()


def test_embed_input_that_is_a_folder(tmp_path, elmo_ckpt, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    code, _, err = run_inproc("paddle_lm", ["embed", "--init_from_ckpt", elmo_ckpt, "--input", str(folder),
                                            "--output", str(tmp_path / "v.npz")], monkeypatch)
    assert_one_line_error(code, err, "--input", str(folder))
    assert not os.path.exists(tmp_path / "v.npz")


def test_glob_matches_that_are_not_shards(tmp_path, capsys):
    """A folder or an empty file among the matches is skipped with one warning naming it; a broken link or a
    FIFO is an error naming it (it used to shrink the corpus without a word)."""
    from paddle_lm.data.vocab import expand_glob

    (tmp_path / "shard-1").write_text("the cat\n")
    (tmp_path / "shard-2").write_text("")
    (tmp_path / "shard-3").mkdir()
    pattern = str(tmp_path / "shard-*")
    assert expand_glob(pattern, "--train_data_path") == [str(tmp_path / "shard-1")]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: --train_data_path: skipping 2 of the 3 matches")
    assert "shard-2 (empty)" in err[0] and "shard-3 (a folder)" in err[0]
    os.symlink(tmp_path / "gone", tmp_path / "shard-4")
    with pytest.raises(UserError, match="shard-4 .* is a broken symbolic link"):
        expand_glob(pattern, "--train_data_path")
    os.remove(tmp_path / "shard-4")
    os.mkfifo(tmp_path / "shard-5")
    with pytest.raises(UserError, match="shard-5 .* is not a regular file"):
        expand_glob(pattern, "--train_data_path")
    os.remove(tmp_path / "shard-5")
    os.remove(tmp_path / "shard-1")
    with pytest.raises(UserError, match="--train_data_path: no non-empty file matches"):
        expand_glob(pattern, "--train_data_path")
