# Create ./.venv when it is missing and install the package with the given extras.
# Sourced by scripts/demo and scripts/test; expects to run from the repository root.
set -euo pipefail
extras="$1"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
