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
the voice, for the hand split and the meter (there a new note leaping below the top note,
onto a lower note struck with it, continues the lower voice, `sounding_top_cost`: K545's C5
stays held over its Alberti bass); then within each staff, where a voice may leap
further (`sounding_staff_region`) and the note struck last is preferred
(`sounding_age_cost`); in piano writing (not part writing) an accompaniment chord ends
when its figure leaps down past it, and an octave doubling ends with the note it doubles
(`_released`). The quantiser's legato fill then turns the cuts into written values.
Part writing is recognised on the register cut or, where a quartet's leaps left notes
ringing there, on a cut by a wider register (`sounding_part_region`, in the pipeline).
In piano writing the hand split reads a third cut: the register cut where a note of
alternating two-note chords struck again in the chord after next is a voice of its own,
held until then (`repeats`, `_repeated`: two voices a hand, as in Beach's Prayer, which the
register cut makes all legato and so all one hand's).
For the meter only, `held_basses` lets the lower staff's basses under chords ring on to the
next bass (the register cut made them as short as the chords, and long downbeat basses are
what places the barlines). Not recoverable from sounding lengths: a note followed by a rest
under the pedal is written to the next note of its voice (docs/score.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.hands import HOLD_TOLERANCE_S, OCTAVE, chord_groups


def written_lengths(notes: Sequence[Note], cfg: ScoreConfig,
                    staves: Sequence[int] | None = None, chords: bool = False,
                    repeats: bool = False) -> list[Note]:
    """Each note (sorted by onset) cut where the next note of its voice starts.

    Chord by chord, each new note continues the voice of one note still sounding (its
    register: at most `sounding_region` semitones away, or with `staves`, the same staff
    within `sounding_staff_region`), and that note is cut at the new onset. The cheapest
    pairs are taken first, one old note per new note; the cost is the pitch distance plus
    `sounding_age_cost` per chord struck since the old note (in its staff), because the
    voice that moved last is the one that moves on. By register only, the top ringing note
    costs `sounding_top_cost` more for a new note that leaps below it onto a lower note struck
    with it or before (`_leaps_below`). Notes no new note continues ring on: they are held
    under the moving voices. With `chords` (a staff pass over piano writing, not part
    writing), a single new note of a staff also ends the chord of the note it continues when
    it leaps from it to below the chord, and an octave doubling above that note (`_released`).
    With `repeats` (the hand split's register pass), a note of a dyad struck again in the next
    dyad but one while it still rings, dyads alternating, is continued by that repetition
    alone (`_repeated`): nobody else cuts it, and the repetition cuts the notes struck in
    between instead of its nearest ringing note.
    """
    ends = [n.offset for n in notes]
    staff = list(staves) if staves is not None else [0] * len(notes)
    region = cfg.sounding_region if staves is None else cfg.sounding_staff_region
    age_cost = 0.0 if staves is None else cfg.sounding_age_cost
    top_cost = cfg.sounding_top_cost if staves is None else 0.0
    groups = chord_groups(notes, cfg.chord_spread_s)
    index_of = {i: k for k, g in enumerate(groups) for i in g} if repeats else {}
    # held note -> its repetition (continued by it alone), and back
    again = _repeated(notes, groups, index_of, cfg) if repeats else {}
    held_by = {i: j for j, i in again.items()}
    count: dict[int, int] = {}  # chords struck so far, per staff
    struck_at = [0] * len(notes)  # the count of its staff when the note was struck
    chord_of: dict[int, list[int]] = {}  # the notes of its staff struck with it
    ringing: list[int] = []  # notes struck before and still sounding
    for group in groups:
        t = notes[group[0]].onset
        ringing = [j for j in ringing if ends[j] > t]
        for j in (held_by[i] for i in group if i in held_by):
            ends[j] = min(ends[j], t)
            for k in ringing:  # the other voice's notes struck since: they end here
                if k not in again and index_of[j] < index_of[k]:
                    ends[k] = min(ends[k], t)
        # the melody a leap may not continue: only in the register pass (`top_cost`)
        top = max(ringing, key=lambda j: notes[j].pitch, default=None) if top_cost else None
        pairs = sorted((abs(notes[i].pitch - notes[j].pitch)
                        + age_cost * (count[staff[j]] - struck_at[j])
                        + (top_cost if j == top and _leaps_below(notes, i, j, ringing, cfg)
                           else 0.0), i, j)
                       for i in group if i not in held_by for j in ringing
                       if staff[i] == staff[j] and j not in again
                       and abs(notes[i].pitch - notes[j].pitch) <= region)
        taken_new: set[int] = set()
        taken_old: set[int] = set()
        released: list[int] = []
        for _, i, j in pairs:
            if i in taken_new or j in taken_old:
                continue
            taken_new.add(i)
            taken_old.add(j)
            ends[j] = min(ends[j], notes[i].onset)
            if chords and staves is not None and sum(staff[k] == staff[i] for k in group) == 1:
                released += _released(notes, i, j, chord_of[j], cfg)
        for k in released:
            ends[k] = min(ends[k], t)
        for s in {staff[i] for i in group}:
            count[s] = count.get(s, 0) + 1
        for i in group:
            struck_at[i] = count[staff[i]]
            chord_of[i] = [k for k in group if staff[k] == staff[i]]
        ringing += group
    return [replace(n, offset=e) for n, e in zip(notes, ends, strict=True)]


def _repeated(notes: Sequence[Note], groups: list[list[int]], index: dict[int, int],
              cfg: ScoreConfig) -> dict[int, int]:
    """Notes of dyads -> the same pitch struck again while it still rings, with at most
    `sounding_repeat_gap` chords between and every chord from one to the other a dyad (its
    own voice: the repetition continues it).

    Two notes struck together, then two others, again and again: four voices, two per hand
    (Beach's Prayer: the right hand's 67 on the beat and 70 off it, the left hand's 63 and
    58). Cut by register, each new note continues the nearest ringing note, every note comes
    out legato and the hand split sees no hand holding a note, so one hand takes all four
    voices. A pitch struck again in the next dyad but one is a voice of its own: it rings on
    until its repetition, held while the other dyad is struck, and the notes struck in
    between end where it comes back, which is what the hand split needs. When the other
    dyad repeats a pitch too (Beach's 70), the voice that began first is the held one (the
    beat's quarter): a repetition struck while an earlier one is held does not count. Only
    dyads count: in a single-note figure the repeated note is not a voice apart (the Alberti
    bass's G), nor in chords of three or more notes (a ragtime's repeated afterbeat chord
    under a held octave) or in part writing (left to the register cut). `index`: each note's
    group number.
    """
    size = {i: len(g) for g in groups for i in g}
    last: dict[int, int] = {}
    out: dict[int, int] = {}
    for g in groups:
        for i in g:
            j = last.get(notes[i].pitch)
            last[notes[i].pitch] = i
            if j is None or size[i] != 2 or size[j] != 2 or any(
                    len(h) != 2 for h in groups[index[j] + 1:index[i]]):
                continue
            if 1 < index[i] - index[j] <= cfg.sounding_repeat_gap + 1 \
                    and notes[j].offset >= notes[i].onset - HOLD_TOLERANCE_S:
                out[j] = i
    kept: dict[int, int] = {}  # the earliest first; none struck during an earlier one's span
    for j in sorted(out, key=lambda j: (index[j], notes[j].pitch)):
        i = out[j]
        if not any(index[a] < index[j] < index[b] < index[i] for a, b in kept.items()):
            kept[j] = i
    return kept


def _released(notes: Sequence[Note], i: int, j: int, chord: Sequence[int],
              cfg: ScoreConfig) -> list[int]:
    """The notes struck with `j` in its staff (`chord`) that end when new note `i`, the only
    note its staff strikes now, continues `j`.

    An accompaniment chord lasts as long as its figure's step: when the figure leaps on, by at
    least `sounding_release_leap` semitones, to a note below the whole chord (op. 17/3's
    G3-B3-D4 on the afterbeat, then the bass C2), nobody continues the chord's other notes, yet
    they end with it. A smaller leap or one upwards leaves them held: a melody note, a
    chorale voice or a drone over a moving line (the Mazurka's A-flat over C4; a two-voice
    hand whose off-beat eighth leaps a fourth or fifth under its held quarter, as in Beach's
    Prayer). An octave doubling above `j` ends with it too: the rag's right-hand octave E-flats
    followed by a single G-sharp between them are eighths, not a held upper voice.
    """
    p, q = notes[i].pitch, notes[j].pitch
    if len(chord) > 1 and p < min(notes[k].pitch for k in chord) \
            and q - p >= cfg.sounding_release_leap > 0:
        return [k for k in chord if k != j]
    return [k for k in chord if notes[k].pitch - q == OCTAVE]


def _leaps_below(notes: Sequence[Note], i: int, top: int, ringing: Sequence[int],
                 cfg: ScoreConfig) -> bool:
    """Whether new note `i` lies more than `sounding_step` below the top ringing note `top`
    while a ringing note struck with `top` (or before it) lies below `i` within the region.

    A melody moves by step, an accompaniment under it by leaps: when a melody note and a bass
    are struck together and the next note falls between them (K545's C5 and C4, then G4: the
    Alberti bass), the new note continues the lower voice, not the nearer melody, so the hand
    split still sees the melody note held over the figure. An inner note struck after the
    top one does not count: then the top voice is the one that may leap on (Beach's Prayer).
    """
    p = notes[i].pitch
    if notes[top].pitch - p <= cfg.sounding_step:
        return False
    struck = notes[top].onset + cfg.chord_spread_s
    return any(j != top and 0 <= p - notes[j].pitch <= cfg.sounding_region
               and notes[j].onset <= struck for j in ringing)


def held_basses(notes: Sequence[Note], cut: Sequence[Note], staves: Sequence[int],
                cfg: ScoreConfig) -> list[Note]:
    """`cut` (`written_lengths` of `notes` by register) with the lower staff's bass notes
    ringing on: for the meter model only.

    The register cut ends a bass note at the next note of the lower staff within
    `sounding_region`, so a bass under an accompaniment of chords a fifth above (a polonaise,
    an oom-pah or waltz bass) comes out as short as the chords, and the long bass notes that
    mark the downbeats are lost: the Polonaise's transcription was read a beat (or an eighth)
    off. Here each bass note of the lower staff (the lowest of its chord) sounds on, up to its
    own sounding end, to the next bass at or below it, provided everything the lower staff
    strikes meanwhile lies at least `sounding_bass_leap` semitones above it; a bass followed
    by a note closer above (a line, a second voice) keeps its cut, so a moving bass line does
    not turn into held syncopations.
    """
    low = [i for i, s in enumerate(staves) if s == 2]
    sub = [notes[i] for i in low]
    basses = [(sub[g[0]].onset, sub[g[0]].pitch, low[g[0]])
              for g in chord_groups(sub, cfg.chord_spread_s)]
    ends = [n.offset for n in cut]
    for k, (_, pitch, i) in enumerate(basses):
        end = ends[i]
        for onset, other, _ in basses[k + 1:]:
            if onset >= notes[i].offset:  # it stopped sounding first
                end = notes[i].offset
                break
            if other <= pitch:  # the next bass note
                end = onset
                break
            if other < pitch + cfg.sounding_bass_leap:  # a line or a voice moving on
                break
        else:
            end = notes[i].offset
        ends[i] = max(ends[i], end)
    return [replace(n, offset=e) for n, e in zip(cut, ends, strict=True)]
