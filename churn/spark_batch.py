"""Batch scoring on Apache Spark: the schema's rules on every row, `mlflow.pyfunc.spark_udf` on the valid ones.

`churn predict --engine spark` gives what the local engine gives for the same file: the input
columns plus `churn_probability` and `risk_level` (and the decision columns, see `_decide`) in input order, and a rejects file of `line`,
`reason` and the input columns, with the reasons of `churn.schema.row_problems` (run inside Spark,
one validator) and of the reader (a repeated customerID, a line with the wrong number of fields). CSV or
Parquet by extension, in and out.

How it runs: the input is read by Spark (all CSV columns as text, as the local reader does), each
row numbered by its place in the file, checked by a pandas UDF calling `row_problems`, and the valid
rows are scored by the model's pyfunc through `spark_udf` (the probability the registered model
answers). Spark writes part files into a temporary folder beside OUT; the driver joins them in
order into one file and renames it over OUT, so OUT is either the whole result or untouched. OUT
and the rejects file are therefore paths on the driver's filesystem (on a cluster: a folder all
executors share, e.g. an NFS mount); the input may be any path or URI Spark reads.

Not written: the prediction log (`churn predict --help` and the README say why).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from churn import data, economics, retention, schema
from churn.assessment import PROBABILITY, RISK
from churn.io import atomic_path, csv_safe
from churn.redact import redact_url
from churn.spark_session import SparkError, first_line_of

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from churn.settings import EconomicsSettings, RetentionSettings, ServingSettings

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".parquet": "parquet"}
#: Internal columns (never in an output): corrupt line text, row id, line number, id key, first line.
_CORRUPT, _ID, _KEY, _FIRST = "_churn_corrupt", "_churn_id", "_churn_key", "_churn_first"
_LINE, _REASON = data.LINE, data.REASON


def file_format(path: str | Path, what: str = "input") -> str:
    """'csv' or 'parquet' from the file's extension; ValueError naming the file otherwise."""
    fmt = FORMATS.get(Path(str(path)).suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: the {what} must end in .csv or .parquet")
    return fmt


def default_rejects(output: str | Path) -> Path:
    """OUT.rejects.csv (or .parquet, as OUT): where rejected rows go unless told."""
    output = Path(output)
    return output.with_suffix(".rejects" + output.suffix)


# -- reading and checking --------------------------------------------------------------------------


def _is_uri(path: str) -> bool:
    return "://" in path


def _read(spark: SparkSession, path: str, fmt: str) -> tuple[DataFrame, list[str], int]:
    """(frame with a row id and the corrupt-line column, the input's columns, line of the first row).

    A local CSV gets the local reader's whole-file checks first (`data.CsvInput`: exists, UTF-8,
    line length, quotes, repeated header names).
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if fmt == "csv":
        if _is_uri(path):
            header = next(csv.reader([spark.read.text(path).first()[0]]))
        else:
            header = data.CsvInput(path).header
        fields = [T.StructField(name, T.StringType()) for name in header]
        frame = (
            spark.read.options(
                header=True,
                mode="PERMISSIVE",
                columnNameOfCorruptRecord=_CORRUPT,
                escape='"',
                nullValue="\u0000",  # an empty field stays "" (a missing one is null), as pandas reads it
                enforceSchema=True,
                encoding="UTF-8",
            )
            .schema(T.StructType([*fields, T.StructField(_CORRUPT, T.StringType())]))
            .csv(path)
        )
        first_line = 2  # the header is line 1
    else:
        if not _is_uri(path) and not Path(path).is_file():
            raise data.DataError(f"{path}: input file not found")
        frame = spark.read.parquet(path).withColumn(_CORRUPT, F.lit(None).cast("string"))
        header = [c for c in frame.columns if c != _CORRUPT]
        first_line = 1  # Parquet has no header line: `line` is the row's number
    schema.check_columns(pd.DataFrame(columns=header), path)
    return frame.withColumn(_ID, F.monotonically_increasing_id()), header, first_line


def _numbered(frame: DataFrame, first_line: int) -> DataFrame:
    """`line`: the row's place in the file from `first_line` (Spark skips empty lines: after one, the
    file line is higher). One counting pass: rows per partition, then each partition's offset."""
    from pyspark.sql import functions as F

    part = F.shiftrightunsigned(F.col(_ID), 33)  # monotonically_increasing_id: partition << 33 | position
    counts = dict(frame.select(part.alias("p")).groupBy("p").count().collect())
    offsets, total = [], 0
    for p in sorted(counts):
        offsets += [F.lit(p), F.lit(total)]
        total += counts[p]
    offset = F.element_at(F.create_map(*offsets), part) if offsets else F.lit(0)
    position = F.col(_ID).bitwiseAND((1 << 33) - 1)
    return frame.withColumn(_LINE, (offset + position + first_line).cast("long"))


def _blank(header: list[str]) -> Column:
    """A row whose every field is empty (the local reader skips it as a blank line)."""
    from pyspark.sql import functions as F

    blank = [F.col(c).isNull() | (F.col(c).cast("string") == "") for c in header]
    out = blank[0]
    for b in blank[1:]:
        out = out & b
    return out


def _with_first_lines(frame: DataFrame, header: list[str]) -> DataFrame:
    """`_FIRST`: for a row whose customerID an earlier row has, that row's line (else null)."""
    from pyspark.sql import functions as F

    if schema.ID not in header:
        return frame.withColumn(_FIRST, F.lit(None).cast("long"))
    key = F.regexp_replace(F.col(schema.ID).cast("string"), r"(?U)^\s+|\s+$", "")
    keyed = frame.withColumn(_KEY, F.when(key != "", key))
    usable = keyed.where(
        F.col(_KEY).isNotNull() & F.col(_CORRUPT).isNull()
    )  # a short or long line is set aside
    firsts = (
        usable.groupBy(_KEY)
        .agg(F.min(_LINE).alias(_FIRST), F.count(F.lit(1)).alias("n"))
        .where(F.col("n") > 1)
        .select(_KEY, _FIRST)
    )
    joined = keyed.join(F.broadcast(firsts), on=_KEY, how="left")
    return joined.withColumn(_FIRST, F.when(F.col(_FIRST) != F.col(_LINE), F.col(_FIRST)))


def _too_long(header: list[str]) -> Column:
    """A line with more fields than the header (Spark marks it corrupt and fills every column): set
    aside without its fields, as the local reader does. A short one (corrupt, missing fields null)
    keeps the fields it has."""
    from pyspark.sql import functions as F

    short = F.lit(False)
    for c in header:
        short = short | F.col(c).isNull()
    return F.col(_CORRUPT).isNotNull() & ~short


def _reasons_udf(header: list[str]):
    """A pandas UDF: each row's reject reason, or null when the row is valid. The reader's reasons
    first (a line with too few or too many fields, a repeated customerID), else
    `schema.row_problems` joined by '; '."""
    from pyspark.sql.functions import pandas_udf

    n_fields = len(header)

    @pandas_udf("string")
    def reasons(rows: pd.DataFrame) -> pd.Series:
        out = pd.Series([None] * len(rows), index=rows.index, dtype=object)
        for pos, found in schema.row_problems(rows[header]).items():
            out.iat[pos] = "; ".join(found)
        corrupt = rows[_CORRUPT]
        for pos in corrupt.notna().to_numpy().nonzero()[0]:
            fields = len(next(csv.reader(io.StringIO(corrupt.iat[pos])), []))
            if fields != n_fields:  # the reader's reason, not the value rules
                out.iat[pos] = data.length_reason(fields, n_fields)
        first = rows[_FIRST]
        for pos in first.notna().to_numpy().nonzero()[0]:
            out.iat[pos] = data.repeat_reason(int(first.iat[pos]))
        return out

    return reasons


def _risk_udf(settings: ServingSettings):
    """A pandas UDF: the risk level of each probability (`schema.risk_levels`, the Predictor's bands)."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def risk(probability: pd.Series) -> pd.Series:
        return pd.Series(schema.risk_levels(probability.to_numpy(), settings), index=probability.index)

    return risk


def _csv_safe(frame: DataFrame, columns: list[str]) -> DataFrame:
    """`churn.io.csv_safe` on the text `columns`: formula-like cells neutralised, as in the local CSVs."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")
    def safe(values: pd.Series) -> pd.Series:
        return csv_safe(pd.DataFrame({"value": values}))["value"]

    text = {f.name for f in frame.schema.fields if isinstance(f.dataType, T.StringType)}
    return frame.select(
        *(safe(F.col(c)).alias(c) if c in text and c in columns else F.col(c) for c in frame.columns)
    )


# -- writing ----------------------------------------------------------------------------------------


def _write_parts(frame: DataFrame, fmt: str, folder: Path) -> None:
    writer = frame.write.mode("overwrite")
    if fmt == "csv":
        writer.options(
            header=False,
            escape='"',
            quote='"',
            ignoreLeadingWhiteSpace=False,
            ignoreTrailingWhiteSpace=False,
            emptyValue="",
            nullValue="",
        ).csv(str(folder))
    else:
        writer.parquet(str(folder))


def _join_parts(folder: Path, fmt: str, target: Path, columns: list[str]) -> int:
    """Join Spark's part files (in partition order) into `target`; return the number of rows."""
    parts = sorted(p for p in folder.iterdir() if p.name.startswith("part-"))
    if fmt == "csv":
        rows = 0
        with target.open("wb") as out:
            header = io.StringIO()
            csv.writer(header, lineterminator="\n").writerow(csv_safe(pd.DataFrame(columns=columns)).columns)
            out.write(header.getvalue().encode())
            for part in parts:
                with part.open("rb") as fh:
                    while block := fh.read(1 << 23):
                        rows += block.count(b"\n")  # no field holds a newline: Spark read it line by line
                        out.write(block)
        return rows
    import pyarrow.parquet as pq

    files = [pq.ParquetFile(p) for p in parts]
    if not files:
        raise data.DataError(f"{folder}: Spark wrote no Parquet part")
    rows = 0
    with pq.ParquetWriter(target, files[0].schema_arrow) as writer:
        for f in files:
            for i in range(f.num_row_groups):
                group = f.read_row_group(i)
                rows += group.num_rows
                writer.write_table(group)
    return rows


@contextlib.contextmanager
def _parts_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside `target` for Spark's part files, removed on every exit."""
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(
        tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".spark")
    )
    try:
        yield folder / "parts"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- scoring --------------------------------------------------------------------------------------


def prepare_model(model_uri: str, folder: str | Path, root: str | Path = ".") -> Path:
    """A local copy of the MLflow model in `folder`, ready for `score_file` (one-line error if MLflow
    cannot load it). Done before Spark starts, so a bad URI costs no JVM.

    The copy's MLmodel drops the `code` entry, so the workers unpickle the model with the installed
    `churn` package (which also runs the validator) rather than the copy bundled at logging time:
    both halves of a row's verdict come from one version of the code, as in the local engine.
    """
    from churn import registry
    from churn.model_ref import mlflow_error

    root = Path(root)
    mlflow = registry.connect(root)
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    local = Path(folder) / "model"
    try:
        with registry.quiet_mlflow_logs():
            shutil.copytree(mlflow.artifacts.download_artifacts(artifact_uri=model_uri), local)
            model = Model.load(str(local))
    except (MlflowException, OSError) as exc:
        raise mlflow_error(model_uri, root, exc) from exc
    for conf in model.flavors.values():
        conf.pop("code", None)
    model.save(str(local / "MLmodel"))
    return local


def score_file(
    spark: SparkSession,
    input_path: str,
    output_path: str | Path,
    *,
    model: str | Path,
    settings: ServingSettings,
    rejects_path: str | Path | None = None,
    economics: EconomicsSettings | None = None,
    retention_settings: RetentionSettings | None = None,
    actions: bool = True,
    budget: int | None = None,
) -> dict[str, Any]:
    """Score `input_path` into `output_path` (and rejected rows into `rejects_path`) on `spark` with
    the model folder `model` (from `prepare_model`); with `economics`, the decision columns too
    (`_decide`: the best action unless `actions` is False, at most `budget` contacts).

    Returns a summary like `churn.batch.score_csv`'s: rows, scored, rejected, seconds,
    rows_per_second, output, rejects, log (and contacted, expected_gain with `economics`). Both
    files are published only when both are complete.
    """
    import mlflow.pyfunc

    start = time.perf_counter()
    in_fmt = file_format(input_path)
    output_path = Path(output_path)
    rejects_path = Path(rejects_path) if rejects_path else default_rejects(output_path)
    out_fmt, rej_fmt = file_format(output_path, "output"), file_format(rejects_path, "rejects file")
    from churn.registry import quiet_mlflow_logs

    with quiet_mlflow_logs(logging.ERROR):  # env_manager="local" is the point: the workers share this env
        udf = mlflow.pyfunc.spark_udf(spark, str(model), result_type="double", env_manager="local")
    deciding = None
    if economics is not None:
        deciding = _Deciding(economics, retention_settings or retention.RetentionSettings(), actions, budget)
    counts = _score(
        spark, udf, input_path, in_fmt, output_path, out_fmt, rejects_path, rej_fmt, settings, deciding
    )
    seconds = time.perf_counter() - start
    rows = counts["scored"] + counts["rejected"]
    return {
        "rows": rows,
        **counts,
        "seconds": seconds,
        "rows_per_second": rows / seconds if seconds else float("inf"),
        "output": str(output_path),
        "rejects": str(rejects_path),
        "log": "not logged (the Spark engine does not write the prediction log)",
    }


def _score(
    spark: SparkSession,
    model: Any,
    input_path: str,
    in_fmt: str,
    output_path: Path,
    out_fmt: str,
    rejects_path: Path,
    rej_fmt: str,
    settings: ServingSettings,
    deciding: _Deciding | None = None,
) -> dict[str, int]:
    """Build the plan, run it, and publish both files; return the rows scored and rejected."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    frame, header, first_line = _read(spark, input_path, in_fmt)
    frame = _numbered(frame, first_line)
    frame = frame.where(~_blank(header) | _too_long(header))
    frame = _with_first_lines(frame, header)
    checked = frame.withColumn(_REASON, _reasons_udf(header)(F.struct(*header, _CORRUPT, _FIRST)))
    checked = checked.persist(StorageLevel.DISK_ONLY)  # the rules run once for both outputs
    features = [F.coalesce(F.col(c).cast("string"), F.lit("")).alias(c) for c in schema.FEATURES]
    scored = (
        checked.where(F.col(_REASON).isNull())
        .withColumn(PROBABILITY, model(*features))
        .withColumn(RISK, _risk_udf(settings)(F.col(PROBABILITY)))
    )
    campaign: dict[str, Any] = {}
    kept = None
    if deciding is None:
        scored = scored.select(*header, PROBABILITY, RISK)
    else:
        scored, campaign, kept = _decide(spark, scored, header, model, deciding)
    too_long = _too_long(header)
    rejected = checked.where(F.col(_REASON).isNotNull()).select(
        _LINE, _REASON, *(F.when(too_long, F.lit(None)).otherwise(F.col(c)).alias(c) for c in header)
    )
    if out_fmt == "csv":  # a valid row's features are levels or plain numbers, which csv_safe keeps
        scored = _csv_safe(scored, [c for c in header if c not in schema.FEATURES])
    if rej_fmt == "csv":
        rejected = _csv_safe(rejected, rejected.columns)
    counts: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        stack.callback(checked.unpersist)
        if kept is not None:
            stack.callback(kept.unpersist)
        out_tmp = stack.enter_context(atomic_path(output_path))
        rej_tmp = stack.enter_context(atomic_path(rejects_path))
        for name, part_frame, fmt, tmp, target in (
            ("scored", scored, out_fmt, out_tmp, output_path),
            ("rejected", rejected, rej_fmt, rej_tmp, rejects_path),
        ):
            folder = stack.enter_context(_parts_folder(target))
            try:
                _write_parts(part_frame, fmt, folder)
            except Exception as exc:
                if type(exc).__module__.startswith(("pyspark", "py4j")):
                    raise SparkError(
                        redact_url(f"Spark failed on {input_path}: {first_line_of(exc)}")
                    ) from exc
                raise
            counts[name] = _join_parts(folder, fmt, tmp, part_frame.columns)
            log.info("wrote %d %s rows to %s", counts[name], name, target)
        if counts["scored"] + counts["rejected"] == 0:
            raise schema.SchemaError([schema.Problem("*", "has no rows (empty file)")], str(input_path))
    return {**counts, **campaign}


# -- decisions ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Deciding:
    """What `_decide` needs: params' economics and retention sections, and the command's options."""

    economics: EconomicsSettings
    retention: RetentionSettings
    actions: bool
    budget: int | None


def _decide(
    spark: SparkSession, scored: DataFrame, header: list[str], model: Any, deciding: _Deciding
) -> tuple[DataFrame, dict[str, Any], DataFrame]:
    """(the scored rows with the decision columns in input order, the campaign summary, the persisted
    frame to release). The local engine's decision by the same functions: `economics.expected_profit`
    per row; the `budget` best by expected profit, ties to the earlier line; each contacted customer's
    what-ifs (`retention.candidate_frame`, in Spark) scored by the same `spark_udf`, the best picked
    by `retention.best_of`."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    money = deciding.economics
    profit = F.col(retention.EXPECTED_PROFIT)

    @F.pandas_udf("double")
    def expected(charges: pd.Series, proba: pd.Series) -> pd.Series:
        clv = economics.customer_value(money, pd.DataFrame({"MonthlyCharges": pd.to_numeric(charges)}))
        return pd.Series(economics.expected_profit(proba.to_numpy(), clv, money), index=proba.index)

    base = scored.withColumn(retention.EXPECTED_PROFIT, expected(F.col("MonthlyCharges"), F.col(PROBABILITY)))
    base = base.select(*header, _LINE, PROBABILITY, RISK, retention.EXPECTED_PROFIT).persist(
        StorageLevel.DISK_ONLY
    )
    contact = profit > 0
    if deciding.budget is not None:
        last = F.min(F.struct(profit.alias("p"), (-F.col(_LINE)).alias("l")))
        top = base.where(contact).orderBy(profit.desc(), F.col(_LINE)).limit(deciding.budget)
        n, cut = top.agg(F.count(F.lit(1)), last).first()
        if n >= deciding.budget:
            contact = contact & ((profit > cut["p"]) | ((profit == cut["p"]) & (F.col(_LINE) <= -cut["l"])))
    decided = base.withColumn(retention.CONTACT, contact)
    if deciding.actions:
        best = _best_actions(spark, decided.where(F.col(retention.CONTACT)), model, deciding)
        decided = decided.join(best, on=_LINE, how="left").orderBy(_LINE)
        action = F.coalesce(F.col(retention.BEST_ACTION), F.lit(""))
    else:
        decided = decided.withColumn(retention.ACTION_PROFIT, F.lit(None).cast("double"))
        action = F.lit("")
    out = decided.select(
        *header,
        PROBABILITY,
        RISK,
        retention.EXPECTED_PROFIT,
        retention.CONTACT,
        action.alias(retention.BEST_ACTION),
        retention.ACTION_PROFIT,
    )
    totals = base.where(contact).agg(F.count(F.lit(1)), F.sum(profit)).first()
    return out, {"contacted": int(totals[0]), "expected_gain": float(totals[1] or 0.0)}, base


def _best_actions(spark: SparkSession, contacted: DataFrame, model: Any, deciding: _Deciding) -> DataFrame:
    """(_LINE, best_action, action_profit) of the contacted rows that have a helpful what-if."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    features = list(schema.FEATURES)
    text = [retention.FEATURE, retention.PROPOSED, retention.DESCRIPTION, retention.OFFER]
    fields = [
        T.StructField(_LINE, T.LongType()),
        T.StructField(retention.BEFORE, T.DoubleType()),
        *(T.StructField(c, T.StringType()) for c in [*features, *text]),
    ]

    def explode(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            found = retention.candidate_frame(batch[features], deciding.retention)
            at = found[retention.CUSTOMER].to_numpy()
            out = pd.DataFrame(
                {
                    _LINE: batch[_LINE].to_numpy()[at],
                    retention.BEFORE: batch[PROBABILITY].to_numpy(dtype=float)[at],
                }
            )
            for c in [*features, *text]:
                out[c] = found[c].map(str).to_numpy()
            yield out

    def pick(candidates: pd.DataFrame) -> pd.DataFrame:
        return retention.best_of(candidates, deciding.retention, deciding.economics, key=_LINE)

    rows = contacted.select(
        _LINE, PROBABILITY, *(F.coalesce(F.col(c).cast("string"), F.lit("")).alias(c) for c in features)
    )
    candidates = rows.mapInPandas(explode, T.StructType(fields))
    candidates = candidates.withColumn(retention.AFTER, model(*(F.col(c) for c in features)))
    buckets = int(spark.conf.get("spark.sql.shuffle.partitions", "200"))
    picked = f"{_LINE} long, {retention.BEST_ACTION} string, {retention.ACTION_PROFIT} double"
    return (
        candidates.withColumn("_churn_bucket", F.pmod(F.col(_LINE), F.lit(buckets)))
        .groupBy("_churn_bucket")
        .applyInPandas(lambda frame: pick(frame.drop(columns=["_churn_bucket"])), picked)
    )
