"""Reading, cleaning and splitting: the real file's quirks are handled, not rejected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn import data, schema


def test_real_file_prepares(real_csv):
    df, fixed = data.load_clean(real_csv)
    assert len(df) == 5634 and fixed == 8
    assert df["TotalCharges"].notna().all()
    assert (df.loc[df["tenure"] == 0, "TotalCharges"] == 0).all()
    assert df["Churn"].isin([0, 1]).all()
    assert abs(df["Churn"].mean() - 0.265) < 0.002


def test_split_is_stratified_and_seeded(real_csv):
    df, _ = data.load_clean(real_csv)
    train, test = data.split(df, test_size=0.2, seed=42)
    assert len(test) == 1127 and len(train) + len(test) == len(df)
    assert abs(train["Churn"].mean() - test["Churn"].mean()) < 0.005
    again, _ = data.split(df, test_size=0.2, seed=42)
    pd.testing.assert_frame_equal(train, again)
    other, _ = data.split(df, test_size=0.2, seed=1)
    assert not other["customerID"].equals(train["customerID"])
    assert not set(train["customerID"]) & set(test["customerID"])


def test_split_rejects_bad_test_size(prepared):
    with pytest.raises(ValueError, match="test_size"):
        data.split(prepared[0], test_size=1.5, seed=0)


def test_coerce_handles_raw_and_broken_values():
    raw = pd.DataFrame([{c: "No" for c in schema.FEATURES}] * 3)
    raw["tenure"] = ["0", "5", "abc"]
    raw["MonthlyCharges"] = ["20.5", "30", ""]
    raw["TotalCharges"] = [" ", "150.5", "1"]
    raw["SeniorCitizen"] = ["0", "1", "0"]
    out = data.coerce_features(raw)
    assert out["TotalCharges"].tolist() == [0.0, 150.5, 1.0]
    assert out["tenure"].isna().tolist() == [False, False, True]
    assert pd.isna(out.loc[2, "MonthlyCharges"])
    assert out["SeniorCitizen"].tolist() == [0.0, 1.0, 0.0]


def test_read_raw_errors_name_the_file(tmp_path):
    with pytest.raises(data.DataError, match="not found"):
        data.read_raw(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(data.DataError, match="empty.csv: the file is empty"):
        data.read_raw(empty)
    broken = tmp_path / "broken.csv"
    broken.write_text('a,b\n1,"unterminated\n')
    with pytest.raises(data.DataError, match="broken.csv: unbalanced double quotes"):
        data.read_raw(broken)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n1,2,3\n")
    with pytest.raises(data.DataError, match="ragged.csv: not a readable CSV .line 3: 3 fields, expected 2"):
        data.read_raw(ragged)


def test_a_line_with_too_few_or_too_many_fields_gets_one_length_reason(synthetic_raw, tmp_path):
    lines = [",".join(schema.COLUMNS), *(",".join(r) for r in synthetic_raw.head(8).to_numpy().tolist())]
    fields = lines[2].split(",")
    lines[2] = ",".join(fields[:5] + fields[6:])  # tenure left out: 20 fields, the rest shifted left
    lines[4] = lines[4].rsplit(",", 1)[0] + ","  # 21 fields, the last one empty: a row like any other
    lines[5] = '"9999,ABCDE"'  # 1 field (quoted, with a comma inside)
    lines[7] += ",extra"
    path = tmp_path / "short.csv"
    path.write_text("\n".join(lines) + "\n")
    for size in (3, 100):  # lines checked across chunk boundaries too
        parts = list(data.CsvInput(path).chunks(size))
        rejects = pd.concat([p.rejects for p in parts], ignore_index=True)
        assert list(zip(rejects[data.LINE], rejects[data.REASON], strict=True)) == [
            (3, "20 fields, expected 21"),
            (6, "1 field, expected 21"),
            (8, "22 fields, expected 21"),
        ]
        assert rejects.loc[0, schema.ID] == synthetic_raw.loc[1, schema.ID]
        kept = np.concatenate([p.lines for p in parts]).tolist()
        assert kept == [2, 4, 5, 7, 9]
        assert pd.concat([p.frame for p in parts]).iloc[2][schema.TARGET] == ""


def test_summary_figures(prepared):
    train, test = prepared
    df = pd.concat([train, test])
    s = data.summary(df, train, test, fixed=2, input_md5="abc", input_path="x.csv")
    assert s["rows"] == {"total": len(df), "train": len(train), "test": len(test), "fixed": 2}
    assert s["churn_rate"]["total"] == pytest.approx(df["Churn"].mean())
