"""The seed's workflows, as shipped definitions: ``classify`` (serialize -> classify ->
confidence filter at 0.93, failing loudly) and ``classify-or-label`` (the same, with
unsure images queued for labelling). Both call the deployment ``digits``."""

from __future__ import annotations

from importlib import resources

NAMES = ("classify", "classify-or-label")


def definition(name: str) -> str:
    """The YAML text of seed workflow ``name``."""
    if name not in NAMES:
        raise KeyError(f"no seed workflow {name!r}; there are {', '.join(NAMES)}")
    return resources.files(__name__).joinpath(f"{name}.asl.yaml").read_text("utf-8")
