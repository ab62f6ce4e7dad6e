"""Recorded market data: a reader of Binance captures, the columnar event format, the loader.

- :mod:`mmgym.data.binance`: the capture reader (spot, USDⓈ-M and COIN-M futures messages).
- :mod:`mmgym.data.recording`: :class:`Recording` (the event columns), the numba book pass that
  rebuilds and checks the book, :func:`convert`, :func:`save`, :func:`load`.
- ``python -m mmgym.data convert FILE.gz OUT.npz`` (and ``info FILE``).

The format and every assumption are in ``docs/REPLAY.md``.
"""

from .recording import EMPTY_ASK, EMPTY_BID, DataError, Recording, convert, load, save

__all__ = ["Recording", "DataError", "convert", "load", "save", "EMPTY_BID", "EMPTY_ASK"]
