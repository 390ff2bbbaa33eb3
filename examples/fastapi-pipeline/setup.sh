#!/usr/bin/env bash
# Installs the two services' dependencies from PyPI into ./.venv (once; again when requirements.txt changes).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v python3 >/dev/null; then
  echo "python3 is needed for this example: apt-get install -y python3 python3-venv (or your system's equivalent)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ] || ! cmp -s requirements.txt .venv/requirements.txt; then
  rm -rf .venv
  python3 -m venv .venv || { echo "python3 -m venv failed: apt-get install -y python3-venv" >&2; exit 1; }
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/requirements.txt
fi
