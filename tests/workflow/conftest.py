from __future__ import annotations

import pytest

from loopml.workflow import TaskRegistry


@pytest.fixture
def tasks() -> TaskRegistry:
    """A registry of this test's own (never the process-wide DEFAULT_TASKS)."""
    return TaskRegistry()
