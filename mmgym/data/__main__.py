"""``python -m mmgym.data convert FILE OUT`` / ``python -m mmgym.data info FILE``."""

from __future__ import annotations

import json
import sys


def _summary(rec) -> str:
    from .binance import KIND_NAMES

    counts = {KIND_NAMES[k]: int((rec.kind == k).sum()) for k in KIND_NAMES}
    m = rec.meta
    lines = [f"{m['source']}: {m['market']} {m['symbol']} tick {m['tick_size']:g} lot {m['lot_size']:g}, "
             f"{len(rec)} events over {rec.duration:.1f} s ({', '.join(f'{k} {v}' for k, v in counts.items())})",
             "report: " + json.dumps(m["report"], sort_keys=True)]
    if m.get("examples"):
        lines.append("first lines with problems: " + json.dumps(m["examples"], sort_keys=True))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Convert a Binance capture to the columnar format, or describe a capture or converted file."""
    from ..cli import OneLineParser
    from .recording import DataError, convert, load, save

    p = OneLineParser(prog="python -m mmgym.data", description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="FILE (.gz capture) -> OUT (.npz)")
    c.add_argument("file")
    c.add_argument("out")
    c.add_argument("--tick", type=float, default=None, help="tick size (default: finest price step seen)")
    c.add_argument("--lot", type=float, default=None, help="lot size (default: finest size step seen)")
    c.add_argument("--roi", type=float, default=0.1, help="price window half-width, fraction of the median trade price")
    i = sub.add_parser("info", help="describe a capture or a converted file")
    i.add_argument("file")
    args = p.parse_args(argv)
    try:
        if args.cmd == "convert":
            if args.roi <= 0:
                raise DataError(f"--roi: must be > 0 (got {args.roi})")
            rec = convert(args.file, args.tick, args.lot, args.roi)
            try:
                save(rec, args.out)
            except OSError as exc:
                raise DataError(f"{args.out}: cannot write ({exc.strerror or exc})") from None
            print(_summary(rec))
            print(f"wrote {args.out}")
        else:
            print(_summary(load(args.file)))
    except DataError as exc:
        print(f"python -m mmgym.data: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
