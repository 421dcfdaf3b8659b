"""`churn report`: the pull-request report, against real git and DVC in temporary repositories."""

from __future__ import annotations

import json
import re
import struct
import sys
from pathlib import Path

import pytest
import yaml

from churn import cli, report, scorecard
from churn.validation import gate

MODELS = ("champion", "challenger")
# As in the real dvc.yaml: DVC declares only the scorecard as metrics; the detailed files the report
# compares are plain outputs.
DVC_YAML = {
    "stages": {
        "evaluate": {
            "foreach": list(MODELS),
            "do": {
                "cmd": "true",
                "params": ["base", "models.${item}"],
                "outs": [{"metrics/evaluate/${item}.json": {"cache": False}}],
                "metrics": [{"metrics/scorecard/evaluate/${item}.json": {"cache": False}}],
            },
        },
        "report": {
            "cmd": "true",
            "outs": [
                {"metrics/validation.json": {"cache": False}},
                {"metrics/ab_test.json": {"cache": False}},
            ],
        },
    }
}
DETAIL = [f"metrics/evaluate/{m}.json" for m in MODELS] + ["metrics/validation.json", "metrics/ab_test.json"]
PARAMS_MAIN = {
    "base": {"seed": 42},
    "models": {
        "champion": {"estimator": "random_forest", "params": {"n_estimators": 100}},
        "challenger": {"estimator": "hist_gradient_boosting", "params": {"learning_rate": 0.03}},
    },
}
SCORES_MAIN = {
    "champion": {"accuracy": 0.763, "roc_auc": 0.8065, "brier": 0.1512, "confusion": {"tp": 181, "fp": 143}},
    "challenger": {
        "accuracy": 0.7793,
        "roc_auc": 0.8192,
        "brier": 0.1452,
        "confusion": {"tp": 184, "fp": 122},
    },
}
SCORES_PR = {
    "champion": SCORES_MAIN["champion"],
    "challenger": {
        "accuracy": 0.7921,
        "roc_auc": 0.8301,
        "brier": 0.1398,
        "confusion": {"tp": 190, "fp": 119},
    },
}


def _validation(accuracy: float, gap: float) -> dict:
    """A validation report in the format of the `report` stage, gates built by churn.validation.gate."""
    gates = {
        "performance.accuracy": gate(accuracy, 0.7, ">="),
        "fairness.gender.accuracy_gap": gate(gap, 0.1, "<="),
        "fairness.Dependents.accuracy_gap": gate(None, 0.1, "<=", status="insufficient_data"),
    }
    approved = all(g["status"] != "fail" for g in gates.values())
    return {"model": "challenger", "approved": approved, "gates": gates, "champion": {"gates": gates}}


AB_PR = {
    "recommendation": "promote",
    "reasons": ["challenger is more accurate and the difference is significant"],
    "mcnemar": {"method": "chi-square with continuity correction", "p_value": 0.0123, "statistic": 6.27},
    "alpha": 0.05,
    "n": 1409,
    "bootstrap": {"difference": {"accuracy": {"estimate": 0.0128, "low": 0.0031, "high": 0.0227}}},
}


def _points(shift: float) -> dict[str, list[dict]]:
    grid = [i / 10 for i in range(11)]
    return {
        "roc": [{"fpr": x, "tpr": min(1.0, x**0.5 + shift)} for x in grid],
        "precision_recall": [{"recall": x, "precision": 1 - 0.7 * x + shift} for x in grid],
        "calibration": [{"mean_predicted": x, "fraction_positive": x * (1 - shift)} for x in grid],
        "profit": [{"share": x, "profit": 1000 * x * (1 - x) + shift} for x in grid],
        "importance": [
            {"feature": "Contract", "importance": 0.03 + shift},
            {"feature": "tenure", "importance": 0.02},
        ],
    }


def _write(root: Path, rel: str, obj) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(obj) if rel.endswith(".yaml") else json.dumps(obj, indent=2))


def _state(root: Path, params: dict, scores: dict, validation=None, ab=None, shift: float = 0.0) -> None:
    _write(root, "params.yaml", params)
    for name, values in scores.items():
        _write(root, f"metrics/evaluate/{name}.json", values)
        _write(root, f"metrics/scorecard/evaluate/{name}.json", scorecard.evaluate(name, values))
        for kind, points in _points(shift).items():
            _write(root, f"metrics/plots/{name}/{kind}.json", points)
    for rel, obj in (("metrics/validation.json", validation), ("metrics/ab_test.json", ab)):
        if obj is not None:
            _write(root, rel, obj)


def _init(root: Path, sh, env) -> None:
    root.mkdir(parents=True)
    sh(["git", "init", "-q", "-b", "main"], root, env)
    sh([sys.executable, "-m", "dvc", "init", "-q"], root, env)
    sh([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], root, env)


def _commit(root: Path, sh, env, message: str) -> None:
    sh(["git", "add", "-A"], root, env)
    sh(["git", "commit", "-q", "-m", message], root, env)


def _commit_pipeline(root: Path, sh, env, message: str) -> None:
    """Commit dvc.yaml with the `main` params and scores (no validation, no A/B test)."""
    _write(root, "dvc.yaml", DVC_YAML)
    _state(root, PARAMS_MAIN, SCORES_MAIN)
    _commit(root, sh, env, message)


@pytest.fixture(scope="module")
def pr_repo(tmp_path_factory, sh, env_for) -> Path:
    """`main`: first params and metrics, approved; branch `pr`: a new learning rate, better metrics, a failed gate."""
    root = tmp_path_factory.mktemp("pr") / "repo"
    env = env_for()
    _init(root, sh, env)
    _write(root, "dvc.yaml", DVC_YAML)
    _state(root, PARAMS_MAIN, SCORES_MAIN, _validation(0.7793, 0.04))
    _commit(root, sh, env, "main")
    sh(["git", "switch", "-q", "-c", "pr"], root, env)
    params = json.loads(json.dumps(PARAMS_MAIN))
    params["models"]["challenger"]["params"]["learning_rate"] = 0.05
    _state(root, params, SCORES_PR, _validation(0.7921, 0.13), AB_PR, shift=0.05)
    _commit(root, sh, env, "pr")
    return root


def run_report(root: Path, out: Path, monkeypatch, *extra: str) -> str:
    monkeypatch.chdir(root)
    assert cli.main(["report", "-o", str(out), *extra]) == 0
    return out.read_text()


def table_rows(markdown: str, first_header: str) -> list[list[str]]:
    """The body rows of the first Markdown table whose header starts with `first_header`."""
    lines = markdown.splitlines()
    start = next(
        i
        for i, line in enumerate(lines)
        if line.split("|")[1:2] and line.split("|")[1].strip() == first_header
    )
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def headline_rows(markdown: str) -> dict[tuple[str, str], list[str]]:
    """{(model, metric): [base, workspace, change]} from the test-set metrics table."""
    return {(r[0], r[1].split(" ")[0]): r[2:] for r in table_rows(markdown, "Model")}


def changed_metrics(markdown: str) -> dict[tuple[str, str], list[str]]:
    """{(file, metric): [base, workspace, change]} from the per-file tables of changed metrics."""
    found = {}
    for block in markdown.split("<summary><code>")[1:]:
        path = block.split("</code>", 1)[0]
        found.update({(path, r[0].strip("`")): r[1:] for r in table_rows(block, "Metric")})
    return found


def test_metric_and_param_numbers_equal_the_real_differences(pr_repo, tmp_path, monkeypatch, sh):
    text = run_report(pr_repo, tmp_path / "report.md", monkeypatch, "--base", "main", "--no-plots")

    headline = headline_rows(text)
    assert set(headline) == {(m, k) for m in MODELS for k in ("accuracy", "roc_auc", "brier")}
    for (model, metric), (base, workspace, change) in headline.items():
        old, new = SCORES_MAIN[model][metric], SCORES_PR[model][metric]
        assert float(base) == old and float(workspace) == new
        assert change == ("0" if old == new else f"{new - old:+.4f}")
    assert headline[("challenger", "accuracy")][2] == "+0.0128"

    params = table_rows(text, "File")
    assert params == [
        ["`params.yaml`", "`models.challenger.params.learning_rate`", "0.0300", "0.0500", "+0.0200"]
    ]

    # Every changed metric of the detailed files, cross-checked against DVC's own Markdown table.
    ours = changed_metrics(text)
    dvc = [sys.executable, "-m", "dvc", "metrics", "diff", "main"]
    dvc_md = sh([*dvc, "--md", "--targets", *DETAIL], pr_repo).stdout
    theirs = {(r[0], r[1]): r[2:] for r in table_rows(dvc_md, "Path")}
    assert ("metrics/evaluate/challenger.json", "confusion.tp") in ours
    assert ours[("metrics/evaluate/challenger.json", "confusion.tp")] == ["184", "190", "+6"]
    for key, (_base, workspace, change) in theirs.items():
        assert key in ours, key
        if change == "-":  # text, or a metric new on one side
            assert ours[key][2] in ("changed", "new", "removed"), key
        elif ours[key][2] == "changed":  # a boolean: DVC subtracts them, the report says it changed
            assert {_base, workspace} == {"True", "False"}, key
        else:
            assert float(ours[key][2]) == pytest.approx(float(change), abs=1e-4), key
            assert float(ours[key][1]) == pytest.approx(float(workspace)), key
    assert len(ours) == len(theirs)
    assert "unchanged" in text and "Generated by `churn report --base main`" in text
    # plain `dvc metrics diff` shows the scorecard only
    declared = json.loads(sh([*dvc, "--json"], pr_repo).stdout)
    assert set(declared) == {"metrics/scorecard/evaluate/challenger.json"}
    assert set(declared["metrics/scorecard/evaluate/challenger.json"]) == {"challenger.roc_auc"}


def test_gates_and_ab_verdict(pr_repo, tmp_path, monkeypatch):
    text = run_report(pr_repo, tmp_path / "report.md", monkeypatch, "--base", "main", "--no-plots")

    assert (
        "**Verdict for challenger: Not approved: fails 1 gate ❌** (on `main`: Approved by the gates ✅)"
        in text
    )
    assert "- ❌ `fairness.gender.accuracy_gap`: 0.1300, ≤ 0.1000" in text
    gates = {r[0].strip("`"): r for r in table_rows(text, "Gate")}
    assert gates["fairness.gender.accuracy_gap"][3:] == ["❌ fail", "❌ fail", "✅ pass"]
    assert gates["performance.accuracy"][1:4] == ["0.7921", "≥ 0.7000", "✅ pass"]
    assert gates["fairness.Dependents.accuracy_gap"][3] == "⚠️ insufficient data"
    assert "1 pass, 1 fail, 1 insufficient data of 3 gates." in text
    assert "**Recommendation: A/B: significantly better — promote the challenger** (`promote`)" in text
    assert (
        "p-value 0.0123 at significance level 0.05, on 1409 test customers — chi-square with continuity correction"
        in text
    )
    assert "accuracy difference (challenger − champion): +0.0128 (CI +0.0031 to +0.0227)" in text


def test_plots_are_pngs_linked_relative_to_the_report(pr_repo, tmp_path, monkeypatch):
    out = tmp_path / "docs" / "report.md"
    text = run_report(pr_repo, out, monkeypatch, "--base", "main", "--plots-dir", str(tmp_path / "img"))

    links = re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", text)
    titles = [t for t, _ in links]
    assert titles == [
        "ROC",
        "Precision–recall",
        "Calibration",
        "Profit curve",
        "Feature importance: challenger",
        "Feature importance: champion",
    ]
    for _title, link in links:
        assert link.startswith("../img/"), link
        png = (out.parent / link).resolve()
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (720, 480)
    assert "dashed: `main`" in text


def test_plots_url_links_instead_of_embedding():
    url = "https://github.com/acme/churn/actions/runs/1"
    plots = [
        report.Plot("ROC", "report-plots/roc.png"),
        report.Plot("Calibration", "report-plots/calibration.png"),
    ]
    text = report.render(report.ReportInputs(base="main", plots=plots, plots_url=url))
    assert f"ROC, Calibration: attached to [the workflow run]({url}) as images." in text
    assert "![" not in text
    embedded = report.render(report.ReportInputs(base="main", plots=plots))
    assert "![ROC](report-plots/roc.png)" in embedded and url not in embedded


def test_unknown_base_revision_says_so_and_shows_workspace_values(pr_repo, tmp_path, monkeypatch):
    text = run_report(pr_repo, tmp_path / "r.md", monkeypatch, "--base", "origin/nope", "--no-plots")
    assert "the base revision `origin/nope` does not exist in this clone" in text
    assert "Parameters were not compared" in text
    rows = headline_rows(text)
    assert rows[("challenger", "accuracy")] == ["—", "0.7921", "new"]


@pytest.fixture()
def new_repo(tmp_path, sh, env_for) -> tuple[Path, dict[str, str]]:
    """An empty git + DVC repository and the environment to run git in it."""
    root, env = tmp_path / "repo", env_for()
    _init(root, sh, env)
    return root, env


def test_first_pull_request_without_base_metrics(new_repo, tmp_path, monkeypatch, sh):
    root, env = new_repo
    (root / "README.md").write_text("a new project\n")
    _commit(root, sh, env, "first commit, no pipeline yet")
    sh(["git", "switch", "-q", "-c", "pipeline"], root, env)
    _commit_pipeline(root, sh, env, "add the pipeline")

    text = run_report(root, tmp_path / "r.md", monkeypatch, "--base", "main", "--no-plots")
    assert "`main` has no metrics yet (a first pull request, or the pipeline never ran there)" in text
    assert "No `metrics/validation.json` on this revision" in text
    assert "No `metrics/ab_test.json` on this revision" in text
    rows = headline_rows(text)
    assert rows[("champion", "roc_auc")] == ["—", "0.8065", "new"]


def test_broken_validation_file_becomes_a_note(new_repo, tmp_path, monkeypatch, sh):
    root, env = new_repo
    _commit_pipeline(root, sh, env, "main")
    (root / "metrics" / "validation.json").write_text("{not json")

    text = run_report(root, tmp_path / "r.md", monkeypatch, "--base", "main", "--no-plots")
    assert "workspace metrics/validation.json: not valid JSON" in text
    assert "No parameter changed against `main`." in text
    assert "No metric changed against `main`" in text


def test_outside_a_git_repository_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--base", "main", "-o", "r.md"]) == 2
    assert "not inside a git repository" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()
    assert cli.main(["report", "--base=--output=x"]) == 2


def test_changes_and_deltas_from_dvc_json():
    diff = {
        "metrics/evaluate/challenger.json": {
            "roc_auc": {"old": 0.8065, "new": 0.82, "diff": 0.013499999999999956},
            "confusion.tp": {"old": 10, "new": 12, "diff": 2},
            "new_metric": {"old": None, "new": 1},
            "gone": {"old": 0.5, "new": None},
            "label": {"old": "a", "new": "b"},
        }
    }
    changes = {c.name: c for c in report.changes_from_diff(diff)}
    assert report.fmt_delta(changes["roc_auc"]) == "+0.0135"
    assert report.fmt_delta(changes["confusion.tp"]) == "+2"
    assert report.fmt_delta(changes["new_metric"]) == "new"
    assert report.fmt_delta(changes["gone"]) == "removed"
    assert report.fmt_delta(changes["label"]) == "changed"
    assert [c.name for c in report.changes_from_diff(diff)] == sorted(changes)
    show = {"": {"data": {"m.json": {"data": {"a": {"b": 1}, "c": 0.5}}}}}
    assert [(c.name, c.old, c.new) for c in report.changes_from_show(show)] == [
        ("a.b", None, 1),
        ("c", None, 0.5),
    ]


def test_long_metric_diffs_are_capped_per_file():
    many = [report.Change("metrics/fairness.json", f"m{i:03d}", 0.1, 0.2) for i in range(45)]
    few = [report.Change("metrics/evaluate/champion.json", "accuracy", 0.7, 0.75)]
    text = report.render(report.ReportInputs(base="main", metrics=many + few))
    tables = changed_metrics(text)
    assert sum(path == "metrics/fairness.json" for path, _ in tables) == report.MAX_ROWS_PER_FILE == 30
    assert tables[("metrics/evaluate/champion.json", "accuracy")] == ["0.7000", "0.7500", "+0.0500"]
    assert "<code>metrics/fairness.json</code>: 45 changed" in text
    assert "… and 15 more: `dvc metrics diff main --targets metrics/fairness.json` lists them all." in text
