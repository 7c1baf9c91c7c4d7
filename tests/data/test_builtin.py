"""Built-in datasets load offline, with class names as targets, and unknown names say
which ones there are."""

from __future__ import annotations

import pytest

from loopml.core.errors import InvalidInput
from loopml.data.builtin import BUILTIN_DATASETS, is_builtin, load_builtin


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_every_builtin_loads_with_its_target(name: str) -> None:
    frame, info = load_builtin(f"builtin:{name}")
    assert info.target in frame.columns
    assert len(frame) > 100
    assert frame[info.target].notna().all()
    assert frame.drop(columns=[info.target]).shape[1] >= 4


def test_classification_targets_are_class_names() -> None:
    frame, _ = load_builtin("builtin:breast_cancer")
    assert set(frame["target"]) == {"malignant", "benign"}
    iris, _ = load_builtin("builtin:iris")
    assert set(iris["target"]) == {"setosa", "versicolor", "virginica"}


def test_unknown_builtin_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        load_builtin("builtin:titanic")
    assert "builtin:titanic" in str(err.value)
    assert "builtin:breast_cancer" in str(err.value)
    assert err.value.field == "dataset"


def test_is_builtin() -> None:
    assert is_builtin("builtin:iris")
    assert not is_builtin("s3://bucket/iris.csv")
