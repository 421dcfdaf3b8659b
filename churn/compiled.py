"""Exact, low-overhead evaluators of fitted pipeline parts, for the serving hot path.

scikit-learn's general machinery costs milliseconds per call whatever the batch size: the
column transformer's DataFrame round trips (~10 ms) and a forest's per-tree joblib dispatch
(~0.1 ms per tree: 8.6 ms for one customer and 100 trees, bench/results/serving.json). For the
handful of rows the app scores per request, these evaluators read the fitted parameters and
compute the same numbers in microseconds. Each `build` checks itself against the real estimator
on probe rows and returns None (the caller then uses scikit-learn) unless the results agree.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

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
        as_text = pd.DataFrame(probe).astype(str)
        as_text.loc[len(as_text)] = {**as_text.iloc[0], "tenure": "0", "TotalCharges": " "}
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


class Forest:
    """A fitted random forest or extra-trees classifier's `predict_proba(X)[:, 1]`, vectorised over trees.

    All trees are packed into flat node arrays; leaves point to themselves, so `depth` rounds of
    "go left if x <= threshold" take every row to its leaf in every tree at once. It repeats
    scikit-learn's arithmetic exactly: inputs rounded to float32 as the trees see them, each
    leaf's class-1 share as `DecisionTreeClassifier.predict_proba` normalises it, and the trees'
    shares summed in estimator order and divided by their number, as the forest does with one
    job (with more jobs scikit-learn's own sum order varies, within 1e-12). Memory grows as
    rows x trees, so it is for small batches (`MAX_ROWS`).
    """

    MAX_ROWS = 64

    def __init__(self, trees: list[Any]):
        sizes = [t.node_count for t in trees]
        self.roots = np.cumsum([0, *sizes[:-1]]).astype(np.intp)
        left, right, feature, threshold, share = [], [], [], [], []
        for tree, root in zip(trees, self.roots, strict=True):
            leaf = tree.children_left < 0
            ids = np.arange(tree.node_count) + root
            left.append(np.where(leaf, ids, tree.children_left + root))
            right.append(np.where(leaf, ids, tree.children_right + root))
            feature.append(np.where(leaf, 0, tree.feature))
            threshold.append(np.where(leaf, np.inf, tree.threshold))
            counts = tree.value[:, 0, :2].astype("float64")
            norm = counts.sum(axis=1)
            norm[norm == 0.0] = 1.0
            share.append(counts[:, 1] / norm)
        self.left = np.concatenate(left).astype(np.intp)
        self.right = np.concatenate(right).astype(np.intp)
        self.feature = np.concatenate(feature).astype(np.intp)
        self.threshold = np.concatenate(threshold).astype("float64")
        self.share = np.concatenate(share)
        self.depth = max(t.max_depth for t in trees)
        self.n_trees = len(trees)

    def leaves(self, Xt: np.ndarray) -> np.ndarray:
        """(rows, trees) leaf node ids of each row in each tree."""
        X = np.asarray(Xt, dtype=np.float32).astype("float64")
        rows = np.arange(len(X))[:, None]
        node = np.broadcast_to(self.roots, (len(X), self.n_trees)).copy()
        for _ in range(self.depth):
            go_left = X[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(go_left, self.left[node], self.right[node])
        return node

    def proba(self, Xt: np.ndarray) -> np.ndarray:
        """Churn probability of each row of the model matrix `Xt` (no missing values)."""
        shares = self.share[self.leaves(Xt)]
        return np.cumsum(shares, axis=1)[:, -1] / self.n_trees

    @classmethod
    def build(cls, model: Any, probe: np.ndarray | None = None) -> Forest | None:
        """The evaluator of `model`, or None when it is not a binary forest or does not reproduce it."""
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier

        if not isinstance(model, RandomForestClassifier | ExtraTreesClassifier):
            return None
        if len(getattr(model, "classes_", [])) != 2 or getattr(model, "n_outputs_", 1) != 1:
            return None
        forest = cls([est.tree_ for est in model.estimators_])
        n_features = int(model.n_features_in_)
        if probe is None:
            rng = np.random.default_rng(0)
            probe = rng.normal(size=(32, n_features)) * 2
            probe[:, rng.random(n_features) < 0.5] = rng.integers(0, 2, size=(32, 1))
        # One job sums the trees in order, as here; with n_jobs > 1 scikit-learn's own sum order
        # varies from call to call in the last bits.
        tolerance = 0.0 if getattr(model, "n_jobs", None) in (None, 1) else 1e-12
        if np.max(np.abs(forest.proba(probe) - model.predict_proba(probe)[:, 1])) > tolerance:
            log.warning("compiled forest disabled: it does not reproduce the model exactly")
            return None
        return forest
