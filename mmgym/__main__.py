"""``python -m mmgym COMMAND ...`` (the ``mmgym`` command, :func:`mmgym.cli.main`)."""

import sys

from .cli import main

sys.exit(main())
