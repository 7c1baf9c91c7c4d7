"""Saved models: content hashes, tamper detection, and no untrusted code on load."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from loopml.automl import AutoML
from loopml.core.errors import IntegrityError, InvalidInput, NotFound

from .support import automl, xor_frame

LOADED_CODE: list[str] = []


class Payload:
    """Stands for anything that is not a scikit-learn or numpy type."""

    def __init__(self) -> None:
        self.command = "rm -rf /"

    def __setstate__(self, state: dict[str, str]) -> None:
        LOADED_CODE.append("Payload.__setstate__")
        self.__dict__.update(state)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[AutoML, Path, pd.DataFrame]:
    X, y = xor_frame(n=150)
    model = automl(learners=["extra_trees"], report=True).fit(X, y)
    assert "extra_trees" in {m.learner for m in model.predictor_.members}
    path = tmp_path_factory.mktemp("saved") / "model.zip"
    fitted_hash = model.content_hash_
    assert model.save(path) == fitted_hash
    return model, path, X


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _rewrite(path: Path, target: Path, files: dict[str, bytes], fix_manifest: bool) -> None:
    """Write ``files`` as a zip; with ``fix_manifest`` the manifest lists their new hashes."""
    if fix_manifest:
        manifest = json.loads(files["manifest.json"])
        for name, blob in files.items():
            if name != "manifest.json":
                manifest["files"][name] = hashlib.sha256(blob).hexdigest()
        files = {**files, "manifest.json": json.dumps(manifest).encode()}
    with zipfile.ZipFile(target, "w") as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)


def test_save_returns_the_content_hash(saved: tuple[AutoML, Path, pd.DataFrame]) -> None:
    model, path, _ = saved
    fitted_hash = model.content_hash_
    assert len(fitted_hash) == 64
    again = path.with_name("again.zip")
    assert model.save(again) == fitted_hash
    assert again.read_bytes() == path.read_bytes()  # saving is deterministic


def test_load_gives_the_same_predictions_and_attributes(
    saved: tuple[AutoML, Path, pd.DataFrame], tmp_path: Path
) -> None:
    model, path, X = saved
    loaded = AutoML.load(path, expected_hash=model.content_hash_)
    assert loaded.content_hash_ == model.content_hash_
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    assert loaded.task_ is model.task_
    assert loaded.metric_ == model.metric_
    assert loaded.threshold_ == model.threshold_
    assert loaded.beats_baselines_ == model.beats_baselines_
    assert loaded.trials_ == json.loads(json.dumps(model.trials_))
    assert loaded.schema_.to_state() == model.schema_.to_state()
    assert loaded.leaderboard_["model"].tolist() == model.leaderboard_["model"].tolist()
    assert loaded.report_["weakest_slice"] == model.report_["weakest_slice"]
    assert loaded.model_size_ == model.model_size_
    assert loaded.get_params()["learners"] == ["extra_trees"]
    # A loaded model saves to the same content.
    assert loaded.save(tmp_path / "resaved.zip") == model.content_hash_


def test_the_hash_names_content_not_zip_metadata(
    saved: tuple[AutoML, Path, pd.DataFrame], tmp_path: Path
) -> None:
    model, path, X = saved
    files = _members(path)
    repacked = tmp_path / "repacked.zip"
    with zipfile.ZipFile(repacked, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in reversed(sorted(files)):
            zf.writestr(name, files[name])
    assert repacked.read_bytes() != path.read_bytes()
    loaded = AutoML.load(repacked, expected_hash=model.content_hash_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_wrong_expected_hash_is_refused(saved: tuple[AutoML, Path, pd.DataFrame]) -> None:
    _, path, _ = saved
    with pytest.raises(IntegrityError, match="does not match"):
        AutoML.load(path, expected_hash="0" * 64)


def test_a_changed_byte_in_any_member_is_refused(
    saved: tuple[AutoML, Path, pd.DataFrame], tmp_path: Path
) -> None:
    _, path, _ = saved
    files = _members(path)
    targets = [n for n in files if n != "manifest.json"]
    assert {"automl.json", "predictor.json"} <= set(targets)
    assert any(n.endswith("model.skops") for n in targets)
    for name in targets:
        blob = bytearray(files[name])
        blob[len(blob) // 2] ^= 0x01
        tampered = tmp_path / "tampered.zip"
        _rewrite(path, tampered, {**files, name: bytes(blob)}, fix_manifest=False)
        with pytest.raises(IntegrityError, match="changed") as info:
            AutoML.load(tampered)
        assert name in str(info.value)


def test_added_or_removed_members_are_refused(
    saved: tuple[AutoML, Path, pd.DataFrame], tmp_path: Path
) -> None:
    _, path, _ = saved
    files = _members(path)
    target = tmp_path / "odd.zip"
    _rewrite(path, target, {**files, "extra.txt": b"hello"}, fix_manifest=False)
    with pytest.raises(IntegrityError, match="do not match"):
        AutoML.load(target)
    fewer = {k: v for k, v in files.items() if k != "predictor.json"}
    _rewrite(path, target, fewer, fix_manifest=False)
    with pytest.raises(IntegrityError, match="do not match"):
        AutoML.load(target)
    _rewrite(path, target, {k: v for k, v in files.items() if k != "manifest.json"}, False)
    with pytest.raises(IntegrityError, match="no manifest"):
        AutoML.load(target)


def test_a_consistent_forgery_fails_the_expected_hash(
    saved: tuple[AutoML, Path, pd.DataFrame], tmp_path: Path
) -> None:
    model, path, _ = saved
    files = _members(path)
    state = json.loads(files["automl.json"])
    state["threshold"] = 0.01
    forged = tmp_path / "forged.zip"
    _rewrite(path, forged, {**files, "automl.json": json.dumps(state).encode()}, True)
    with pytest.raises(IntegrityError):
        AutoML.load(forged, expected_hash=model.content_hash_)


def test_a_skops_file_with_an_untrusted_type_is_refused(
    saved: tuple[AutoML, Path, pd.DataFrame], tmp_path: Path
) -> None:
    _, path, _ = saved
    files = _members(path)
    (forest,) = [n for n in files if n.endswith("model.skops")]
    evil = sio.dumps(Payload())
    forged = tmp_path / "forged.zip"
    _rewrite(path, forged, {**files, forest: evil}, fix_manifest=True)
    with pytest.raises(IntegrityError, match="not trusted") as info:
        AutoML.load(forged)
    assert "Payload" in str(info.value)
    assert LOADED_CODE == []


def test_a_file_that_is_not_a_zip_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "model.zip"
    path.write_bytes(b"definitely not a zip file")
    with pytest.raises(InvalidInput, match="not a loopml model"):
        AutoML.load(path)


def test_a_bad_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("manifest.json", b"{not json")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(IntegrityError, match="not valid JSON"):
        AutoML.load(path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "pickle/9", "files": {}}))
    with pytest.raises(IntegrityError, match="unknown model format"):
        AutoML.load(path)


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        AutoML.load(tmp_path / "nowhere.zip")
