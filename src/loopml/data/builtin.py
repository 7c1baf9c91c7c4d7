"""Named datasets that ship inside installed packages, so demos and tests work offline.

``builtin:<name>`` names one; each loads as a DataFrame whose target column is named
in :data:`BUILTIN_DATASETS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from loopml.core.errors import InvalidInput

PREFIX = "builtin:"


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    target: str
    description: str
    loader: Callable[[], pd.DataFrame]


def _sklearn(name: str, target_names: bool) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")(as_frame=True)
        frame = bunch.frame.copy()
        if target_names:
            # Class names, not codes: what a user's own data would hold.
            frame["target"] = pd.Categorical.from_codes(frame["target"], bunch.target_names)
            frame["target"] = frame["target"].astype(str)
        return frame

    return load


def _shipped(filename: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from importlib.resources import files

        with files("loopml.data").joinpath("files", filename).open("rb") as fh:
            return pd.read_csv(fh)

    return load


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    d.name: d
    for d in (
        BuiltinDataset(
            "breast_cancer",
            "target",
            "569 tumours, 30 measurements; malignant or benign",
            _sklearn("breast_cancer", True),
        ),
        BuiltinDataset(
            "iris", "target", "150 flowers, 4 measurements; 3 species", _sklearn("iris", True)
        ),
        BuiltinDataset(
            "wine", "target", "178 wines, 13 measurements; 3 cultivars", _sklearn("wine", True)
        ),
        BuiltinDataset(
            "digits",
            "target",
            "1797 8x8 digit images as 64 pixels; 10 digits",
            _sklearn("digits", False),
        ),
        BuiltinDataset(
            "penguins",
            "species",
            "344 penguins, bill and flipper sizes, island, sex (some missing); 3 species",
            _shipped("penguins.csv"),
        ),
        BuiltinDataset(
            "diabetes",
            "target",
            "442 patients, 10 measurements; disease progression",
            _sklearn("diabetes", False),
        ),
    )
}


def is_builtin(source: str) -> bool:
    return source.startswith(PREFIX)


def load_builtin(source: str) -> tuple[pd.DataFrame, BuiltinDataset]:
    """Load ``builtin:<name>``; the error lists the names there are."""
    name = source.removeprefix(PREFIX)
    dataset = BUILTIN_DATASETS.get(name)
    if dataset is None:
        known = ", ".join(PREFIX + n for n in sorted(BUILTIN_DATASETS))
        raise InvalidInput(
            f"unknown built-in dataset {source!r}; there are: {known}", field="dataset"
        )
    return dataset.loader(), dataset
