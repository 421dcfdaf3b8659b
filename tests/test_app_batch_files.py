"""The app's /batch logs a file once per model, and no customer file outlives its bounded lifetime:
no request folder is left in the temp folder, Gradio's cache copies go after `CACHE_LIFETIME`."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from gradio_client import Client, handle_file

import app
from app import files, serve
from churn.monitoring.store import PredictionStore

#: Gradio's cache emptied every second of files older than five (the app's default: an hour).
SHORT_LIFETIME = (1, 5)


@pytest.fixture(scope="module")
def project(private_project):
    with private_project("app_batch_files") as root:
        yield root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gradio_cache")


@pytest.fixture(scope="module")
def client(project, cache_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(app, "CACHE_LIFETIME", SHORT_LIFETIME)
        mp.setenv("GRADIO_TEMP_DIR", str(cache_dir))
        demo, url = serve(project)
        try:
            yield Client(
                url, verbose=False, download_files=str(project / "downloads"), analytics_enabled=False
            )
        finally:
            demo.close()


@pytest.fixture(scope="module")
def store(project):
    s = PredictionStore()
    yield s
    s.dispose()


def customers_csv(project: Path, folder: Path, rows: slice, name: str = "customers.csv") -> Path:
    raw = pd.read_csv(project / "data/raw/synthetic.csv", dtype=str, keep_default_na=False)
    path = folder / name
    raw.iloc[rows].to_csv(path, index=False)
    return path


def request_folders() -> set[str]:
    tmp = Path(tempfile.gettempdir())
    return {p.name for prefix in files.PREFIXES for p in tmp.glob(f"{prefix}*")}


def test_a_file_is_logged_once_per_model_and_scored_every_time(client, store, project, tmp_path):
    path = customers_csv(project, tmp_path, slice(0, 60))
    before = store.count()
    first_csv, first_summary, *_ = client.predict(handle_file(str(path)), False, api_name="/batch")
    assert store.count() == before + 60
    assert "Prediction log: logged 60 predictions as batch" in first_summary
    batch_id = int(first_summary.split("as batch ")[1].split(".")[0])
    # the same bytes again (another name): scored and returned, not logged again
    again = customers_csv(project, tmp_path, slice(0, 60), name="same_again.csv")
    second_csv, second_summary, *_ = client.predict(handle_file(str(again)), False, api_name="/batch")
    assert store.count() == before + 60
    assert f"already logged as batch {batch_id} on " in second_summary
    assert "not logged again (scored output written)" in second_summary
    assert len(pd.read_csv(first_csv)) == len(pd.read_csv(second_csv)) == 60
    # other customers are another batch
    other = customers_csv(project, tmp_path, slice(60, 80), name="others.csv")
    _, third_summary, *_ = client.predict(handle_file(str(other)), False, api_name="/batch")
    assert store.count() == before + 80 and f"as batch {batch_id + 1}" in third_summary


def test_requests_leave_no_folder_and_the_cache_empties_itself(client, project, cache_dir, tmp_path):
    before = request_folders()
    path = customers_csv(project, tmp_path, slice(100, 130), name="fresh.csv")
    scored, *_ = client.predict(handle_file(str(path)), False, api_name="/batch")
    exported = client.predict(api_name="/export_runs")
    assert len(pd.read_csv(scored)) == 30 and len(pd.read_csv(exported)) >= 1
    assert request_folders() - before == set()  # the per-request folders are gone already
    cached = {p.name for p in cache_dir.rglob("*") if p.is_file()}
    # the upload, the scored CSV and the export were served from Gradio's cache ...
    assert {"fresh.csv", "fresh.scored.csv", "mlflow_runs.csv"} <= cached
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(stored(cache_dir)):
        time.sleep(0.5)
    # ... and are deleted once older than the lifetime (what Gradio leaves is empty: see the next test)
    assert stored(cache_dir) == []


def stored(folder: Path) -> list[str]:
    """Files with content under `folder`."""
    return [p.name for p in folder.rglob("*") if p.is_file() and p.stat().st_size]


def test_empty_files_gradio_leaves_in_its_cache_are_swept(tmp_path):
    old, young, data = tmp_path / "tmpold1", tmp_path / "tmpyoung", tmp_path / "tmpdata"
    old.touch()
    young.touch()
    data.write_text("not ours to judge")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(data, (hour_ago, hour_ago))
    assert files.sweep_empty_leftovers(tmp_path, max_age_s=60) == [old]
    assert young.exists() and data.exists()


def test_sweep_removes_request_folders_a_killed_app_left(tmp_path):
    old = tmp_path / f"{files.BATCH_PREFIX}old"
    young = tmp_path / f"{files.RUNS_PREFIX}young"
    unrelated = tmp_path / "someone-else-old"
    for folder in (old, young, unrelated):
        folder.mkdir()
        (folder / "scored.csv").write_text("customerID\n7590-VHVEG\n")
    hour_ago = time.time() - 3600
    for folder in (old, unrelated):
        os.utime(folder, (hour_ago, hour_ago))
    assert files.sweep(max_age_s=60, folder=tmp_path) == [old]
    assert not old.exists() and young.exists() and unrelated.exists()
