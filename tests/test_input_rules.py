"""Input rules that hold everywhere: one CSV reader for `churn predict`, `churn validate`, `prepare`
and the app's /batch (same file, same verdict), booleans are not numbers, repeated customerIDs are
scored once, formula cells are neutralised in every CSV written, missing dropdown values are named."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

from app import serve
from app.predict import DEFAULT
from churn import cli, data, schema
from churn.io import csv_safe, write_csv
from churn.monitoring.store import PredictionStore
from churn.serving import Predictor

HEADER = ",".join(schema.COLUMNS)
UNREADABLE = Path("/proc/self/mem")  # a regular file whose first read fails (EIO), even for root


@pytest.fixture(scope="module")
def project(private_project):
    with private_project("input_rules") as root:
        yield root


ADMIN = ("admin", "input-rules-admin")


@pytest.fixture(scope="module")
def client(project):
    """The app on the project, used as its admin (so /check_alerts gets as far as its inputs)."""
    demo, url = serve(project, admin=ADMIN)
    try:
        yield Client(
            url, auth=ADMIN, verbose=False, download_files=str(project / "downloads"), analytics_enabled=False
        )
    finally:
        demo.close()


@pytest.fixture()
def here(project, monkeypatch):
    """The CLI runs from the project folder (models/, params.yaml) like a user would."""
    monkeypatch.chdir(project)
    return project


@pytest.fixture(scope="module")
def raw(project) -> pd.DataFrame:
    return pd.read_csv(project / "data/raw/synthetic.csv", dtype=str, keep_default_na=False).head(12)


def _lines(frame: pd.DataFrame) -> list[str]:
    return [",".join(row) for row in frame.astype(str).to_numpy().tolist()]


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def bad_files(folder: Path, raw: pd.DataFrame) -> dict[str, Path]:
    """Files that the app and the CLI used to judge differently (and other rule breakers)."""
    folder.mkdir(exist_ok=True)
    good = _lines(raw)
    dropped = good[6].split(",")
    del dropped[5]  # tenure left out: every later field shifts one column left
    ragged = [HEADER, *good[:3], good[3] + ",extra", *good[4:6], ",".join(dropped), *good[7:]]
    latin = raw.copy()
    latin.loc[2, "customerID"] = "7590-VHVÉG"
    long_line = [HEADER, *good[:2], good[2] + "," + "x" * 1_200_000, *good[3:]]
    repeated = raw.copy()
    repeated.loc[[4, 9], "customerID"] = repeated.loc[1, "customerID"]
    dup_header = HEADER.replace(",tenure,", ",tenure,tenure,", 1)
    return {
        "ragged.csv": _write(folder / "ragged.csv", ragged),
        "latin1.csv": _write(folder / "latin1.csv", [HEADER, *_lines(latin)], encoding="latin-1"),
        "long_line.csv": _write(folder / "long_line.csv", long_line),
        "dup_header.csv": _write(folder / "dup_header.csv", [dup_header, *[_dup(line) for line in good]]),
        "dup_ids.csv": _write(folder / "dup_ids.csv", [HEADER, *_lines(repeated)]),
        "quotes.csv": _write(folder / "quotes.csv", [HEADER, *good[:3], '"' + good[3], *good[4:]]),
        "blank_header.csv": _write(folder / "blank_header.csv", ["", HEADER, *good]),
    }


def _dup(line: str) -> str:
    fields = line.split(",")
    return ",".join([*fields[:6], fields[5], *fields[6:]])


def cli_verdict(path: Path, out_dir: Path, capsys) -> tuple:
    out = out_dir / f"{path.stem}.scored.csv"
    code = cli.main(["predict", str(path), "-o", str(out), "--no-log", "--no-progress"])
    err = capsys.readouterr().err
    if code != 0 and not out.exists():
        assert err.startswith("churn predict: ") and "Traceback" not in err, err
        return "refused", err.removeprefix("churn predict: ").strip().replace(str(path), path.name)
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    rejects = pd.read_csv(out.with_suffix(".rejects.csv"), dtype=str, keep_default_na=False)
    return "scored", len(scored), list(zip(rejects["line"].astype(int), rejects["reason"], strict=True))


def app_verdict(client: Client, path: Path) -> tuple:
    try:
        scored_path, _, _, rejects = client.predict(handle_file(str(path)), False, api_name="/batch")
    except (ValidationError, AppError) as exc:
        return "refused", str(exc)
    scored = pd.read_csv(scored_path, dtype=str, keep_default_na=False)
    at = rejects["headers"].index("line")
    return "scored", len(scored), [(int(row[at]), row[at + 1]) for row in rejects["data"]]


def test_the_app_and_the_cli_give_the_same_verdict_on_the_same_bad_files(client, here, raw, tmp_path, capsys):
    files = bad_files(tmp_path / "in", raw)
    verdicts = {}
    for name, path in files.items():
        cli_says, app_says = cli_verdict(path, tmp_path, capsys), app_verdict(client, path)
        assert cli_says[0] == app_says[0], (name, cli_says, app_says)
        if cli_says[0] == "refused":
            assert cli_says[1] in app_says[1], (name, cli_says, app_says)
        else:
            assert cli_says == app_says, name
        verdicts[name] = cli_says
    n = len(raw)
    assert verdicts["ragged.csv"][:2] == ("scored", n - 2)
    (long_at, too_many), (short_at, too_few) = verdicts["ragged.csv"][2]
    assert (long_at, too_many) == (5, "22 fields, expected 21")
    assert (short_at, too_few) == (8, "20 fields, expected 21")  # one reason, not one per shifted column
    assert verdicts["latin1.csv"] == (
        "refused",
        "latin1.csv: line 4 is not UTF-8 text (byte 0xC9): save the file as UTF-8 CSV and try again",
    )
    assert verdicts["long_line.csv"][1] == (
        "long_line.csv: line 4 is longer than 1,000,000 bytes (serving.max_line_bytes): not a customer CSV"
    )
    assert verdicts["dup_header.csv"][0] == "refused"
    assert "column 'tenure': appears more than once in the header" in verdicts["dup_header.csv"][1]
    assert "tenure.1" not in verdicts["dup_header.csv"][1]
    assert verdicts["dup_ids.csv"] == (
        "scored",
        n - 2,
        [
            (6, "customerID: repeats line 3 (each customer is scored once)"),
            (11, "customerID: repeats line 3 (each customer is scored once)"),
        ],
    )
    assert "unbalanced double quotes" in verdicts["quotes.csv"][1]
    assert verdicts["blank_header.csv"] == (
        "refused",
        "blank_header.csv: no header line (the first line is blank)",
    )


def test_directories_and_unreadable_paths_are_one_clear_line(here, tmp_path, capsys, sh, env_for):
    proc = sh(["churn", "predict", str(tmp_path), "-o", str(tmp_path / "o.csv")], here, check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"churn predict: {tmp_path}: is a directory, not a CSV file"
    ]
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"churn validate: {tmp_path}: is a directory, not a CSV file\n"
    if UNREADABLE.is_file():
        assert cli.main(["predict", str(UNREADABLE), "-o", str(tmp_path / "o.csv")]) == 1
        assert capsys.readouterr().err.startswith(f"churn predict: {UNREADABLE}: cannot be read (")
        with pytest.raises(data.DataError, match="cannot be read"):
            data.read_raw(UNREADABLE)
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("case", ["directory", "dup_header"])
def test_prepare_refuses_directories_and_repeated_header_names(project, raw, tmp_path, sh, env_for, case):
    if case == "directory":
        source, message = tmp_path, f"{tmp_path}: is a directory, not a CSV file"
    else:
        source = bad_files(tmp_path / "in", raw)["dup_header.csv"]
        message = "column 'tenure': appears more than once in the header"
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["raw"] = str(source)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    before = {p: p.read_bytes() for p in (project / "data/prepared").iterdir()}
    proc = sh(
        [sys.executable, "-m", "stages.prepare", "--params", str(tmp_path / "params.yaml"),
         "--train-out", str(tmp_path / "train.parquet"), "--test-out", str(tmp_path / "test.parquet"),
         "--metrics-out", str(tmp_path / "data.json")],
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "train.parquet").exists()
    assert {p: p.read_bytes() for p in (project / "data/prepared").iterdir()} == before


def test_booleans_are_not_numbers_in_the_form_the_api_and_the_cli(client, here, raw, capsys, monkeypatch):
    store = PredictionStore()
    before = store.count()
    for field, value in (("tenure", True), ("MonthlyCharges", False), ("SeniorCitizen", True)):
        with pytest.raises(ValidationError) as err:
            client.predict(**{**DEFAULT, field: value}, api_name="/predict")
        assert f"- {field}: {field} must be a number (true/false is not a number)" in str(err.value)
    predictor = Predictor.load("champion", log=False)
    for value in (True, np.bool_(True)):
        with pytest.raises(schema.SchemaError, match="tenure': must be a number .true/false is not a number"):
            predictor.predict({**DEFAULT, "tenure": value})
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({**DEFAULT, "tenure": True})))
    assert cli.main(["explain"]) == 1
    assert "true/false is not a number" in capsys.readouterr().err
    assert store.count() == before  # nothing logged as a prediction
    assert predictor.predict({**DEFAULT, "tenure": 1})["churn_probability"].between(0, 1).all()


def test_repeated_customer_ids_are_scored_once_with_a_warning(client, here, raw, tmp_path, capsys):
    path = bad_files(tmp_path / "in", raw)["dup_ids.csv"]
    path.write_text(path.read_text().replace(",No\n", ",Yes\n", 1))  # a file never logged before
    store = PredictionStore()
    before = store.count()
    out = tmp_path / "scored.csv"
    assert cli.main(["predict", str(path), "-o", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "warning: 2 row(s) repeat an earlier row's customerID (scored once, the repeats rejected)" in err
    scored = pd.read_csv(out, dtype=str)
    assert scored["customerID"].is_unique and len(scored) == len(raw) - 2
    assert store.count() == before + len(raw) - 2
    summary = client.predict(handle_file(str(path)), False, api_name="/batch")[1]
    assert f"{len(raw) - 2} customers scored, 2 rejected" in summary
    assert "2 row(s) repeat an earlier row's customerID" in summary


def test_formula_cells_are_neutralised_in_every_csv_written(client, here, raw, tmp_path, capsys):
    formulas = raw.copy()
    formulas.loc[0, "customerID"] = '=HYPERLINK("http://evil.example","click")'
    formulas.loc[1, "customerID"] = "+1+cmd|' /C calc'!A0"
    formulas.loc[2, "customerID"] = "@SUM(1+1)"
    formulas.loc[3, "customerID"] = "-2+3"
    formulas.loc[4, "tenure"] = "-1"  # a negative number: rejected, and written back as a number
    formulas.loc[5, "Contract"] = "=1+1"
    path = tmp_path / "formulas.csv"
    formulas.to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    assert cli.main(["predict", str(path), "-o", str(out), "--no-log", "--no-progress"]) == 0
    capsys.readouterr()
    app_out = client.predict(handle_file(str(path)), False, api_name="/batch")[0]
    for scored_path in (out, Path(app_out)):
        scored = pd.read_csv(scored_path, dtype=str, keep_default_na=False)
        ids = list(scored["customerID"][:4])
        assert ids == [
            '\'=HYPERLINK("http://evil.example","click")',
            "'+1+cmd|' /C calc'!A0",
            "'@SUM(1+1)",
            "'-2+3",
        ], scored_path
        assert pd.to_numeric(scored["churn_probability"]).between(0, 1).all()
    rejects = pd.read_csv(out.with_suffix(".rejects.csv"), dtype=str, keep_default_na=False)
    assert list(rejects["tenure"]) == ["-1", formulas.loc[5, "tenure"]]
    assert rejects["Contract"].iloc[1] == "'=1+1"
    assert (rejects["reason"].str[0] != "'").all()


def test_csv_safe_quotes_formula_text_and_keeps_numbers():
    frame = pd.DataFrame(
        {
            "text": ["=1+1", "-1.5", "+3", "-x", "@a", "\tb", "\rc", "plain", None],
            "number": [-1.5, 2, -3, 4, 5, 6, 7, 8, np.nan],
            "=name": ["1e5", "-2e-3", ".5", "-", "+", "a-b", "x", "y", "z"],
        }
    )
    safe = csv_safe(frame)
    assert list(safe["text"][:8]) == ["'=1+1", "-1.5", "+3", "'-x", "'@a", "'\tb", "'\rc", "plain"]
    assert pd.isna(safe["text"].iloc[8])
    assert safe["number"].equals(frame["number"]) and list(safe.columns) == ["text", "number", "'=name"]
    assert list(safe["'=name"][:5]) == ["1e5", "-2e-3", ".5", "'-", "'+"]
    assert frame["text"].iloc[0] == "=1+1"  # the caller's frame is left alone


def test_every_csv_writer_goes_through_the_neutraliser(root, tmp_path):
    """Every `to_csv(` in the project's code writes a frame that went through csv_safe (or io.write_csv)."""
    allowed = {"churn/io.py", "churn/mlflow_model.py"}  # the helper itself; an in-memory round trip
    offenders = []
    for folder in ("churn", "app", "stages"):
        for path in sorted((root / folder).rglob("*.py")):
            rel, text = path.relative_to(root).as_posix(), path.read_text()
            if rel not in allowed and text.count(".to_csv(") > text.count("csv_safe("):
                offenders.append(
                    f"{rel}: {text.count('.to_csv(')} to_csv, {text.count('csv_safe(')} csv_safe"
                )
    assert offenders == []
    write_csv(pd.DataFrame({"id": ["=cmd"], "x": [-1]}), tmp_path / "o.csv")
    assert (tmp_path / "o.csv").read_text() == "id,x\n'=cmd,-1\n"


@pytest.mark.parametrize(
    ("window", "unit", "message"),
    [
        (None, "day", "Window: pick one of"),
        ("Last 3 weeks", "day", "Last 3 weeks is not in the list of choices"),  # Gradio's own check
        ("Everything logged", None, "Time unit: pick one of ['hour', 'day'] (nothing was chosen)"),
    ],
)
def test_missing_dropdown_values_get_a_clear_message(client, window, unit, message):
    for endpoint in ("/monitoring", "/check_alerts"):
        with pytest.raises(AppError) as err:
            client.predict(window, unit, api_name=endpoint)
        assert message in str(err.value), (endpoint, str(err.value))
