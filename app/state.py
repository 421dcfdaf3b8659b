"""What the app loads once at start-up (the model, params, tables) and shares across requests."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churn.io import load_json, read_table
from churn.params import ParamsError, load_params
from churn.paths import Layout
from churn.redact import scrub
from churn.serving import Predictor

log = logging.getLogger(__name__)

NO_MODEL = "No model has been built yet — run `dvc repro`"


@dataclass
class AppState:
    """The project root, the serving Predictor (None when no model exists) and lazily loaded extras.

    Everything here is loaded at most once and shared by every request thread.
    """

    root: Path
    model: str
    predictor: Predictor | None
    problem: str | None = None
    load_seconds: float = 0.0
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls, root: str | Path = ".", model: str = "champion", store: Any = None, *, trust_model: bool = False
    ) -> AppState:
        """Load the serving model once; a missing or refused model becomes `problem`, not an exception."""
        root = Path(root).resolve()
        start = time.perf_counter()
        try:
            predictor = Predictor.load(model=model, root=root, store=store, trust_model=trust_model)
            predictor.explainer  # noqa: B018 - build SHAP once now, not on the first request
        except FileNotFoundError as exc:
            log.warning("no model to serve: %s", exc)
            problem = (
                NO_MODEL if model in ("champion", "challenger") else f"Cannot load model {model!r}: {exc}"
            )
            return cls(root, model, None, problem)
        except (ParamsError, ValueError) as exc:
            log.warning("cannot serve %s: %s", model, exc)
            return cls(root, model, None, f"Cannot load model {model!r}: {exc}")
        seconds = time.perf_counter() - start
        log.info(
            "serving %s (%s) from %s, loaded in %.2f s",
            predictor.model_name,
            predictor.model_version,
            root,
            seconds,
        )
        return cls(root, model, predictor, None, seconds)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` the first time `key` is asked for, the same object afterwards."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    def forget(self, prefix: str) -> None:
        """Drop cached objects whose key starts with `prefix` (e.g. after the registry changed)."""
        with self._lock:
            for key in [k for k in self._cache if k.startswith(prefix)]:
                del self._cache[key]

    def error(self, message: str) -> Exception:
        """A `gr.Error` for the user with `message` scrubbed (no credentials, no server paths), also
        logged scrubbed; Gradio prints no traceback for it (its cause may hold the raw text)."""
        import gradio as gr

        text = scrub(message, self.root)
        log.warning("%s", text)
        return gr.Error(text, print_exception=False)

    # -- project files -----------------------------------------------------------------------

    @property
    def layout(self) -> Layout:
        """Every project path under the app's root (models, splits, metrics files, stores)."""
        return Layout(self.root)

    @property
    def params_path(self) -> Path:
        return self.layout.params

    def params(self) -> dict[str, Any]:
        """params.yaml, read fresh (promotion rewrites it while the app runs)."""
        return load_params(self.params_path)

    def metrics(self, path: Path) -> dict[str, Any]:
        """A metrics JSON file, e.g. `self.layout.metrics.validation` (FileNotFoundError says to run
        `dvc repro`)."""
        return load_json(path)

    def reference(self) -> pd.DataFrame:
        """The training split (the drift reference), read once."""
        return self.once("table:train", lambda: read_table(self.layout.train))

    def test_set(self) -> pd.DataFrame:
        """The held-out test split (the A/B test's customers), read once."""
        return self.once("table:test", lambda: read_table(self.layout.test))

    def model_for(self, ref: str) -> Predictor:
        """Another model for comparisons (not logging), loaded once per reference."""
        if self.predictor is not None and ref == self.model:
            return self.predictor
        return self.once(f"model:{ref}", lambda: Predictor.load(model=ref, root=self.root, log=False))
