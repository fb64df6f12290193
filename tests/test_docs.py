"""The documentation keeps its promises: every command line it shows parses, and every link resolves.

**Command lines.** In README.md and docs/*.md, every command line that starts one of paddle-lm's entry points
is parsed with the real argument parser of that entry point (parsing only: nothing trains, no flag is
validated, Paddle is not imported):

    python run_pretrain.py ...            args.pretrain_parser()
    python run_eval.py ...                args.eval_parser()
    python run_finetune.py ...            args.finetune_parser()
    python -m paddle_lm ...               paddle_lm.__main__.build_parser("python -m paddle_lm")
    paddle-lm ...                         paddle_lm.__main__.build_parser("paddle-lm")

and the same scripts behind ``python -m paddle.distributed.launch [launcher flags]`` (the launcher's own flags
are not checked; everything after the script is). ``python3`` counts as ``python``, and a span of inline code
that starts with the script itself (``run_eval.py --json``) counts as well.

Where they are looked for: every line of a fenced code block (a line ending in ``\\`` continues on the next),
and every inline code span of the prose (a span may wrap onto the next line of its paragraph). A line is split
with shlex (POSIX quotes, ``#`` starts a comment), then at ``&&``, ``||``, ``;`` and ``|`` into commands;
``VAR=value`` words before a command and a ``$ `` prompt are skipped. An unknown flag or subcommand, a bad
choice, a word where a number belongs or a missing required flag makes argparse exit with status 2, and the
test fails naming the file, the line and the command.

**Placeholders** (the convention the docs follow):

- ``…`` or ``...`` standing alone as a word means "more flags here": the word is dropped, and the flags the
  parser requires that the line leaves out get a dummy value, so what is written is checked and nothing more.
  Inside a word (``'data/.../*'``) it is part of a value and left alone.
- A span or line that names a command or subcommand with no flag at all (``python -m paddle_lm``,
  ``paddle-lm embed``) is a name, not a full command line: its subcommand is checked, missing flags are not.
- ``[--flag VALUE]`` marks an optional part: the brackets are dropped and the flags inside are checked too.
  Other bracketed words (``[flags]``) are not placeholders: write ``…`` for "more flags".
- A value may be a capitalised placeholder (``CKPT``, ``DIR``, ``TEXT``) only where the flag takes a string;
  where it takes a number, the docs write a number.
- ``-h``, ``--help`` and ``--version`` parse (argparse exits with status 0).

``python -m paddle_lm.data.prep`` (and ``bench/`` scripts) have no importable parser and are not checked.

**Links.** Every relative Markdown link or image of README.md and docs/*.md points at a file that exists, and
an ``#anchor`` on a link to a Markdown file names one of its headings (GitHub's heading ids).

**Size.** README.md is at most 250 lines: the rest belongs in docs/.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import re
import shlex
import sys
from dataclasses import dataclass, field

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # args.py lives at the repo root

DOC_FILES = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
README_MAX_LINES = 250
PLACEHOLDERS = {"…", "..."}
SEPARATORS = {"&&", "||", ";", "|"}
SCRIPTS = {"run_pretrain.py": "pretrain", "run_eval.py": "eval", "run_finetune.py": "finetune"}
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`]+)`")
MENTIONS = re.compile(r"(^|[\s;&|(])(python3?|paddle-lm)(\s|$)")
STARTS = re.compile(r"^(\$\s+)?(\w+=\S*\s+)*(python3?\s|paddle-lm\b|(\./)?run_(pretrain|eval|finetune)\.py\b)")


@dataclass
class Command:
    """One command line of a doc: where it is, what it says, which parser reads it and with which argv."""
    path: str
    line: int
    text: str
    kind: str  # pretrain | eval | finetune | python -m paddle_lm | paddle-lm
    argv: list[str]
    lenient: bool  # a placeholder or no flags: fill in the flags it leaves out
    problems: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{os.path.relpath(self.path, ROOT)}:{self.line}"


def _doc_lines(path: str):
    """(line number, text, in a code block?) for every line of a Markdown file, fence lines left out."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    fence = None
    for i, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if m and (fence is None or m.group(1) == fence):
            fence = m.group(1) if fence is None else None
            continue
        yield i, line, fence is not None


def _candidates(path: str):
    """(line number, text, inline?) of each logical code-block line that mentions an entry point (a trailing
    `\\` joins the next line), and of each inline code span of the prose that starts with one."""
    logical, para = [], []  # (line number, text) of the code line being continued / of the prose paragraph

    def flush_para():
        text = "\n".join(t for _, t in para)
        for m in INLINE_CODE.finditer(text):
            span = " ".join(m.group(1).split())
            if STARTS.match(span):
                yield para[0][0] + text.count("\n", 0, m.start()), span, True
        para.clear()

    def flush_logical():
        text = " ".join(t.strip().removesuffix("\\").strip() for _, t in logical)
        if MENTIONS.search(text):
            yield logical[0][0], text, False
        logical.clear()

    for i, line, in_code in _doc_lines(path):
        if in_code:
            yield from flush_para()
            logical.append((i, line))
            if not line.rstrip().endswith("\\"):
                yield from flush_logical()
        else:
            if logical:  # a continuation that ran into the end of its block
                yield from flush_logical()
            if line.strip():
                para.append((i, line))
            else:
                yield from flush_para()
    if logical:
        yield from flush_logical()
    yield from flush_para()


def _split_commands(words: list[str]) -> list[list[str]]:
    out, cur = [], []
    for w in words:
        if w in SEPARATORS:
            out.append(cur)
            cur = []
        else:
            cur.append(w)
    out.append(cur)
    return [c for c in out if c]


def _strip_optional(words: list[str]) -> list[str]:
    """`[--flag VALUE]` -> `--flag VALUE` (an optional part is checked like the rest)."""
    out, depth = [], 0
    for w in words:
        if w.startswith("[-"):
            depth += 1
            w = w[1:]
        if depth and w.endswith("]"):
            depth -= 1
            w = w[:-1]
        if w:
            out.append(w)
    return out


def _entry(words: list[str], inline: bool) -> tuple[str, list[str]] | None:
    """(parser kind, argv) of one command's words, or None when it starts no paddle-lm entry point. A script
    named without `python` counts only in inline code (in a code block it would not run)."""
    while words and (words[0] == "$" or re.fullmatch(r"\w+=\S*", words[0])):
        words = words[1:]
    if not words:
        return None
    if words[0] == "paddle-lm":
        return "paddle-lm", words[1:]
    if inline and os.path.basename(words[0]) in SCRIPTS:
        return SCRIPTS[os.path.basename(words[0])], words[1:]
    if words[0] not in ("python", "python3") or len(words) < 2:
        return None
    if os.path.basename(words[1]) in SCRIPTS:
        return SCRIPTS[os.path.basename(words[1])], words[2:]
    if words[1:3] == ["-m", "paddle_lm"]:
        return "python -m paddle_lm", words[3:]
    if words[1:3] == ["-m", "paddle.distributed.launch"]:
        for k, w in enumerate(words[3:], 3):
            if os.path.basename(w) in SCRIPTS:
                return SCRIPTS[os.path.basename(w)], words[k + 1:]
    return None


def collect(path: str) -> list[Command]:
    commands = []
    for line, text, inline in _candidates(path):
        try:
            words = shlex.split(text, comments=True)
        except ValueError as e:  # an unclosed quote: report it as the command's problem
            commands.append(Command(path, line, text, "shell", [], False, [f"shlex cannot split it: {e}"]))
            continue
        for cmd in _split_commands(words):
            found = _entry(cmd, inline)
            if found is None:
                continue
            kind, argv = found
            argv = _strip_optional(argv)
            lenient = any(w in PLACEHOLDERS for w in argv) or not any(w.startswith("-") for w in argv)
            argv = [w for w in argv if w not in PLACEHOLDERS]
            commands.append(Command(path, line, shlex.join(cmd), kind, argv, lenient))
    return commands


def _parser(kind: str):
    import args

    if kind in SCRIPTS.values():
        parser = getattr(args, f"{kind}_parser")()
        parser.prog = f"run_{kind}.py"  # (argparse would name it after sys.argv[0])
        return parser
    from paddle_lm.__main__ import build_parser

    return build_parser(kind)


def parse_error(cmd: Command) -> str | None:
    """None when `cmd` parses; else argparse's message."""
    if cmd.problems:
        return "; ".join(cmd.problems)
    if not cmd.argv:  # the command's name alone
        return None
    argv = list(cmd.argv)
    for _ in range(4):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                _parser(cmd.kind).parse_args(argv)
                return None
            except SystemExit as e:
                if e.code in (0, None):  # --help, --version
                    return None
        message = err.getvalue().strip() or "argparse exited with status 2"
        missing = re.search(r"the following arguments are required: (.+)", message)
        names = missing.group(1).split(", ") if missing else []
        if not (cmd.lenient and names and all(n.startswith("--") for n in names)):
            return message
        for name in names:  # a placeholder line leaves required flags out on purpose
            argv += [name.split("/")[0], "PLACEHOLDER"]
    return message


ALL = [c for p in DOC_FILES for c in collect(p)]


@pytest.mark.parametrize("cmd", ALL, ids=[f"{c.where} {c.text[:60]}" for c in ALL])
def test_documented_command_parses(cmd: Command):
    error = parse_error(cmd)
    assert error is None, f"{cmd.where}: `{cmd.text}` does not parse:\n{error}"


def test_commands_are_found():
    """The collector sees the README's commands and every parser (an empty collection would prove nothing)."""
    readme = [c for c in ALL if c.path == DOC_FILES[0]]
    assert len(readme) >= 15, [c.text for c in readme]
    assert {c.kind for c in ALL} >= {"pretrain", "eval", "finetune", "python -m paddle_lm", "paddle-lm"}


def test_a_bad_flag_fails(tmp_path):
    """The check bites: an unknown flag or subcommand, a word for a number and a missing required flag are each
    reported; placeholders and optional parts are read as the module docstring says."""
    doc = tmp_path / "bad.md"
    doc.write_text("```bash\n"
                   "python run_pretrain.py --device cpu --no_such_flag 3\n"
                   "python -m paddle.distributed.launch --nproc_per_node 2 run_pretrain.py \\\n"
                   "    --batch_size many\n"
                   "```\n"
                   "Inline: `paddle-lm no-such-command --x 1` and `python run_eval.py --init_from_ckpt CK … --jsn`.\n"
                   "Fine: `python -m paddle_lm embed --init_from_ckpt CK …` and `paddle-lm --version`.\n"
                   "Missing: `python -m paddle_lm embed --input x.txt`; fine: `run_eval.py --init_from_ckpt CK\n"
                   "[--json]`; bad: `python run_eval.py [--jsonx]`, `python run_pretrain.py [flags]`.\n",
                   encoding="utf-8")
    found = collect(str(doc))
    assert [(c.line, parse_error(c) is None) for c in found] == [
        (2, False), (3, False), (6, False), (6, False), (7, True), (7, True), (8, False), (8, True), (9, False),
        (9, False)]
    assert "--no_such_flag" in parse_error(found[0])
    assert "many" in parse_error(found[1])
    assert "required" in parse_error(found[6])


def test_readme_is_short():
    with open(DOC_FILES[0], encoding="utf-8") as f:
        n = len(f.read().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move detail into docs/"


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)")


def _anchors(path: str) -> set[str]:
    """GitHub's heading ids of a Markdown file (lower case, punctuation dropped, spaces as '-', repeats '-N')."""
    counts: dict[str, int] = {}
    ids = set()
    for _, line, in_code in _doc_lines(path):
        m = None if in_code else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            ids.add(f"{slug}-{n}" if n else slug)
    return ids


def _links(path: str):
    for line_no, line, in_code in _doc_lines(path):
        if in_code:
            continue
        text = INLINE_CODE.sub("", line)
        for m in [*LINK.finditer(text), *REF_LINK.finditer(text)]:
            yield line_no, m.group(1)


def _broken_links(path: str) -> list[str]:
    broken = []
    for line_no, target in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        where = f"{os.path.relpath(path, ROOT)}:{line_no}: ({target})"
        if not os.path.exists(dest):
            broken.append(f"{where} -> no file {os.path.relpath(dest, ROOT)}")
        elif anchor and dest.endswith(".md") and anchor.lower() not in _anchors(dest):
            broken.append(f"{where} -> no heading #{anchor} in {os.path.relpath(dest, ROOT)}")
    return broken


@pytest.mark.parametrize("path", DOC_FILES, ids=[os.path.relpath(p, ROOT) for p in DOC_FILES])
def test_relative_links_resolve(path: str):
    assert not _broken_links(path), "\n".join(_broken_links(path))


def test_a_broken_link_fails(tmp_path):
    (tmp_path / "there.md").write_text("# A heading, with `code`\n", encoding="utf-8")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](there.md) [ok](there.md#a-heading-with-code) [web](https://example.org/x)\n"
                   "[gone](missing.md) [bad anchor](there.md#nope) `[not a link](nowhere.md)`\n", encoding="utf-8")
    broken = _broken_links(str(doc))
    assert len(broken) == 2, broken
    assert "no file" in broken[0] and broken[0].endswith("missing.md")
    assert "no heading #nope in" in broken[1]
