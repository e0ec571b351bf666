"""``hubkit baselines list`` and ``hubkit baselines run NAME [ARGS...]``."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("baselines", help="reproduce published results (list, run)")
    bsub = p.add_subparsers(dest="baselines_command", metavar="{list,run}", required=True)
    ls = bsub.add_parser("list", help="the baselines: task, metric, published number and source")
    ls.set_defaults(func=_list)
    run = bsub.add_parser("run", help="run one baseline script (its own flags follow the name; --help for them)")
    run.add_argument("name")
    run.add_argument("args", nargs=argparse.REMAINDER, help="flags of the baseline script")
    run.set_defaults(func=_run)


def _list(args: argparse.Namespace) -> int:
    from hubkit.baselines import list_baselines

    rows = [(m.BASELINE.name, m.BASELINE.task, m.BASELINE.metric,
             "-" if m.BASELINE.published is None else str(m.BASELINE.published), m.BASELINE.source)
            for m in list_baselines()]
    widths = [max(len(r[i]) for r in rows + [("name", "task", "metric", "published", "")]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(("name", "task", "metric", "published"), widths)) + "  source")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    return 0


def _run(args: argparse.Namespace) -> int:
    from hubkit.baselines import get

    return get(args.name).main(args.args)
