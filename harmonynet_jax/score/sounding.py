"""Written lengths from sounding lengths (`analyze(..., durations="sounding")`).

A transcriber's frame decoder reports how long each note rings, sustain pedal included, and
no pedal spans: under a bar-long pedal every note of an Alberti bass lasts to the barline,
and the hand split reads the overlaps as extra voices. A score needs the written length,
which in legato playing lasts up to the next note of the same voice. So each note is cut
where a later note continues its voice (`written_lengths`): chord by chord, every new note
takes over one still-ringing note close in pitch. A note nobody continues rings on, so a
melody note held over an accompaniment in another register, or a drone under a moving
melody, keeps its length; a note released before (no pedal, detached) keeps its own end.

Voices are not known before the hand split, and the split needs sensible lengths, so the
pipeline runs this twice: first with a register (`sounding_region` semitones) standing in for
the voice, for the hand split and the meter; then within each staff, where a voice may leap
further (`sounding_staff_region`) and the note struck last is preferred
(`sounding_age_cost`). The quantiser's legato fill then turns the cuts into written values.
Not recoverable from sounding lengths: a note followed by a rest under the pedal is written to
the next note of its voice (docs/score.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.hands import chord_groups


def written_lengths(notes: Sequence[Note], cfg: ScoreConfig,
                    staves: Sequence[int] | None = None) -> list[Note]:
    """Each note (sorted by onset) cut where the next note of its voice starts.

    Chord by chord, each new note continues the voice of one note still sounding (its
    register: at most `sounding_region` semitones away, or with `staves`, the same staff
    within `sounding_staff_region`), and that note is cut at the new onset. The cheapest
    pairs are taken first, one old note per new note; the cost is the pitch distance plus
    `sounding_age_cost` per chord struck since the old note (in its staff), because the
    voice that moved last is the one that moves on. Notes no new note continues ring on:
    they are held under the moving voices.
    """
    ends = [n.offset for n in notes]
    staff = list(staves) if staves is not None else [0] * len(notes)
    region = cfg.sounding_region if staves is None else cfg.sounding_staff_region
    age_cost = 0.0 if staves is None else cfg.sounding_age_cost
    count: dict[int, int] = {}  # chords struck so far, per staff
    struck_at = [0] * len(notes)  # the count of its staff when the note was struck
    ringing: list[int] = []  # notes struck before and still sounding
    for group in chord_groups(notes, cfg.chord_spread_s):
        t = notes[group[0]].onset
        ringing = [j for j in ringing if ends[j] > t]
        pairs = sorted((abs(notes[i].pitch - notes[j].pitch)
                        + age_cost * (count[staff[j]] - struck_at[j]), i, j)
                       for i in group for j in ringing
                       if staff[i] == staff[j]
                       and abs(notes[i].pitch - notes[j].pitch) <= region)
        taken_new: set[int] = set()
        taken_old: set[int] = set()
        for _, i, j in pairs:
            if i in taken_new or j in taken_old:
                continue
            taken_new.add(i)
            taken_old.add(j)
            ends[j] = min(ends[j], notes[i].onset)
        for s in {staff[i] for i in group}:
            count[s] = count.get(s, 0) + 1
        for i in group:
            struck_at[i] = count[staff[i]]
        ringing += group
    return [replace(n, offset=e) for n, e in zip(notes, ends, strict=True)]
