"""Subword vocabularies: WordPiece / byte-level BPE trained on a tiny corpus, loaded by PaddleNLP offline,
with the fast tokenizer's ids equal to PaddleNLP's."""

from __future__ import annotations

import json
import os

import pytest
from conftest import make_sentences

from paddle_lm.data import subword
from paddle_lm.errors import UserError

_EXTRA = ["Héllo Wörld , the naïve café owner said .", "東京 is big ; Ünïcode ÉCOLE !", "don 't stop , it 's 42 %"]
# Sentences that exercise both pipelines: accents, CJK, control / zero-width chars, emoji, over-long
# words, digits, whitespace runs, and special tokens written in the text.
SAMPLES = [
    "the cat sees a ball today .", "The Company REPORTS profits in London .", "Héllo naïve café ÉCOLE",
    "e\u0301tude ﬁne ½ Ⅳ ß İstanbul", "東京タワー 😀 emoji", "x\u0000y\u200bz\tq  two  spaces ", "a" * 150,
    "unseenword zzqx 12345", "[MASK] the [SEP] [mask]", "a<|endoftext|>b", "line\nnext", " lead", "",
]


@pytest.fixture(scope="module")
def tok_dirs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("subword")
    shards = root / "train"
    shards.mkdir()
    for i in range(2):
        (shards / f"news.en-0000{i}-of-00002").write_text("\n".join(make_sentences(200, i) + _EXTRA) + "\n\n")
    pattern = str(shards / "*")
    out = {"pattern": pattern, "root": root}
    out["bert_info"] = subword.train_wordpiece(pattern, str(root / "bert"), vocab_size=200, progress=False)
    out["cased_info"] = subword.train_wordpiece(pattern, str(root / "cased"), vocab_size=200, lowercase=False,
                                                progress=False)
    out["gpt2_info"] = subword.train_bpe(pattern, str(root / "gpt2"), vocab_size=400, progress=False)
    return out


@pytest.fixture(scope="module")
def paddle_toks(tok_dirs) -> dict:
    return {name: subword.load_tokenizer(kind, tok_dirs[f"{name}_info"]["directory"])
            for name, kind in (("bert", "bert"), ("cased", "bert"), ("gpt2", "gpt2"))}


def test_files_and_summary(tok_dirs):
    for name, files in (("bert", ["vocab.txt"]), ("gpt2", ["vocab.json", "merges.txt"])):
        info = tok_dirs[f"{name}_info"]
        assert info["kind"] == name and info["files"] == 2 and info["lines"] == 2 * (200 + len(_EXTRA))
        for f in [*files, "tokenizer_config.json"]:
            assert os.path.getsize(os.path.join(info["directory"], f)) > 0
        assert info["identity"] == subword.tokenizer_identity(info["directory"])
    assert tok_dirs["bert_info"]["vocab_size"] <= 200 and tok_dirs["gpt2_info"]["vocab_size"] == 400
    with open(os.path.join(tok_dirs["gpt2_info"]["directory"], "merges.txt"), encoding="utf-8") as f:
        assert f.readline().startswith("#version")  # PaddleNLP skips the first line of merges.txt


def test_special_token_ids(tok_dirs, paddle_toks):
    with open(os.path.join(tok_dirs["bert_info"]["directory"], "vocab.txt"), encoding="utf-8") as f:
        assert [next(f).rstrip("\n") for _ in range(5)] == list(subword.BERT_SPECIALS)
    bert = paddle_toks["bert"]
    assert (bert.pad_token_id, bert.unk_token_id, bert.cls_token_id, bert.sep_token_id, bert.mask_token_id) \
        == (0, 1, 2, 3, 4)
    assert bert("the cat")["input_ids"][0] == 2 and bert("the cat")["input_ids"][-1] == 3
    with open(os.path.join(tok_dirs["gpt2_info"]["directory"], "vocab.json"), encoding="utf-8") as f:
        assert json.load(f)[subword.GPT2_EOS] == 0
    gpt = paddle_toks["gpt2"]
    assert gpt.eos_token_id == gpt.pad_token_id == 0
    assert subword.encode_lines(tok_dirs["gpt2_info"]["directory"], ["<|endoftext|>"]) == [[0]]


def test_paddlenlp_loads_offline(tok_dirs, paddle_toks):
    from paddlenlp.transformers import BertTokenizer, GPTTokenizer

    assert isinstance(paddle_toks["bert"], BertTokenizer) and isinstance(paddle_toks["gpt2"], GPTTokenizer)
    assert paddle_toks["bert"].do_lower_case and not paddle_toks["cased"].do_lower_case
    assert paddle_toks["gpt2"].vocab_size == 400
    # The constructor also loads offline (but registers no no-split special tokens; see the module doc).
    d = tok_dirs["gpt2_info"]["directory"]
    ctor = GPTTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
    assert ctor("the cat")["input_ids"] == paddle_toks["gpt2"]("the cat")["input_ids"]


def test_fast_ids_equal_paddlenlp_ids(tok_dirs, paddle_toks):
    for name in ("bert", "cased", "gpt2"):
        directory, slow = tok_dirs[f"{name}_info"]["directory"], paddle_toks[name]
        fast_ids = subword.encode_lines(directory, SAMPLES)
        assert fast_ids == subword.encode_lines(slow, SAMPLES)  # fast built from the in-memory vocab
        for text, ids in zip(SAMPLES, fast_ids):
            assert ids == slow(text, add_special_tokens=False)["input_ids"], (name, text)


def test_bpe_round_trip(tok_dirs, paddle_toks):
    fast = subword.fast_tokenizer(tok_dirs["gpt2_info"]["directory"])
    texts = [t for t in SAMPLES if "<|endoftext|>" not in t] + ["Ωmega ∑ never seen ☃ bytes"]
    for text, ids in zip(texts, subword.encode_lines(fast, texts)):
        assert fast.decode(ids) == text
        assert paddle_toks["gpt2"].convert_ids_to_string(ids) == text


def test_wordpiece_splits_unknown_words(tok_dirs, paddle_toks):
    fast = subword.fast_tokenizer(tok_dirs["bert_info"]["directory"])
    tokens = fast.encode("thecompanyreports", add_special_tokens=False).tokens
    assert len(tokens) > 1 and all(t.startswith("##") for t in tokens[1:]) and "[UNK]" not in tokens
    assert tokens == paddle_toks["bert"].tokenize("thecompanyreports")
    assert fast.normalizer.normalize_str("Héllo ÉCOLE") == "hello ecole"  # lowercase strips accents too
    cased = subword.fast_tokenizer(tok_dirs["cased_info"]["directory"])
    assert cased.normalizer.normalize_str("Héllo ÉCOLE") == "Héllo ÉCOLE"
    assert "".join(t.lstrip("#") for t in cased.encode("Anna", add_special_tokens=False).tokens) == "Anna"


def test_identity(tok_dirs, tmp_path):
    ids = {subword.tokenizer_identity(tok_dirs[f"{n}_info"]["directory"]) for n in ("bert", "cased", "gpt2")}
    assert len(ids) == 3
    bert_dir = tok_dirs["bert_info"]["directory"]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("vocab.txt", "tokenizer_config.json"):
        with open(os.path.join(bert_dir, f), "rb") as src:
            (copy / f).write_bytes(src.read())
    assert subword.tokenizer_identity(str(copy)) == subword.tokenizer_identity(bert_dir)
    (copy / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    assert subword.tokenizer_identity(str(copy)) != subword.tokenizer_identity(bert_dir)


def test_missing_files(tok_dirs, tmp_path):
    gpt_dir = tmp_path / "gpt"
    gpt_dir.mkdir()
    (gpt_dir / "vocab.json").write_text("{}")
    with pytest.raises(UserError, match="lacks merges.txt"):
        subword.load_tokenizer("gpt2", str(gpt_dir))
    with pytest.raises(UserError, match="lacks vocab.txt"):
        subword.load_tokenizer("bert", str(gpt_dir))
    with pytest.raises(UserError, match="lacks vocab.json"):
        subword.fast_tokenizer(str(tmp_path), kind="gpt2")
    with pytest.raises(UserError, match="neither vocab.txt"):
        subword.tokenizer_identity(str(tmp_path))
    with pytest.raises(UserError, match="does not exist"):
        subword.load_tokenizer("bert", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="kind must be one of"):
        subword.load_tokenizer("roberta", str(gpt_dir))


def test_bad_corpus(tok_dirs, tmp_path):
    with pytest.raises(UserError, match="no file matches"):
        subword.train_wordpiece(str(tmp_path / "none-*"), str(tmp_path / "out"), progress=False)
    (tmp_path / "bad").write_bytes(b"fine line\n\xff\xfe broken\n")
    with pytest.raises(UserError, match="bad:2: not valid UTF-8"):
        subword.train_bpe(str(tmp_path / "bad"), str(tmp_path / "out"), progress=False)
    (tmp_path / "blank").write_text("\n  \n")
    with pytest.raises(UserError, match="only blank lines"):
        subword.train_bpe(str(tmp_path / "blank"), str(tmp_path / "out"), progress=False)
    with pytest.raises(UserError, match="vocab_size must exceed"):
        subword.train_bpe(tok_dirs["pattern"], str(tmp_path / "out"), vocab_size=100, progress=False)
