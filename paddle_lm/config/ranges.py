"""Field metadata and range checks shared by every config: `_f` declares a field with its help text and legal
range, `check_fields` checks an instance, `check_value` one value (messages name the flag)."""

from __future__ import annotations

import math
import re
import sys
from dataclasses import field, fields

from paddle_lm.errors import UserError

#: Largest seed accepted everywhere: numpy's RandomState and scikit-learn's random_state stop at 2**32 - 1.
MAX_SEED = 2**32 - 1
SEED_RANGE = f"[0, {MAX_SEED}]"


def _f(default, doc: str, **kw):
    """A dataclass field with a help string (used by args.py).

    Keyword metadata: ``choices`` (legal values), ``cli=False`` (no flag), ``legal`` (the legal range, checked by
    `check_fields`: ">= 1", "> 0", "[0, 1)", "(0, 1]", ... or "non-empty" for a string), ``hint`` (what a
    special value means, added to the error), ``families`` (the model families that use the field; absent:
    all of them; checked by `check_applies`) and ``habit`` (for a field with ``families``: command lines carry
    the flag over from other models out of habit, so `check_applies` notes it instead of refusing the run).
    """
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc, **kw})
    return field(default=default, metadata={"doc": doc, **kw})


_BOUND = re.compile(r"^(>=|>)\s*(-?[\d.e+]+)$")
_INTERVAL = re.compile(r"^([\[(])\s*(-?[\d.e+]+),\s*(-?[\d.e+]+)\s*([\])])$")


def show_value(value) -> str:
    """A value as an error message shows it."""
    return f"{value:g}" if isinstance(value, float) else repr(value) if isinstance(value, str) else str(value)


def within(value, legal: str) -> bool:
    """Is number `value` inside `legal` (">= 1", "> 0", "[0, 1)", "(0, 1]", "[0, 4294967295]", ...)?"""
    m = _BOUND.match(legal)
    if m:
        return value >= float(m[2]) if m[1] == ">=" else value > float(m[2])
    m = _INTERVAL.match(legal)
    if not m:
        raise ValueError(f"unknown range {legal!r}")
    low, high = float(m[2]), float(m[3])
    above = value >= low if m[1] == "[" else value > low
    below = value <= high if m[4] == "]" else value < high
    return above and below


def check_value(flag: str, value, legal: str, hint: str = "") -> None:
    """UserError naming `flag` and its legal range when `value` is not a finite number inside `legal`
    (or, for ``legal="non-empty"``, an empty string)."""
    note = f" ({hint})" if hint else ""
    if legal == "non-empty":
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{flag} must not be empty")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{flag} {show_value(value)} must be a number {_describe(legal)}{note}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{flag} {show_value(value)} must be a finite number {_describe(legal)}{note}")
    if not within(value, legal):
        raise UserError(f"{flag} {show_value(value)} must be {_describe(legal)}{note}")


def _describe(legal: str) -> str:
    return legal if legal[0] in "<>" else f"in {legal}"


def check_fields(cfg) -> None:
    """Every field of dataclass instance `cfg` against its ``choices`` and ``legal`` metadata."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise UserError(f"--{f.name} {show_value(value)}: choose one of {', '.join(choices)}")
        if "legal" in f.metadata:
            check_value(f"--{f.name}", value, f.metadata["legal"], f.metadata.get("hint", ""))


def check_applies(cls, given, family: str, whose: str) -> None:
    """One UserError naming every flag in `given` (field names of dataclass `cls` set on the command line) that
    the model family `family` does not use, e.g. ``--unroll_steps does not apply to checkpoint X (--model
    bert): --unroll_steps is for elmo, lstm; drop it``; a ``habit`` field gets a one-line note on stderr
    instead. `whose` names the model ("--model bert", "checkpoint X (--model bert)")."""
    by_name = {f.name: f for f in fields(cls)}
    wrong = [n for n in given if family not in by_name[n].metadata.get("families", (family,))]
    for n in [n for n in wrong if by_name[n].metadata.get("habit")]:
        print(f"note: --{n} is not used by {whose}: it is for {', '.join(by_name[n].metadata['families'])}; "
              f"ignored", file=sys.stderr, flush=True)
        wrong.remove(n)
    if not wrong:
        return
    uses = "; ".join(f"--{n} is for {', '.join(by_name[n].metadata['families'])}" for n in wrong)
    raise UserError(f"{', '.join('--' + n for n in wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to "
                    f"{whose}: {uses}; drop {'it' if len(wrong) == 1 else 'them'}")
