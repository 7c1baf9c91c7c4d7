"""``loopml workflow``: ``run`` and ``validate`` on definition files here (JSON or YAML, with
tasks from ``--tasks`` modules), and ``create``/``start``/``executions``/``show``/
``history``/``stop`` on the home directory through the in-process server."""

from __future__ import annotations

import base64
import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import cli, ok, ok_json

ADD = {
    "StartAt": "Add",
    "States": {
        "Add": {
            "Type": "Pass",
            "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"},
            "End": True,
        }
    },
}
REJECT = {
    "StartAt": "No",
    "States": {"No": {"Type": "Fail", "Error": "Order.Rejected", "Cause": "out of stock"}},
}
NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": True}}}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


def write(path: Path, definition: Any) -> str:
    path.write_text(definition if isinstance(definition, str) else json.dumps(definition))
    return str(path)


# --- run and validate: a definition file, here -----------------------------------------


def test_run_prints_the_status_and_output_as_json(tmp_path: Path) -> None:
    done = ok_json(
        "workflow", "run", write(tmp_path / "add.json", ADD), "--input", '{"a": 2, "b": 3}'
    )
    assert done["status"] == "SUCCEEDED"
    assert done["output"] == {"sum": 5}
    assert done["error"] is None and done["executionId"]

    plain = ok("workflow", "run", str(tmp_path / "add.json"), "--input", '{"a": 1, "b": 1}')
    assert "SUCCEEDED" in plain.stdout and '"sum": 2' in plain.stdout
    assert "→ Add" in plain.stderr  # the states as they are entered


def test_a_failed_run_exits_one_with_its_error_and_cause(tmp_path: Path) -> None:
    definition = write(tmp_path / "reject.json", REJECT)
    result = cli("workflow", "run", definition, "--input", "{}", "--json")
    assert result.exit_code == 1
    done = json.loads(result.stdout)
    assert (done["status"], done["error"], done["cause"]) == (
        "FAILED",
        "Order.Rejected",
        "out of stock",
    )
    assert done["output"] is None

    plain = cli("workflow", "run", definition)
    assert plain.exit_code == 1
    assert "FAILED: Order.Rejected: out of stock" in plain.stderr


def test_run_reads_yaml_and_input_from_a_file(tmp_path: Path) -> None:
    yaml_text = textwrap.dedent(
        """
        StartAt: Greet
        States:
          Greet:
            Type: Pass
            Parameters:
              greeting.$: States.Format('hello {}', $.who)
              first.$: $.items[0]
            End: true
        """
    )
    (tmp_path / "input.json").write_text(json.dumps({"who": "file", "items": [7, 8]}))
    done = ok_json(
        "workflow",
        "run",
        write(tmp_path / "greet.asl.yaml", yaml_text),
        "--input",
        f"@{tmp_path / 'input.json'}",
    )
    assert done["output"] == {"greeting": "hello file", "first": 7}


@pytest.mark.parametrize(
    ("given", "message"),
    [("{not json", "--input is not JSON"), ("@{dir}/missing.json", "cannot read")],
)
def test_bad_input_is_refused_before_anything_runs(
    tmp_path: Path, given: str, message: str
) -> None:
    result = cli(
        "workflow",
        "run",
        write(tmp_path / "add.json", ADD),
        "--input",
        given.replace("{dir}", str(tmp_path)),
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_run_calls_tasks_of_a_module_named_with_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, task = f"cli_tasks_{uuid.uuid4().hex[:8]}", f"shout_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            import loopml.workflow


            @loopml.workflow.task("{task}")
            def shout(data, context):
                return {{"text": data["text"].upper() + "!", "state": context.state}}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    definition = write(
        tmp_path / "shout.json",
        {
            "StartAt": "Shout",
            "States": {"Shout": {"Type": "Task", "Resource": f"loopml:task:{task}", "End": True}},
        },
    )
    unknown = cli("workflow", "run", definition, "--input", '{"text": "hi"}')
    assert unknown.exit_code == 2
    assert "States.Shout.Resource" in unknown.stderr and task in unknown.stderr

    done = ok_json("workflow", "run", definition, "--input", '{"text": "hi"}', "--tasks", module)
    assert done["output"] == {"text": "HI!", "state": "Shout"}
    assert "valid" in ok("workflow", "validate", definition, "--tasks", module).stdout

    missing = cli("workflow", "run", definition, "--tasks", "no_such_module_anywhere")
    assert missing.exit_code == 2
    assert "cannot import 'no_such_module_anywhere'" in missing.stderr


def test_run_reads_local_images_and_routes_errors_with_catch(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    definition = write(
        tmp_path / "image.json",
        {
            "StartAt": "Read",
            "States": {
                "Read": {
                    "Type": "Task",
                    "Resource": "loopml:task:serialize_image",
                    "ResultSelector": {"type.$": "$.content_type", "image.$": "$.image"},
                    "Catch": [{"ErrorEquals": ["loopml.ImageNotFound"], "Next": "Missing"}],
                    "End": True,
                },
                "Missing": {"Type": "Pass", "Result": "no image", "End": True},
            },
        },
    )
    found = ok_json(
        "workflow", "run", definition, "--input", json.dumps({"url": str(tmp_path / "cat.png")})
    )
    assert found["output"] == {"type": "image/png", "image": base64.b64encode(PNG).decode()}
    missing = ok_json(
        "workflow", "run", definition, "--input", json.dumps({"url": str(tmp_path / "dog.png")})
    )
    assert missing["output"] == "no image"


def test_a_deployment_needs_a_project_to_run(tmp_path: Path) -> None:
    definition = write(
        tmp_path / "classify.json",
        {
            "StartAt": "C",
            "States": {"C": {"Type": "Task", "Resource": "loopml:deployment:iris", "End": True}},
        },
    )
    result = cli("workflow", "run", definition, "--input", "{}", "--json")
    assert result.exit_code == 1
    done = json.loads(result.stdout)
    assert (done["status"], done["error"]) == ("FAILED", "InvalidInput")
    assert "--project" in done["cause"]


def test_validate_prints_valid_or_exits_two_with_every_problem(tmp_path: Path) -> None:
    good = ok("workflow", "validate", write(tmp_path / "add.json", ADD))
    assert "valid: 1 states; calls nothing" in good.stdout
    notify = {
        "StartAt": "N",
        "States": {"N": {"Type": "Task", "Resource": "loopml:task:notify", "End": True}},
    }
    assert (
        "calls loopml:task:notify"
        in ok("workflow", "validate", write(tmp_path / "n.json", notify)).stdout
    )

    broken = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Succeed", "Next": "A"},
        },
    }
    result = cli("workflow", "validate", write(tmp_path / "broken.json", broken))
    assert result.exit_code == 2
    assert "States.A.Next" in result.stderr and "Nowhere" in result.stderr
    assert "States.B" in result.stderr
    assert "Traceback" not in result.output

    missing = cli("workflow", "validate", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "cannot read" in missing.stderr
    assert cli("workflow", "validate", write(tmp_path / "list.yaml", "- 1\n- 2\n")).exit_code == 2


# --- saved workflows on the home, through the in-process server ------------------------


def test_create_start_and_read_back_executions(tmp_path: Path) -> None:
    ok("projects", "create", "shop")
    assert (
        "saved shop/adder (standard, revision 1)"
        in ok("workflow", "create", "shop/adder", write(tmp_path / "add.json", ADD)).stdout
    )
    assert (
        "revision 2)"
        in ok(
            "workflow",
            "create",
            "shop/adder",
            write(tmp_path / "add2.json", {**ADD, "Comment": "v2"}),
        ).stdout
    )

    done = ok_json("workflow", "start", "shop/adder", "--input", '{"a": 20, "b": 22}', "--wait")
    assert (done["status"], done["output"], done["revision"]) == ("SUCCEEDED", {"sum": 42}, 2)
    execution = done["id"]

    listed = ok_json("workflow", "list", "-p", "shop")
    assert [(w["name"], w["revision"]) for w in listed] == [("adder", 2)]
    assert [e["id"] for e in ok_json("workflow", "executions", "shop/adder")] == [execution]
    assert ok_json("workflow", "executions", "shop/adder", "--status", "FAILED") == []
    table = ok("workflow", "executions", "shop/adder").stdout
    assert "executions of shop/adder" in table and "SUCCEEDED" in table

    assert ok_json("workflow", "show", "shop/adder")["definition"]["Comment"] == "v2"
    # The same machine as an express workflow: same answer, faster checkpoints.
    made = ok("workflow", "create", "shop/quick", str(tmp_path / "add.json"), "--type", "express")
    assert "saved shop/quick (express, revision 1)" in made.stdout
    quick = ok_json("workflow", "start", "shop/quick", "--input", '{"a": 1, "b": 2}', "--wait")
    assert (quick["status"], quick["output"], quick["type"]) == ("SUCCEEDED", {"sum": 3}, "EXPRESS")
    assert ok_json("workflow", "show", "shop/quick")["type"] == "EXPRESS"
    bad = cli("workflow", "create", "shop/quick", str(tmp_path / "add.json"), "--type", "fast")
    assert bad.exit_code == 2 and "STANDARD" in bad.stderr
    assert '"Comment": "v2"' in ok("workflow", "show", "shop/adder").stdout
    assert ok_json("workflow", "show", "shop/adder", execution)["output"] == {"sum": 42}
    shown = ok("workflow", "show", "shop/adder", execution).stdout
    assert "SUCCEEDED" in shown and "shop/adder (revision 2)" in shown

    events = ok_json("workflow", "history", "shop/adder", execution)
    assert [e["type"] for e in events] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    history = ok("workflow", "history", "shop/adder", execution).stdout
    assert "PassStateEntered" in history and "Add" in history


def test_start_wait_exits_one_when_the_execution_fails(tmp_path: Path) -> None:
    ok("projects", "create", "shop")
    ok("workflow", "create", "shop/reject", write(tmp_path / "reject.json", REJECT))
    result = cli("workflow", "start", "shop/reject", "--wait", "--json")
    assert result.exit_code == 1
    done = json.loads(result.stdout)
    assert (done["status"], done["error"], done["cause"]) == (
        "FAILED",
        "Order.Rejected",
        "out of stock",
    )
    plain = cli("workflow", "start", "shop/reject", "--wait")
    assert plain.exit_code == 1
    assert "Order.Rejected: out of stock" in plain.stdout


def test_stop_ends_an_execution_that_waits(tmp_path: Path) -> None:
    ok("projects", "create", "shop")
    ok("workflow", "create", "shop/nap", write(tmp_path / "nap.json", NAP))
    started = ok_json("workflow", "start", "shop/nap", "--name", "siesta")
    assert (started["status"], started["name"]) == ("RUNNING", "siesta")
    assert "stopping" in ok("workflow", "stop", "shop/nap", started["id"]).stdout
    shown = ok_json("workflow", "show", "shop/nap", started["id"])
    assert (shown["status"], shown["error"]) == ("ABORTED", "States.Aborted")
    again = cli("workflow", "stop", "shop/nap", started["id"])
    assert again.exit_code == 1
    assert "already ended" in again.stderr


def test_a_target_is_project_slash_workflow(tmp_path: Path) -> None:
    result = cli("workflow", "start", "adder")
    assert result.exit_code == 2
    assert "'adder' is not PROJECT/WORKFLOW" in result.stderr
    ok("projects", "create", "shop")
    missing = cli("workflow", "show", "shop/ghost")
    assert missing.exit_code == 1
    assert "workflow 'ghost' does not exist" in missing.stderr
