"""The MAESTRO v3 index: `maestro-v3.0.0.csv` and its column-oriented `.json` twin."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

CSV_NAME = "maestro-v3.0.0.csv"
JSON_NAME = "maestro-v3.0.0.json"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Entry:
    """One MAESTRO row; paths are relative to the dataset root, duration is audio seconds."""

    canonical_composer: str
    canonical_title: str
    split: str
    year: int
    midi_filename: str
    audio_filename: str
    duration: float


COLUMNS = tuple(f.name for f in fields(Entry))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary sibling and rename, so readers never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_index(root: Path, entries: list[Entry]) -> None:
    """Write both index files, rows sorted by split then path (stable across resumes)."""
    rows = sorted(entries, key=lambda e: (SPLITS.index(e.split), e.audio_filename))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for e in rows:
        writer.writerow({**asdict(e), "duration": repr(float(e.duration))})
    atomic_write_bytes(Path(root) / CSV_NAME, buf.getvalue().encode())
    columns: dict[str, dict[str, object]] = {c: {} for c in COLUMNS}
    for i, e in enumerate(rows):
        for c in COLUMNS:
            columns[c][str(i)] = getattr(e, c)
    atomic_write_bytes(Path(root) / JSON_NAME, json.dumps(columns, indent=1).encode())


def read_csv(root: Path) -> list[Entry]:
    with open(Path(root) / CSV_NAME, newline="") as f:
        return [Entry(r["canonical_composer"], r["canonical_title"], r["split"],
                      int(r["year"]), r["midi_filename"], r["audio_filename"],
                      float(r["duration"])) for r in csv.DictReader(f)]


def read_json(root: Path) -> list[Entry]:
    columns = json.loads((Path(root) / JSON_NAME).read_text())
    keys = sorted(columns["midi_filename"], key=int)
    return [Entry(**{c: columns[c][k] for c in COLUMNS}) for k in keys]
