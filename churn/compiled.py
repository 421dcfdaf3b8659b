"""Exact, low-overhead evaluators of fitted pipeline parts, for the serving hot path.

scikit-learn's general machinery costs milliseconds per call whatever the batch size: the
column transformer's DataFrame round trips (~10 ms), a forest's per-tree joblib dispatch
(~0.1 ms per tree) and gradient boosting's per-call set-up (~1.7 ms for one customer,
bench/results/serving.json). For the handful of rows the app scores per request, `Columns`
reads the fitted preprocessing's parameters and treelite's GTIL walks the fitted trees, in
microseconds. Each `build` checks itself against scikit-learn on probe rows and returns None
(the caller then uses scikit-learn) unless the results agree bit for bit.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from threadpoolctl import threadpool_limits

from churn import schema

log = logging.getLogger(__name__)


class Columns:
    """churn's fitted preprocessing evaluated for validated rows, without per-call overhead.

    For rows `quick_valid` accepted (no missing values, known levels) the imputers change
    nothing, so the transformer is: numbers → (x - mean) / scale, categories → one-hot of
    `categories_`. These are the fitted parameters, read, not re-learned. `build` returns None
    unless the pipeline has churn's layout and this reproduces the real transformer exactly on
    probe rows covering every level. Single customers then cost microseconds instead of ~10 ms,
    and batches skip the DataFrame round trips of the coercer and the column transformer.
    """

    def __init__(self, num_cols, mean, scale, cat_cols, categories):
        self.num_cols, self.cat_cols = list(num_cols), list(cat_cols)
        self.mean, self.scale = np.asarray(mean, dtype="float64"), np.asarray(scale, dtype="float64")
        self.levels = [list(levels) for levels in categories]
        self.index: list[dict[Any, int]] = []
        self.offsets: list[int] = []
        offset = len(self.num_cols)
        for levels in self.levels:
            self.offsets.append(offset)
            self.index.append({level: offset + k for k, level in enumerate(levels)})
            offset += len(levels)
        self.width = offset

    def transform(self, records: list[dict]) -> np.ndarray:
        out = np.zeros((len(records), self.width))
        nums = np.array([[float(r[c]) for c in self.num_cols] for r in records], dtype="float64")
        out[:, : len(self.num_cols)] = (nums - self.mean) / self.scale
        for i, rec in enumerate(records):
            for j, col in enumerate(self.cat_cols):
                pos = self.index[j].get(rec[col])
                if pos is not None:
                    out[i, pos] = 1.0
        return out

    def transform_frame(self, X: pd.DataFrame) -> np.ndarray:
        """As `transform`, vectorised, for a batch of rows that passed `schema.row_problems`.

        Numbers parse as the coercer parses them; a validated row lacks one only where
        TotalCharges is blank at tenure 0, which the coercer turns into 0.0.
        """
        out = np.zeros((len(X), self.width))
        k = len(self.num_cols)
        for j, col in enumerate(self.num_cols):
            out[:, j] = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        nums = np.nan_to_num(out[:, :k], nan=0.0)
        out[:, :k] = (nums - self.mean) / self.scale
        rows = np.arange(len(X))
        for j, col in enumerate(self.cat_cols):
            codes = pd.Categorical(X[col], categories=self.levels[j]).codes
            known = codes >= 0
            out[rows[known], self.offsets[j] + codes[known]] = 1.0
        return out

    @classmethod
    def build(cls, pipeline: Any) -> Columns | None:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        from churn import features

        inner = getattr(pipeline, "named_steps", {}).get("preprocess")
        if not isinstance(inner, Pipeline) or [n for n, _ in inner.steps] != ["coerce", "columns"]:
            return None
        if getattr(inner.steps[0][1], "func", None) is not features._coerce:
            return None
        ct = inner.named_steps["columns"]
        used = [t for t in getattr(ct, "transformers_", []) if not (t[1] == "drop" and not len(t[2]))]
        if not isinstance(ct, ColumnTransformer) or [t[0] for t in used] != ["num", "cat"]:
            return None
        (_, num, num_cols), (_, cat, cat_cols) = used
        num_steps, cat_steps = [type(e) for _, e in num.steps], [type(e) for _, e in cat.steps]
        if num_steps not in ([SimpleImputer], [SimpleImputer, StandardScaler]):
            return None
        if cat_steps != [SimpleImputer, OneHotEncoder] or cat.steps[1][1].drop is not None:
            return None
        mean, scale = np.zeros(len(num_cols)), np.ones(len(num_cols))
        if len(num_steps) == 2:
            scaler = num.steps[1][1]
            mean = scaler.mean_ if scaler.with_mean else mean
            scale = scaler.scale_ if scaler.with_std else scale
        compiled = cls(num_cols, mean, scale, cat_cols, cat.steps[1][1].categories_)
        probe = _probe_records()
        as_text = _probe_frame()
        same = np.array_equal(compiled.transform(probe), pipeline[:-1].transform(pd.DataFrame(probe)))
        same = same and np.array_equal(compiled.transform_frame(as_text), pipeline[:-1].transform(as_text))
        if not same:
            log.warning("compiled preprocessing disabled: it does not reproduce the pipeline exactly")
            return None
        return compiled


def _probe_records() -> list[dict[str, Any]]:
    """Four customers that together take every allowed level of every categorical feature."""
    rows = []
    for i in range(4):
        rec: dict[str, Any] = {c: levels[i % len(levels)] for c, levels in schema.CATEGORICAL.items()}
        rec.update(SeniorCitizen=i % 2, tenure=12 * i + 1, MonthlyCharges=20.5 + 30 * i)
        rec["TotalCharges"] = rec["tenure"] * rec["MonthlyCharges"]
        rows.append({f: rec[f] for f in schema.FEATURES})
    return rows


def _probe_frame() -> pd.DataFrame:
    """`_probe_records` as CSV text, plus a first-month customer with a blank TotalCharges."""
    as_text = pd.DataFrame(_probe_records()).astype(str)
    as_text.loc[len(as_text)] = {**as_text.iloc[0], "tenure": "0", "TotalCharges": " "}
    return as_text


class Trees:
    """A fitted tree ensemble's churn probability, `predict_proba(X)[:, 1]`, through treelite's GTIL.

    Random forests and extra trees: GTIL averages the trees' class shares as scikit-learn does
    (in tree order, then divided by their number), on inputs rounded to float32 as the trees see
    them. Histogram gradient boosting: GTIL gives each tree's raw score, summed after the baseline
    in tree order and passed through the logistic function, as scikit-learn does (GTIL's own sum
    adds the baseline last, off by up to 3 units in the last place). Bit for bit either way, NaN
    included where the model takes it (`missing`). GTIL runs on one thread; it is for the few rows
    of a request (`MAX_ROWS`): scikit-learn's own batch code is as fast for thousands.
    """

    MAX_ROWS = 64

    def __init__(self, model: Any):
        import treelite.gtil
        import treelite.sklearn
        from sklearn.ensemble import HistGradientBoostingClassifier

        self._model = treelite.sklearn.import_model(model)
        self.boosted = isinstance(model, HistGradientBoostingClassifier)
        self.baseline = float(np.ravel(model._baseline_prediction)[0]) if self.boosted else 0.0
        self.n_trees = int(self._model.num_tree)
        self.missing = True
        self._predict, self._per_tree = treelite.gtil.predict, treelite.gtil.predict_per_tree

    def proba(self, Xt: np.ndarray) -> np.ndarray:
        """Churn probability of each row of the model matrix `Xt`."""
        if self.boosted:
            scores = self._per_tree(self._model, np.asarray(Xt, dtype="float64"), nthread=1)[:, :, 0]
            raw = np.cumsum(np.column_stack([np.full(len(scores), self.baseline), scores]), axis=1)
            return expit(raw[:, -1])
        rounded = np.asarray(Xt, dtype=np.float32).astype("float64")
        return self._predict(self._model, rounded, nthread=1)[:, 0, 1]

    def takes(self, Xt: np.ndarray) -> bool:
        """Whether these rows are for this evaluator: few, and without NaN unless the model takes them."""
        return len(Xt) <= self.MAX_ROWS and (self.missing or not np.isnan(Xt).any())

    @classmethod
    def build(cls, model: Any, probe: np.ndarray | None = None) -> Trees | None:
        """The evaluator of `model`, or None when treelite cannot load it or it does not reproduce
        scikit-learn on probe rows: random rows, rows on, just below and just above split
        thresholds, rows with NaN cells, and `probe` (e.g. encoded customers of every level)."""
        from sklearn.ensemble import (
            ExtraTreesClassifier,
            HistGradientBoostingClassifier,
            RandomForestClassifier,
        )

        families = RandomForestClassifier | ExtraTreesClassifier | HistGradientBoostingClassifier
        if not isinstance(model, families) or len(getattr(model, "classes_", [])) != 2:
            return None
        if getattr(model, "n_outputs_", 1) != 1:
            return None
        try:
            trees = cls(model)
        except Exception as exc:  # ImportError, TreeliteError, NotImplementedError: scikit-learn serves
            log.warning("treelite cannot load %s (%s): scikit-learn serves it", type(model).__name__, exc)
            return None
        rows = _probe_rows(model, np.random.default_rng(0))
        if probe is not None:
            rows = np.vstack([rows, probe])
        holes = rows.copy()
        holes[np.random.default_rng(1).random(holes.shape) < 0.25] = np.nan
        holes[0] = np.nan
        try:
            model.predict_proba(holes[:1])
            rows = np.vstack([rows, holes])
        except ValueError:  # the model refuses NaN: so does the evaluator
            trees.missing = False
        # One job sums a forest's trees in order, as GTIL does; with n_jobs > 1 scikit-learn's own
        # sum order varies from call to call in the last bits.
        parallel = not trees.boosted and getattr(model, "n_jobs", None) not in (None, 1)
        tolerance = 1e-12 if parallel else 0.0
        with threadpool_limits(limits=1, user_api="openmp"):  # idle OpenMP threads spin on a busy machine
            expected = model.predict_proba(rows)[:, 1]
        if np.max(np.abs(trees.proba(rows) - expected)) > tolerance:
            log.warning("treelite disabled: it does not reproduce %s exactly", type(model).__name__)
            return None
        return trees

    @classmethod
    def for_pipeline(cls, pipeline: Any) -> Trees | None:
        """`build` for a pipeline's estimator, probed also with customers of every categorical level
        and a blank TotalCharges, encoded by the pipeline's own preprocessing."""
        try:
            probe = np.asarray(pipeline[:-1].transform(_probe_frame()), dtype="float64")
        except (ValueError, TypeError, KeyError):  # another layout: the model's own probe rows only
            probe = None
        if probe is not None and probe.shape[1] != getattr(pipeline[-1], "n_features_in_", -1):
            probe = None
        return cls.build(pipeline[-1], probe)


def _probe_rows(model: Any, rng: np.random.Generator, splits: int = 256) -> np.ndarray:
    """Random rows (half the columns 0/1, as one-hot columns are), and rows with one feature on a
    split threshold of the model, one step below it, one above, and at its float32 rounding."""
    n_features = int(model.n_features_in_)
    base = rng.normal(size=(32, n_features)) * 2
    base[:, rng.random(n_features) < 0.5] = rng.integers(0, 2, size=(32, 1))
    features, thresholds = _splits(model)
    pick = rng.choice(len(features), size=min(splits, len(features)), replace=False)
    rows = [base]
    for k, i in enumerate(pick):
        t = float(thresholds[i])
        edge = np.repeat(base[k % len(base)][None, :], 4, axis=0)
        edge[:, features[i]] = [t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf), float(np.float32(t))]
        rows.append(edge)
    return np.vstack(rows)


def _splits(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """(feature, threshold) of every finite numeric split of a forest or a gradient-boosting model."""
    features, thresholds = [], []
    if hasattr(model, "estimators_"):
        for est in model.estimators_:
            inner = est.tree_.children_left >= 0
            features.append(est.tree_.feature[inner])
            thresholds.append(est.tree_.threshold[inner])
    else:
        for stage in model._predictors:
            for predictor in stage:
                nodes = predictor.nodes
                inner = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
                features.append(nodes["feature_idx"][inner])
                thresholds.append(nodes["num_threshold"][inner])
    features, thresholds = np.concatenate(features).astype(np.intp), np.concatenate(thresholds)
    finite = np.isfinite(thresholds)  # a split of missing from present values has threshold inf
    return features[finite], thresholds[finite].astype("float64")
