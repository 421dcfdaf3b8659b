"""Disk helpers: stable JSON, atomic writes, params errors that name the key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from churn import io


def test_json_is_sorted_rounded_and_plain(tmp_path):
    path = tmp_path / "m.json"
    io.save_json({"b": np.float64(1 / 3), "a": {"z": np.int64(2), "y": float("nan")}}, path)
    text = path.read_text()
    assert json.loads(text) == {"a": {"y": None, "z": 2}, "b": 0.3333}
    assert text.index('"a"') < text.index('"b"')


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), io.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_md5_matches_hashlib(tmp_path):
    import hashlib

    p = tmp_path / "x.bin"
    p.write_bytes(b"churn" * 1000)
    assert io.file_md5(p) == hashlib.md5(b"churn" * 1000).hexdigest()


def test_atomic_write_has_normal_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        io.save_text("x", tmp_path / "card.md")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "card.md").stat().st_mode) == 0o644


def test_env_file_fills_only_unset_variables(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("CHURN_TEST_SECRET=from-file\nCHURN_TEST_KEPT=from-file\n")
    monkeypatch.delenv("CHURN_TEST_SECRET", raising=False)
    monkeypatch.setenv("CHURN_TEST_KEPT", "from-env")
    assert io.load_env_file(env) is True
    import os

    assert os.environ["CHURN_TEST_SECRET"] == "from-file"
    assert os.environ["CHURN_TEST_KEPT"] == "from-env"
    monkeypatch.delenv("CHURN_TEST_SECRET")
    assert io.load_env_file(tmp_path / "missing.env") is False
