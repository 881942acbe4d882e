#!/usr/bin/env bash
# Re-resolve pyproject.toml's dependencies in a throwaway venv and write the exact
# versions to requirements.lock, which `make` installs from (same set on every machine).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q -U pip
"$tmp/venv/bin/pip" install -q -e '.[dev]'
{
  echo "# Exact versions of every dependency (runtime + dev). Regenerate with: make lock"
  "$tmp/venv/bin/pip" freeze --exclude-editable | grep -v '^-e ' | sort -f
} > requirements.lock
echo "wrote requirements.lock ($(grep -vc '^#' requirements.lock) packages)"
