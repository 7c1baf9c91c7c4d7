"""The systems compared, each fitted in its own process under a hard wall-clock limit.

``run(system, task, budget, seed)`` starts ``python -m benchmarks.automl.systems`` and kills
its whole process group after ``2 * budget + 60`` seconds, so a hung or crashed system is a
failed task, never a failed benchmark. AutoGluon pins ``pandas<2.4`` and so lives in a venv
of its own: ``run`` starts it with ``$LOOPML_BENCH_AUTOGLUON_PYTHON`` (see README.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.automl import datasets

ROOT = Path(__file__).resolve().parents[2]
SYSTEMS = ("loopml", "lightgbm_default", "flaml", "autogluon", "loopml_cfo")
# Each system's own name for the AutoML Benchmark's metrics.
FLAML_METRICS = {"roc_auc": "roc_auc", "log_loss": "log_loss", "rmse": "rmse"}
AUTOGLUON_METRICS = {
    "roc_auc": "roc_auc",
    "log_loss": "log_loss",
    "rmse": "root_mean_squared_error",
}
MODULES = {
    "loopml": "loopml.automl",
    "loopml_cfo": "loopml.automl.cfo",
    "lightgbm_default": "lightgbm",
    "flaml": "flaml",
    "autogluon": "autogluon.tabular",
}
PREDICT_ROWS = 1000

Predict = Callable[[pd.DataFrame], np.ndarray]


# -- helpers ---------------------------------------------------------------------------------
def _align(proba: Any, have: Any, want: list) -> np.ndarray:
    """Reorder probability columns from the system's class order ``have`` to ``want``."""
    proba = np.asarray(proba, dtype=float)
    index = {label: i for i, label in enumerate(list(have))}
    return proba[:, [index[label] for label in want]]


def _as_categories(train: pd.DataFrame) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Strings to pandas ``category`` with the training categories (LightGBM, FLAML)."""
    columns = {
        c: pd.CategoricalDtype(sorted(train[c].dropna().astype(str).unique()))
        for c in train.columns
        if not pd.api.types.is_numeric_dtype(train[c]) and not pd.api.types.is_bool_dtype(train[c])
    }

    def convert(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for c, dtype in columns.items():
            values = [None if pd.isna(v) else str(v) for v in frame[c]]
            frame[c] = pd.Categorical(values, dtype=dtype)  # unseen -> missing
        return frame

    return convert


# -- systems: fit on the training split, return a predict function ------------------------------
def fit_loopml(
    task: datasets.Task,
    X: pd.DataFrame,
    y: pd.Series,
    budget: float,
    seed: int,
    n_jobs: int,
    workdir: Path,
    searcher: str = "tpe",
) -> tuple[Predict, str]:
    import loopml
    from loopml.automl import AutoML

    model = AutoML(
        task=task.kind,
        metric=task.metric,
        time_budget=budget,
        seed=seed,
        n_jobs=n_jobs,
        searcher=searcher,
    ).fit(X, y)
    labels = datasets.classes(task.name)
    if task.kind == "regression":
        return (lambda Z: np.asarray(model.predict(Z), dtype=float)), loopml.__version__
    return (lambda Z: _align(model.predict_proba(Z), model.classes_, labels)), loopml.__version__


def fit_lightgbm_default(
    task: datasets.Task,
    X: pd.DataFrame,
    y: pd.Series,
    budget: float,
    seed: int,
    n_jobs: int,
    workdir: Path,
) -> tuple[Predict, str]:
    import lightgbm

    convert = _as_categories(X)
    params = {"n_jobs": n_jobs, "random_state": seed, "verbose": -1}
    if task.kind == "regression":
        reg = lightgbm.LGBMRegressor(**params).fit(convert(X), y)
        return (lambda Z: reg.predict(convert(Z))), lightgbm.__version__
    labels = datasets.classes(task.name)
    clf = lightgbm.LGBMClassifier(**params).fit(convert(X), y)
    return (
        lambda Z: _align(clf.predict_proba(convert(Z)), clf.classes_, labels)
    ), lightgbm.__version__


def fit_flaml(
    task: datasets.Task,
    X: pd.DataFrame,
    y: pd.Series,
    budget: float,
    seed: int,
    n_jobs: int,
    workdir: Path,
) -> tuple[Predict, str]:
    import flaml

    convert = _as_categories(X)
    automl = flaml.AutoML()
    automl.fit(
        convert(X),
        y,
        task="regression" if task.kind == "regression" else "classification",
        metric=FLAML_METRICS[task.metric],
        time_budget=budget,
        n_jobs=n_jobs,
        seed=seed,
        verbose=0,
        log_file_name=str(workdir / "flaml.log"),
    )
    if task.kind == "regression":
        return (lambda Z: np.asarray(automl.predict(convert(Z)), dtype=float)), flaml.__version__
    labels = datasets.classes(task.name)
    return (
        lambda Z: _align(automl.predict_proba(convert(Z)), automl.classes_, labels)
    ), flaml.__version__


def fit_autogluon(
    task: datasets.Task,
    X: pd.DataFrame,
    y: pd.Series,
    budget: float,
    seed: int,
    n_jobs: int,
    workdir: Path,
) -> tuple[Predict, str]:
    import autogluon.tabular
    from autogluon.tabular import TabularPredictor

    label = "__target__"
    train = X.copy()
    train[label] = y.to_numpy()
    predictor = TabularPredictor(
        label=label,
        problem_type=task.kind,
        eval_metric=AUTOGLUON_METRICS[task.metric],
        path=str(workdir / "autogluon"),
        verbosity=0,
    ).fit(
        train,
        presets="medium_quality",
        time_limit=budget,
        num_cpus=n_jobs,
        num_gpus=0,
    )
    predictor.persist()  # models in memory, as a served model would be: no disk load per call
    version = autogluon.tabular.__version__
    if task.kind == "regression":
        return (lambda Z: predictor.predict(Z).to_numpy(dtype=float)), version
    labels = datasets.classes(task.name)
    return (
        lambda Z: _align((p := predictor.predict_proba(Z)).to_numpy(), p.columns, labels)
    ), version


FITTERS = {
    "loopml": fit_loopml,
    "lightgbm_default": fit_lightgbm_default,
    "flaml": fit_flaml,
    "autogluon": fit_autogluon,
    # loopml with FLAML's cost-frugal search in place of TPE: which one to keep.
    "loopml_cfo": functools.partial(fit_loopml, searcher="cfo"),
}


# -- one run, in this process ----------------------------------------------------------------
def run_inline(
    system: str, task_name: str, budget: float, seed: int, n_jobs: int, workdir: Path
) -> dict[str, Any]:
    """Fit ``system`` on the training split, score the test split, time a 1,000-row batch."""
    result: dict[str, Any] = {
        "score": None,
        "fit_seconds": None,
        "predict_seconds_per_1000": None,
        "error": None,
        "version": None,
    }
    try:
        task = datasets.TASKS[task_name]
        X_train, X_test, y_train, y_test = datasets.split(task_name, seed)
        started = time.perf_counter()
        predict, result["version"] = FITTERS[system](
            task, X_train, y_train, budget, seed, n_jobs, workdir
        )
        result["fit_seconds"] = time.perf_counter() - started
        result["score"] = datasets.score(task_name, y_test, predict(X_test))
        # Latency of one 1,000-row batch, after the scoring call warmed every cache: median of 3.
        batch = X_test.sample(PREDICT_ROWS, replace=True, random_state=seed).reset_index(drop=True)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            predict(batch)
            times.append(time.perf_counter() - started)
        result["predict_seconds_per_1000"] = float(np.median(times))
    except Exception as exc:  # a failed task is data, not a crash
        result["score"] = None
        result["error"] = f"{type(exc).__name__}: {exc}".strip()[:500]
        result["traceback"] = traceback.format_exc()[-4000:]
    return result


# -- one run, in a child process with a hard limit -------------------------------------------------
def interpreter(system: str) -> str:
    """The Python that runs ``system``: for AutoGluon, ``$LOOPML_BENCH_AUTOGLUON_PYTHON``,
    else ``.agvenv`` at the repository root where it exists, else this one."""
    if system != "autogluon":
        return sys.executable
    named = os.environ.get("LOOPML_BENCH_AUTOGLUON_PYTHON")
    default = ROOT / ".agvenv" / "bin" / "python"
    if named:
        return os.path.abspath(os.path.expanduser(named))  # not resolve(): keep the venv's link
    return str(default) if default.exists() else sys.executable


def missing(system: str) -> str | None:
    """Why ``system`` cannot run here (its module does not import), or None."""
    module = MODULES[system]
    check = subprocess.run(
        [interpreter(system), "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    if check.returncode == 0:
        return None
    last = (check.stderr.strip().splitlines() or ["no output"])[-1]
    return f"{interpreter(system)} cannot import {module}: {last}"


def timeout_for(budget: float) -> float:
    return 2 * budget + 60


def run(system: str, task: str, budget: float, seed: int, n_jobs: int = 2) -> dict[str, Any]:
    """One (system, task, budget, seed) in a subprocess; a timeout or crash is an ``error``."""
    if system not in FITTERS:
        raise ValueError(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")
    limit = timeout_for(budget)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        workdir = Path(tmp)
        out = workdir / "result.json"
        log_path = workdir / "output.log"
        command = [
            interpreter(system),
            "-m",
            "benchmarks.automl.systems",
            system,
            task,
            str(budget),
            str(seed),
            f"--n-jobs={n_jobs}",
            f"--result={out}",
        ]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "TMPDIR": tmp,
        }
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command,
                cwd=tmp,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=limit)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc)
        wall = time.monotonic() - started
        if timed_out:
            result = _failed(f"timeout: killed after {limit:.0f} s")
        elif out.exists():
            result = json.loads(out.read_text())
        else:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            result = _failed(f"exit {proc.returncode}: " + " | ".join(tail)[-500:])
    result["wall_seconds"] = wall
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child's process group (its workers too), then reap the child."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _failed(error: str) -> dict[str, Any]:
    return {
        "score": None,
        "fit_seconds": None,
        "predict_seconds_per_1000": None,
        "error": error,
        "version": None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One benchmark run in this process.")
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("task", choices=sorted(datasets.TASKS))
    parser.add_argument("budget", type=float)
    parser.add_argument("seed", type=int)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run_inline(
        args.system, args.task, args.budget, args.seed, args.n_jobs, args.result.parent
    )
    args.result.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
