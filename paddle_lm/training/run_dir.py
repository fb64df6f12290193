"""One run owns its `--save_dir`: an exclusive lock for the run's life, checked and cleaned before training.

Rank 0 takes the lock (the kernel releases it when the process ends, kill -9 included; the lock file and a
--save_dir the run created and left empty are removed when it ends), refuses a folder
that already holds another run unless told to resume or `--overwrite` it, removes what killed saves left, and
with `--overwrite` really removes the old run's checkpoints and metrics. Every rank gets rank 0's verdict, so
a launched run stops on all ranks with the same line.
"""

from __future__ import annotations

import os
import shutil

from paddle_lm.config import TrainConfig
from paddle_lm.errors import UserError
from paddle_lm.fsio import writable_dir
from paddle_lm.locks import HeldLock
from paddle_lm.training import checkpoint as ckpt
from paddle_lm.training import distributed as dist
from paddle_lm.training.metrics import METRICS_FILE, VDL_DIR

LOCK_FILE = ".paddle_lm.lock"
RUN_FILES = (METRICS_FILE, VDL_DIR)  # besides checkpoints, what --overwrite removes


def _check_fresh(cfg: TrainConfig, resume: str) -> None:
    existing = ckpt.list_checkpoints(cfg.save_dir)
    if existing and not resume and not cfg.overwrite:
        raise UserError(f"--save_dir {cfg.save_dir!r} already holds checkpoints ({', '.join(existing[-3:])}); "
                        f"resume with --init_from_ckpt={os.path.join(cfg.save_dir, existing[-1])}, "
                        f"pick another --save_dir, or pass --overwrite")


def _take(cfg: TrainConfig, resume: str) -> HeldLock:
    made = writable_dir(cfg.save_dir, "--save_dir")  # removed again (when empty) if the run is refused
    lock = HeldLock(os.path.join(cfg.save_dir, LOCK_FILE), f"--save_dir {cfg.save_dir!r}", made)
    try:
        _check_fresh(cfg, resume)
        ckpt.clean_folder(cfg.save_dir)
        if cfg.overwrite and not resume:
            for name in ckpt.list_checkpoints(cfg.save_dir):
                ckpt.remove_checkpoint(cfg.save_dir, name)
            for name in RUN_FILES:
                path = os.path.join(cfg.save_dir, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.remove(path)
    except (UserError, OSError) as e:
        lock.release()
        raise e if isinstance(e, UserError) else UserError(f"--save_dir {cfg.save_dir!r}: {e}") from None
    return lock


def claim_save_dir(cfg: TrainConfig, resume: str, rank: int, world: int) -> HeldLock | None:
    """Rank 0: the held lock of `cfg.save_dir` (after the checks above); other ranks: None. Collective: a
    refusal on rank 0 raises the same UserError on every rank."""
    lock, verdict = None, ""
    if rank == 0:
        try:
            lock = _take(cfg, resume)
        except UserError as e:
            verdict = str(e)
    verdict = dist.broadcast_text(verdict, world)
    if verdict:
        raise UserError(verdict)
    return lock
