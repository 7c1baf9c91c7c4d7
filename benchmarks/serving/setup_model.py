"""Train breast-cancer LightGBM models for the serving benchmark and register one in a home.

Writes ``floor.txt`` (a 200-tree LightGBM booster for the bare endpoint), ``floor.pkl``
(the same model's scikit-learn wrapper, for the DataFrame floor) and a row to send,
and registers a LightGBM-only AutoML model in the home given, deployed twice: ``capture``
(every row captured) and ``nocapture`` (none).

    .venv/bin/python -m benchmarks.serving.setup_model HOME OUTDIR
"""

from __future__ import annotations

import json
import pickle
import sys
import tempfile
from pathlib import Path

import lightgbm as lgb

from loopml.automl import AutoML
from loopml.data.builtin import load_builtin
from loopml.home import open_home
from loopml.settings import Settings
from loopml.store import deployments, projects, registry


def register(home: Path, model: AutoML, captures: dict[str, float]) -> None:
    """Register ``model`` in project "bench" of ``home`` and deploy it under each name of
    ``captures`` with that capture share."""
    opened = open_home(Settings(home=home))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.zip"
        digest = model.save(path)
        stored = opened.blobs.put("models/bench/model.zip", path.read_bytes())
    assert model.classes_ is not None and model.feature_names_in_ is not None
    kinds = {c.name: c.kind for c in model.schema_.columns}
    details = {
        "task": model.task_.value,
        "metric": model.metric_,
        "artifact": stored.key,
        "artifact_sha256": stored.sha256,
        "content_hash": digest,
        "size_bytes": stored.size,
        "classes": model.classes_.tolist(),
        "inputs": [
            {"name": str(n), "kind": kinds.get(str(n), "ignored")} for n in model.feature_names_in_
        ],
    }
    with opened.db.session() as s:
        projects.create(s, "bench")
        version, _ = registry.add_model(s, "bench", details, training=None, actor="benchmark")
        for name, share in captures.items():
            deployments.deploy(s, "bench", name, version.number, capture_percent=share)


def main() -> None:
    home, out = Path(sys.argv[1]), Path(sys.argv[2])
    frame, info = load_builtin("builtin:breast_cancer")
    X, y = frame.drop(columns=[info.target]), frame[info.target]
    # loopml's model: one LightGBM configuration and the baselines, ensembled.
    model = AutoML(learners=["lightgbm"], time_budget=20, max_trials=2, seed=0).fit(X, y)
    register(home, model, {"capture": 100.0, "nocapture": 0.0})
    members = [m for m in model.predictor_.members if m.weight > 0]
    trees = [m for m in members if m.learner == "lightgbm"]
    assert len(trees) == 1, "the floors serve the ensemble's one LightGBM member"
    booster = trees[0].models[0].booster
    # The floors serve that member: the same booster, and for the DataFrame floor a
    # scikit-learn wrapper with its configuration and number of trees.
    booster.save_model(out / "floor.txt")
    params = {k: v for k, v in trees[0].params.items() if k != "rounds"}
    classifier = lgb.LGBMClassifier(n_estimators=booster.num_trees(), verbose=-1, **params)
    classifier.fit(X, y)
    # A benchmark's own file, never loaded from anywhere else.
    (out / "floor.pkl").write_bytes(pickle.dumps(classifier))
    (out / "row.json").write_text(json.dumps([X.iloc[0].to_dict()]))
    (out / "columns.json").write_text(json.dumps(list(X.columns)))
    print(
        "loopml's ensemble:",
        ", ".join(f"{m.learner} (weight {m.weight:.2f})" for m in members),
        f"; the floors' booster: {booster.num_trees()} trees",
        params,
    )


if __name__ == "__main__":
    main()
