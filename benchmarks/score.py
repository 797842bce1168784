"""Score fidelity benchmark: humanised music21 corpus pieces -> score -> compared with the
written score (see `harmonynet_jax.score.fidelity`). Prints the table and the overall figures.

    PYTHONPATH=. python benchmarks/score.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import time

from harmonynet_jax.score import fidelity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=1, help="performances per piece")
    args = parser.parse_args()
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        results = fidelity.evaluate_all(seed=seed)
        print(f"seed {seed} ({time.perf_counter() - t0:.1f} s)")
        print(fidelity.table(results))
        print()


if __name__ == "__main__":
    main()
