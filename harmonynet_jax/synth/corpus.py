"""Pieces from the music21 corpus, reduced to piano: notes, roles, metre and tempo.

Parsing is the slow part, so each file's extraction is cached as JSON (atomic writes, shared
by all workers and builds). Collections of tunes (ABC opus files) count as one piece.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harmonynet_jax.cache import cache_dir

from .layout import atomic_write_bytes
from .score import BASS, INNER, MELODY, Score, ScoreNote

# Top-level corpus folders by how they are played here; all become two-hand piano music.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "keyboard": ("joplin", "mozart/k545", "cpebach", "schumann_clara", "schoenberg", "chopin",
                 "beach", "schubert", "schumann_robert/dichterliebe", "handel", "liliuokalani",
                 "johnson_j_r", "verdi", "weber"),
    "chorale": ("bach",),
    "quartet": ("beethoven", "mozart/k", "haydn", "schumann_robert/opus41", "corelli"),
    "polyphony": ("palestrina", "monteverdi", "trecento", "josquin", "ciconia", "luca",
                  "lusitano", "webern"),
    "folk": ("ryansMammoth", "oneills1850", "airdsAirs", "miscFolk", "leadSheet"),
}
EXTENSIONS = (".mxl", ".musicxml", ".xml", ".krn", ".abc")
EXCLUDE = ("choraleAnalyses",)
CACHE_VERSION = 1  # bump when `_extract` changes what it stores
MOVEMENT = re.compile(r"movement\d+", re.IGNORECASE)
SECTION = re.compile(r"_[a-z]$")
COMPOSERS = {
    "bach": "Johann Sebastian Bach", "beethoven": "Ludwig van Beethoven",
    "mozart": "Wolfgang Amadeus Mozart", "haydn": "Joseph Haydn", "chopin": "Frédéric Chopin",
    "joplin": "Scott Joplin", "schoenberg": "Arnold Schoenberg", "cpebach": "C. P. E. Bach",
    "schumann_clara": "Clara Schumann", "schumann_robert": "Robert Schumann",
    "schubert": "Franz Schubert", "beach": "Amy Beach", "handel": "George Frideric Handel",
    "palestrina": "Giovanni Pierluigi da Palestrina", "monteverdi": "Claudio Monteverdi",
    "josquin": "Josquin des Prez", "corelli": "Arcangelo Corelli", "verdi": "Giuseppe Verdi",
    "weber": "Carl Maria von Weber", "webern": "Anton Webern",
}


@dataclass(frozen=True)
class CorpusPiece:
    rel: str  # path inside the music21 corpus: also the piece identity for splits
    category: str

    @property
    def work(self) -> str:
        """The composition this file belongs to (the unit of the split): movements and
        lettered sections (Palestrina's Credo_20_a/_b) are parts of one work."""
        stem = os.path.splitext(self.rel)[0]
        head, name = os.path.split(stem)
        if MOVEMENT.match(name):
            return head
        return SECTION.sub("", stem)

    @property
    def composer(self) -> str:
        top = self.rel.split("/", 1)[0]
        return COMPOSERS.get(top, "Traditional" if self.category == "folk" else top.title())

    @property
    def title(self) -> str:
        stem = os.path.splitext(self.rel)[0]
        return stem.replace("/", " ").replace("_", " ")


def default_cache_dir() -> Path:
    """Per-user cache of extracted corpus notes, shared by all builds (parsing a whole
    quartet can take a minute), in the project's cache (harmonynet_jax.cache)."""
    import music21

    return cache_dir("corpus") / f"music21-{music21.__version__}-v{CACHE_VERSION}"


@functools.cache
def corpus_root() -> str:
    from music21 import corpus

    first = str(corpus.getPaths()[0])
    return first[: first.index("/corpus/") + len("/corpus/")]


@functools.cache
def catalogue() -> dict[str, tuple[CorpusPiece, ...]]:
    """Corpus files per category; one file per work (MusicXML preferred over Humdrum)."""
    from music21 import corpus

    root = corpus_root()
    chosen: dict[str, str] = {}
    for p in sorted(str(x) for x in corpus.getPaths()):
        rel = p[len(root):]
        stem, ext = os.path.splitext(rel)
        if ext not in EXTENSIONS or any(x in rel for x in EXCLUDE):
            continue
        if stem not in chosen or ext == ".mxl":
            chosen[stem] = rel
    out: dict[str, list[CorpusPiece]] = {c: [] for c in CATEGORIES}
    for rel in sorted(chosen.values()):
        for cat, prefixes in CATEGORIES.items():
            if rel.startswith(prefixes):
                out[cat].append(CorpusPiece(rel, cat))
                break
    return {c: tuple(v) for c, v in out.items() if v}


def load_tunes(rel: str, cache_dir: Path | None) -> list[dict]:
    """Extracted notes of every score in a corpus file (one, or many for ABC collections)."""
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / (rel.replace("/", "__") + ".json")
        if cache.exists():
            return json.loads(cache.read_text())
    from music21 import corpus, stream

    parsed = corpus.parse(os.path.join(corpus_root(), rel))
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    tunes = [t for t in (_extract(s) for s in scores) if t["notes"]]
    if cache is not None:
        atomic_write_bytes(cache, json.dumps(tunes).encode())
    return tunes


def _extract(score) -> dict:
    """Ties merged, grace notes dropped; top line = melody, lowest line = bass."""
    from music21 import meter, tempo

    score = score.stripTies(inPlace=False)
    parts = list(score.parts) or [score]
    ts = next(iter(score.recurse().getElementsByClass(meter.TimeSignature)), None)
    mm = next(iter(score.recurse().getElementsByClass(tempo.MetronomeMark)), None)
    qpm = mm.getQuarterBPM() if mm is not None and mm.number else None
    title = (score.metadata.title if score.metadata and score.metadata.title else "") or ""
    notes: list[list[float]] = []
    for k, part in enumerate(parts):
        by_onset: dict[float, list[tuple[float, int]]] = {}
        for el in part.flatten().notes:
            length = float(el.quarterLength)
            if length <= 0:
                continue
            for p in el.pitches:
                by_onset.setdefault(float(el.offset), []).append((length, int(p.midi)))
        for onset, group in by_onset.items():
            top = max(p for _, p in group)
            low = min(p for _, p in group)
            for length, p in group:
                role = INNER
                if k == 0 and p == top:
                    role = MELODY
                elif k == len(parts) - 1 and p == low and (len(parts) > 1 or len(group) > 1):
                    role = BASS
                notes.append([onset, length, p, role])
    bar = float(ts.barDuration.quarterLength) if ts is not None else 4.0
    return {"notes": sorted(notes), "bar": bar if bar > 0 else 4.0, "qpm": qpm, "title": title}


def to_score(tune: dict, qpm: float, max_keys_per_hand: int) -> Score:
    """Merge unisons (the longest wins) and thin over-full chords to what two hands play."""
    by_onset: dict[float, dict[int, ScoreNote]] = {}
    for beat, length, pitch, role in tune["notes"]:
        group = by_onset.setdefault(beat, {})
        old = group.get(int(pitch))
        if old is None or length > old.length:
            group[int(pitch)] = ScoreNote(beat, length, int(pitch),
                                          min(int(role), old.role) if old else int(role))
    notes: list[ScoreNote] = []
    for group in by_onset.values():
        chord = sorted(group.values(), key=lambda n: n.pitch)
        limit = 2 * max_keys_per_hand
        if len(chord) > limit:  # keep outer voices, drop from the middle
            keep = max_keys_per_hand
            chord = chord[:keep] + chord[len(chord) - (limit - keep):]
        notes.extend(chord)
    return Score(notes=notes, bar_length=float(tune["bar"]), qpm=qpm)
