#!/usr/bin/env bash
# One-time set-up on a fresh Debian machine: system packages (when root; redis-server is for
# the web service's Celery tests, lilypond for the score's `--engraver lilypond` and its test),
# the Rust build of the loader and the Python package with
# its test, export and service extras, installed editable so tests and scripts run from the
# checkout. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  fluidsynth fluid-soundfont-gm timgm6mb-soundfont fluidr3mono-gm-soundfont
  musescore-general-soundfont-small musescore-general-soundfont
  musescore-general-soundfont-lossless poppler-utils redis-server lilypond
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: missing system packages (need root to install): ${missing[*]}" >&2
  fi
fi

python3 -m pip install -q --upgrade pip
python3 -m pip install -q -e ".[test,export,service]"
