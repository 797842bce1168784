"""Score fidelity benchmark: humanised music21 corpus pieces -> score -> compared with the
written score (see `harmonynet_jax.score.fidelity`). Prints one table per seed and the overall
figures for the tuning pieces, the held-out pieces (never used to tune `ScoreConfig`) and all.

    PYTHONPATH=. python benchmarks/score.py [--seeds 2] [--first-seed 0] [--set all]
"""

from __future__ import annotations

import argparse
import time

from harmonynet_jax.score import fidelity

SETS = {"all": fidelity.PIECES, "tuning": fidelity.TUNING, "held-out": fidelity.HELD_OUT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1, help="performances per piece")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--set", choices=sorted(SETS), default="all")
    args = parser.parse_args()
    held_out = {p.name for p in fidelity.HELD_OUT}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        results = fidelity.evaluate_all(SETS[args.set], seed=seed)
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
