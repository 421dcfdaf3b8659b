"""A prediction log that is down or refuses the password: `churn monitor …` and `churn predict` say
so in one line, the URL redacted, no traceback, nothing written, the password nowhere (real cluster)."""

from __future__ import annotations

import logging
import shutil

import pytest

from churn import cli
from tests.fixtures import ROOT
from tests.fixtures.servers import free_port

WRONG = "not-the-pg-password"


@pytest.fixture(params=["down", "wrong_password"])
def dead_log(request, postgres_cluster) -> tuple[str, str]:
    """(URL, what the error line says) of a prediction log that cannot be used."""
    if request.param == "down":
        url = f"postgresql+psycopg://churn:{WRONG}@127.0.0.1:{free_port()}/predictions"  # nothing listens
        return url, "Connection refused"
    url = postgres_cluster.url(postgres_cluster.create_database()).replace(postgres_cluster.password, WRONG)
    return url, 'password authentication failed for user "churn"'


def _one_line(capfd, caplog, command: str, setting: str, url: str, says: str) -> str:
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    shown = url.replace(WRONG, "***")
    assert lines[0].startswith(f"churn {command}: cannot use the prediction log ({setting}) at {shown}: ")
    assert says in lines[0] and "Traceback" not in err
    assert WRONG not in out + err + caplog.text
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [["traffic"], ["drift", "--last", "10"], ["check"]],
    ids=lambda argv: argv[0],
)
def test_monitor_commands_name_a_dead_log_in_one_line(dead_log, tmp_path, argv, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    shutil.copy2(ROOT / "params.yaml", tmp_path / "params.yaml")
    url, says = dead_log
    monkeypatch.setenv("CHURN_DB_URL", url)
    params = [] if argv[0] in ("alerts", "traffic") else ["--params", str(tmp_path / "params.yaml")]
    assert cli.main(["--log-level", "DEBUG", "monitor", *argv, *params]) == 1
    _one_line(capfd, caplog, "monitor", "CHURN_DB_URL", url, says)
    monkeypatch.delenv("CHURN_DB_URL")
    assert cli.main(["monitor", *argv, *params, "--db", url]) == 1
    _one_line(capfd, caplog, "monitor", "--db", url, says)


def test_predict_with_a_dead_log_writes_nothing(dead_log, served, synthetic_raw, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    url, says = dead_log
    monkeypatch.setenv("CHURN_DB_URL", url)
    path, out = served / "in.csv", served / "out.csv"
    synthetic_raw.head(20).to_csv(path, index=False)
    assert cli.main(["--log-level", "DEBUG", "predict", str(path), "-o", str(out)]) == 1
    _one_line(capfd, caplog, "predict", "CHURN_DB_URL", url, says)
    assert not out.exists()
