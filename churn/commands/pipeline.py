"""`churn synth` and `churn validate`: data-side commands."""

from __future__ import annotations

import argparse
import sys

from churn.paths import LAYOUT


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="write Telco-schema synthetic customers to a CSV")
    p.add_argument("--rows", type=int, default=7043, help="number of customers (default 7043)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("-o", "--out", default=str(LAYOUT.synthetic), help="output CSV path")
    p.add_argument(
        "--calibrate",
        metavar="REAL_CSV",
        help="instead: recompute the generator's figures from a real Telco CSV",
    )
    p.set_defaults(func=_synth)

    p = sub.add_parser("validate", help="check a CSV against the Telco schema")
    p.add_argument("csv", help="a Telco-format CSV")
    p.add_argument(
        "--no-target", action="store_true", help="the file has no Churn column (customers to score)"
    )
    p.set_defaults(func=_validate)


def _synth(args: argparse.Namespace) -> int:
    from churn import synth

    if args.calibrate:
        out = args.out if args.out != str(LAYOUT.synthetic) else synth.FIGURES_PATH
        synth.calibrate_main(args.calibrate, out)
        sys.stdout.write(f"calibrated figures written to {out}\n")
        return 0
    if args.rows < 1:
        raise ValueError(f"--rows must be at least 1, got {args.rows}")
    df = synth.generate(rows=args.rows, seed=args.seed)
    synth.write_csv(df, args.out)
    sys.stdout.write(f"wrote {len(df)} synthetic customers (seed {args.seed}) to {args.out}\n")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from churn import data, schema

    df = data.read_raw(args.csv)
    schema.validate(df, require_target=not args.no_target, source=args.csv)
    sys.stdout.write(f"{args.csv}: {len(df)} rows, schema OK\n")
    return 0
