"""Adaptive batching: the rows of predict requests that reach the event loop together are
predicted in one call of their model.

A model's fixed cost per call (parsing, encoders, each member's set-up) is most of what a
one-row prediction costs, so eight one-row requests predicted as one eight-row call take
a fraction of eight calls. No request waits for company: a batch is predicted as soon as
the requests already queued on the event loop have joined it, so a lone request is
answered as fast as before, and under load batches form by themselves (as Ray Serve's and
Triton's dynamic batching do, without their wait timeout).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.serving.predict import predict_native

if TYPE_CHECKING:
    from loopml.automl import AutoML

Columns = dict[str, list[Any]]


@dataclass
class _Batch:
    model: AutoML
    frames: list[Columns] = field(default_factory=list)
    waiting: list[asyncio.Future[np.ndarray]] = field(default_factory=list)
    rows: int = 0


class Batcher:
    """Joins the rows of requests for the same model that arrive in one turn of the event
    loop, up to ``max_rows`` a batch.

    Parameters
    ----------
    max_rows : int
        The most rows predicted in one call (a request with more is predicted alone); a
        request that would overfill a batch starts another.
    """

    def __init__(self, max_rows: int = 256) -> None:
        self.max_rows = max_rows
        self._open: dict[int, _Batch] = {}

    async def predict(self, model: AutoML, frame: Columns) -> np.ndarray:
        """``predict_native`` of ``frame``, made in one call with the rows of the other
        requests for ``model`` queued on the event loop now."""
        loop = asyncio.get_running_loop()
        rows = len(next(iter(frame.values()), []))
        batch = self._open.get(id(model))
        if batch is not None and batch.rows + rows > self.max_rows:
            self._close(batch)  # full: it runs as planned, and this request starts another
            batch = None
        if batch is None:
            batch = self._open[id(model)] = _Batch(model)
            # Runs after the callbacks already queued: the requests that arrived with
            # this one reach this point first, and join.
            loop.call_soon(self._run, batch)
        future: asyncio.Future[np.ndarray] = loop.create_future()
        batch.frames.append(frame)
        batch.waiting.append(future)
        batch.rows += rows
        return await future

    def _close(self, batch: _Batch) -> None:
        if self._open.get(id(batch.model)) is batch:
            del self._open[id(batch.model)]

    def _run(self, batch: _Batch) -> None:
        self._close(batch)
        frames, waiting = batch.frames, batch.waiting
        if len(frames) > 1 and all(f.keys() == frames[0].keys() for f in frames):
            try:
                merged = {name: [v for f in frames for v in f[name]] for name in frames[0]}
                out = predict_native(batch.model, merged)
            except Exception:  # each request's own rows then say what failed
                pass
            else:
                ends = np.cumsum([len(next(iter(f.values()))) for f in frames])
                for future, part in zip(waiting, np.split(out, ends[:-1]), strict=True):
                    if not future.done():  # its request may have been cancelled
                        future.set_result(part)
                return
        for frame, future in zip(frames, waiting, strict=True):
            if future.done():
                continue
            try:
                future.set_result(predict_native(batch.model, frame))
            except Exception as exc:
                future.set_exception(exc)
