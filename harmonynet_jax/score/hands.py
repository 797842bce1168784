"""Hand separation: which notes go to the upper (right-hand) and lower (left-hand) staff.

A fixed split at middle C breaks whenever an accompaniment climbs or a melody dips. We let
the split point itself move: for every chord (onset group) the boundary is a pitch, notes
below it go to the left hand, and Viterbi chooses the boundary path that moves little (so
each hand keeps its voice), keeps each hand within about a tenth, and respects each hand's
usual register only weakly. A note struck while the same hand holds an earlier note costs a
little (it makes a second voice), so an Alberti bass under a held melody note stays in the
left hand even above middle C; a held bass is exempt (the pedal or the left hand holds it
under whatever it plays above). A single-note line (legato, steps of at most a sixth) that
changes hands costs `ScoreConfig.line_switch_cost`, so an arpeggio rising from the bass stays
in the hand that began it. A close chord under fewer right-hand notes is the left hand's
accompaniment, not part writing the hands share. The hands may cross: while the left hand
strikes its chord again, a lone note out of its reach below it is the right hand's, crossed
under (`_crossing`), a state of its own beside the boundaries.

Part writing (chorales, string quartets) follows another convention: `parts`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.events import Note
from harmonynet_jax.score.parts import four_part_texture, split_four_part

LOWEST, HIGHEST = 20, 109  # boundaries lie between MIDI pitches LOWEST..HIGHEST
HOLD_TOLERANCE_S = 0.08  # a note released this soon after another's onset is not "held"
OCTAVE = 12.0
CLOSE_POSITION_SPAN = 11  # semitones: a close triad or seventh chord lies within an octave


def chord_groups(notes: Sequence[Note], spread: float) -> list[list[int]]:
    """Indices of near-simultaneous notes, each group sorted by pitch."""
    order = sorted(range(len(notes)), key=lambda i: (notes[i].onset, notes[i].pitch))
    groups: list[list[int]] = []
    start = -np.inf
    for i in order:
        if notes[i].onset - start > spread:
            groups.append([])
            start = notes[i].onset
        groups[-1].append(i)
    return [sorted(g, key=lambda i: notes[i].pitch) for g in groups]


def _accompaniment(lh: np.ndarray, rh: np.ndarray) -> bool:
    """A close chord in the left hand under fewer right-hand notes: an accompaniment under
    the melody, which one hand grips whole (the balance of part writing does not apply)."""
    return lh.size > rh.size and float(lh.max() - lh.min()) <= CLOSE_POSITION_SPAN


def _span_cost(hand: np.ndarray, cfg: ScoreConfig) -> float:
    """Cost of one hand's notes spanning more than `hand_span`."""
    if not hand.size:
        return 0.0
    return cfg.span_cost * max(0.0, float(hand.max() - hand.min()) - cfg.hand_span)


def _split_costs(pitches: np.ndarray, cfg: ScoreConfig) -> np.ndarray:
    """Cost of giving the k lowest notes to the left hand, k = 0..n (span, balance of a
    chord between the hands unless it is a close accompaniment chord under the melody,
    register)."""
    n = len(pitches)
    out = np.zeros(n + 1)
    for k in range(n + 1):
        lh, rh = pitches[:k], pitches[k:]
        out[k] += _span_cost(lh, cfg) + _span_cost(rh, cfg)
        # chorale-like chords: the hands share the voices
        if lh.size and rh.size and not _accompaniment(lh, rh):
            out[k] += cfg.balance_cost * max(0, abs(lh.size - rh.size) - 1)
        out[k] += cfg.range_cost * float(np.clip(lh - cfg.lh_high, 0, None).sum())
        out[k] += cfg.range_cost * float(np.clip(cfg.rh_low - rh, 0, None).sum())
    return out


def _gap_costs(chord: np.ndarray, bounds: np.ndarray, cfg: ScoreConfig) -> np.ndarray:
    """Per boundary: how much narrower the gap it splits is than the widest gap between
    the sounding notes (octaves, times `gap_cost`). The hands part where the texture does:
    an accompaniment chord stays whole under a melody an octave above it."""
    out = np.zeros(len(bounds))
    if cfg.gap_cost == 0 or len(chord) < 2:
        return out
    k = np.searchsorted(chord, bounds)
    split = (k > 0) & (k < len(chord))
    widest = float(np.diff(chord).max())
    gap = chord[np.minimum(k, len(chord) - 1)] - chord[np.maximum(k - 1, 0)]
    out[split] = cfg.gap_cost * (widest - gap[split]) / OCTAVE
    return out


def _idle_costs(pitches: np.ndarray, k_of_b: np.ndarray, held_below: np.ndarray,
                n_held: int, previous: np.ndarray, bounds: np.ndarray, cfg: ScoreConfig
                ) -> np.ndarray:
    """Per boundary: a chord given wholly to one hand while the other hand played the
    previous chord and now holds nothing (it is free, so a pianist would share the chord).
    A hand that did not play the previous chord is resting: an oom-pah afterbeat chord
    stays whole in the right hand. A chord that repeats the lowest (highest) notes of the
    previous one is the left (right) hand striking its chord again while the other hand's
    note ends: a Polonaise's repeated afterbeat triad stays whole."""
    n = len(pitches)
    out = np.zeros(len(bounds))
    if cfg.idle_hand_cost == 0 or n < 2 or previous.size == 0:
        return out
    before = np.sort(previous)
    before_below = np.searchsorted(before, bounds)
    lh_idle = (k_of_b == 0) & (before_below > 0) & (held_below == 0)
    rh_idle = (k_of_b == n) & (before_below < previous.size) & (held_below == n_held)
    repeated = before.size > n
    if repeated and np.array_equal(before[:n], pitches):
        rh_idle[:] = False
    if repeated and np.array_equal(before[-n:], pitches):
        lh_idle[:] = False
    out[lh_idle | rh_idle] = cfg.idle_hand_cost * (n - 1)
    return out


def _held_costs(pitches: np.ndarray, held: np.ndarray, bounds: np.ndarray, cfg: ScoreConfig
                ) -> np.ndarray:
    """Per boundary: pairs of a struck note and an earlier note its hand still holds (a
    second voice in that hand), `held_note_cost` each. A held bass (no note sounds lower) is
    exempt: a hand span or more below the struck notes the pedal holds it, not the hand (an
    arpeggio over a pedalled bass stays in the left hand), and within the span holding a bass
    under the chords above it is how a left hand plays (a Polonaise's held bass under its
    afterbeat triads), not a second voice that would push the triads' top note up. A single
    note struck within the span above it is a second voice like any other, so a held inner
    note stays apart from a scale over it (K545's held F4 under the right hand's run)."""
    out = np.zeros(len(bounds))
    if held.size == 0:
        return out
    bass = min(float(held.min()), float(pitches.min()))
    if pitches.size == 1 and float(pitches[0] - held.min()) < cfg.hand_span:
        bass = -np.inf  # one note within reach over the held bass: no exemption
    for h in held[held > bass]:
        for p in pitches:
            same_hand = (bounds > max(p, h)) | (bounds < min(p, h))
            out += cfg.held_note_cost * same_hand
    return out


def _line_switch_costs(notes: Sequence[Note], previous: list[int], current: list[int],
                       bounds: np.ndarray, cfg: ScoreConfig) -> np.ndarray | None:
    """[new boundary, previous boundary]: `line_switch_cost` when a single-note line (one
    note struck as the one before it is let go, at most `line_step` away) changes hands. A
    figure that leaves the bass and climbs stays in the hand that began it; None when the two
    groups are no such line."""
    if len(previous) != 1 or len(current) != 1:
        return None
    q, p = notes[previous[0]], notes[current[0]]
    if q.offset > p.onset + HOLD_TOLERANCE_S or abs(p.pitch - q.pitch) > cfg.line_step:
        return None
    return cfg.line_switch_cost * ((bounds[:, None] > p.pitch) != (bounds[None, :] > q.pitch))


def sounding(notes: Sequence[Note], groups: list[list[int]]) -> list[np.ndarray]:
    """Per onset group, the pitches sounding just after it is struck (held notes too)."""
    onsets = np.array([n.onset for n in notes])
    offsets = np.array([n.offset for n in notes])
    pitches = np.array([n.pitch for n in notes])
    out = []
    for g in groups:
        t = max(notes[i].onset for i in g)
        on = (onsets <= t) & (offsets > t + HOLD_TOLERANCE_S)
        on[g] = True
        out.append(np.sort(pitches[on]))
    return out


def local_costs(notes: Sequence[Note], groups: list[list[int]], chords: list[np.ndarray],
                bounds: np.ndarray, cfg: ScoreConfig) -> list[dict[str, np.ndarray]]:
    """Per onset group and per boundary, each cost term that does not depend on the
    previous boundary (kept apart so a diagnosis can say which term decided a split)."""
    onsets = np.array([n.onset for n in notes])
    offsets = np.array([n.offset for n in notes])
    all_pitches = np.array([n.pitch for n in notes], dtype=float)
    out: list[dict[str, np.ndarray]] = []
    previous = np.zeros(0)
    for g, chord in zip(groups, chords, strict=True):
        pitches = np.array([notes[i].pitch for i in g], dtype=float)
        k_of_b = np.searchsorted(pitches, bounds)  # notes below the boundary
        t = notes[g[0]].onset
        held = all_pitches[(onsets < t - cfg.chord_spread_s) & (offsets > t + HOLD_TOLERANCE_S)]
        held_below = np.searchsorted(np.sort(held), bounds)
        out.append({
            "split": _split_costs(pitches, cfg)[k_of_b],
            "held": _held_costs(pitches, np.sort(held), bounds, cfg),
            "gap": _gap_costs(chord, bounds, cfg),
            "idle": _idle_costs(pitches, k_of_b, held_below, held.size, previous, bounds, cfg),
        })
        previous = pitches
    return out


def part_writing(notes: Sequence[Note], cfg: ScoreConfig) -> bool:
    """Whether `notes` sound like part writing (`parts.four_part_texture`)."""
    groups = chord_groups(notes, cfg.chord_spread_s)
    return four_part_texture(sounding(notes, groups), cfg)


def _crossing(pitches: np.ndarray, previous: np.ndarray, cfg: ScoreConfig
              ) -> tuple[float, float, float] | None:
    """A right hand crossing under the left: the left hand strikes its previous chord again
    (the lowest notes of the previous group, or the chord of a crossing) while one new note
    lies more than a hand span below that chord's top, out of the left hand's reach, so the
    free right hand crosses under to play it (a Polonaise's leap to the bass between the
    afterbeat triads). (lowest and highest previous boundary, one per semitone, whose left
    hand is that chord; cost of this group's crossing) or None."""
    if pitches.size < 3 or previous.size < pitches.size - 1:
        return None
    chord = pitches[1:]
    if float(chord.max() - pitches[0]) <= cfg.hand_span:
        return None
    if not np.array_equal(previous[:chord.size], chord):
        return None
    above = float(previous[chord.size]) if previous.size > chord.size else float(HIGHEST)
    # the left hand's span and register; the crossing note is out of the right hand's
    # register by design
    cost = (cfg.hand_cross_cost + _span_cost(chord, cfg)
            + cfg.range_cost * float(np.clip(chord - cfg.lh_high, 0, None).sum()))
    return float(chord.max()), above, cost


def _crossed_cost(cost: np.ndarray, bounds: np.ndarray, pitches: np.ndarray,
                  previous: np.ndarray, cfg: ScoreConfig) -> tuple[float, int]:
    """Viterbi step into the crossed state (`_crossing`, the last state after the
    boundaries): its cumulative cost and the previous state it comes from. A crossing begins
    from a boundary that gave the previous group's lowest notes, this chord, to the left hand,
    or goes on from a crossing whose left-hand chord is struck again."""
    nb = len(bounds)
    best, origin = np.inf, 0
    if cfg.hand_cross_cost < 0:
        return best, origin
    begins = _crossing(pitches, previous, cfg)
    if begins is not None:
        lo, hi, c = begins
        allowed = np.flatnonzero((bounds > lo) & (bounds < hi))
        entry = cost[allowed] + cfg.boundary_move_cost * np.abs(bounds[allowed] - (lo + 0.5))
        j = int(np.argmin(entry))
        best, origin = float(entry[j]) + c, int(allowed[j])
    if np.isfinite(cost[nb]) and previous.size == pitches.size:
        goes_on = _crossing(pitches, previous[1:], cfg)
        if goes_on is not None and cost[nb] + goes_on[2] < best:
            best, origin = float(cost[nb]) + goes_on[2], nb
    return best, origin


def split_hands(notes: Sequence[Note], cfg: ScoreConfig) -> list[int]:
    """Staff per note: 1 = upper (right hand), 2 = lower (left hand).

    Besides one boundary per group, the Viterbi has a crossed state (`_crossing`): the
    group's lowest note in the right hand, the rest in the left. The next group moves on
    from it as from a boundary just above the left hand's chord."""
    if not notes:
        return []
    groups = chord_groups(notes, cfg.chord_spread_s)
    chords = sounding(notes, groups)
    if four_part_texture(chords, cfg):
        return split_four_part(notes, groups, chords)
    bounds = np.arange(LOWEST, HIGHEST) + 0.5
    nb = len(bounds)
    move = cfg.boundary_move_cost * np.abs(bounds[:, None] - bounds[None, :])
    cost = np.append(cfg.boundary_prior * np.abs(bounds - 60.0), np.inf)  # last: crossed
    crossed_at = 0.0  # the boundary the crossed state moves on from (unused while inf)
    back: list[np.ndarray] = []
    previous: list[int] = []
    prev_pitches = np.zeros(0)
    for g, terms in zip(groups, local_costs(notes, groups, chords, bounds, cfg), strict=True):
        pitches = np.array([notes[i].pitch for i in g], dtype=float)
        trans = np.empty((nb, nb + 1))  # [new boundary, previous state]
        trans[:, :nb] = cost[None, :nb] + move
        trans[:, nb] = cost[nb] + cfg.boundary_move_cost * np.abs(bounds - crossed_at)
        switch = _line_switch_costs(notes, previous, g, bounds, cfg)
        if switch is not None:
            trans[:, :nb] += switch
        prev = np.argmin(trans, axis=1)
        crossed, origin = _crossed_cost(cost, bounds, pitches, prev_pitches, cfg)
        cost = np.append(trans[np.arange(nb), prev] + sum(terms.values()), crossed)
        back.append(np.append(prev, origin))
        crossed_at = float(pitches[1:].max()) + 0.5 if np.isfinite(crossed) else 0.0
        previous, prev_pitches = g, pitches
    b = int(np.argmin(cost))
    staves = [1] * len(notes)
    for g, prev in zip(reversed(groups), reversed(back), strict=True):
        for i in g:
            if b == nb:  # crossed: the lowest note is the right hand's
                staves[i] = 1 if i == g[0] else 2
            else:
                staves[i] = 2 if notes[i].pitch < bounds[b] else 1
        b = int(prev[b])
    return staves
