"""Entry-point helpers shared by the scripts: quiet start-up and one-line errors."""

from __future__ import annotations

import os
import sys
import warnings


def quiet_startup() -> None:
    """Before Paddle loads: MKL's fast path on AMD CPUs, and silence third-party import-time warnings."""
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def run_main(fn) -> None:
    """Run `fn()`; a UserError becomes one `error: ...` line on stderr and exit status 2."""
    from paddle_lm.errors import UserError

    try:
        fn()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
