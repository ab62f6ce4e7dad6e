#!/usr/bin/env python
"""Evaluate agents against the baselines on common random numbers.

The command lives in :mod:`mmgym.agents.cli_evaluate` (also ``mmgym evaluate ...``); this file runs it from a
clone: ``python evaluate.py ...``.
"""

import sys

from mmgym.agents.cli_evaluate import main

if __name__ == "__main__":
    sys.exit(main())
