"""The `churn` dispatcher (churn/cli.py): its help, and errors mapped to one line and an exit code."""

from __future__ import annotations


def test_help_lists_commands(sh, root):
    out = sh(["churn", "--help"], root).stdout
    for command in ("synth", "validate"):
        assert command in out


def test_a_directory_or_a_dead_prediction_log_is_one_line_not_a_traceback(
    tmp_path, monkeypatch, capsys, serving_root
):
    from churn import cli

    folder = tmp_path / "in"
    folder.mkdir()
    monkeypatch.chdir(serving_root)
    monkeypatch.setenv("CHURN_DB_URL", f"sqlite:///{tmp_path / 'in'}")  # a directory: the log cannot open
    assert cli.main(["explain", str(folder)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("churn explain: ") and "Traceback" not in err[0]
    assert cli.main(["monitor", "traffic"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        "churn monitor: cannot use the prediction log (CHURN_DB_URL)"
    ), err
