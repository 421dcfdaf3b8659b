"""MLflow as a team server: a real `mlflow server` on PostgreSQL (a fresh database of the throwaway
cluster) with proxied artifacts; `churn track`, `churn promote` and the app's registry panel
against it, and what a user sees when the server or its database is not there."""

from __future__ import annotations

import json

import psycopg
import pytest

from app.experiments import search_runs
from app.registry import registry_table
from app.state import AppState
from churn import cli, registry
from tests.fixtures.servers import free_port, running_mlflow_server

pytestmark = pytest.mark.slow

MODEL = "churn-pg-model"


@pytest.fixture(scope="module")
def pg_mlflow(postgres_cluster, tmp_path_factory):
    """One `mlflow server` for this module: backend `postgresql+psycopg://…/<fresh db>`, artifacts in
    a temp folder. Yields (server URL, the database's psycopg URL, the artifact folder)."""
    database = postgres_cluster.create_database()
    base = tmp_path_factory.mktemp("mlflow-pg")
    with running_mlflow_server(base, postgres_cluster.url(database)) as url:
        yield url, postgres_cluster.url(database, driver="postgresql"), base / "artifacts", database


def _sql(db_url: str, query: str) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(query).fetchall()


def test_track_promote_and_the_app_on_a_postgres_backed_server(
    pg_mlflow, private_project, monkeypatch, capsys
):
    url, db_url, artifacts, _ = pg_mlflow
    with private_project("mlflow-pg") as root:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        monkeypatch.chdir(root)
        params = root / "params.yaml"
        params.write_text(params.read_text().replace("churn-model", MODEL))

        assert cli.main(["track"]) == 0
        out = capsys.readouterr().out
        assert f"MLflow at {url}\n" in out and out.count("(logged)") == 2, out
        assert "aliases set: champion → version 1, challenger → version 2" in out
        # the runs and the registry live in PostgreSQL, the models in the artifact destination
        assert _sql(db_url, "select alias, version from registered_model_aliases order by alias") == [
            ("challenger", 2),
            ("champion", 1),
        ]
        assert len(_sql(db_url, "select run_uuid from runs where status = 'FINISHED'")) == 2
        assert len(list(artifacts.rglob("MLmodel"))) == 2

        assert cli.main(["promote", "--version", "2", "--force", "--reason", "team server check"]) == 0
        assert "churn-pg-model version 2 is now the champion; version 1 archived" in capsys.readouterr().out
        assert registry.aliases(registry.client(root), MODEL) == {"champion": "2"}

        # the app's Experiments & registry tab reads the same server
        state = AppState(root=root, model="champion", predictor=None)
        table = registry_table(state)
        assert table[["version", "status", "model"]].values.tolist() == [
            ["2", "champion", "challenger"],
            ["1", "archived", "champion"],
        ]
        assert "team server check" in table.loc[0, "status history (oldest first)"]
        runs = search_runs(state)
        assert sorted(runs["tags.model_name"]) == ["challenger", "champion"]


def test_unreachable_server_or_database_is_one_line_without_the_password(
    private_project, postgres_cluster, monkeypatch, capsys
):
    """`churn track` against a server nobody listens on, and straight at PostgreSQL with a wrong
    password: one line on stderr naming the store, the password replaced by ***."""
    closed = f"http://team:S3CRET-pw@127.0.0.1:{free_port()}"
    wrong = postgres_cluster.url(postgres_cluster.create_database()).replace(
        f":{postgres_cluster.password}@", ":S3CRET-pw@"
    )
    with private_project("mlflow-down") as root:
        monkeypatch.chdir(root)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        for uri in (closed, wrong):
            monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
            assert cli.main(["track"]) == 1
            captured = capsys.readouterr()
            lines = captured.err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("churn track: "), captured.err
            assert "S3CRET" not in captured.err + captured.out and ":***@" in lines[0], lines[0]
            assert "Traceback" not in captured.err


def test_server_whose_database_is_down_is_one_line(
    pg_mlflow, postgres_cluster, private_project, monkeypatch, capsys
):
    """The server runs but its PostgreSQL refuses connections: `churn track` gives up after the HTTP
    timeout with one redacted line; once the database is back, the same server answers again."""
    url, _, _, database = pg_mlflow
    admin = postgres_cluster.url(driver="postgresql")
    with private_project("mlflow-db-down") as root:
        monkeypatch.chdir(root)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url.replace("http://", "http://team:S3CRET-pw@"))
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,)
            )
        try:
            assert cli.main(["track"]) == 1
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("churn track: cannot use the MLflow registry at "), (
            lines
        )
        assert "S3CRET" not in captured.err + captured.out and "team:***@" in lines[0]

        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
        assert cli.main(["registry", "--json"]) == 0  # nothing registered under this copy's name
        assert json.loads(capsys.readouterr().out) == []
