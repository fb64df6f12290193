"""Full-mode downloads against a local HTTP server: fetch, resume, Range ignored, bad md5, no network."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import random
import socket
import tarfile
import threading
from typing import ClassVar

import pytest

from paddle_lm.data import download
from paddle_lm.data.download import Archive
from paddle_lm.errors import UserError


def _tiny_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    honor_range = True
    cut_after: int | None = None  # send only this many bytes, then drop the connection
    ranges: ClassVar[list[str | None]] = []

    def do_GET(self):
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng and self.honor_range else 0
        if start >= len(data) and rng and self.honor_range:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:] if self.cut_after is None else data[start : start + self.cut_after])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    payload = _tiny_tar(
        {
            "tiny/a.txt": b"hello\n",
            "tiny/sub/b.bin": random.Random(0).randbytes(50_000),
            "tiny/vec.bin.gz": gzip.compress(b"vectors"),
        }
    )
    _Handler.files = {"/tiny.tar.gz": payload}
    _Handler.honor_range = True
    _Handler.cut_after = None
    _Handler.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/tiny.tar.gz"
    arc = Archive("tiny", (url,), hashlib.md5(payload).hexdigest(), gunzip=("tiny/vec.bin.gz",))
    yield {"url": url, "payload": payload, "archive": arc, "handler": _Handler}
    httpd.shutdown()
    httpd.server_close()


def _get(data_dir, arc, **kw):
    return download.download_all(str(data_dir), (arc,), timeout=5, progress=False, log=lambda s: None, **kw)


def test_full_download_extract_and_skip(server, tmp_path):
    res = _get(tmp_path, server["archive"])
    assert res == [{"name": "tiny", "status": "installed", "entries": ["tiny"]}]
    assert (tmp_path / "tiny" / "a.txt").read_bytes() == b"hello\n"
    assert (tmp_path / "tiny" / "vec.bin").read_bytes() == b"vectors"  # gunzipped like PaddleNLP's script
    assert not (tmp_path / "tiny" / "vec.bin.gz").exists()
    assert (tmp_path / ".downloads" / "tiny.tar.gz").read_bytes() == server["payload"]
    assert sorted(os.listdir(tmp_path)) == [".downloads", "tiny"]  # no temporary folder left
    assert _get(tmp_path, server["archive"])[0]["status"] == "skipped"
    assert len(server["handler"].ranges) == 1  # the second run did not touch the network


def test_resume_from_partial_download(server, tmp_path):
    dest = tmp_path / "tiny.tar.gz"
    half = len(server["payload"]) // 2
    (tmp_path / "tiny.tar.gz.part").write_bytes(server["payload"][:half])
    how = download.fetch(server["url"], str(dest), server["archive"].md5, timeout=5, progress=False)
    assert how == "resumed" and server["handler"].ranges == [f"bytes={half}-"]
    assert dest.read_bytes() == server["payload"] and not (tmp_path / "tiny.tar.gz.part").exists()


def test_dropped_connection_keeps_part_then_resumes(server, tmp_path):
    server["handler"].cut_after = 1000
    with pytest.raises(UserError, match="1,000 bytes kept in .*part and resumed on the next run"):
        _get(tmp_path, server["archive"])
    assert not (tmp_path / "tiny").exists()
    server["handler"].cut_after = None
    assert _get(tmp_path, server["archive"])[0]["status"] == "installed"
    assert server["handler"].ranges == [None, "bytes=1000-"]
    assert (tmp_path / "tiny" / "a.txt").read_bytes() == b"hello\n"


def test_server_ignoring_range_restarts(server, tmp_path):
    server["handler"].honor_range = False
    dest = tmp_path / "tiny.tar.gz"
    (tmp_path / "tiny.tar.gz.part").write_bytes(b"garbage that must not stay in front")
    how = download.fetch(server["url"], str(dest), server["archive"].md5, timeout=5, progress=False)
    assert how == "restarted" and dest.read_bytes() == server["payload"]


def test_complete_part_file_answered_416(server, tmp_path):
    dest = tmp_path / "tiny.tar.gz"
    (tmp_path / "tiny.tar.gz.part").write_bytes(server["payload"])
    download.fetch(server["url"], str(dest), server["archive"].md5, timeout=5, progress=False)
    assert dest.read_bytes() == server["payload"]


def test_md5_mismatch_keeps_old_data(server, tmp_path):
    old = tmp_path / "tiny"
    old.mkdir()
    (old / "a.txt").write_bytes(b"old copy\n")
    bad = Archive("tiny", (server["url"],), "0" * 32)
    with pytest.raises(UserError, match="md5 mismatch .* nothing was replaced"):
        _get(tmp_path, bad)
    assert (old / "a.txt").read_bytes() == b"old copy\n" and sorted(os.listdir(old)) == ["a.txt"]
    assert os.listdir(tmp_path / ".downloads") == []  # the bad copy was discarded, not kept as .part


def test_new_version_replaces_old_data_only_when_verified(server, tmp_path):
    old = tmp_path / "tiny"
    old.mkdir()
    (old / "stale.txt").write_bytes(b"from an older archive")
    _get(tmp_path, server["archive"])
    assert sorted(os.listdir(old)) == ["a.txt", "sub", "vec.bin"]  # stale.txt went with the old copy


def test_unreachable_host_is_one_clear_line(tmp_path, capsys, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    arc = Archive("tiny", (f"http://127.0.0.1:{port}/tiny.tar.gz",), "0" * 32)
    monkeypatch.setattr(download, "ARCHIVES", (arc,))
    assert download.main(["--data_dir", str(tmp_path), "--quiet", "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not download http://127.0.0.1:") and "refused" in err.lower()
    assert err.count("\n") == 1 and "Traceback" not in err


def test_http_error_and_bad_archive(server, tmp_path):
    missing = Archive("tiny", (server["url"] + ".nope",), "0" * 32)
    with pytest.raises(UserError, match="HTTP 404"):
        _get(tmp_path, missing)
    not_tar = tmp_path / "junk.tar.gz"
    not_tar.write_bytes(b"this is not a tar file")
    with pytest.raises(UserError, match="not a readable tar archive"):
        download.extract(str(not_tar), str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == []


def test_unsafe_archive_member_is_refused(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(_tiny_tar({"../escape.txt": b"x"}))
    with pytest.raises(UserError, match="refusing to extract"):
        download.extract(str(evil), str(tmp_path / "out"))
    assert not (tmp_path / "escape.txt").exists()
