"""Stage `synthesize`: Telco-schema synthetic customers from a seed (the offline default input)."""

from __future__ import annotations

import logging

from churn import synth
from churn.params import load_params, read
from churn.paths import LAYOUT
from churn.settings import BaseSettings, SynthesizeSettings
from stages import _args

log = logging.getLogger("stages.synthesize")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--out", default=str(LAYOUT.synthetic))
    args = p.parse_args(argv)
    params = load_params(args.params)
    seed = read(params, BaseSettings, args.params).seed
    rows = read(params, SynthesizeSettings, args.params).rows
    df = synth.generate(rows=rows, seed=seed)
    synth.write_csv(df, args.out)
    log.info(
        "synthesized %d customers (seed %d, churn rate %.3f) -> %s",
        len(df),
        seed,
        (df["Churn"] == "Yes").mean(),
        args.out,
    )


if __name__ == "__main__":
    _args.run(main)
