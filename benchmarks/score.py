"""Score fidelity benchmark: humanised music21 corpus pieces -> score -> compared with the
written score (see `harmonynet_jax.score.fidelity`). Prints one table per seed and the overall
figures for the tuning pieces, the held-out pieces (never used to tune `ScoreConfig`) and all.

    PYTHONPATH=. python benchmarks/score.py [--seeds 2] [--first-seed 0] [--set all]
        [--transcribed [--cache DIR] [--checkpoint PATH] | --sounding] [--raw]
        [--drift AMOUNT,PERIOD]

With --transcribed (end to end: what a pianist gets), each performance is also rendered with
FluidSynth, transcribed by the bundled model as transcribe.py does, and the transcribed notes
are scored and compared the same way; the table puts both side by side, with the
transcription's onset F1 against the performed notes. --cache DIR keeps each transcription
(DIR/<model sha256 prefix>/seed<N>/<piece>.pkl, keyed by the weights file's sha256, the seed
and the piece), so later runs with the same model only score (seconds instead of minutes);
--checkpoint scores another weights file than the bundled one. The key does not cover the
synth or inference settings: clear DIR after changing those.

With --sounding (seconds, no audio) the performed notes are lengthened by their pedal
(`evaluate.sustained`) and scored without pedal spans, as the frame decoder reports them, and
with `durations="sounding"` (the written-length estimate of `score.sounding`); --raw scores
them as played durations instead, to see what the estimate gains. --transcribed passes
`durations="sounding"` for the transcribed notes unless --raw is given.

With --drift AMOUNT,PERIOD the performances bend the tempo by +-AMOUNT over PERIOD quarter
notes (`fidelity.Drift`) instead of the performance model's 0.05,16: a rubato stress test
(real players swing the tempo by 10-20 % within a phrase); it combines with every mode.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import pickle
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harmonynet_jax.score import fidelity

SETS = {"all": fidelity.PIECES, "tuning": fidelity.TUNING, "held-out": fidelity.HELD_OUT}
# End-to-end mode: the piano the performances are heard through. FluidR3_GM's grand piano is
# the SoundFont the synth fixture and the synth tests render with; FluidSynth's default
# settings (no reverb or chorus, no recording-chain effects): the clean case.
SOUNDFONT, PROGRAM = "FluidR3_GM", 0
TAIL_SECONDS = 1.0  # rendered after the last release so the final chord decays in the audio
# Silence before the first note, as recordings have; the transcription is moved back by as
# much before it is scored. Without it the bundled model missed a note struck at sample 0
# (Beach, Essen kinder 6 and 24 on seed 0), which shifts every position counted from it.
LEAD_IN_SECONDS = 0.5


@dataclass(frozen=True)
class EndToEnd:
    """One piece's figures from the perfect notes and from the transcribed notes."""

    perfect: fidelity.Result
    transcribed: fidelity.Result
    played: int  # notes performed (the transcription's reference)
    heard: int  # notes transcribed
    onset_f1: float | None  # mir_eval onset F1 (50 ms) against the performance (None: the
    # second reading has the performed onsets)


def _back(t: float) -> float:
    """A transcribed time (s) in the performance's own time (before the lead-in)."""
    return max(0.0, t - LEAD_IN_SECONDS)


def sounding_mode(pieces: Sequence[fidelity.Piece], seed: int, durations: str,
                  drift: fidelity.Drift | None = None) -> list[EndToEnd]:
    """Score each performance twice: as performed (with pedal spans), and lengthened by its
    pedal with no pedal spans (what the frame decoder reports), read as `durations`."""
    out = []
    for piece in pieces:
        p = fidelity.Performed.of(piece, seed, drift)
        ringing = fidelity.ringing(p.played, p.pedals)
        out.append(EndToEnd(p.score(p.played, p.pedals), p.score(ringing, [], durations=durations),
                            len(p.played), len(ringing), None))
    return out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_path(cache: str | Path, model_sha: str, seed: int, piece: fidelity.Piece,
               drift: fidelity.Drift | None = None) -> Path:
    """Where one transcription is kept: keyed by the model file, the performance (seed and
    tempo wave) and the piece."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", piece.name).strip("_")
    run = f"seed{seed}" + (f"_drift{drift.amount:g}_{drift.period_q:g}" if drift else "")
    return Path(cache) / model_sha[:16] / run / f"{slug}.pkl"


class _Transcriber:
    """The model and the synth, loaded on first use (a fully cached run loads neither) and
    kept for every seed of the run."""

    def __init__(self, checkpoint: str | None) -> None:
        self.checkpoint = checkpoint

    @functools.cached_property
    def model_sha(self) -> str:
        from harmonynet_jax.inference import bundled_model_path

        return file_sha256(Path(self.checkpoint) if self.checkpoint else bundled_model_path())

    @functools.cached_property
    def _loaded(self):
        from harmonynet_jax.config import InferenceConfig, SynthConfig
        from harmonynet_jax.inference import load_model, tuned_config
        from harmonynet_jax.synth.fixture import pick_preset
        from harmonynet_jax.synth.fluid import FluidSettings
        from harmonynet_jax.synth.soundfonts import piano_presets

        synth = SynthConfig()
        presets = piano_presets(synth.soundfont_dirs, synth.piano_programs)
        if not presets:
            raise SystemExit("no piano SoundFont found: install fluid-soundfont-gm")
        # the bundled model (or --checkpoint), with the settings its header carries
        model, origin = load_model(self.checkpoint)
        return (pick_preset(presets, SOUNDFONT, PROGRAM), FluidSettings(), model,
                tuned_config(origin, InferenceConfig()))

    def __call__(self, p: fidelity.Performed) -> tuple[list, list]:
        """(notes, pedal spans) transcribed from the rendered performance, in its own time."""
        from harmonynet_jax.inference import transcribe
        from harmonynet_jax.synth.render import render_notes
        from harmonynet_jax.tokens import Note

        preset, settings, model, cfg = self._loaded
        audio = render_notes(p.played, p.pedals, preset, settings,
                             tail_seconds=TAIL_SECONDS, lead_in_seconds=LEAD_IN_SECONDS)
        heard = transcribe(audio, model=model, config=cfg, sample_rate=settings.sample_rate)
        notes = [Note(_back(n.onset), _back(n.offset), n.pitch, n.velocity) for n in heard.notes]
        return notes, [(_back(q.onset), _back(q.offset)) for q in heard.pedals]


def end_to_end(pieces: Sequence[fidelity.Piece], seed: int, hear: _Transcriber,
               durations: str = "sounding", cache: str | Path | None = None,
               drift: fidelity.Drift | None = None) -> list[EndToEnd]:
    """Perform each piece, score the performance, and score its transcription.

    Imports JAX and the model lazily, so the default mode (and a fully cached run) stays
    fast. With `cache`, transcriptions are read from and written to it (`cache_path`).
    """
    from harmonynet_jax.evaluate import note_scores
    from harmonynet_jax.tokens import Note

    out = []
    for piece in pieces:
        p = fidelity.Performed.of(piece, seed, drift)
        where = (cache_path(cache, hear.model_sha, seed, piece, drift) if cache is not None
                 else None)
        if where is not None and where.exists():
            with open(where, "rb") as f:
                notes, heard_pedals = pickle.load(f)
        else:
            notes, heard_pedals = hear(p)
            if where is not None:
                where.parent.mkdir(parents=True, exist_ok=True)
                with open(where, "wb") as f:
                    pickle.dump(([tuple(n) for n in notes], heard_pedals), f)
        notes = [Note(*n) for n in notes]
        f1 = note_scores([Note(*n) for n in p.played], notes)["onset_f1"]
        out.append(EndToEnd(p.score(p.played, p.pedals),
                            p.score(notes, heard_pedals, durations=durations),
                            len(p.played), len(notes), f1))
    return out


SHARES = ("position", "rhythm", "duration", "staff", "key", "meter")


def side_by_side(rows: Sequence[EndToEnd], held_out: set[str], second: str = "transcribed"
                 ) -> str:
    """Per piece: each share from the perfect notes, then from the transcribed notes; the
    meter (and reference) and tempo readings of both; then the overall figures per set."""
    head = (f"  {'piece':<28}{'notes':>6}{'heard':>6}{'on F1':>6}  "
            + "".join(f"{name + ' %':>12}" for name in SHARES[:4])
            + f"  {'key':>5}  {'meter (ref)':<17}{'bpm':>8}")
    lines = [head, "  " + "-" * (len(head) - 2)]
    for e in rows:
        p, t = e.perfect, e.transcribed
        shares = "".join(f"{100 * getattr(p, k):>6.1f}{100 * getattr(t, k):>6.1f}"
                         for k in SHARES[:4])
        keys = f"{'y' if p.key_ok else 'n'}/{'y' if t.key_ok else 'n'}"
        meters = f"{p.meter} {t.meter}" + ("" if p.meter_ok and t.meter_ok else f" ({p.ref_meter})")
        mark = "* " if p.piece in held_out else "  "
        f1 = "-" if e.onset_f1 is None else f"{e.onset_f1:.3f}"
        lines.append(f"{mark}{p.piece:<28}{e.played:>6}{e.heard:>6}{f1:>6}  {shares}"
                     f"  {keys:>5}  {meters:<17}{p.tempo_bpm:>4.0f}{t.tempo_bpm:>4.0f}")
    lines.append("  " + "-" * (len(head) - 2))
    groups = (("all", rows), ("tuning", [e for e in rows if e.perfect.piece not in held_out]),
              ("held-out", [e for e in rows if e.perfect.piece in held_out]))
    for label, group in groups:
        if not group or (label != "all" and len(group) == len(rows)):
            continue
        f1s = [e.onset_f1 for e in group if e.onset_f1 is not None]
        for reading, results in (("perfect", [e.perfect for e in group]),
                                 (second, [e.transcribed for e in group])):
            s = fidelity.summary(results)
            extra = (f", onset F1 {sum(f1s) / len(f1s):.3f} (mean of pieces)"
                     if reading == second and f1s else "")
            lines.append(f"  {label} ({len(group)}) {reading:<11}: "
                         + ", ".join(f"{k} {100 * s[k]:.1f}%" for k in SHARES) + extra)
    return "\n".join(lines)


def _drift(text: str) -> fidelity.Drift:
    """--drift's value, with `Drift.parse`'s message when it is malformed."""
    try:
        return fidelity.Drift.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1, help="performances per piece")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--set", choices=sorted(SETS), default="all")
    parser.add_argument("--transcribed", action="store_true",
                        help="end to end: also render with FluidSynth, transcribe with the "
                             "bundled model and score the transcribed notes (minutes)")
    parser.add_argument("--sounding", action="store_true",
                        help="score the performed notes lengthened by their pedal, without "
                             "pedal spans, as sounding durations (seconds, no audio)")
    parser.add_argument("--raw", action="store_true",
                        help="with --sounding or --transcribed: read the notes as played "
                             "durations (no written-length estimate), for comparison")
    parser.add_argument("--cache", metavar="DIR",
                        help="with --transcribed: keep transcriptions in DIR (keyed by model "
                             "sha256, seed and piece) and reuse them")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="with --transcribed: a weights file instead of the bundled model")
    parser.add_argument("--drift", type=_drift, metavar="AMOUNT,PERIOD",
                        help="perform with a stronger tempo wave (rubato), e.g. 0.15,8: the "
                             "tempo swings +-15 %% over 8 quarter notes (default 0.05,16)")
    args = parser.parse_args()
    held_out = {p.name for p in fidelity.HELD_OUT}
    durations = "played" if args.raw else "sounding"
    hear = _Transcriber(args.checkpoint)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        if args.transcribed or args.sounding:
            rows = (end_to_end(SETS[args.set], seed, hear, durations, args.cache, args.drift)
                    if args.transcribed
                    else sounding_mode(SETS[args.set], seed, durations, args.drift))
            second = "transcribed" if args.transcribed else "sustained"
            print(f"seed {seed} ({time.perf_counter() - t0:.1f} s; * = held out; each column "
                  f"pair: perfect notes, {second} notes read as {durations} durations)")
            print(side_by_side(rows, held_out, second))
            print()
            continue
        results = fidelity.evaluate_all(SETS[args.set], seed=seed, drift=args.drift)
        print(f"seed {seed} ({time.perf_counter() - t0:.1f} s; * = held out)")
        for line in fidelity.table(results).splitlines():
            name = line[:28].strip()
            print(("* " if name in held_out else "  ") + line)
        for label, group in (("tuning", [r for r in results if r.piece not in held_out]),
                             ("held-out", [r for r in results if r.piece in held_out])):
            if group and len(group) < len(results):
                print(f"  {label} ({len(group)} pieces): {fidelity.overall(group)}")
        print()


if __name__ == "__main__":
    main()
