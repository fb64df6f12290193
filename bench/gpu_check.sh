#!/usr/bin/env bash
# GPU acceptance run (about 8 minutes on one card); `--device cpu` runs the same checks at tiny sizes (CI).
# Usage and the checks: python bench/gpu_check.py --help
exec python "$(dirname "$0")/gpu_check.py" "$@"
