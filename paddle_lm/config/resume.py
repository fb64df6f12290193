"""A resumed run (or one that starts from a pretrained ELMo encoder) keeps the checkpoint's architecture and
token geometry: the flags the user gave are checked against the checkpoint's sidecar."""

from __future__ import annotations

import dataclasses

from paddle_lm.config.pretrain import PRESETS, DataConfig, ModelConfig, model_config_from_dict
from paddle_lm.config.ranges import show_value
from paddle_lm.errors import UserError


def resume_conflicts(prefix: str, saved: dict, given: dict, preset: str | None = None,
                     to: str = "resume") -> ModelConfig:
    """The ModelConfig of checkpoint `prefix` (its sidecar's ``model_config`` dict `saved`), after checking that
    no architecture flag the user gave contradicts it.

    `given` maps ModelConfig field -> value for the flags actually on the command line (--model included);
    `preset` is --preset when given. Its values count where no flag overrides them. `to` is what the user does
    with the checkpoint, for the message ("resume", "start from it"). A contradiction is a
    UserError naming each flag, e.g. ``--cell_size 64 contradicts checkpoint X (trained with 32); drop the flag
    to resume`` (a resumed run always keeps the checkpoint's architecture).
    """
    restored = model_config_from_dict(saved)  # a key an older sidecar lacks has its default, as in the trainer
    had = dataclasses.asdict(restored)
    conflicts: list[tuple[str, str]] = []  # (flag as given, what the checkpoint has)
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"--preset {preset!r} is unknown; choose one of: {', '.join(sorted(PRESETS))}")
        differ = [(k, v) for k, v in PRESETS[preset].items() if k not in given and had.get(k) != v]
        if differ:
            shown = "; ".join(f"{k} {show_value(had.get(k))}, not {show_value(v)}" for k, v in differ[:3])
            conflicts.append((f"--preset {preset}", shown + ("; ..." if len(differ) > 3 else "")))
    for name, value in given.items():
        if had.get(name) != value:
            if isinstance(value, bool):  # a switch: --residual / --no-residual
                conflicts.append((f"--{'' if value else 'no-'}{name}", f"--{'' if had.get(name) else 'no-'}{name}"))
            else:
                conflicts.append((f"--{name} {show_value(value)}", show_value(had.get(name))))
    if len(conflicts) == 1:
        flag, was = conflicts[0]
        raise UserError(f"{flag} contradicts checkpoint {prefix} (trained with {was}); drop the flag to {to}")
    if conflicts:
        raise UserError(", ".join(f"{flag} (trained with {was})" for flag, was in conflicts)
                        + f" contradict checkpoint {prefix}; drop these flags to {to}")
    return restored


#: Data flags a checkpoint fixes: changing them would feed the trained model other inputs.
RESUME_DATA_KEYS = ("max_characters_per_token",)


def resume_data(prefix: str, saved: dict, data: DataConfig, given: dict, to: str = "resume") -> DataConfig:
    """`data` with the values checkpoint `prefix` was trained with (its sidecar's ``data`` dict `saved`) for
    RESUME_DATA_KEYS; a flag the user gave (in `given`) that contradicts one is a UserError naming it."""
    restored = {}
    for key in RESUME_DATA_KEYS:
        if key not in saved:
            continue
        if key in given and given[key] != saved[key]:
            raise UserError(f"--{key} {show_value(given[key])} contradicts checkpoint {prefix} (trained with "
                            f"{show_value(saved[key])}); drop the flag to {to}")
        restored[key] = saved[key]
    return dataclasses.replace(data, **restored)
