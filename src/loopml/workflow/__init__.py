"""Workflows: Amazon States Language state machines, run on the local machine.

>>> from loopml.workflow import Runner, TaskRegistry, compile_definition
>>> tasks = TaskRegistry()
>>> @tasks.task("double")
... def double(data):
...     return data["value"] * 2
>>> machine = compile_definition({
...     "StartAt": "Double",
...     "States": {"Double": {"Type": "Task", "Resource": "loopml:task:double",
...                           "ResultPath": "$.doubled", "End": True}}})
>>> Runner(tasks).run(machine, {"value": 21}).output
{'value': 21, 'doubled': 42}
"""

from loopml.workflow import builtin  # noqa: F401  (registers the built-in tasks)
from loopml.workflow.definition import compile_definition
from loopml.workflow.document import load_definition
from loopml.workflow.interpreter import ExecutionResult, Runner
from loopml.workflow.states import Machine
from loopml.workflow.tasks import DEFAULT_TASKS, TaskContext, TaskRegistry, task

__all__ = [
    "DEFAULT_TASKS",
    "ExecutionResult",
    "Machine",
    "Runner",
    "TaskContext",
    "TaskRegistry",
    "compile_definition",
    "load_definition",
    "task",
]
