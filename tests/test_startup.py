"""Process start-up settings the scripts make before Paddle loads (paddle_lm/cli.py)."""

from __future__ import annotations

import platform
import sys

from paddle_lm.cli import tune_malloc


def test_malloc_tuning_takes_on_glibc_and_can_be_turned_off(monkeypatch):
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert tune_malloc() is glibc
    monkeypatch.setenv("PADDLE_LM_MALLOC_TUNING", "0")
    assert tune_malloc() is False
