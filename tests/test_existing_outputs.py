"""Commands that write an output refuse to replace an existing one without --overwrite (prep, embed, plot,
export, save_pretrained), and vocabulary errors name the file and 1-based lines."""

from __future__ import annotations

import os

import pytest
from conftest import assert_one_line_error, run_inproc, train_tiny
from test_validation import TINY, _raw_docs

from paddle_lm.data import prep
from paddle_lm.data.vocab import Vocab
from paddle_lm.errors import UserError


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory) -> str:
    return train_tiny(tiny_corpus, str(tmp_path_factory.mktemp("ckpt")), save_steps=1)


# ------------------------------------------------------------------------------------------ existing outputs
def test_prep_refuses_an_existing_corpus_without_overwrite(tmp_path, capsys):
    pattern, out = _raw_docs(tmp_path / "raw"), tmp_path / "out"
    argv = ["--input", pattern, "--output_dir", str(out), "--quiet", "--min_count", "1", "--heldout_fraction", "0.25"]
    assert prep.main(argv) == 0
    capsys.readouterr()
    before = {str(p): p.stat().st_mtime_ns for p in out.rglob("*")}
    assert prep.main([*argv, "--seed", "7"]) == 2
    assert_one_line_error(2, capsys.readouterr().err, "--output_dir", "already holds", prep.TRAIN_DIR, prep.VOCAB_FILE,
                          "--overwrite")
    assert before == {str(p): p.stat().st_mtime_ns for p in out.rglob("*")}  # nothing replaced
    assert prep.main([*argv, "--seed", "7", "--overwrite"]) == 0
    assert "4 documents" in capsys.readouterr().out
    assert (out / prep.VOCAB_FILE).stat().st_mtime_ns != before[str(out / prep.VOCAB_FILE)]
    (tmp_path / "afile").write_text("x")
    assert prep.main(["--input", pattern, "--output_dir", str(tmp_path / "afile"), "--quiet"]) == 2
    assert_one_line_error(2, capsys.readouterr().err, "--output_dir", "not a folder")


def test_embed_plot_export_save_pretrained_refuse_existing_outputs(tmp_path, monkeypatch):
    existing = tmp_path / "v.npz"
    existing.write_bytes(b"keep me")
    argv = ["embed", "--init_from_ckpt", "x", "--input", "y", "--output", str(existing)]
    assert_one_line_error(*run_inproc("paddle_lm", argv, monkeypatch)[::2], "--output", "already exists",
                          "--overwrite")
    png = tmp_path / "loss.png"
    png.write_bytes(b"keep me")
    argv = ["plot", "--metrics", str(tmp_path / "metrics.jsonl"), "--output", str(png)]
    assert_one_line_error(*run_inproc("paddle_lm", argv, monkeypatch)[::2], "--output", "already exists",
                          "--overwrite")
    (tmp_path / "elmo.pdiparams").write_bytes(b"keep me")
    argv = ["export", "--init_from_ckpt", "x", "--output", str(tmp_path / "elmo")]
    assert_one_line_error(*run_inproc("paddle_lm", argv, monkeypatch)[::2], "--output", "already holds elmo.pdiparams",
                          "--overwrite")
    folder = tmp_path / "bert-sample"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    argv = ["save_pretrained", "--init_from_ckpt", "x", "--output", str(folder)]
    assert_one_line_error(*run_inproc("paddle_lm", argv, monkeypatch)[::2], "--output", "not empty", "--overwrite")
    argv = ["save_pretrained", "--init_from_ckpt", "x", "--output", str(png)]
    assert_one_line_error(*run_inproc("paddle_lm", argv, monkeypatch)[::2], "--output", "not a folder")
    assert existing.read_bytes() == png.read_bytes() == (tmp_path / "elmo.pdiparams").read_bytes() == b"keep me"


def test_overwrite_replaces_embed_and_plot_outputs(trained, tmp_path, monkeypatch):
    src = tmp_path / "in.txt"
    src.write_text("the cat sees a ball .\n")
    out = tmp_path / "v.npz"
    out.write_bytes(b"old")
    argv = ["embed", "--init_from_ckpt", os.path.join(trained, "final"), "--input", str(src), "--output", str(out),
            "--overwrite"]
    code, stdout, err = run_inproc("paddle_lm", argv, monkeypatch)
    assert code == 0, err
    assert "1 sentences" in stdout and out.read_bytes() != b"old"
    png = tmp_path / "loss.png"
    png.write_bytes(b"old")
    argv = ["plot", "--metrics", os.path.join(trained, "metrics.jsonl"), "--output", str(png), "--overwrite"]
    code, _, err = run_inproc("paddle_lm", argv, monkeypatch)
    assert code == 0, err
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_refuse_existing_rules(tmp_path):
    from paddle_lm.fsio import refuse_existing

    empty = tmp_path / "empty"
    empty.mkdir()
    refuse_existing(str(empty), "--output", False)  # an empty folder holds nothing to lose
    refuse_existing([str(tmp_path / "a"), str(tmp_path / "b")], "--output", False)
    (tmp_path / "a").write_text("x")
    refuse_existing(str(tmp_path / "a"), "--output", True)
    with pytest.raises(UserError, match=r"--output '.*a' already exists; pick another file or pass --overwrite"):
        refuse_existing(str(tmp_path / "a"), "--output", False)
    with pytest.raises(UserError, match=r"--out 'P' already holds a; pick another --out or pass --overwrite"):
        refuse_existing([str(tmp_path / "a"), str(tmp_path / "b")], "--out", False, shown="P")


# ------------------------------------------------------------------------------------------ vocabulary line numbers
@pytest.mark.parametrize("text,needles", [
    ("the\ncat\n\nthe\n", ["line 4 repeats 'the' (first at line 1)"]),
    ("<S>\n</S>\n<unk>\nthe\n<UNK>\n", ["line 5 repeats '<UNK>' (first at line 3, as '<unk>')"]),
    ("the 10\ncat 5\nthe 2\n", ["line 3 repeats 'the' (first at line 1)"]),
    ("\n  \n", ["no token on any line"]),
])
def test_vocab_errors_name_file_and_line(text, needles, tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        Vocab.load(str(path))
    assert str(e.value).startswith(f"--vocab_file {path}: ")
    for n in needles:
        assert n in str(e.value)


def test_vocab_duplicate_from_the_script(tiny_corpus, tmp_path, monkeypatch):
    dup = tmp_path / "dup.txt"
    dup.write_text("<S>\n</S>\n<UNK>\nthe\ncat\nthe\n")
    argv = ["--train_data_path", tiny_corpus["train"], "--vocab_file", str(dup), *TINY, "--save_dir",
            str(tmp_path / "s")]
    assert_one_line_error(*run_inproc("run_pretrain.py", argv, monkeypatch)[::2], "dup.txt: line 6 repeats 'the'",
                          "(first at line 4)")


