"""batch.score_csv: chunk boundaries change nothing, rejects keep their file lines, formula cells
are neutralised, the summary counts, and a batch is logged once (real SQLite in tmp)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn import schema
from churn.batch import score_csv
from churn.serving import Predictor

HEADER = ",".join(schema.COLUMNS)


@pytest.fixture()
def predictor(fitted, store) -> Predictor:
    return Predictor(fitted, model_name="champion", model_version="t1", store=store, log=False)


@pytest.fixture()
def csv(synthetic_raw, tmp_path):
    """11 customers; line 4 has a bad Contract and line 9 repeats line 2's customer (header is line 1)."""
    rows = synthetic_raw.head(10).astype(str).reset_index(drop=True)
    rows.loc[2, "Contract"] = "Weekly"
    lines = [HEADER, *(",".join(r) for r in rows.to_numpy().tolist())]
    lines.insert(8, lines[1])  # line 9 = line 2
    path = tmp_path / "in.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _same_scores(path, other) -> None:
    """Same rows, columns and text; probabilities equal up to float rounding (the model's matrix
    products round differently for different chunk shapes, by ~1e-17)."""
    a, b = pd.read_csv(path, dtype=str), pd.read_csv(other, dtype=str)
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    p = "churn_probability"
    pd.testing.assert_frame_equal(a.drop(columns=p), b.drop(columns=p))
    assert np.allclose(a[p].astype(float), b[p].astype(float), rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", [1, 3, 4, 1000])
def test_chunk_size_changes_neither_output_nor_rejects(predictor, csv, tmp_path, size):
    base = score_csv(predictor, csv, tmp_path / "one.csv", log=False, chunk_size=7, progress=False)
    out = score_csv(predictor, csv, tmp_path / f"c{size}.csv", log=False, chunk_size=size, progress=False)
    _same_scores(tmp_path / f"c{size}.csv", tmp_path / "one.csv")
    assert (tmp_path / f"c{size}.rejects.csv").read_bytes() == (tmp_path / "one.rejects.csv").read_bytes()
    counts = {k: out[k] for k in ("rows", "scored", "rejected", "duplicates", "blank")}
    assert counts == {k: base[k] for k in counts} == {
        "rows": 11, "scored": 9, "rejected": 2, "duplicates": 1, "blank": 0,
    }  # fmt: skip


def test_rejects_carry_their_file_line_and_reason(predictor, csv, tmp_path):
    out = score_csv(
        predictor,
        csv,
        tmp_path / "o.csv",
        rejects_path=tmp_path / "bad.csv",
        log=False,
        chunk_size=3,
        progress=False,
    )
    assert out["rejects"] == str(tmp_path / "bad.csv")
    rejects = pd.read_csv(tmp_path / "bad.csv", dtype=str)
    assert rejects["line"].tolist() == ["4", "9"]
    assert rejects["reason"].str.contains("Contract: must be one of").tolist() == [True, False]
    assert "repeats line 2" in rejects["reason"].iloc[1]
    scored = pd.read_csv(tmp_path / "o.csv", dtype={"customerID": str})
    assert scored["churn_probability"].between(0, 1).all() and len(scored) == 9
    assert list(scored.columns) == [*schema.COLUMNS, "churn_probability", "risk_level"]


def test_formula_cells_are_neutralised_in_output_and_rejects(predictor, synthetic_raw, tmp_path):
    rows = synthetic_raw.head(2).astype(str).reset_index(drop=True)
    rows.loc[0, "customerID"] = "=HYPERLINK(1)"
    rows.loc[1, "customerID"] = "@SUM(A1)"
    rows.loc[1, "Contract"] = "+cmd"  # a bad value too: the row goes to the rejects file
    path = tmp_path / "in.csv"
    path.write_text("\n".join([HEADER, *(",".join(r) for r in rows.to_numpy().tolist())]) + "\n")
    score_csv(predictor, path, tmp_path / "o.csv", log=False, progress=False)
    scored = pd.read_csv(tmp_path / "o.csv", dtype=str)
    rejects = pd.read_csv(tmp_path / "o.rejects.csv", dtype=str)
    assert scored["customerID"].tolist() == ["'=HYPERLINK(1)"]
    assert rejects["customerID"].tolist() == ["'@SUM(A1)"] and rejects["Contract"].tolist() == ["'+cmd"]


def test_a_chunk_size_below_one_is_refused_before_anything_is_written(predictor, csv, tmp_path):
    with pytest.raises(ValueError, match="--chunk-size must be at least 1, got 0"):
        score_csv(predictor, csv, tmp_path / "o.csv", log=False, chunk_size=0, progress=False)
    assert not (tmp_path / "o.csv").exists()


def test_a_file_is_logged_as_one_batch_once(fitted, store, csv, tmp_path):
    predictor = Predictor(fitted, model_name="champion", model_version="t1", store=store)
    first = score_csv(predictor, csv, tmp_path / "a.csv", chunk_size=2, progress=False)
    assert first["log"] == f"logged 9 predictions as batch {first['batch_id']}"
    assert store.count() == 9
    again = score_csv(predictor, csv, tmp_path / "b.csv", chunk_size=5, progress=False)
    assert again["batch_id"] is None and again["log"].startswith(
        f"already logged as batch {first['batch_id']}"
    )
    assert store.count() == 9
    _same_scores(tmp_path / "a.csv", tmp_path / "b.csv")
