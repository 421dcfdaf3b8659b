"""Stage `prepare`: read `data.raw`, validate, clean, stratified train/test split."""

from __future__ import annotations

import logging

from churn import data
from churn.io import file_md5, save_json, write_table
from churn.params import load_params, read
from churn.paths import LAYOUT
from churn.settings import BaseSettings, DataSettings, PrepareSettings
from stages import _args

log = logging.getLogger("stages.prepare")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--train-out", default=str(LAYOUT.train))
    p.add_argument("--test-out", default=str(LAYOUT.test))
    p.add_argument("--metrics-out", default=str(LAYOUT.metrics.data))
    args = p.parse_args(argv)
    params = load_params(args.params)
    seed = read(params, BaseSettings, args.params).seed
    raw = read(params, DataSettings, args.params).raw
    test_size = read(params, PrepareSettings, args.params).test_size
    df, fixed = data.load_clean(raw, key=f"{args.params}: data.raw")
    train, test = data.split(df, test_size=test_size, seed=seed)
    summary = data.summary(df, train, test, fixed=fixed, input_md5=file_md5(raw), input_path=raw)
    write_table(train, args.train_out)
    write_table(test, args.test_out)
    save_json(summary, args.metrics_out)
    log.info(
        "prepared %d rows (%d train, %d test, %d fixed) from %s", len(df), len(train), len(test), fixed, raw
    )


if __name__ == "__main__":
    _args.run(main)
