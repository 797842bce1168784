"""Fidelity of the score pipeline: humanised corpus pieces back to their written score.

Each piece of the music21 corpus is excerpted, performed (`performance.perform`: tempo drift,
ritardando, onset jitter, articulation), turned into a score by `pipeline.analyze`, and
compared with the original. Per piece we report the share of written notes found
  - at the right bar and beat (bar index and offset from the downbeat, in that score's meter),
  - at the right time counted in quarter notes from the first note (barlines ignored),
  - with the right duration (tied notes merged),
  - on the right staff,
and whether the key signature and the time signature are right. Notes are matched per pitch
in time order (dynamic programming), so one wrong note does not shift the rest. Pieces marked
`held_out` were never used to choose a method or a weight (docs/score.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from music21 import chord, corpus, key, meter, note, stream

from harmonynet_jax.config import ScoreConfig
from harmonynet_jax.score.performance import Humanizer, perform
from harmonynet_jax.score.pipeline import analyze

SKIP_COST = 1.0  # leaving a note unmatched, in quarter lengths of position error
TARGETS = {"position": 0.97, "duration": 0.93, "staff": 0.98, "key": 0.90, "meter": 0.80}


@dataclass(frozen=True)
class Piece:
    """A corpus excerpt: which parts are the upper/lower staff, how it is performed."""

    name: str
    path: str
    bars: int  # measures kept, from the first (a pickup counts as one)
    upper: tuple[int, ...]  # corpus part indices written on the upper staff
    lower: tuple[int, ...]
    bpm: float  # quarter notes per minute of the performance
    number: int | None = None  # work number inside a multi-work corpus file (Essen)
    features: str = ""
    held_out: bool = False  # never used to tune ScoreConfig: the honest part of the figures


PIECES: tuple[Piece, ...] = (
    Piece("Mozart K545/1", "mozart/k545/movement1_exposition", 12, (0,), (1,), 126,
          features="4/4, Alberti bass"),
    Piece("Joplin Maple Leaf", "joplin/maple_leaf_rag", 13, (0,), (1,), 92,
          features="2/4, pickup, syncopation"),
    Piece("Bach BWV 66.6", "bach/bwv66.6", 10, (0, 1), (2, 3), 80,
          features="4/4, pickup, 4 voices"),
    Piece("Bach BWV 269", "bach/bwv269", 12, (0, 1), (2, 3), 88,
          features="3/4, pickup, 4 voices"),
    Piece("Chopin Mazurka 6/2", "chopin/mazurka06-2", 12, (0,), (1,), 132,
          features="3/4, triplets"),
    Piece("C. Schumann Op.17/3", "schumann_clara/opus17/movement3", 12, (2,), (3,), 96,
          features="6/8 (in two), piano part"),
    Piece("Essen kinder 1", "essenFolksong/kinder0", 16, (0,), (), 100, number=1,
          features="2/4 melody"),
    Piece("Essen kinder 6", "essenFolksong/kinder0", 12, (0,), (), 120, number=6,
          features="6/8 melody"),
    Piece("Essen kinder 14", "essenFolksong/kinder0", 16, (0,), (), 96, number=14,
          features="3/8 melody"),
    Piece("Bach BWV 40.8", "bach/bwv40.8", 10, (0, 1), (2, 3), 84,
          features="4/4, 4 voices"),
    # Held out: added later; never used to choose a method or a weight.
    Piece("C. Schumann Polonaise 3", "schumann_clara/polonaise_op1n3", 12, (0,), (1,), 100,
          features="3/4, piano, dotted rhythms", held_out=True),
    Piece("R. Schumann Op.48/2", "schumann_robert/dichterliebe_no2", 12, (1,), (2,), 72,
          features="2/4, pickup, song accompaniment", held_out=True),
    Piece("Liliuokalani Aloha Oe", "liliuokalani/aloha_oe", 10, (5,), (6,), 84,
          features="4/4, pickup, piano part", held_out=True),
    Piece("Johnson Lift Every Voice", "johnson_j_r/lift_every_voice", 10, (0, 1), (2, 3), 84,
          features="6/8, pickup, 4 voices", held_out=True),
    Piece("Beach Prayer", "beach/prayer_of_a_tired_child", 10, (4,), (5,), 72,
          features="4/4, piano part", held_out=True),
    Piece("Haydn Op.74/1 Menuet", "haydn/opus74no1/movement3", 12, (0, 1), (2, 3), 120,
          features="3/4, triplets, string quartet", held_out=True),
    Piece("R. Schumann Op.41/1 Scherzo", "schumann_robert/opus41no1/movement2", 12, (0, 1),
          (2, 3), 150, features="6/8, string quartet", held_out=True),
    Piece("Essen kinder 22", "essenFolksong/kinder0", 16, (0,), (), 100, number=22,
          features="3/8 melody", held_out=True),
    Piece("Essen kinder 24", "essenFolksong/kinder0", 16, (0,), (), 120, number=24,
          features="3/4 melody, pickup", held_out=True),
    Piece("Essen kinder 29", "essenFolksong/kinder0", 13, (0,), (), 100, number=29,
          features="2/4 melody, pickup", held_out=True),
    Piece("Essen kinder 34", "essenFolksong/kinder0", 16, (0,), (), 120, number=34,
          features="6/8 melody, pickup", held_out=True),
    Piece("Essen kinder 35", "essenFolksong/kinder0", 11, (0,), (), 100, number=35,
          features="4/4 melody, pickup", held_out=True),
)
TUNING = tuple(p for p in PIECES if not p.held_out)
HELD_OUT = tuple(p for p in PIECES if p.held_out)


@dataclass(frozen=True)
class Drift:
    """Another tempo wave for the performance model (`Humanizer.drift` and `drift_period_q`,
    see `performance`). Real rubato bends the tempo further than its default; `benchmarks/
    score.py --drift` measures how the pipeline holds up."""

    amount: float
    period_q: float

    @classmethod
    def parse(cls, text: str) -> Drift:
        """'0.15,8' -> Drift(0.15, 8.0)."""
        try:
            amount, period = (float(x) for x in text.split(","))
        except ValueError:
            raise ValueError(f"drift must be AMOUNT,PERIOD (e.g. 0.15,8), got {text!r}"
                             ) from None
        if not 0 <= amount < 1 or period <= 0:
            raise ValueError(f"drift amount must lie in [0, 1) and its period be positive, "
                             f"got {text!r}")
        return cls(amount, period)


@dataclass(frozen=True)
class Written:
    """A note as written: pitch, start and end (quarter lengths), staff."""

    pitch: int
    start: Fraction
    end: Fraction
    staff: int


@dataclass(frozen=True)
class Result:
    piece: str
    notes: int
    position: float
    rhythm: float
    duration: float
    staff: float
    key_ok: bool
    meter_ok: bool
    meter: str
    ref_meter: str
    key: str
    ref_key: str
    tempo_bpm: float


def _fr(x: float) -> Fraction:
    return Fraction(x).limit_denominator(96)


def part_notes(part: stream.Stream, staff: int) -> list[Written]:
    """Sounding notes of a part with ties merged (grace notes dropped)."""
    open_ties: dict[int, int] = {}
    out: list[Written] = []
    for el in part.recurse().notes:
        if el.duration.isGrace or el.duration.quarterLength == 0:
            continue
        start = _fr(el.getOffsetInHierarchy(part))
        end = start + _fr(el.duration.quarterLength)
        for n in el.notes if isinstance(el, chord.Chord) else [el]:
            if not isinstance(n, note.Note):
                continue
            midi = n.pitch.midi
            tie_type = n.tie.type if n.tie is not None else None
            j = open_ties.get(midi)
            if tie_type in ("stop", "continue") and j is not None and out[j].end == start:
                w = out[j]
                out[j] = Written(midi, w.start, end, staff)
            else:
                out.append(Written(midi, start, end, staff))
                j = len(out) - 1
            if tie_type in ("start", "continue"):
                open_ties[midi] = j
            else:
                open_ties.pop(midi, None)
    return out


def dedupe(notes: list[Written]) -> list[Written]:
    """One note per (pitch, start): unisons between voices sound once."""
    best: dict[tuple[int, Fraction], Written] = {}
    for n in sorted(notes, key=lambda n: (n.staff, -(n.end - n.start))):
        best.setdefault((n.pitch, n.start), n)
    return sorted(best.values(), key=lambda n: (n.start, n.pitch))


def _measures(s: stream.Score) -> list[stream.Measure]:
    return list(s.parts[0].getElementsByClass(stream.Measure))


def bar_frame(s: stream.Score) -> tuple[Fraction, Fraction, str]:
    """(offset of the first downbeat, bar length, time signature) of a score."""
    ms = _measures(s)
    ts = s.parts[0].recurse().getElementsByClass(meter.TimeSignature).first()
    ratio = ts.ratioString if ts is not None else "4/4"
    bar = _fr(ts.barDuration.quarterLength) if ts is not None else Fraction(4)
    first = ms[0]
    short = _fr(first.duration.quarterLength) < bar and len(ms) > 1
    return (_fr(ms[1].offset) - _fr(first.offset) if short else Fraction(0)), bar, ratio


def key_sharps(s: stream.Score) -> int:
    ks = s.parts[0].recurse().getElementsByClass(key.KeySignature).first()
    return ks.sharps if ks is not None else 0


def excerpt(piece: Piece) -> stream.Score:
    """The first `bars` measures of the corpus piece, offsets starting at 0."""
    full = corpus.parse(piece.path, number=piece.number) if piece.number else corpus.parse(
        piece.path)
    first = _measures(full)[0].number
    return full.measures(first, first + piece.bars - 1)


def reference(piece: Piece) -> tuple[stream.Score, list[Written]]:
    ex = excerpt(piece)
    notes: list[Written] = []
    origin = _fr(_measures(ex)[0].offset)
    for staff, indices in ((1, piece.upper), (2, piece.lower)):
        for i in indices:
            for n in part_notes(ex.parts[i], staff):
                notes.append(Written(n.pitch, n.start - origin, n.end - origin, staff))
    return ex, dedupe(notes)


def _align(ref: list[Written], out: list[Written], ref_pos: list[Fraction],
           out_pos: list[Fraction]) -> list[tuple[int, int]]:
    """Monotone alignment of two same-pitch sequences minimising position error."""
    n, m = len(ref), len(out)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    move = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        for j in range(m + 1):
            if i == 0 and j == 0:
                continue
            options = []
            if i > 0 and j > 0:
                d = min(float(abs(ref_pos[i - 1] - out_pos[j - 1])), 2 * SKIP_COST)
                options.append((cost[i - 1][j - 1] + d, 0))
            if i > 0:
                options.append((cost[i - 1][j] + SKIP_COST, 1))
            if j > 0:
                options.append((cost[i][j - 1] + SKIP_COST, 2))
            cost[i][j], move[i][j] = min(options)
    pairs = []
    i, j = n, m
    while i > 0 or j > 0:
        mv = move[i][j]
        if mv == 0:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif mv == 1:
            i -= 1
        else:
            j -= 1
    return pairs


class Shares(NamedTuple):
    """Shares of the reference notes that came back right, each in [0, 1]."""

    position: float  # same bar index and same offset from that bar's downbeat (strict)
    rhythm: float  # same onset in quarter notes from the first note: barlines ignored
    duration: float  # same tied length
    staff: float  # same staff


def compare(ref_score: stream.Score, ref: list[Written], out_score: stream.Score) -> Shares:
    """Match the notes (per pitch, in time order) and count what each reading got right.

    `position` is the target: a wrong meter, bar length or pickup costs every note after it.
    `rhythm` is the same comparison with barlines ignored (onsets counted in quarter notes
    from the first note), so the rhythm inside the bars shows even when the meter is wrong;
    a wrong metrical level (all values doubled or halved) still fails both.
    """
    out = dedupe([n for i, p in enumerate(out_score.parts) for n in part_notes(p, i + 1)])
    r_down, r_bar, _ = bar_frame(ref_score)
    o_down, o_bar, _ = bar_frame(out_score)
    r_first = min((n.start for n in ref), default=Fraction(0))
    o_first = min((n.start for n in out), default=Fraction(0))

    def bar_beat(start: Fraction, down: Fraction, bar: Fraction, first: Fraction
                 ) -> tuple[int, Fraction]:
        """(bar index counted from the bar of the first note, offset from its downbeat): a
        pickup bar and a full first bar opening with rests are the same music."""
        pos = start - down
        k = pos // bar
        return int(k - (first - down) // bar), pos - k * bar

    by_pitch_ref: dict[int, list[Written]] = defaultdict(list)
    by_pitch_out: dict[int, list[Written]] = defaultdict(list)
    for n in ref:
        by_pitch_ref[n.pitch].append(n)
    for n in out:
        by_pitch_out[n.pitch].append(n)
    pos_ok = rhythm_ok = dur_ok = staff_ok = 0
    for pitch, rs in by_pitch_ref.items():
        os_ = by_pitch_out.get(pitch, [])
        r_time = [n.start - r_first for n in rs]
        o_time = [n.start - o_first for n in os_]
        for i, j in _align(rs, os_, r_time, o_time):
            r, o = rs[i], os_[j]
            pos_ok += (bar_beat(r.start, r_down, r_bar, r_first)
                       == bar_beat(o.start, o_down, o_bar, o_first))
            rhythm_ok += r_time[i] == o_time[j]
            dur_ok += (r.end - r.start) == (o.end - o.start)
            staff_ok += r.staff == o.staff
    total = max(1, len(ref))
    return Shares(pos_ok / total, rhythm_ok / total, dur_ok / total, staff_ok / total)


def _signature_name(sharps: int) -> str:
    if sharps == 0:
        return "no sharps/flats"
    return f"{abs(sharps)} {'sharp' if sharps > 0 else 'flat'}{'s' if abs(sharps) > 1 else ''}"


def perform_reference(ref_score: stream.Score, ref: list[Written], bpm: float, seed: int,
                      pedal_changes: Callable[[float], list[float]] | None = None,
                      drift: Drift | None = None
                      ) -> tuple[list[tuple[float, float, int, int]], list[tuple[float, float]]]:
    """A humanised performance of the written notes: the pedal changed at every barline, or
    where `pedal_changes(length in quarter notes)` says (no change points: no pedal); the
    tempo wave is the performance model's unless `drift` says otherwise."""
    length = max(float(n.end) for n in ref)
    if pedal_changes is None:
        down, bar, _ = bar_frame(ref_score)
        barlines = (float(down + k * bar) for k in range(int(length // float(bar)) + 1))
        changes = sorted({0.0, *(x for x in barlines if 0 < x < length)})
    else:
        changes = pedal_changes(length)
    wave = {} if drift is None else {"drift": drift.amount, "drift_period_q": drift.period_q}
    h = Humanizer(bpm=bpm, seed=seed, **wave)
    return perform([(float(n.start), float(n.end), n.pitch, n.staff) for n in ref], h, changes)


@dataclass(frozen=True)
class Performed:
    """A piece's written score and one humanised performance of it (`seed`)."""

    piece: Piece
    ref_score: stream.Score
    ref: list[Written]
    played: list[tuple[float, float, int, int]]
    pedals: list[tuple[float, float]]

    @classmethod
    def of(cls, piece: Piece, seed: int, drift: Drift | None = None) -> Performed:
        ref_score, ref = reference(piece)
        return cls(piece, ref_score, ref,
                   *perform_reference(ref_score, ref, piece.bpm, seed, drift=drift))

    def score(self, notes: Sequence[Sequence[float]], pedals: Sequence[Sequence[float]],
              cfg: ScoreConfig | None = None, durations: str = "played") -> Result:
        """`notes` (this performance, or what a transcriber heard of it) scored and compared
        with the written piece."""
        return evaluate_notes(self.piece, self.ref_score, self.ref, notes, pedals, cfg,
                              durations)


def evaluate(piece: Piece, seed: int = 0, cfg: ScoreConfig | None = None,
             drift: Drift | None = None) -> Result:
    """Perform, transcribe to a score and compare one piece."""
    p = Performed.of(piece, seed, drift)
    return p.score(p.played, p.pedals, cfg)


def ringing(played: Sequence[Sequence[float]], pedals: Sequence[Sequence[float]]
            ) -> list[tuple[float, float, int, int]]:
    """A performance as a frame decoder hears it: each note lasts while it sounds (its own
    pedal included), and there are no pedal spans."""
    from harmonynet_jax.evaluate import sustained  # the Rust helper, imported when needed

    return [(n.onset, n.offset, n.pitch, n.velocity) for n in sustained(played, pedals)]


def evaluate_sounding(piece: Piece, seed: int = 0, cfg: ScoreConfig | None = None,
                      durations: str = "sounding") -> Result:
    """Perform one piece, lengthen its notes by the pedal (`ringing`) and score them without
    pedal spans, read as `durations` (benchmarks/score.py --sounding)."""
    p = Performed.of(piece, seed)
    return p.score(ringing(p.played, p.pedals), [], cfg, durations)


def evaluate_notes(piece: Piece, ref_score: stream.Score, ref: list[Written],
                   notes: Sequence[Sequence[float]], pedals: Sequence[Sequence[float]],
                   cfg: ScoreConfig | None = None, durations: str = "played") -> Result:
    """Score `notes` (onset s, offset s, pitch, velocity) and compare with the written piece.

    Apart from `evaluate` so the notes can be the performance itself or what a transcriber
    heard of it (`benchmarks/score.py --transcribed`), judged by the same metric.
    `durations` is passed to `analyze` ("sounding" for notes that ring on with the pedal).
    """
    ratio = bar_frame(ref_score)[2]
    out_score, info = analyze(notes, pedals=pedals, title=piece.name, cfg=cfg,
                              durations=durations)
    shares = compare(ref_score, ref, out_score)
    ref_sharps = key_sharps(ref_score)
    return Result(piece.name, len(ref), shares.position, shares.rhythm, shares.duration,
                  shares.staff, key_sharps(out_score) == ref_sharps, info.time_signature == ratio,
                  info.time_signature, ratio, info.key, _signature_name(ref_sharps),
                  info.tempo_bpm)


def evaluate_all(pieces: Sequence[Piece] = PIECES, seed: int = 0,
                 cfg: ScoreConfig | None = None, drift: Drift | None = None) -> list[Result]:
    return [evaluate(p, seed, cfg, drift) for p in pieces]


def summary(results: Sequence[Result]) -> dict[str, float]:
    """Note-weighted shares, and shares of pieces for key and meter."""
    total = sum(r.notes for r in results) or 1
    return {
        "position": sum(r.position * r.notes for r in results) / total,
        "rhythm": sum(r.rhythm * r.notes for r in results) / total,
        "duration": sum(r.duration * r.notes for r in results) / total,
        "staff": sum(r.staff * r.notes for r in results) / total,
        "key": sum(r.key_ok for r in results) / max(1, len(results)),
        "meter": sum(r.meter_ok for r in results) / max(1, len(results)),
    }


def overall(results: Sequence[Result]) -> str:
    """One line: the summary figures against the targets (`rhythm` has none: a diagnostic)."""
    return ", ".join(
        f"{k} {100 * v:.1f}%" + (f" (target {100 * TARGETS[k]:.0f}%)" if k in TARGETS else "")
        for k, v in summary(results).items())


def table(results: Sequence[Result]) -> str:
    """A plain-text table of the results and the overall figures against the targets."""
    head = (f"{'piece':<28}{'notes':>6}{'pos %':>7}{'rhy %':>7}{'dur %':>7}{'staff %':>8}  "
            f"{'meter (ref)':<14}{'key (ref sig)':<30}{'bpm':>5}")
    lines = [head, "-" * len(head)]
    for r in results:
        meter_s = f"{r.meter}{'' if r.meter_ok else ' (' + r.ref_meter + ')'}"
        key_s = f"{r.key}{'' if r.key_ok else ' (' + r.ref_key + ')'}"
        lines.append(f"{r.piece:<28}{r.notes:>6}{100 * r.position:>7.1f}{100 * r.rhythm:>7.1f}"
                     f"{100 * r.duration:>7.1f}{100 * r.staff:>8.1f}  {meter_s:<14}{key_s:<30}"
                     f"{r.tempo_bpm:>5.0f}")
    lines.append("-" * len(head))
    lines.append("overall: " + overall(results))
    return "\n".join(lines)
