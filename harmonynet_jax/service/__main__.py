"""`python -m harmonynet_jax.service`: the API and its workers with one command."""

import sys

from harmonynet_jax.service.server import main

sys.exit(main())
