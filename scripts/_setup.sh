# Create $root/.venv when it is missing and install the package with the given extras.
# Sourced by the scripts in this folder, which set $root to the repository root first.
# The install is skipped when pyproject.toml has not changed since the last one.
set -euo pipefail
extras="$1"
python="${PYTHON:-python3}"
if [ ! -x "$root/.venv/bin/python" ]; then
    "$python" -m venv "$root/.venv"
fi
stamp="$root/.venv/.installed-${extras}-$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    "$root/.venv/bin/python" -m pip install --quiet --upgrade pip
    "$root/.venv/bin/python" -m pip install --quiet -e "$root[${extras}]"
    rm -f "$root/.venv/.installed-${extras}-"*
    touch "$stamp"
fi
