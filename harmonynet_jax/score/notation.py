"""music21 stream building: a grand staff of measures, voices, rests, ties and marks.

We build measures ourselves rather than calling `makeNotation` on a flat part: a flat part
cannot hold two rhythms on one staff, and we want control over where ties go
(`harmonynet_jax.score.durations`). music21 still does beams, accidentals and tuplet brackets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from music21 import (
    chord,
    clef,
    duration,
    dynamics,
    expressions,
    layout,
    metadata,
    meter,
    note,
    stream,
    tempo,
    tie,
)
from music21 import key as m21key

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.durations import split_values
from harmonynet_jax.score.keys import spell, spelling_table
from harmonynet_jax.score.meter import Meter
from harmonynet_jax.score.quantize import QNote, Quantized
from harmonynet_jax.score.voices import Item, Voice, assign_voices

PART_NAME = "Piano"  # never empty: musicxml2ly crashes on an empty part-name
PART_ABBREVIATION = "Pno."
RITARDANDO = "rit."


@dataclass(frozen=True)
class Layout:
    """Where bars start, in quarter lengths from the score start."""

    meter: Meter
    anacrusis: Fraction
    n_bars: int

    def bar(self, i: int) -> tuple[Fraction, Fraction, Fraction]:
        """(start, end, virtual downbeat) of bar i; a pickup bar's downbeat lies before 0."""
        bar = self.meter.bar_ql
        if self.anacrusis > 0:
            if i == 0:
                return Fraction(0), self.anacrusis, self.anacrusis - bar
            start = self.anacrusis + (i - 1) * bar
        else:
            start = i * bar
        return start, start + bar, start


def make_layout(meter: Meter, anacrusis: Fraction, end: Fraction) -> Layout:
    """Enough bars to hold everything (at least one)."""
    bar = meter.bar_ql
    rest = max(Fraction(0), end - anacrusis)
    full = max(1, -(-rest // bar)) if rest > 0 or anacrusis == 0 else 0
    return Layout(meter, anacrusis, int(full) + (1 if anacrusis > 0 else 0))


def _element(item: Item, length: Fraction, table: dict[int, str]) -> note.GeneralNote:
    d = duration.Duration(length)
    if not item.pitches:
        return note.Rest(duration=d)
    pitches = [spell(p, table) for p in item.pitches]
    el: note.GeneralNote = (note.Note(pitches[0], duration=d) if len(pitches) == 1
                            else chord.Chord(pitches, duration=d))
    el.volume.velocity = item.velocity
    return el


def _fill(voice: Voice, start: Fraction, end: Fraction) -> list[tuple[Item, Item | None]]:
    """The voice's items clipped to [start, end) (with their unclipped originals), rests
    in the gaps."""
    out: list[tuple[Item, Item | None]] = []
    t = start
    for it in voice.items:
        if it.end <= start or it.start >= end:
            continue
        s, e = max(it.start, start), min(it.end, end)
        if s > t:
            out.append((Item(t, s), None))
        out.append((Item(s, e, it.pitches, it.velocity), it))
        t = e
    if t < end:
        out.append((Item(t, end), None))
    return out


def _tie_type(first: bool, last: bool) -> str | None:
    if first and last:
        return None
    return "start" if first else "stop" if last else "continue"


def _voice_elements(items: list[tuple[Item, Item | None]], downbeat: Fraction, lay: Layout,
                    triplets: Mapping[Fraction, int], table: dict[int, str]
                    ) -> list[tuple[Fraction, note.GeneralNote]]:
    out = []
    for it, whole in items:
        t = it.start
        for length in split_values(it.start, it.end, downbeat, lay.meter, triplets):
            el = _element(it, length, table)
            if whole is not None:
                kind = _tie_type(t == whole.start, t + length == whole.end)
                if kind is not None:
                    for n in el.notes if isinstance(el, chord.Chord) else [el]:
                        n.tie = tie.Tie(kind)
            out.append((t, el))
            t += length
    return out


def _clefs(notes: Sequence[QNote], lay: Layout, staff: int, cfg: ScoreConfig) -> list[str]:
    """Clef per bar with hysteresis, so a clef changes only for a clearly different register."""
    current = "G" if staff == 1 else "F"
    out = []
    for i in range(lay.n_bars):
        s, e, _ = lay.bar(i)
        pitches = [n.pitch for n in notes if s <= n.start < e]
        if pitches:
            mean = sum(pitches) / len(pitches)
            if current == "G" and mean < cfg.clef_to_bass:
                current = "F"
            elif current == "F" and mean > cfg.clef_to_treble:
                current = "G"
        out.append(current)
    return out


def _dynamic_marks(notes: Sequence[QNote], lay: Layout, cfg: ScoreConfig) -> dict[int, str]:
    """Bar -> dynamic, marked when a level starts and holds for `dynamic_min_bars` bars."""
    levels: list[str | None] = []
    for i in range(lay.n_bars):
        s, e, _ = lay.bar(i)
        vel = [n.velocity for n in notes if s <= n.start < e]
        if not vel:
            levels.append(None)
            continue
        mean = sum(vel) / len(vel)
        levels.append([name for name, lo in cfg.dynamic_levels if mean >= lo][-1])
    marks: dict[int, str] = {}
    current = None
    for i, lv in enumerate(levels):
        if lv is None or lv == current:
            continue
        ahead = [x for x in levels[i:i + cfg.dynamic_min_bars] if x is not None]
        if current is None or all(x == lv for x in ahead):
            marks[i] = lv
            current = lv
    return marks


def build_stream(q: Quantized, lay: Layout, k: m21key.Key, *, bpm: float,
                 pedals: Sequence[tuple[Fraction, Fraction]], title: str | None,
                 composer: str | None, cfg: ScoreConfig,
                 ritardando: Fraction | None = None) -> stream.Score:
    """The grand-staff `Score` (two PartStaffs joined by a brace); `ritardando`: where a
    "rit." mark goes (quarter lengths from the start)."""
    table = spelling_table(k)
    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = title or "Transcription"
    if composer:
        score.metadata.composer = composer
    staves = []
    for staff in (1, 2):
        notes = [n for n in q.notes if n.staff == staff]
        part = _staff_part(notes, staff, lay, table, k.sharps, q.triplet_beats[staff], cfg)
        staves.append(part)
    first = staves[0].getElementsByClass(stream.Measure).first()
    assert first is not None
    mark = tempo.MetronomeMark(number=bpm, referent=duration.Duration(lay.meter.beat_ql))
    first.insert(0, mark)
    if cfg.dynamics:
        measures = list(staves[0].getElementsByClass(stream.Measure))
        for i, level in _dynamic_marks(q.notes, lay, cfg).items():
            measures[i].insert(0, dynamics.Dynamic(level))
    if ritardando is not None:
        _text_mark(staves[0], ritardando, RITARDANDO)
    _pedal_marks(staves, pedals)
    for part in staves:
        score.insert(0, part)
    group = layout.StaffGroup(staves, name=PART_NAME, abbreviation=PART_ABBREVIATION,
                              symbol="brace")
    group.barTogether = True
    score.insert(0, group)
    return score


def _staff_part(notes: list[QNote], staff: int, lay: Layout, table: dict[int, str],
                sharps: int, triplets: Mapping[Fraction, int], cfg: ScoreConfig
                ) -> stream.PartStaff:
    part = stream.PartStaff()
    part.partName = PART_NAME
    part.partAbbreviation = PART_ABBREVIATION
    part.id = f"P1-Staff{staff}"
    voices = assign_voices(notes, cfg.max_voices) or [Voice()]
    clefs = _clefs(notes, lay, staff, cfg)
    for i in range(lay.n_bars):
        start, end, downbeat = lay.bar(i)
        m = stream.Measure(number=i if lay.anacrusis > 0 else i + 1)
        if i == 0:
            m.insert(0, meter.TimeSignature(lay.meter.ratio))
            m.insert(0, m21key.KeySignature(sharps))
        if i == 0 or clefs[i] != clefs[i - 1]:
            m.insert(0, clef.TrebleClef() if clefs[i] == "G" else clef.BassClef())
        # The voices with notes in this bar, the first of them with visible rests: a voice
        # silent for a whole bar is left out (not a whole rest floating above the notes).
        active = [v for v in voices
                  if any(it.start < end and it.end > start for it in v.items)] or voices[:1]
        for j, v in enumerate(active):
            items = _fill(v, start, end)
            if j == 0 and len(items) == 1 and not items[0][0].pitches:
                rest = note.Rest(quarterLength=end - start)
                rest.fullMeasure = True
                elements = [(start, rest)]
            else:
                elements = _voice_elements(items, downbeat, lay, triplets, table)
            container: stream.Stream = m if len(active) == 1 else stream.Voice(id=str(j + 1))
            for t, el in elements:
                if j > 0 and isinstance(el, note.Rest):
                    el.style.hideObjectOnPrint = True  # a gap in a secondary voice: unseen
                container.insert(t - start, el)
            if container is not m:
                m.insert(0, container)
        if i == 0 and lay.anacrusis > 0:
            m.paddingLeft = lay.meter.bar_ql - lay.anacrusis
        part.append(m)
    # Gaps in secondary voices are hidden rests, not bare gaps: music21 beams a voice by
    # summing its durations, so across a bare gap it beamed the wrong notes together (and
    # warned "Found a messed up beam pair"); its writer fills such gaps with hidden rests
    # anyway.
    part.makeBeams(inPlace=True)
    part.makeAccidentals(inPlace=True, cautionaryNotImmediateRepeat=False)
    for m in part.getElementsByClass(stream.Measure):
        for container in [m, *m.voices]:
            stream.makeNotation.makeTupletBrackets(container, inPlace=True)
    return part


def _text_mark(part: stream.PartStaff, at: Fraction, text: str) -> None:
    """An italic expression above the staff at `at` (quarter lengths from the start)."""
    for m in part.getElementsByClass(stream.Measure):
        start = Fraction(m.offset).limit_denominator(96)
        if start <= at < start + Fraction(m.duration.quarterLength).limit_denominator(96):
            mark = expressions.TextExpression(text)
            mark.style.fontStyle = "italic"
            mark.placement = "above"
            m.insert(at - start, mark)
            return


def _pedal_marks(staves: list[stream.PartStaff],
                 pedals: Sequence[tuple[Fraction, Fraction]]) -> None:
    """A pedal spanner over the notes of the lower staff (else the upper) under each press."""
    for start, end in pedals:
        for part in (staves[1], staves[0]):
            under = [n for n in part.recurse().notes
                     if start <= n.getOffsetInHierarchy(part) < end]
            if under:
                part.insert(0, expressions.PedalMark(under[0], under[-1]))
                break
