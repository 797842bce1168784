"""Regenerates tokens_golden.json: hand-picked performances, their tokens from the Rust encoder
and the notes a segment decodes to. Review the diff by eye before committing a change: this
file is the contract between Rust and Python (docs/tokens.md).

    python tests/data/make_tokens_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path

from harmonynet_jax import tokens as T

# (name, start s, steps, notes [(on, off, pitch, vel)], pedals [(on, off)])
CASES = [
    ("empty segment", 0.0, 200, [], []),
    ("single note", 0.0, 200, [(0.5, 1.0, 60, 64)], []),
    ("note at time zero", 0.0, 100, [(0.0, 0.2, 21, 40)], []),
    ("note at last step", 0.0, 100, [(0.99, 1.2, 108, 90)], []),
    ("note ending at segment end", 0.0, 100, [(0.5, 1.0, 62, 70)], []),
    ("note ending one step before end", 0.0, 100, [(0.5, 0.99, 62, 70)], []),
    ("triad same velocity", 0.0, 200, [(0.1, 0.9, 60, 80), (0.1, 0.9, 64, 80), (0.1, 0.9, 67, 80)], []),
    ("chord mixed velocities", 0.0, 200, [(0.1, 0.5, 48, 30), (0.1, 0.5, 55, 100), (0.1, 0.6, 64, 30)], []),
    ("velocity extremes", 0.0, 100, [(0.1, 0.2, 60, 1), (0.3, 0.4, 61, 127), (0.5, 0.6, 62, 0)], []),
    ("piano range edges", 0.0, 100, [(0.1, 0.5, 21, 50), (0.1, 0.5, 108, 50), (0.1, 0.5, 20, 50), (0.1, 0.5, 109, 50)], []),
    ("same pitch restrike overlap", 0.0, 200, [(0.1, 1.0, 60, 60), (0.5, 1.5, 60, 90)], []),
    ("same pitch restrike touching", 0.0, 200, [(0.1, 0.5, 60, 60), (0.5, 0.8, 60, 90)], []),
    ("two onsets same step same pitch", 0.0, 100, [(0.1, 0.3, 60, 60), (0.101, 0.6, 60, 90)], []),
    ("very short note", 0.0, 100, [(0.2, 0.2001, 72, 64)], []),
    ("tie from previous segment", 1.0, 100, [(0.5, 1.5, 60, 64)], []),
    ("tie through whole segment", 1.0, 100, [(0.5, 3.0, 60, 64)], []),
    ("tie several pitches sorted", 2.0, 100, [(1.5, 2.5, 72, 64), (1.9, 2.2, 48, 64), (1.0, 3.0, 60, 64)], []),
    ("note released exactly at segment start", 1.0, 100, [(0.5, 1.0, 60, 64), (1.0, 1.2, 64, 64)], []),
    ("note starting exactly at segment start", 1.0, 100, [(1.0, 1.5, 60, 64)], []),
    ("pedal within segment", 0.0, 200, [(0.1, 0.3, 60, 64)], [(0.2, 1.0)]),
    ("pedal tied", 1.0, 100, [], [(0.5, 1.5)]),
    ("pedal tied with notes", 1.0, 100, [(0.8, 1.3, 40, 50)], [(0.5, 2.5)]),
    ("pedal spans merge", 0.0, 200, [], [(0.1, 0.5), (0.5, 0.9), (0.85, 1.2)]),
    ("pedal blip dropped", 0.0, 100, [], [(0.3, 0.302)]),
    ("pedal change same step as notes", 0.0, 200, [(0.5, 1.0, 60, 70), (1.0, 1.5, 64, 70)], [(0.2, 1.0), (1.05, 1.8)]),
    ("offs before pedal before ons", 0.0, 100, [(0.1, 0.5, 60, 70), (0.5, 0.9, 62, 70)], [(0.5, 0.8)]),
    ("velocity persists across times", 0.0, 200, [(0.1, 0.2, 60, 70), (0.3, 0.4, 62, 70), (0.5, 0.6, 64, 70)], []),
    ("velocity reset after off", 0.0, 200, [(0.1, 0.3, 60, 70), (0.3, 0.5, 62, 70)], []),
    ("dense cluster", 0.0, 100, [(0.2, 0.7, p, 50 + p % 40) for p in range(40, 52)], []),
    ("arpeggio", 0.0, 200, [(0.1 * i, 1.5, 36 + 4 * i, 60 + 5 * i) for i in range(10)], []),
    ("rounding to the grid", 0.0, 100, [(0.104, 0.306, 60, 64), (0.105, 0.2049, 61, 64)], []),
    ("notes after segment ignored", 0.0, 100, [(1.0, 1.5, 60, 64), (2.0, 2.5, 61, 64)], []),
    ("max length segment", 0.0, 512, [(5.11, 5.3, 60, 64), (0.0, 5.12, 40, 64)], [(0.0, 5.12)]),
    ("offset segment start on grid", 0.37, 50, [(0.3, 0.5, 60, 64), (0.4, 0.86, 61, 64)], []),
]


def clip(start: float, steps: int, notes, pedals):
    """What one segment decodes to: the canonical performance cut to the segment."""
    dt = T.VOCAB.step_seconds
    s = round(start / dt)
    e = s + steps
    out_notes = []
    for n in T.normalize(notes, pedals)[0]:
        on, off = round(n.onset / dt), round(n.offset / dt)
        if off <= s or on >= e:
            continue
        velocity = n.velocity if on >= s else 64
        out_notes.append([(max(on, s) - s) * dt, (min(off, e) - s) * dt, n.pitch, velocity])
    out_pedals = []
    for p in T.normalize(notes, pedals)[1]:
        on, off = round(p.onset / dt), round(p.offset / dt)
        if off <= s or on >= e:
            continue
        out_pedals.append([(max(on, s) - s) * dt, (min(off, e) - s) * dt])
    out_notes.sort(key=lambda n: (n[0], n[2]))
    return [[round(x, 6) for x in n] for n in out_notes], [[round(x, 6) for x in p] for p in out_pedals]


def main() -> None:
    cases = []
    for name, start, steps, notes, pedals in CASES:
        toks = T.encode(notes, pedals, start, steps)
        dec_notes, dec_pedals = clip(start, steps, notes, pedals)
        cases.append(
            {
                "name": name,
                "start": start,
                "steps": steps,
                "notes": [list(n) for n in notes],
                "pedals": [list(p) for p in pedals],
                "tokens": T.names(toks),
                "decoded_notes": dec_notes,
                "decoded_pedals": dec_pedals,
            }
        )
    path = Path(__file__).with_name("tokens_golden.json")
    path.write_text(json.dumps({"vocab_size": T.VOCAB.size, "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
