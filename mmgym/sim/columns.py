"""Named columns of the kernels' output blocks: offsets are assigned, never numbered by hand.

A :class:`Columns` is an ordered set of column names with a description each. The ledger declares
the columns every market shares (:mod:`mmgym.sim.ledger`); a scenario extends them with its own
(``LEDGER_AUX.extend(("spread_ticks", "..."))``): the shared columns keep their offsets and the new
ones follow, so a kernel reads ``AUX["spread_ticks"]`` into a module-level constant (numba freezes
it at compile time) and nothing is numbered across files.
"""

from __future__ import annotations

from typing import Iterable, Iterator


class Columns:
    """Ordered column names of one output block (reward terms, aux, statistics, observation).

    Args:
        columns: ``(name, description)`` pairs, in column order.

    Example:
        >>> base = Columns([("pnl", "wealth change"), ("fees", "fees paid")])
        >>> ext = base.extend([("events", "book events")])
        >>> ext["events"], ext.names
        (2, ('pnl', 'fees', 'events'))
    """

    def __init__(self, columns: Iterable[tuple[str, str]]):
        pairs = [(str(n), str(d)) for n, d in columns]
        self.names: tuple[str, ...] = tuple(n for n, _ in pairs)
        self.descriptions: dict[str, str] = dict(pairs)
        if len(set(self.names)) != len(self.names):
            dup = sorted({n for n in self.names if self.names.count(n) > 1})
            raise ValueError(f"duplicate column names: {', '.join(dup)}")
        self._index = {n: j for j, n in enumerate(self.names)}

    def extend(self, columns: Iterable[tuple[str, str]]) -> Columns:
        """These columns followed by ``columns`` (existing offsets unchanged)."""
        return Columns([(n, self.descriptions[n]) for n in self.names] + list(columns))

    def __getitem__(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"no column {name!r} (columns: {', '.join(self.names)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __repr__(self) -> str:
        return f"Columns({', '.join(self.names)})"
