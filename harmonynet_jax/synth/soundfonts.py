"""Find the piano presets in the installed SoundFonts (SF2, and SF3 which shares its layout).

Preset headers are read straight from the RIFF `pdta/phdr` chunk (seeking past the sample data),
so listing a 150 MB SoundFont costs a few kilobytes of I/O.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

PIANO_WORDS = ("piano", "grand")
NOT_PIANO_WORDS = ("honky", "e.piano", "epiano", "electric piano", "rhodes", "toy")


@dataclass(frozen=True)
class Preset:
    soundfont: str  # absolute, symlinks resolved
    bank: int
    program: int
    name: str


def read_presets(path: str | Path) -> list[Preset]:
    """All preset headers of a SoundFont file (the terminal 'EOP' record excluded)."""
    path = os.path.realpath(path)
    with open(path, "rb") as f:
        riff, _size, form = struct.unpack("<4sI4s", f.read(12))
        if riff != b"RIFF" or form != b"sfbk":
            raise ValueError(f"not a SoundFont: {path}")
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError(f"no pdta chunk in {path}")
            cid, size = struct.unpack("<4sI", head)
            body = f.tell()
            if cid == b"LIST" and f.read(4) == b"pdta":
                while f.tell() < body + size:
                    sid, ssize = struct.unpack("<4sI", f.read(8))
                    if sid == b"phdr":
                        return _parse_phdr(f.read(ssize), path)
                    f.seek(ssize + (ssize & 1), os.SEEK_CUR)
                raise ValueError(f"no phdr in {path}")
            f.seek(_next_chunk(f, body + size), os.SEEK_SET)


def _next_chunk(f: BinaryIO, end: int) -> int:
    """Where the next chunk starts: RIFF pads odd sizes, but some SF3 writers do not."""
    if end & 1:
        f.seek(end)
        if f.read(4) == b"LIST":
            return end
        return end + 1
    return end


def _parse_phdr(data: bytes, path: str) -> list[Preset]:
    presets = []
    for i in range(len(data) // 38 - 1):
        name, program, bank = struct.unpack_from("<20sHH", data, i * 38)
        presets.append(Preset(path, bank, program,
                              name.split(b"\0", 1)[0].decode("latin-1").strip()))
    return presets


def is_piano(preset: Preset) -> bool:
    name = preset.name.lower()
    return any(w in name for w in PIANO_WORDS) and not any(w in name for w in NOT_PIANO_WORDS)


@functools.cache
def piano_presets(dirs: tuple[str, ...], programs: tuple[int, ...]) -> tuple[Preset, ...]:
    """Bank-0 piano presets with the given programs in every SoundFont under `dirs`.

    Symlinked aliases (default-GM.sf2 and friends) are counted once.
    """
    seen: set[str] = set()
    found: list[Preset] = []
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for entry in sorted(os.listdir(d)):
            if not entry.lower().endswith((".sf2", ".sf3")):
                continue
            real = os.path.realpath(os.path.join(d, entry))
            if real in seen or not os.path.isfile(real) or _has_lossless_twin(real, dirs):
                continue
            seen.add(real)
            found.extend(p for p in read_presets(real)
                         if p.bank == 0 and p.program in programs and is_piano(p))
    return tuple(sorted(found, key=lambda p: (p.soundfont, p.program)))


def _has_lossless_twin(path: str, dirs: tuple[str, ...]) -> bool:
    """An .sf3 whose .sf2 original is installed too adds nothing but Vorbis artefacts."""
    stem, ext = os.path.splitext(os.path.basename(path))
    return ext.lower() == ".sf3" and any(
        os.path.isfile(os.path.join(d, stem + ".sf2")) for d in dirs)
