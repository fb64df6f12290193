"""Full data download: the archives PaddleNLP's ELMo example uses, fetched safely with urllib.

``python -m paddle_lm.data.download [--data_dir data]`` installs ``DATA_DIR/1-billion-word/`` and
``DATA_DIR/sentence-polarity-dataset-v1/`` (with ``GoogleNews-vectors-negative300.bin`` unzipped, as the
example's script does). Archives are kept in ``DATA_DIR/.downloads/``.

Safety rules, in order:

* a download goes to ``NAME.part``; an interrupted one is resumed with an HTTP ``Range`` request (a server
  that answers 200 instead of 206 is read again from the start);
* the md5 is checked before anything is renamed: a bad copy is discarded and the old archive and data are
  left as they were;
* archives are extracted into a temporary folder next to the data, and each top-level entry is renamed
  into place; an existing entry is removed only after its replacement is in place;
* a network failure is one line naming the URL and the reason; the ``.part`` file is kept for resuming.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import ssl
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass

from tqdm import tqdm

from paddle_lm.cli import ArgumentParser
from paddle_lm.errors import UserError
from paddle_lm.fsio import atomic_write_text, fsync_dir

_CHUNK = 1 << 20
_FILTER_ERRORS = (tarfile.FilterError,) if hasattr(tarfile, "FilterError") else ()


@dataclass(frozen=True)
class Archive:
    """One tar.gz: mirrors tried in order, its md5, and files inside to gunzip after extraction."""

    name: str
    urls: tuple[str, ...]
    md5: str
    gunzip: tuple[str, ...] = ()


ARCHIVES: tuple[Archive, ...] = (
    Archive(
        "1-billion-word",
        (
            "https://bj.bcebos.com/paddlenlp/datasets/1-billion-word.tar.gz",
            "https://paddlenlp.bj.bcebos.com/datasets/1-billion-word.tar.gz",
        ),
        "5f079a9b88ea27585e0539f502ca9327",
    ),
    Archive(
        "sentence-polarity-dataset-v1",
        (
            "https://bj.bcebos.com/paddlenlp/datasets/movie-review/sentence-polarity-dataset-v1.tar.gz",
            "https://paddlenlp.bj.bcebos.com/datasets/movie-review/sentence-polarity-dataset-v1.tar.gz",
        ),
        "0464239d7b14b18d941f54a948c6cb26",
        gunzip=("sentence-polarity-dataset-v1/GoogleNews-vectors-negative300.bin.gz",),
    ),
)


def md5sum(path: str) -> str:
    """Hex md5 of a file."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def install_path(src: str, dst: str) -> None:
    """Rename `src` (file or folder) to `dst`; an existing `dst` is deleted only after `src` is in place."""
    old = None
    if os.path.lexists(dst):
        old = f"{dst}.old-{os.getpid()}"
        os.rename(dst, old)
    try:
        os.rename(src, dst)
    except OSError:
        if old:
            os.rename(old, dst)
        raise
    if old:
        if os.path.isdir(old) and not os.path.islink(old):
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.remove(old)


def _network_error(url: str, err: BaseException, part: str) -> UserError:
    reason = getattr(err, "reason", None) or err
    have = os.path.getsize(part) if os.path.exists(part) else 0
    keep = f"; {have:,} bytes kept in {part} and resumed on the next run" if have else ""
    return UserError(
        f"could not download {url}: {reason} -- check the internet connection or proxy "
        f"(`bash download_data.sh --sample` needs only PyPI){keep}"
    )


def fetch(url: str, dest: str, md5: str, timeout: float = 30.0, progress: bool = True) -> str:
    """Download `url` to `dest` (resuming ``dest.part``) and check its md5; returns how it went.

    `dest` is replaced only by a verified copy. Returns "downloaded", "resumed" or "restarted" (the
    server ignored the Range request). Raises UserError on a network error, an HTTP error or a bad md5.
    """
    part = dest + ".part"
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    req = urllib.request.Request(url, headers={"User-Agent": "paddle-lm-download"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    how = "downloaded"
    try:
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code != 416 or not offset:
                raise UserError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
            resp = None  # 416: nothing left past `offset`, the .part holds the whole file (checked below)
        if resp is not None:
            with resp:
                status = resp.status
                start = 0
                if status == 206:
                    start = int(resp.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
                if offset and status == 206 and start == offset:
                    how = "resumed"
                elif start != 0:
                    raise UserError(
                        f"could not download {url}: asked for bytes from {offset:,}, the server "
                        f"sent bytes from {start:,}; delete {part} and rerun"
                    )
                elif offset:
                    how, offset = "restarted", 0  # the server ignored the Range request: start over
                length = resp.headers.get("Content-Length")
                total = offset + int(length) if length else None
                with (
                    open(part, "ab" if offset else "wb") as out,
                    tqdm(
                        total=total,
                        initial=offset,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=os.path.basename(dest),
                        disable=not progress,
                        leave=False,
                    ) as bar,
                ):
                    for block in iter(lambda: resp.read(_CHUNK), b""):
                        out.write(block)
                        bar.update(len(block))
                got = os.path.getsize(part)
                if total is not None and got != total:
                    raise http.client.IncompleteRead(b"", total - got)
    except (
        urllib.error.URLError,
        http.client.HTTPException,
        ConnectionError,
        TimeoutError,
        ssl.SSLError,
    ) as e:
        raise _network_error(url, e, part) from None
    actual = md5sum(part)
    if actual != md5:
        os.remove(part)
        kept = f"the existing {dest} was left untouched" if os.path.exists(dest) else "nothing was replaced"
        raise UserError(
            f"md5 mismatch for {url}: got {actual}, expected {md5}; the download was discarded "
            f"and {kept} -- rerun to download again"
        )
    os.replace(part, dest)
    fsync_dir(os.path.dirname(os.path.abspath(dest)))
    return how


def _check_members(tar: tarfile.TarFile, archive: str) -> None:
    """Refuse members that would land outside the extraction folder (for Pythons without tar filters)."""
    for m in tar.getmembers():
        parts = m.name.split("/")
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise UserError(f"{archive}: refusing to extract {m.name!r} (absolute path, '..' or a link)")


def extract(archive_path: str, data_dir: str, gunzip: tuple[str, ...] = ()) -> list[str]:
    """Extract a tar archive into `data_dir` safely; returns the top-level names installed.

    Files listed in `gunzip` (paths inside the archive, if present) are decompressed before installing.
    """
    os.makedirs(data_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=data_dir)
    try:
        try:
            with tarfile.open(archive_path) as tar:
                if hasattr(tarfile, "data_filter"):  # rejects absolute paths, '..' and unsafe links
                    tar.extractall(tmp, filter="data")
                else:  # pragma: no cover - Python < 3.10.12 has no extraction filters
                    _check_members(tar, archive_path)
                    tar.extractall(tmp)
        except _FILTER_ERRORS as e:
            raise UserError(f"{archive_path}: refusing to extract it ({e}); nothing was installed") from None
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise UserError(
                f"{archive_path} is not a readable tar archive ({e}); delete it and rerun"
            ) from None
        for rel in gunzip:
            src = os.path.join(tmp, rel)
            if os.path.isfile(src) and src.endswith(".gz"):
                with gzip.open(src, "rb") as fin, open(src[:-3], "wb") as fout:
                    shutil.copyfileobj(fin, fout, _CHUNK)
                os.remove(src)
        tops = sorted(os.listdir(tmp))
        if not tops:
            raise UserError(f"{archive_path} is an empty archive; delete it and rerun")
        for top in tops:
            install_path(os.path.join(tmp, top), os.path.join(data_dir, top))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tops


def download_all(
    data_dir: str,
    archives: tuple[Archive, ...] | None = None,
    timeout: float = 30.0,
    progress: bool = True,
    keep_archives: bool = True,
    log=print,
) -> list[dict]:
    """Fetch, verify and install every archive under `data_dir`; archives already installed are skipped.

    `archives` defaults to ``ARCHIVES``. Returns one dict per archive: name, status ("installed" or
    "skipped") and the entries installed.
    """
    archives = ARCHIVES if archives is None else archives
    cache = os.path.join(data_dir, ".downloads")
    os.makedirs(cache, exist_ok=True)
    results = []
    for i, arc in enumerate(archives, 1):
        filename = os.path.basename(arc.urls[0].split("?")[0])
        dest = os.path.join(cache, filename)
        marker = os.path.join(cache, filename + ".installed.json")
        done = _read_json(marker)
        if (
            done.get("md5") == arc.md5
            and done.get("entries")
            and all(os.path.exists(os.path.join(data_dir, e)) for e in done["entries"])
        ):
            log(f"[{i}/{len(archives)}] {arc.name}: already installed in {data_dir} (skipped)")
            results.append({"name": arc.name, "status": "skipped", "entries": done["entries"]})
            continue
        if not (os.path.exists(dest) and md5sum(dest) == arc.md5):
            errors: list[str] = []
            for url in arc.urls:
                try:
                    fetch(url, dest, arc.md5, timeout=timeout, progress=progress)
                    break
                except UserError as e:
                    if "md5 mismatch" in str(e):
                        raise
                    errors.append(str(e))
            else:
                others = f"; the mirror(s) {', '.join(arc.urls[1:])} failed too" if len(errors) > 1 else ""
                raise UserError(errors[0] + others)
        entries = extract(dest, data_dir, arc.gunzip)
        atomic_write_text(marker, json.dumps({"md5": arc.md5, "entries": entries}, indent=1))
        if not keep_archives:
            os.remove(dest)
        log(f"[{i}/{len(archives)}] {arc.name}: md5 ok, installed {', '.join(entries)} in {data_dir}")
        results.append({"name": arc.name, "status": "installed", "entries": entries})
    return results


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def main(argv: list[str] | None = None) -> int:
    """CLI: download the full 1-Billion-Word and sentence polarity data."""
    from paddle_lm.config import DATA_ROOT

    p = ArgumentParser(prog="python -m paddle_lm.data.download", description=__doc__.split("\n")[0])
    p.add_argument("--data_dir", default=DATA_ROOT, help="Where the data sets are installed.")
    p.add_argument("--timeout", type=float, default=30.0, help="Seconds to wait for the server.")
    p.add_argument("--delete_archives", action="store_true", help="Delete each archive once installed.")
    p.add_argument("--quiet", action="store_true", help="No progress bars.")
    args = p.parse_args(argv)
    try:
        download_all(
            args.data_dir,
            timeout=args.timeout,
            progress=not args.quiet,
            keep_archives=not args.delete_archives,
        )
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # local file system: disk full, permissions
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; rerun to resume the download", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
