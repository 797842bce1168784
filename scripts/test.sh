#!/usr/bin/env bash
# The test command: set-up (idempotent), then the whole Python test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HARMONYNET_FFMPEG="${HARMONYNET_FFMPEG:-$(python3 -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')}"
python3 -m pytest -q "$@"
