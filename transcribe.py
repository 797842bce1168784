#!/usr/bin/env python3
"""Transcribe piano recordings to MIDI / JSON / MusicXML / PDF (same as `harmonynet transcribe`).

    python transcribe.py song.mp3 --format midi,musicxml,pdf
    python transcribe.py recordings/ --out-dir transcriptions --checkpoint runs/phaseB

See docs/transcribe.md for options and exit codes.
"""

import sys

from harmonynet_jax.cli import transcribe_main

if __name__ == "__main__":
    sys.exit(transcribe_main())
