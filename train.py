#!/usr/bin/env python
"""Train a market-making agent from one YAML experiment.

The command lives in :mod:`mmgym.agents.cli_train` (also ``mmgym train ...``); this file runs it from a
clone: ``python train.py ...``.
"""

import sys

from mmgym.agents.cli_train import main

if __name__ == "__main__":
    sys.exit(main())
