"""CI/CD files: workflows valid for GitHub, the same commands as the README, container and hooks sound."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from churn import cli

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent
README = (ROOT / "README.md").read_text()


def load_workflow(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True


def steps(workflow: dict, job: str | None = None) -> list[dict]:
    jobs = [workflow["jobs"][job]] if job else workflow["jobs"].values()
    return [step for j in jobs for step in j.get("steps", [])]


def run_lines(workflow: dict, job: str | None = None) -> list[str]:
    return [line.strip() for s in steps(workflow, job) for line in s.get("run", "").splitlines()]


def uses(workflow: dict, job: str | None = None) -> list[str]:
    return [s["uses"] for s in steps(workflow, job) if "uses" in s]


def make_targets(lines: list[str]) -> set[str]:
    return {t for line in lines for m in re.finditer(r"\bmake ((?:[a-z-]+ ?)+)", line) for t in m[1].split()}


def churn_commands(lines: list[str]) -> set[str]:
    """`churn <command> [<subcommand>]` as written in run steps (options and values dropped)."""
    found = set()
    for line in lines:
        for m in re.finditer(r"(?:^|[;&|]\s*)churn ([a-z][a-z ]*)", line):
            words = [w for w in m[1].split() if not w.startswith("-")]
            found.add(" ".join(["churn", *words[:2]]) if words[0] == "monitor" else f"churn {words[0]}")
    return found


def test_every_workflow_validates_against_the_github_schema(sh, tmp_path):
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "cml.yml", "deploy.yml"}
    check = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    out = sh([*check, *map(str, WORKFLOWS)], ROOT).stdout
    assert "ok -- validation done" in out
    # The check bites: a misspelt key fails it.
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / ".github/workflows/ci.yml").read_text().replace("runs-on:", "runs_on:", 1))
    proc = sh([*check, str(broken)], ROOT, check=False)
    assert proc.returncode == 1 and "runs-on" in proc.stdout


def test_workflows_run_the_commands_the_readme_documents():
    makefile = (ROOT / "Makefile").read_text()
    parser = cli.build_parser()
    for path in WORKFLOWS:
        lines = run_lines(yaml.safe_load(path.read_text()))
        for target in make_targets(lines):
            assert re.search(rf"^{target}:", makefile, re.M), f"{path.name}: no Makefile target {target}"
            assert f"make {target}" in README, f"{path.name}: README does not document `make {target}`"
        for command in churn_commands(lines):
            assert f"`{command}" in README, f"{path.name}: README does not document `{command}`"
        for line in lines:
            if line.startswith("churn "):  # the exact invocation is one the CLI accepts
                assert parser.parse_args(shlex.split(line)[1:]).func, line
    ci_lines = run_lines(load_workflow("ci.yml"))
    # The README's two test commands are exactly what CI runs; .ci/run is the same command.
    assert {"lint", "test", "repro"} <= make_targets(ci_lines)
    assert "make test" in README and "make lint" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_ci_workflow_installs_pins_with_cache_lints_tests_reproduces_and_gates():
    wf = load_workflow("ci.yml")
    assert {"push", "pull_request"} <= set(triggers(wf))
    for job in wf["jobs"]:
        setup = [s for s in steps(wf, job) if s.get("uses", "").startswith("actions/setup-python@")]
        assert setup and setup[0]["with"]["cache"] == "pip", job
        assert setup[0]["with"]["cache-dependency-path"] == "requirements.txt", job
    assert "make lint" in run_lines(wf, "lint")
    assert "make test" in run_lines(wf, "test")
    # The test job provides the real data (CI=true makes its absence a failure, not a deselection).
    fetch = next(s for s in steps(wf, "test") if "CHURN_REAL_DATA=" in s.get("run", ""))
    assert fetch["env"]["CHURN_REAL_DATA_URL"] == "${{ secrets.CHURN_REAL_DATA_URL }}"
    assert steps(wf, "test").index(fetch) < next(
        i for i, s in enumerate(steps(wf, "test")) if s.get("run") == "make test"
    )
    pipeline = run_lines(wf, "pipeline")
    assert pipeline.index("make repro") < pipeline.index("churn gate")
    assert "git diff --exit-code -- dvc.lock" in pipeline
    # `make setup` (run by every target) installs the exact pins.
    makefile = (ROOT / "Makefile").read_text()
    stamp = re.search(r"^setup: (\S+)", makefile, re.M)[1]  # the install stamp `setup` depends on
    setup = re.search(rf"^{re.escape(stamp)}:.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    assert "-r requirements.txt" in setup


def test_cml_workflow_posts_one_updated_comment_without_third_party_uploads():
    wf = load_workflow("cml.yml")
    assert "pull_request" in triggers(wf)
    assert wf["permissions"]["pull-requests"] == "write"
    checkout = next(s for s in steps(wf) if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    assert any(u.startswith("iterative/setup-cml@") for u in uses(wf))
    lines = run_lines(wf)
    report = next(line for line in lines if line.startswith("churn report"))
    args = shlex.split(report)
    assert args[args.index("--base") + 1] == "$BASE" and "origin/" in wf["jobs"]["report"]["env"]["BASE"]
    assert lines.index("make repro") < lines.index(report)
    comment = shlex.split(next(line for line in lines if line.startswith("cml comment")))
    assert comment[:4] == ["cml", "comment", "update", "report.md"]
    assert any(a.startswith("--watermark-title=") for a in comment)
    assert "--no-publish" in comment and "--target=pr" in comment
    upload = next(s for s in steps(wf) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "report-plots/" in upload["with"]["path"]


def github_expression(expr: str, context: dict) -> bool:
    """Evaluate a job's `if:` of the simple kind the workflows use (`==`, `!=`, `&&`, `||`, quoted
    strings, `github.…` properties; a missing property is null) against a `github` context."""

    def lookup(match: re.Match) -> str:
        node = context
        for part in match[0].split(".")[1:]:
            node = node.get(part) if isinstance(node, dict) else None
        return repr(node)

    python = re.sub(r"\bgithub(?:\.[A-Za-z_]+)+", lookup, expr.replace("${{", "").replace("}}", ""))
    python = python.replace("&&", " and ").replace("||", " or ")
    assert re.fullmatch(r"[\w\s'=!()-]*", python), f"unsupported expression: {expr}"
    return bool(eval(python, {"__builtins__": {}}, {}))


def jobs_that_run(workflow: dict, context: dict) -> set[str]:
    """Jobs whose `if:` holds and whose `needs` all run (as if every job succeeds)."""
    jobs, ran = workflow["jobs"], set()
    for name in jobs:  # `needs` point backwards in these files, so one pass in order suffices
        needs = jobs[name].get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        condition = jobs[name].get("if")
        if all(n in ran for n in needs) and (condition is None or github_expression(condition, context)):
            ran.add(name)
    return ran


def test_deploy_workflow_runs_only_after_ci_passed_for_the_commit():
    wf, ci = load_workflow("deploy.yml"), load_workflow("ci.yml")
    on = triggers(wf)
    assert "push" not in on, "a push trigger would deploy without waiting for CI"
    assert on["workflow_run"] == {"workflows": [ci["name"]], "types": ["completed"], "branches": ["main"]}
    assert "workflow_dispatch" in on and on["schedule"][0]["cron"]
    assert "github.event.workflow_run.conclusion == 'success'" in wf["jobs"]["gates"]["if"]
    rollout = {"gates", "build", "staging", "smoke", "production", "promote"}

    def ci_completed(**run) -> dict:
        run = {"conclusion": "success", "event": "push", "head_branch": "main", "head_sha": "a" * 40, **run}
        return {"event_name": "workflow_run", "sha": "f" * 40, "event": {"workflow_run": run}}

    assert jobs_that_run(wf, ci_completed()) == rollout
    for conclusion in ("failure", "cancelled", "skipped", "timed_out"):
        assert jobs_that_run(wf, ci_completed(conclusion=conclusion)) == set(), conclusion
    assert jobs_that_run(wf, ci_completed(event="pull_request")) == set()  # CI on a PR deploys nothing
    assert jobs_that_run(wf, {"event_name": "schedule", "sha": "f" * 40}) == {"monitor"}
    assert jobs_that_run(wf, {"event_name": "workflow_dispatch", "sha": "f" * 40}) == {"monitor"}
    # Every rollout job works on the commit CI tested, not on main's latest.
    assert wf["env"]["COMMIT"] == "${{ github.event.workflow_run.head_sha || github.sha }}"
    for job in rollout:
        checkout = next(s for s in steps(wf, job) if s.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["ref"] == "${{ env.COMMIT }}", job
    assert "github.sha" not in str(wf["jobs"]["build"]) and "GITHUB_SHA" not in str(wf["jobs"]["promote"])


def test_deploy_promote_tracks_before_promoting_and_opens_a_pr_that_triggers_ci():
    wf = load_workflow("deploy.yml")
    lines = run_lines(wf, "promote")
    track = next(i for i, line in enumerate(lines) if line in ("make track", "churn track"))
    assert track < lines.index("churn promote")
    assert "make repro" not in lines  # after the promotion the pipeline is rebuilt without tracking
    # A PR opened with GITHUB_TOKEN triggers no workflows: an App token or a PAT comes first, for the
    # push (checkout's credentials) and for `gh pr create` alike.
    promote = steps(wf, "promote")
    token = "${{ steps.app-token.outputs.token || secrets.PROMOTION_PR_TOKEN || github.token }}"
    app = next(s for s in promote if s.get("id") == "app-token")
    assert app["uses"].startswith("actions/create-github-app-token@") and "vars.PROMOTION_APP_ID" in app["if"]
    checkout = next(s for s in promote if s.get("uses", "").startswith("actions/checkout@"))
    assert promote.index(app) < promote.index(checkout) and checkout["with"]["token"] == token
    opener = next(s for s in promote if "gh pr create" in s.get("run", ""))
    assert opener["env"]["GH_TOKEN"] == token


def test_deploy_workflow_is_a_staged_rollout_with_manual_approval():
    wf = load_workflow("deploy.yml")
    jobs = wf["jobs"]

    def needs(job: str) -> set[str]:
        value = jobs[job].get("needs", [])
        return {value} if isinstance(value, str) else set(value)

    assert needs("build") == {"gates"}
    assert needs("staging") == {"build"}
    assert needs("smoke") == {"staging"}
    assert "smoke" in needs("production")
    assert needs("promote") == {"production"}
    assert jobs["staging"]["environment"]["name"] == "staging"
    assert jobs["production"]["environment"]["name"] == "production"
    assert "churn gate" in run_lines(wf, "gates") and "churn gate" in run_lines(wf, "smoke")
    assert any(".ci/smoke.py" in line and "--model" in line for line in run_lines(wf, "smoke"))
    assert "churn promote" in run_lines(wf, "promote")
    assert any(line.startswith("churn monitor check") for line in run_lines(wf, "monitor"))
    assert any(u.startswith("docker/build-push-action@") for u in uses(wf, "build"))
    assert jobs["build"]["permissions"]["packages"] == "write"
    # Every secret and variable the rollout reads is named in the README's Deploy section.
    deploy_doc = README.split("## Deploy", 1)[1]
    text = (ROOT / ".github/workflows/deploy.yml").read_text()
    names = set(re.findall(r"\b(?:secrets|vars)\.([A-Z_]+)", text)) - {"GITHUB_TOKEN"}
    assert names >= {"HF_TOKEN", "MLFLOW_TRACKING_URI", "GROQ_API_KEY", "HF_STAGING_SPACE"}
    for name in names:
        assert f"`{name}`" in deploy_doc, f"README's Deploy section does not name {name}"


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_dockerfile_is_slim_pinned_non_root_and_healthchecked():
    ins = dockerfile_instructions()
    base = [arg for op, arg in ins if op == "FROM"]
    assert base == ["python:3.11-slim-bookworm"]
    assert all(":" in b and not b.endswith(":latest") for b in base)
    users = [arg.strip() for op, arg in ins if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_user = max(i for i, (op, _) in enumerate(ins) if op == "USER")
    cmd = max(i for i, (op, _) in enumerate(ins) if op == "CMD")
    assert last_user < cmd
    assert any(op == "HEALTHCHECK" and "7860" in arg for op, arg in ins)
    copies = [arg for op, arg in ins if op == "COPY"]
    runs = [arg for op, arg in ins if op == "RUN"]
    assert copies[0].split() == ["requirements.txt", "./"]
    assert any("pip install" in r and "-r requirements.txt" in r for r in runs)
    # models baked in, as locked: pulled from the DVC remote if one is configured, else rebuilt
    assert any("pull_or_repro.py --strict" in r and "cmp -s dvc.lock" in r for r in runs)
    env = " ".join(arg for op, arg in ins if op == "ENV")
    assert "GRADIO_SERVER_NAME=0.0.0.0" in env and "GRADIO_ANALYTICS_ENABLED=False" in env
    assert ("EXPOSE", "7860") in ins
    assert ins[-1] == ("CMD", '["python", "app.py"]')
    pins = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=\s]+", p) for p in pins)


def test_dockerignore_keeps_secrets_data_and_history_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".env", "data/", "models/", "*.db", "mlruns/", ".dvc/cache"} <= ignored
    # ...but not what the build needs.
    for needed in ("requirements.txt", "dvc.yaml", "dvc.lock", "params.yaml", "churn/", "stages/", "app.py"):
        assert needed not in ignored and f"/{needed}" not in ignored


def test_pre_commit_runs_ruff_at_the_pinned_version(sh, tmp_path, env_for):
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
    pin = re.search(r"^ruff==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)[1]
    assert repo["rev"] == f"v{pin}"
    assert [h["id"] for h in repo["hooks"]] == ["ruff-check", "ruff-format"]
    # validate-config checks the file offline: no hook repository is cloned into pre-commit's store.
    store = tmp_path / "store"
    sh(
        [str(BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"],
        ROOT,
        env_for(PRE_COMMIT_HOME=str(store)),
    )
    assert [p.name for p in store.glob("*") if p.is_dir()] == []


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_space_entry_builds_missing_models_with_dvc_even_without_git(tmp_path, sh, env_for):
    entry = _load(ROOT / "app.py", "space_entry")
    assert entry.pipeline_command(ROOT)[-1][-1] == "repro" and len(entry.pipeline_command(ROOT)) == 1
    bare = tmp_path / "space"
    bare.mkdir()
    sh([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], bare, env_for())
    (bare / ".dvc" / "config").write_text("[core]\n    analytics = false\n")  # what a clone would have
    make_model = "import pathlib; pathlib.Path('models').mkdir(); pathlib.Path('models/champion.joblib').write_text('m')"
    stage = {"cmd": f'{sys.executable} -c "{make_model}"', "outs": ["models/champion.joblib"]}
    (bare / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stage}}))
    commands = entry.pipeline_command(bare)
    assert commands[0][-4:] == ["config", "--local", "core.no_scm", "true"] and commands[1][-1] == "repro"

    entry.ensure_models(bare)
    assert (bare / "models" / "champion.joblib").read_text() == "m"
    before = (bare / "models" / "champion.joblib").stat().st_mtime_ns
    entry.ensure_models(bare)  # present: nothing runs
    assert (bare / "models" / "champion.joblib").stat().st_mtime_ns == before


def test_space_card_declares_a_docker_space_of_the_built_image():
    deploy = _load(ROOT / ".ci" / "deploy_space.py", "deploy_space")
    image = "ghcr.io/acme/churn@sha256:" + "a" * 64
    files = deploy.space_files(image, "Churn (staging)")
    assert files["Dockerfile"] == f"FROM {image}\n"
    front = yaml.safe_load(files["README.md"].split("---")[1])
    assert front["sdk"] == "docker" and front["app_port"] == 7860 and front["title"] == "Churn (staging)"


@pytest.fixture()
def served_app(project_root, tmp_path, monkeypatch):
    """The real app (`app.serve`) on a built project, logging to a private prediction store."""
    from app import serve

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project_root / 'mlflow.db'}")
    monkeypatch.setenv("CHURN_DB_URL", f"sqlite:///{tmp_path / 'predictions.db'}")
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    demo, url = serve(project_root, "champion")
    yield url
    demo.close()


def test_smoke_script_checks_predict_serves_the_validated_model(served_app, project_root):
    smoke = _load(ROOT / ".ci" / "smoke.py", "ci_smoke")
    models = project_root / "models"
    assert smoke.main([served_app, "--model", str(models / "champion.joblib"), "--timeout", "60"]) == 0
    # The app serves the champion: checked against the challenger, the smoke test fails.
    assert smoke.main([served_app, "--model", str(models / "challenger.joblib"), "--timeout", "60"]) == 1
