"""Long work (training, batch prediction, monitoring runs) as jobs run by workers.

A job kind is a plain function ``handler(ctx, **params)`` named by ``module:function``;
workers claim queued jobs from the metadata database and run each in its own process.
"""

from loopml.jobs.context import JobContext
from loopml.jobs.kinds import JobKinds
from loopml.jobs.worker import Worker

__all__ = ["JobContext", "JobKinds", "Worker"]
