"""``python -m envs.generation ...``: see :mod:`envs.generation.cli`."""
import sys

from envs.generation.cli import main

sys.exit(main())
