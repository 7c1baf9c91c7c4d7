"""A model version's monitoring baseline: the reference profile made when it was trained,
and the same as SageMaker Model Monitor's ``statistics.json`` and ``constraints.json``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from loopml.api import auth
from loopml.home import Home
from loopml.monitoring.profile import Profile
from loopml.monitoring.run import load_reference
from loopml.monitoring.sagemaker import constraints, statistics
from loopml.store import alerts, registry

router = APIRouter(prefix="/projects/{project}/models/{number}/baseline", tags=["monitoring"])


def _reference(home: Home, project: str, number: int) -> Profile:
    with home.db.session() as s:
        model = registry.get_model(s, project, number)
    return load_reference(home.blobs, model)


@router.get("", dependencies=[Depends(auth.viewer)])
def get_profile(project: str, number: int, home: Home = Depends(auth.get_home)) -> Any:
    """The reference profile: per column its bins or categories, missing values and
    outlier fences; the out-of-fold answers; the out-of-fold quality."""
    return _reference(home, project, number).to_dict()


@router.get("/statistics.json", dependencies=[Depends(auth.viewer)])
def get_statistics(project: str, number: int, home: Home = Depends(auth.get_home)) -> Any:
    """The baseline as SageMaker Model Monitor's ``statistics.json``."""
    return statistics(_reference(home, project, number))


@router.get("/constraints.json", dependencies=[Depends(auth.viewer)])
def get_constraints(project: str, number: int, home: Home = Depends(auth.get_home)) -> Any:
    """The baseline as SageMaker Model Monitor's ``constraints.json`` (its distribution
    threshold is the project's Wasserstein threshold, 0.1 unless set)."""
    with home.db.session() as s:
        settings = alerts.get_settings(s, project)
    threshold = settings.drift_thresholds.get("wasserstein", 0.1)
    return constraints(_reference(home, project, number), threshold)
