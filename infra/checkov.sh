#!/usr/bin/env bash
# Static security checks on the Bicep under infra/: checkov in its own venv (it pins many packages
# that would clash with the app's), created on first use. Exits non-zero when any check fails.
# Accepted exceptions are suppressed inline, next to the resource, as `// checkov:skip=ID: reason`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# checkov and all it needs, pinned with hashes (`make lock` writes it from checkov-requirements.in).
LOCK="$ROOT/infra/checkov-requirements.txt"
VENV="$ROOT/.local/venv-checkov"
PYTHON="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/checkov" ]] || ! cmp -s "$LOCK" "$VENV/installed-lock.txt"; then
    echo "checkov.sh: installing checkov from $LOCK into $VENV" >&2
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$LOCK"
    cp "$LOCK" "$VENV/installed-lock.txt"
fi
[[ "${1:-}" == "--install-only" ]] && exit 0  # make infra-deps: the venv alone, before the checks run

cd "$ROOT"
# checkov resolves module parameters across files in hash order, so with a random seed a check can see a
# different value from run to run (CKV_AZURE_189 then sometimes logs a traceback on a ternary). Fix the seed.
export PYTHONHASHSEED=0
# --skip-download: no calls to the vendor's API (there is no network here, and none is needed).
# --quiet lists only failed checks; the summary line still counts passed, failed and skipped.
exec "$VENV/bin/checkov" -d infra --framework bicep --quiet --compact --skip-download
