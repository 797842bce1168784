"""Train HarmonyNet-JAX: `python train.py --data DIR --phase {0,A,B} [--config cpu|pod]`."""

from harmonynet_jax.train.cli import main

if __name__ == "__main__":
    main()
