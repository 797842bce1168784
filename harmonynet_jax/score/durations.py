"""Splitting a note or rest into written values that show the beat.

Rules (common engraving practice, kept small): a value of a beat or more starts on a beat
(and in compound time is a whole number of beats); a shorter value stays inside its beat; in
4/4 only a note starting on beat 1 may cross beat 3; triplet beats are written in thirds of the
beat, 16th-triplet beats in thirds where the values allow and sixths otherwise. Everything else
becomes tied pieces.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from harmonynet_jax.score.meter import Meter

F = Fraction
BINARY_VALUES = (F(4), F(3), F(2), F(3, 2), F(1), F(3, 4), F(1, 2), F(3, 8), F(1, 4),
                 F(1, 8))


def _allowed(o: Fraction, d: Fraction, meter: Meter) -> bool:
    """May a value `d` start at bar offset `o` (measured from the downbeat)?"""
    beat = meter.beat_ql
    if o + d > meter.bar_ql:
        return False
    if d >= beat:
        if o % beat != 0:
            return False
        if meter.compound and d % beat != 0 and d != beat:
            return False
        half = meter.bar_ql / 2
        crosses_middle = meter.beats_per_bar == 4 and o < half < o + d
        return not (crosses_middle and o != 0)
    return (o // beat) == ((o + d - F(1, 96)) // beat)  # shorter values stay in their beat


def split_binary(o: Fraction, end: Fraction, meter: Meter) -> list[Fraction]:
    """Written values covering [o, end) of a bar without triplets."""
    out: list[Fraction] = []
    while o < end:
        for d in BINARY_VALUES:
            if o + d <= end and _allowed(o, d, meter):
                break
        else:  # off the 16th grid: take what is left of the beat (music21 will tie it)
            d = min(end - o, meter.beat_ql - o % meter.beat_ql)
        out.append(d)
        o += d
    return out


def split_triplet(o: Fraction, end: Fraction, beat_start: Fraction,
                  meter: Meter) -> list[Fraction]:
    """Written values covering [o, end) inside one triplet beat starting at `beat_start`."""
    unit = meter.beat_ql / 3
    if o == beat_start and end == beat_start + meter.beat_ql:
        return [meter.beat_ql]
    out: list[Fraction] = []
    while o < end:
        d = 2 * unit if (o - beat_start) == 0 and end - o >= 2 * unit else unit
        if (o - beat_start) == unit and end - o >= 2 * unit:
            d = 2 * unit
        d = min(d, end - o)
        out.append(d)
        o += d
    return out


def split_sixths(o: Fraction, end: Fraction, beat_start: Fraction,
                 meter: Meter) -> list[Fraction]:
    """Written values covering [o, end) inside one 16th-triplet beat: the largest of a beat,
    two or one eighth triplets (on a third), an eighth (on a half) or a 16th triplet."""
    beat = meter.beat_ql
    out: list[Fraction] = []
    while o < end:
        at = o - beat_start
        for d, align in ((beat, beat), (2 * beat / 3, beat / 3), (beat / 2, beat / 2),
                         (beat / 3, beat / 3), (beat / 6, beat / 6)):
            if at % align == 0 and o + d <= end:
                break
        else:  # off the grid of sixths: what is left of the beat (music21 will tie it)
            d = end - o
        out.append(d)
        o += d
    return out


def split_values(start: Fraction, end: Fraction, downbeat: Fraction, meter: Meter,
                 triplet_beats: Mapping[Fraction, int] | frozenset[Fraction]
                 ) -> list[Fraction]:
    """Written values for [start, end) inside one bar whose (virtual) downbeat is given.

    `triplet_beats`: beat starts written in tuplets, with their division (3: eighth
    triplets, 6: 16th triplets); a plain set means eighth triplets."""
    division = (triplet_beats if isinstance(triplet_beats, Mapping)
                else dict.fromkeys(triplet_beats, 3))
    beat = meter.beat_ql
    out: list[Fraction] = []
    o = start
    while o < end:
        beat_start = downbeat + ((o - downbeat) // beat) * beat
        if beat_start in division:
            stop = min(end, beat_start + beat)
            split = split_sixths if division[beat_start] == 6 else split_triplet
            out += split(o, stop, beat_start, meter)
            o = stop
            continue
        stop = end
        for b in sorted(division):  # stop before the next tuplet beat
            if o < b < stop:
                stop = b
        out += split_binary(o - downbeat, stop - downbeat, meter)
        o = stop
    return out
