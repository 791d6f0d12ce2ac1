"""``python -m generation {generate,admit,report} ...``: see :mod:`generation.cli`."""
import sys

from generation.cli import main

sys.exit(main())
