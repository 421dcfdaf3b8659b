"""Read customer CSVs (one reader for the pipeline, the CLI and the app), clean the real quirks, split.

Every CSV of customers goes through `CsvInput`, so the same file gets the same verdict everywhere:
a missing, directory or unreadable path, an empty file, a line over `max_line_bytes`, bytes that
are not UTF-8, an unclosed quote, or a header naming a column twice refuse the whole file in one
line; a line with the wrong number of fields, and a row repeating an earlier row's customerID, is
set aside with its line number and reason, and the other rows go on.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from churn import schema

log = logging.getLogger(__name__)

#: Longest line a customer CSV may have (a Telco row is ~200 bytes): longer ones refuse the file.
MAX_LINE_BYTES = 1_000_000
LINE = "line"
REASON = "reason"
_BLOCK = 1 << 20
_SKIPPED = re.compile(r"Skipping line (\d+): (.*)")
_TOO_MANY = re.compile(r"expected (\d+) fields, saw (\d+)")


class DataError(ValueError):
    """The input file cannot be read as a Telco CSV; the message names the file and the rule."""


@dataclass(frozen=True)
class Rows:
    """Rows read from a customer CSV: text values (`frame`), their file line numbers (header: line 1),
    and the lines set aside (`rejects`: line, reason and the row's fields as far as they were read)."""

    frame: pd.DataFrame
    lines: np.ndarray
    rejects: pd.DataFrame
    blank: int = 0
    duplicates: int = 0

    @property
    def read(self) -> int:
        """Data lines this chunk consumed: kept rows, set-aside lines and blank lines."""
        return len(self.frame) + len(self.rejects) + self.blank

    def with_rejects(self, value_rejects: pd.DataFrame, row: str = "row") -> pd.DataFrame:
        """All rejected lines of this chunk, by line: the reader's and `value_rejects` (rows of `frame`
        that broke a value rule, by position in column `row`, with a `reason`)."""
        found = value_rejects.drop(columns=[row])
        found.insert(0, LINE, self.lines[value_rejects[row].to_numpy(dtype="int64")])
        out = pd.concat([self.rejects, found], ignore_index=True) if len(self.rejects) else found
        out[LINE] = out[LINE].astype("int64")
        columns = [LINE, REASON, *self.frame.columns]
        return out.reindex(columns=columns).sort_values(LINE, kind="stable").reset_index(drop=True)


class CsvInput:
    """A customer CSV whose file-level rules were checked on opening (DataError / SchemaError otherwise).

    `name` is how messages call the file (default: the path as given). `header` holds the column
    names as written, `lines` the number of lines.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        max_line_bytes: int = MAX_LINE_BYTES,
        key: str | None = None,
        name: str | None = None,
    ):
        self.path = Path(path)
        self.name = name or str(path)
        self.max_line_bytes = max_line_bytes
        self._check_path(key)
        self.lines = self._scan()
        self.header = self._header()

    def _check_path(self, key: str | None) -> None:
        path, name = self.path, self.name
        if not path.exists():
            hint = f" (check {key})" if key else ""
            raise DataError(f"{name}: input file not found{hint}")
        if path.is_dir():
            raise DataError(f"{name}: is a directory, not a CSV file")
        if not path.is_file():
            raise DataError(f"{name}: not a regular file")
        try:
            with path.open("rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise DataError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
        if path.stat().st_size == 0:
            raise DataError(f"{name}: the file is empty")

    def _scan(self) -> int:
        """Count the lines in one byte pass, refusing an over-long line, non-UTF-8 bytes or an unclosed
        quote, so that nothing absurd reaches the CSV parser (or half a file reaches the log)."""
        lines, current, quotes = 0, 0, 0
        limit = self.max_line_bytes
        decoder = codecs.getincrementaldecoder("utf-8")()
        with self.path.open("rb") as fh:
            while block := fh.read(max(1, min(limit, _BLOCK))):
                newlines = block.count(b"\n")
                if newlines:
                    if current + block.find(b"\n") > limit:
                        break
                    current = len(block) - block.rfind(b"\n") - 1
                else:
                    current += len(block)
                if current > limit:
                    lines += newlines
                    break
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    self._not_utf8()
                lines += newlines
                quotes += block.count(b'"')
            else:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    self._not_utf8()
                if quotes % 2:
                    raise DataError(f"{self.name}: unbalanced double quotes (a quoted field is never closed)")
                return lines + (1 if current else 0)
        raise DataError(
            f"{self.name}: line {lines + 1} is longer than {limit:,} bytes "
            "(serving.max_line_bytes): not a customer CSV"
        )

    def _not_utf8(self) -> None:
        """Raise DataError naming the first line that is not UTF-8 (all lines are short by now)."""
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    byte = raw[exc.start : exc.start + 1].hex().upper()
                    raise DataError(
                        f"{self.name}: line {number} is not UTF-8 text (byte 0x{byte}): "
                        "save the file as UTF-8 CSV and try again"
                    ) from None
        raise DataError(f"{self.name}: not UTF-8 text: save the file as UTF-8 CSV and try again")

    def _header(self) -> list[str]:
        """The header's column names as written (pandas would rename a repeated `tenure` to `tenure.1`)."""
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            first = fh.readline()
        names = next(csv.reader([first]), []) if first.strip() else []
        if not names:
            raise DataError(f"{self.name}: no header line (the first line is blank)")
        problems = schema.header_problems(names)
        if problems:
            raise schema.SchemaError(problems, self.name)
        return names

    def chunks(self, size: int, *, unique_ids: bool = True) -> Iterator[Rows]:
        """The rows, `size` lines at a time. A line with the wrong number of fields is set aside with
        its reason; blank lines are skipped. With `unique_ids`, a row repeating the customerID of an
        earlier row (in any chunk) is set aside too: each customer is scored once. A file without a
        single row raises SchemaError after the last chunk."""
        seen = _SeenIds() if unique_ids else None
        next_line, pending, found = 2, set(), False
        with self.path.open(encoding="utf-8-sig", newline="") as text:
            counts = _FieldCounts(text)
            for chunk, skipped in self._parsed(size):
                pending |= {line for line, _ in skipped}
                lines, next_line = _line_numbers(len(chunk), next_line, pending)
                pending = {s for s in pending if s >= next_line}
                rows = self._rows(chunk, lines, skipped, seen, counts)
                found = found or bool(len(rows.frame) or len(rows.rejects))
                yield rows
        if not found:
            raise schema.SchemaError([schema.Problem("*", "has no rows (empty file)")], self.name)

    def _rows(
        self,
        chunk: pd.DataFrame,
        lines: np.ndarray,
        skipped: list[tuple[int, str]],
        seen: _SeenIds | None,
        counts: _FieldCounts,
    ) -> Rows:
        """One parsed chunk as Rows: blank lines dropped, short lines, skipped lines and repeats set aside."""
        blank = (chunk.isna() | chunk.eq("")).all(axis=1).to_numpy()
        rejects = [pd.DataFrame({LINE: [n for n, _ in skipped], REASON: [r for _, r in skipped]})]
        keep = ~blank
        # The parser reads a short line as empty last fields: count the fields of lines ending empty.
        maybe_short = keep & chunk.iloc[:, -1].eq("").fillna(False).to_numpy(dtype=bool)
        if maybe_short.any():
            expected = len(chunk.columns)
            got = np.zeros(len(chunk), dtype="int64")
            got[maybe_short] = counts.of(lines[maybe_short])
            short = maybe_short & (got < expected)
            if short.any():
                reasons = [length_reason(n, expected) for n in got[short]]
                rejects.append(_set_aside(chunk[short], lines[short], reasons))
                keep &= ~short
        duplicates = 0
        if seen is not None and schema.ID in chunk.columns:
            repeat, first = seen.check(chunk[schema.ID], lines, keep)
            if repeat.any():
                reasons = [repeat_reason(n) for n in first[repeat]]
                rejects.append(_set_aside(chunk[repeat], lines[repeat], reasons))
                keep &= ~repeat
                duplicates = int(repeat.sum())
        frame = chunk[keep] if not keep.all() else chunk
        rejected = pd.concat(rejects, ignore_index=True) if len(rejects) > 1 else rejects[0]
        rejected[LINE] = rejected[LINE].astype("int64")
        rejected = rejected.reindex(columns=[LINE, REASON, *chunk.columns])
        rejected = rejected.sort_values(LINE, kind="stable").reset_index(drop=True)
        return Rows(frame.reset_index(drop=True), lines[keep], rejected, int(blank.sum()), duplicates)

    def read(self, *, unique_ids: bool = True) -> Rows:
        """Every row at once (see `chunks`)."""
        parts = list(self.chunks(1_000_000, unique_ids=unique_ids))
        if len(parts) == 1:
            return parts[0]
        return Rows(
            pd.concat([p.frame for p in parts], ignore_index=True),
            np.concatenate([p.lines for p in parts]),
            pd.concat([p.rejects for p in parts], ignore_index=True),
            sum(p.blank for p in parts),
            sum(p.duplicates for p in parts),
        )

    def _parsed(self, size: int) -> Iterator[tuple[pd.DataFrame, list[tuple[int, str]]]]:
        """Yield (raw chunk as text, [(line, reason) of lines the parser skipped])."""
        try:
            reader = pd.read_csv(
                self.path,
                dtype=str,
                keep_default_na=False,
                na_values=[],
                chunksize=size,
                on_bad_lines="warn",
                skip_blank_lines=False,
                encoding="utf-8-sig",
            )
            with reader:
                while True:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        try:
                            chunk = next(reader)
                        except StopIteration:
                            return
                    skipped = []
                    for w in caught:
                        for number, reason in _SKIPPED.findall(str(w.message)):
                            length = _TOO_MANY.fullmatch(reason.strip())
                            if length:
                                reason = length_reason(int(length[2]), int(length[1]))
                            skipped.append((int(number), reason.strip()))
                    yield chunk, skipped
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.name}: not a readable CSV ({str(exc).strip()})") from exc


def length_reason(fields: int, expected: int) -> str:
    """The one reason of a line with the wrong number of fields (too few or too many; either engine)."""
    return f"{fields} field{'' if fields == 1 else 's'}, expected {expected}"


def repeat_reason(first_line: int) -> str:
    """Why a row repeating an earlier row's customerID is set aside (batch scoring, either engine)."""
    return f"{schema.ID}: repeats line {first_line} (each customer is scored once)"


class _FieldCounts:
    """Fields on given lines of an open CSV text file, read forward only (line numbers ascending)."""

    def __init__(self, text) -> None:
        self._text = text
        self._next = 1  # the line `readline` returns next

    def of(self, numbers: np.ndarray) -> list[int]:
        out = []
        for number in numbers.tolist():
            while self._next < number:
                self._text.readline()
                self._next += 1
            self._next += 1
            line = self._text.readline()
            quoted = '"' in line  # only a quoted field may hold a comma
            out.append(len(next(csv.reader([line]), [])) if quoted else line.count(",") + 1)
        return out


def _set_aside(rows: pd.DataFrame, lines: np.ndarray, reasons: list[str]) -> pd.DataFrame:
    out = rows.copy()
    out.insert(0, REASON, reasons)
    out.insert(0, LINE, lines)
    return out


class _SeenIds:
    """customerIDs met so far in a file and the line each was first on (pyarrow strings: compact)."""

    def __init__(self) -> None:
        self._first = pd.Series(dtype="int64", index=pd.Index([], dtype="string"))

    def check(self, ids: pd.Series, lines: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows among `rows` whose id appeared earlier, the line of each id's first row); remembers the rest."""
        key = ids.astype("string").str.strip().reset_index(drop=True)
        usable = (key.notna() & key.ne("")).to_numpy(dtype=bool) & rows
        key = key.where(usable)
        here = pd.Series(lines, dtype="int64").groupby(key, dropna=True).transform("min")
        before = key.map(self._first)
        first = before.fillna(here).fillna(0).to_numpy(dtype="int64")
        repeat = usable & (first != lines)
        new = usable & before.isna().to_numpy() & ~repeat
        if new.any():
            added = pd.Series(lines[new], index=pd.Index(key[new], dtype="string"), dtype="int64")
            self._first = pd.concat([self._first, added])
        return repeat, first


def _line_numbers(n: int, start: int, skipped: set[int]) -> tuple[np.ndarray, int]:
    """File line numbers of the next `n` parsed rows from line `start`, jumping over skipped lines."""
    if not any(s >= start for s in skipped):
        return np.arange(start, start + n), start + n
    out, line = [], start
    while len(out) < n:
        if line not in skipped:
            out.append(line)
        line += 1
    return np.asarray(out, dtype="int64"), line


def read_raw(
    path: str | Path, key: str | None = None, *, max_line_bytes: int = MAX_LINE_BYTES
) -> pd.DataFrame:
    """Read a Telco-format CSV exactly as text columns (no type guessing), refusing any line that is
    not a row of the header's fields (`CsvInput` rules; blank lines are skipped).

    `key` names the setting the path came from, for the error message (e.g. "params.yaml: data.raw").
    """
    source = CsvInput(path, key=key, max_line_bytes=max_line_bytes)
    rows = source.read(unique_ids=False)  # training data: schema.validate refuses repeated ids
    if len(rows.rejects):
        shown = "; ".join(f"line {r.line}: {r.reason}" for r in rows.rejects.head(5).itertuples())
        more = f" (+{len(rows.rejects) - 5} more)" if len(rows.rejects) > 5 else ""
        raise DataError(f"{source.name}: not a readable CSV ({shown}{more})")
    return rows.frame


def clean(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Typed, cleaned copy of a validated raw frame, and how many rows were fixed.

    Fix: a blank TotalCharges (a customer in the first month, tenure 0) becomes 0.0 — nothing
    has been billed yet. Churn becomes 1/0; SeniorCitizen and tenure integers.
    """
    out = df.copy()
    features = coerce_features(out)
    fixed = int(_blank_total(df).sum())
    for col in schema.FEATURES:
        out[col] = features[col]
    if schema.TARGET in out:
        out[schema.TARGET] = (out[schema.TARGET].astype(str) == "Yes").astype("int64")
    cols = [c for c in schema.COLUMNS if c in out.columns]
    return out[cols].reset_index(drop=True), fixed


def _blank_total(df: pd.DataFrame) -> pd.Series:
    raw = df["TotalCharges"]
    return raw.isna() | raw.astype("string").str.strip().eq("").fillna(True)


def coerce_features(df: pd.DataFrame) -> pd.DataFrame:
    """The 19 features with model dtypes: numbers as float/int, categories as strings.

    This is the first step of every model pipeline, so raw CSV rows (TotalCharges blank) and
    prepared rows go through the same code. Values that are not numbers become NaN.
    """
    columns: dict[str, pd.Series] = {}
    for col in schema.FEATURES:
        values = df[col]
        if col in schema.NUMERIC_FEATURES:
            num = pd.to_numeric(values, errors="coerce").astype("float64")
            if col == "TotalCharges":
                tenure = pd.to_numeric(df["tenure"], errors="coerce")
                num = num.mask(num.isna() & tenure.eq(0) & _blank_total(df), 0.0)
            columns[col] = num
        else:
            columns[col] = values.astype("object").where(values.notna(), np.nan)
    return pd.DataFrame(columns, index=df.index)


def split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split on the target, reproducible by seed."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"prepare.test_size must be between 0 and 1, got {test_size}")
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=df[schema.TARGET])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def load_clean(path: str | Path, key: str | None = None) -> tuple[pd.DataFrame, int]:
    """Read, validate and clean a raw CSV; raise DataError/SchemaError naming file and rule."""
    df = read_raw(path, key)
    schema.validate(df, source=str(path))
    return clean(df)


def xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Features (the 19 raw columns) and the 0/1 target of a prepared frame."""
    return df[list(schema.FEATURES)], df[schema.TARGET].to_numpy(dtype="int64")


def summary(
    df: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, *, fixed: int, input_md5: str, input_path: str
) -> dict:
    """The `metrics/data.json` figures: rows, churn rates, rows fixed and the input's hash."""
    return {
        "input": {"path": str(input_path), "md5": input_md5},
        "rows": {"total": len(df), "train": len(train), "test": len(test), "fixed": fixed},
        "churn_rate": {
            "total": float(df[schema.TARGET].mean()),
            "train": float(train[schema.TARGET].mean()),
            "test": float(test[schema.TARGET].mean()),
        },
    }
