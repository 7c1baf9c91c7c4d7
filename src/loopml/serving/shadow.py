"""Shadow predictions: a challenger answers a copy of the traffic off the request path.

Its answers are captured (variant ``shadow``, with the prediction id of the answer the
caller got) and never returned. When the challenger falls behind, copies beyond
``max_waiting`` requests are dropped and counted rather than slowing the served model.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from loopml.core.schemas import Deployment, ModelVersion
from loopml.serving.capture import CaptureWriter
from loopml.serving.models import ModelCache
from loopml.serving.predict import answer, check_rows

log = logging.getLogger("loopml.shadow")
_Copy = tuple[Deployment, ModelVersion, list[Any], int | None, list[dict[str, Any]]]


class ShadowRunner:
    """Predicts request copies with challenger models in one background thread.

    Parameters
    ----------
    models : ModelCache
        Where the challenger models come from.
    captures : CaptureWriter
        Where their answers go.
    max_waiting : int
        Request copies held before new ones are dropped.
    """

    def __init__(self, models: ModelCache, captures: CaptureWriter, max_waiting: int = 256):
        self.models = models
        self.captures = captures
        self.dropped = 0
        self.failed = 0
        self._closed = False
        self._count = threading.Lock()
        self._queue: queue.Queue[_Copy | None] = queue.Queue(maxsize=max_waiting)
        self._thread = threading.Thread(target=self._run, name="loopml-shadow", daemon=True)
        self._thread.start()

    def submit(
        self,
        deployment: Deployment,
        challenger: ModelVersion,
        records: list[Any],
        first_line: int | None,
        answers: list[dict[str, Any]],
    ) -> bool:
        """Queue a copy of a request; False when it was dropped (the challenger is behind,
        or the runner is closed)."""
        with self._count:  # closing cannot slip between the check and the put
            if not self._closed:
                try:
                    self._queue.put_nowait((deployment, challenger, records, first_line, answers))
                    return True
                except queue.Full:
                    pass
            self.dropped += 1
        return False

    def wait(self) -> None:
        """Block until every queued copy has been predicted."""
        self._queue.join()

    def close(self) -> None:
        """Predict what is queued, then stop."""
        with self._count:
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._shadow(*item)
            except Exception:  # a failing challenger must never touch the served model
                with self._count:
                    self.failed += 1
                log.warning("shadow prediction failed", exc_info=True)
            finally:
                self._queue.task_done()

    def _shadow(
        self,
        deployment: Deployment,
        challenger: ModelVersion,
        records: list[Any],
        first_line: int | None,
        served: list[dict[str, Any]],
    ) -> None:
        started = time.perf_counter()
        rows = check_rows(records, challenger, first_line)
        said = answer(self.models.get(challenger), rows, challenger, deployment)
        latency = 1000 * (time.perf_counter() - started) / max(1, len(said))
        self.captures.put_many(
            deployment.project, deployment.name, None, records, said, latency,
            variant="shadow", shadow_of=[theirs["prediction_id"] for theirs in served],
        )  # fmt: skip
