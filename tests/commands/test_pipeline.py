"""`churn synth` and `churn validate` (churn/commands/pipeline.py), run for real as a subprocess."""

from __future__ import annotations

import pandas as pd

from churn import schema


def test_synth_writes_a_valid_file(tmp_path, sh, root):
    out = tmp_path / "customers.csv"
    proc = sh(["churn", "synth", "--rows", "300", "--seed", "3", "-o", str(out)], root)
    assert "wrote 300 synthetic customers (seed 3)" in proc.stdout
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(df) == 300 and list(df.columns) == list(schema.COLUMNS)
    schema.validate(df)


def test_synth_bad_rows_is_one_clear_line(tmp_path, sh, root):
    proc = sh(["churn", "synth", "--rows", "0", "-o", str(tmp_path / "x.csv")], root, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["churn synth: --rows must be at least 1, got 0"]
    assert not (tmp_path / "x.csv").exists()


def test_validate_ok_and_problems(tmp_path, sh, root, synthetic_raw):
    good = tmp_path / "good.csv"
    synthetic_raw.head(50).to_csv(good, index=False)
    assert sh(["churn", "validate", str(good)], root).stdout.strip() == f"{good}: 50 rows, schema OK"

    bad = synthetic_raw.head(50).copy()
    bad.loc[2, "PaymentMethod"] = "Bitcoin"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    proc = sh(["churn", "validate", str(tmp_path / "bad.csv")], root, check=False)
    assert proc.returncode == 1
    assert "column 'PaymentMethod': must be one of" in proc.stderr and "row 4" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_validate_missing_file(tmp_path, sh, root):
    proc = sh(["churn", "validate", str(tmp_path / "none.csv")], root, check=False)
    assert proc.returncode == 1 and "none.csv: input file not found" in proc.stderr
