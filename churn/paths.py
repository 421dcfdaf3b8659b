"""The project layout: every file the pipeline, the app, the CLI and the benchmarks read or write."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metrics:
    """The files under a metrics folder (`metrics/` in a project; stages may be pointed elsewhere)."""

    dir: Path = Path("metrics")

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))

    @property
    def data(self) -> Path:
        return self.dir / "data.json"

    def train(self, name: str) -> Path:
        return self.dir / "train" / f"{name}.json"

    def evaluate(self, name: str) -> Path:
        return self.dir / "evaluate" / f"{name}.json"

    def plots(self, name: str) -> Path:
        """The folder of one model's curve points (roc.json, precision_recall.json, …)."""
        return self.plots_dir / name

    @property
    def plots_dir(self) -> Path:
        return self.dir / "plots"

    @property
    def fairness(self) -> Path:
        return self.dir / "fairness.json"

    @property
    def robustness(self) -> Path:
        return self.dir / "robustness.json"

    @property
    def ab_test(self) -> Path:
        return self.dir / "ab_test.json"

    @property
    def validation(self) -> Path:
        return self.dir / "validation.json"

    @property
    def model_card(self) -> Path:
        return self.dir / "model_card.md"

    @property
    def scorecard_dir(self) -> Path:
        return self.dir / "scorecard"

    def scorecard_train(self, name: str) -> Path:
        return self.scorecard_dir / "train" / f"{name}.json"

    def scorecard_evaluate(self, name: str) -> Path:
        return self.scorecard_dir / "evaluate" / f"{name}.json"

    @property
    def scorecard_ab_test(self) -> Path:
        return self.scorecard_dir / "ab_test.json"

    @property
    def scorecard_validation(self) -> Path:
        return self.scorecard_dir / "validation.json"


def model_file(models_dir: str | Path, name: str) -> Path:
    """A pipeline model file in `models_dir` (`models/<name>.joblib` in a project)."""
    return Path(models_dir) / f"{name}.joblib"


@dataclass(frozen=True)
class Layout:
    """Every project path under `root`. `Layout()` spells them relative to the working directory,
    as dvc.yaml does (stage defaults); `Layout(root)` places them in a project folder."""

    root: Path = Path(".")

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # -- configuration and records ------------------------------------------------------------

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def dvc_lock(self) -> Path:
        return self.root / "dvc.lock"

    # -- data ---------------------------------------------------------------------------------

    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def synthetic(self) -> Path:
        """The synthesize stage's output, the default `data.raw`."""
        return self.raw_dir / "synthetic.csv"

    @property
    def real(self) -> Path:
        """Where a user `dvc add`s the real IBM Telco CSV (README)."""
        return self.raw_dir / "telco-customer-churn.csv"

    @property
    def prepared_dir(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def train(self) -> Path:
        return self.prepared_dir / "train.parquet"

    @property
    def test(self) -> Path:
        return self.prepared_dir / "test.parquet"

    # -- models and metrics -------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def model(self, name: str) -> Path:
        """`models/<name>.joblib`: a pipeline model (champion, challenger)."""
        return model_file(self.models_dir, name)

    @property
    def metrics(self) -> Metrics:
        return Metrics(self.root / "metrics")

    # -- stores -------------------------------------------------------------------------------

    @property
    def mlflow_db(self) -> Path:
        """The default MLflow tracking store (`MLFLOW_TRACKING_URI` overrides it)."""
        return self.root / "mlflow.db"

    @property
    def predictions_db(self) -> Path:
        """The default prediction log (`CHURN_DB_URL` overrides it)."""
        return self.root / "predictions.db"

    @property
    def registry_lock(self) -> Path:
        """The promotion lock: params.yaml and the registry aliases move together under it."""
        return self.root / ".churn-registry.lock"


#: The layout as dvc.yaml spells it: relative to the project folder a stage runs in.
LAYOUT = Layout()
