"""The ``loopml`` command: local mode on the home in the current directory, remote mode
against a live server (``--url``/``--key``), and the real executable for server and demo."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from loopml import __version__
from loopml.cli.main import app
from loopml.store.migrate import head_revision
from tests.conftest import LiveServer, free_port, make_settings
from tests.jobs.handlers import KINDS
from tests.jobs.support import wait_for

LOOPML = str(Path(sys.executable).with_name("loopml"))
HOME = Path(".loopml")  # the default home, relative to the test's working directory


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``loopml ARGS`` in this process; exit codes and output as a user would see them."""
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250", **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok(*args: str, env: dict[str, str] | None = None) -> Result:
    result = cli(*args, env=env)
    assert result.exit_code == 0, f"loopml {' '.join(args)}:\n{result.output}"
    return result


def ok_json(*args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(ok(*args, "--json", env=env).stdout)


def run_loopml(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The installed ``loopml`` executable, in a fresh process."""
    return subprocess.run(
        [LOOPML, *args], env=loopml_env(home), capture_output=True, text=True, timeout=timeout
    )


def loopml_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.update(LOOPML_HOME=str(home), COLUMNS="250", PYTHONUNBUFFERED="1")
    return env


# --- local mode: the home in the working directory -----------------------------------


def test_version() -> None:
    assert ok("version").stdout.strip() == __version__
    assert run_loopml("version", home=Path("unused")).stdout.strip() == __version__


def test_first_use_creates_the_admin_key_once() -> None:
    first = ok("projects", "list", "--json")
    key_file = HOME / "admin.key"
    secret = key_file.read_text().strip()
    assert secret.startswith("lml_")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # shown once, on stderr, so that --json output on stdout stays parseable
    assert secret in first.stderr
    assert "Created the admin API key" in first.stderr
    assert json.loads(first.stdout) == []

    second = ok("projects", "list", "--json")
    assert "Created the admin API key" not in second.output
    assert "lml_" not in second.output
    assert key_file.read_text().strip() == secret


def test_projects_create_list_show() -> None:
    assert "created project demo" in ok("projects", "create", "demo").stdout
    created = ok_json("projects", "create", "churn", "--description", "Who leaves, and when")
    assert created["name"] == "churn"
    assert created["description"] == "Who leaves, and when"

    listed = ok_json("projects", "list")
    assert [p["name"] for p in listed] == ["churn", "demo"]
    text = ok("projects", "list").stdout
    assert "churn" in text and "Who leaves, and when" in text and "demo" in text

    shown = ok_json("projects", "show", "churn")
    assert shown == created
    assert "Who leaves, and when" in ok("projects", "show", "churn").stdout


@pytest.mark.parametrize("name", ["Bad_Name", "trailing-hyphen-", "x" * 64])
def test_invalid_project_name_is_refused_with_the_reason(name: str) -> None:
    result = cli("projects", "create", name)
    assert result.exit_code == 2
    assert f"name {name!r} is not a valid name" in result.stderr
    assert "lowercase letters, digits and hyphens" in result.stderr
    assert "Traceback" not in result.output
    assert ok_json("projects", "list") == []


def test_project_errors_exit_non_zero_with_a_message() -> None:
    ok("projects", "create", "demo")
    again = cli("projects", "create", "demo")
    assert again.exit_code == 1
    assert "project 'demo' already exists" in again.stderr
    missing = cli("projects", "show", "nope")
    assert missing.exit_code == 1
    assert "project 'nope' does not exist" in missing.stderr


def test_keys_create_list_revoke_never_show_secrets_again() -> None:
    ok("projects", "create", "demo")
    created = ok_json("keys", "create", "analyst", "--role", "demo=viewer")
    secret = created["secret"]
    assert secret.startswith("lml_")
    assert created["key"]["name"] == "analyst"
    assert created["key"]["project_roles"] == {"demo": "viewer"}
    assert created["key"]["global_role"] is None

    text = ok("keys", "create", "ci", "--role", "demo=maintainer")
    text_secret = text.stdout.strip().splitlines()[-1]
    assert text_secret.startswith("lml_") and "shown once" in text.stdout

    admin_secret = (HOME / "admin.key").read_text().strip()
    listing = ok("keys", "list", "--json").stdout
    table = ok("keys", "list").stdout
    for shown in (listing, table):
        for s in (secret, text_secret, admin_secret):
            assert s not in shown
            assert s.split("_", 2)[2] not in shown  # not even the part after the prefix
    keys = {k["name"]: k for k in json.loads(listing)}
    assert set(keys) == {"admin", "analyst", "ci"}
    assert all("secret" not in k for k in keys.values())
    assert secret.startswith(keys["analyst"]["prefix"] + "_")  # the prefix identifies it
    assert keys["analyst"]["revoked_at"] is None

    revoked = ok_json("keys", "revoke", created["key"]["id"])
    assert revoked["revoked_at"] is not None
    keys = {k["name"]: k for k in ok_json("keys", "list")}
    assert keys["analyst"]["revoked_at"] is not None
    assert keys["ci"]["revoked_at"] is None


def test_keys_create_with_a_malformed_role_is_refused() -> None:
    result = cli("keys", "create", "x", "--role", "demo=boss")
    assert result.exit_code == 2
    assert "--role 'demo=boss'" in result.stderr
    assert "PROJECT=ROLE" in result.stderr


def test_revoking_the_last_admin_key_is_refused() -> None:
    ok("projects", "list")  # first use creates the admin key
    (admin,) = ok_json("keys", "list")
    refused = cli("keys", "revoke", admin["id"])
    assert refused.exit_code == 1
    assert "last admin key" in refused.stderr
    assert ok_json("keys", "list")[0]["revoked_at"] is None

    ok("keys", "create", "second-admin", "--admin")
    assert ok_json("keys", "revoke", admin["id"])["revoked_at"] is not None


def test_db_upgrade_and_status(database_url: str) -> None:
    env = {"LOOPML_DATABASE_URL": database_url}
    before = ok_json("db", "status", env=env)
    assert before["revision"] is None
    assert before["head"] == head_revision()
    assert before["up_to_date"] is False

    assert ok_json("db", "upgrade", env=env) == {"revision": head_revision()}
    after = ok_json("db", "status", env=env)
    assert after["revision"] == head_revision()
    assert after["up_to_date"] is True
    assert "up_to_date" in ok("db", "status", env=env).stdout
    # upgrading again changes nothing
    assert ok_json("db", "upgrade", env=env) == {"revision": head_revision()}


def test_invalid_setting_is_reported_without_a_traceback() -> None:
    result = cli("db", "status", env={"LOOPML_HEARTBEAT_TIMEOUT": "-1"})
    assert result.exit_code == 2
    assert "heartbeat_timeout" in result.stderr
    assert "LOOPML_HEARTBEAT_TIMEOUT" in result.stderr
    assert "Traceback" not in result.output


def test_worker_refuses_a_concurrency_below_one(tmp_path: Path) -> None:
    # a subprocess: were the option accepted, the worker would run (and poll) for ever
    result = run_loopml("worker", "--concurrency", "0", home=tmp_path / "home", timeout=60)
    assert result.returncode == 2
    assert "--concurrency" in result.stderr


def test_server_on_a_busy_port_says_so() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("server", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


# --- remote mode: --url and --key against a live server -----------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server (SQLite, embedded worker) that also knows the test job kinds."""
    with LiveServer(make_settings(tmp_path / "server-home", job_kinds=KINDS)) as live:
        yield live


def remote(live: LiveServer, *args: str, key: str | None = None) -> list[str]:
    return ["--url", live.url, "--key", key or live.admin_key, *args]


def test_jobs_submit_wait_list_show_logs(live_server: LiveServer) -> None:
    ok(*remote(live_server, "projects", "create", "demo"))
    job = ok_json(*remote(live_server, "jobs", "submit", "demo", "selfcheck", "--wait"))
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["result"]["ok"] is True
    assert job["project"] == "demo"

    listed = ok_json(*remote(live_server, "jobs", "list", "demo"))
    assert [j["id"] for j in listed] == [job["id"]]
    assert ok_json(*remote(live_server, "jobs", "list", "demo", "--state", "failed")) == []
    bad_state = cli(*remote(live_server, "jobs", "list", "demo", "--state", "bogus"))
    assert bad_state.exit_code == 2
    assert "bogus" in bad_state.output

    shown = ok_json(*remote(live_server, "jobs", "show", "demo", job["id"]))
    assert shown == job
    text = ok(*remote(live_server, "jobs", "show", "demo", job["id"])).stdout
    assert "succeeded" in text and "1/1" in text

    logs = ok(*remote(live_server, "jobs", "logs", "demo", job["id"])).stdout
    for step in ("database", "blob write", "blob read", "blob delete"):
        assert f"{step}: ok" in logs
    lines = ok_json(*remote(live_server, "jobs", "logs", "demo", job["id"]))
    assert [line["message"].split(":")[0] for line in lines] == [
        "database",
        "blob write",
        "blob read",
        "blob delete",
    ]
    assert {line["level"] for line in lines} == {"info"}


def test_jobs_submit_params_and_failures(server: LiveServer) -> None:
    ok(*remote(server, "projects", "create", "demo"))
    submit = ["jobs", "submit", "demo", "slow", "-p", "steps=3", "-p", "pause=0", "--wait"]
    done = ok_json(*remote(server, *submit))
    assert done["params"] == {"steps": 3, "pause": 0}
    assert done["result"]["steps"] == 3

    failed = cli(*remote(server, "jobs", "submit", "demo", "boom", "--wait", "--json"))
    assert failed.exit_code == 1  # --wait: the exit status tells scripts how the job ended
    assert json.loads(failed.stdout)["error"] == "ValueError: the flux capacitor broke"

    unknown = cli(*remote(server, "jobs", "submit", "demo", "nope"))
    assert unknown.exit_code == 2
    assert "unknown job kind 'nope'" in unknown.stderr
    assert "selfcheck" in unknown.stderr  # names the kinds there are

    bad_param = cli(*remote(server, "jobs", "submit", "demo", "slow", "-p", "steps"))
    assert bad_param.exit_code == 2
    assert "NAME=VALUE" in bad_param.stderr


def test_jobs_cancel(server: LiveServer) -> None:
    ok(*remote(server, "projects", "create", "demo"))
    job = ok_json(*remote(server, "jobs", "submit", "demo", "slow", "-p", "steps=1000"))
    assert job["state"] == "queued"

    def running() -> bool:
        shown = ok_json(*remote(server, "jobs", "show", "demo", job["id"]))
        assert shown["state"] in ("queued", "running"), shown
        return shown["progress"] > 0

    wait_for("the job to run", running)
    requested = ok(*remote(server, "jobs", "cancel", "demo", job["id"]))
    assert "cancellation requested" in requested.stdout
    waited = cli(*remote(server, "jobs", "wait", "demo", job["id"], "--json"))
    assert waited.exit_code == 1
    assert json.loads(waited.stdout)["state"] == "cancelled"

    again = cli(*remote(server, "jobs", "cancel", "demo", job["id"]))
    assert again.exit_code == 1
    assert "already cancelled" in again.stderr


def test_remote_with_a_wrong_key_is_refused(live_server: LiveServer) -> None:
    bad_key = "lml_deadbeef_not-a-real-secret"
    result = cli(*remote(live_server, "projects", "list", key=bad_key))
    assert result.exit_code != 0
    assert "unknown API key" in result.stderr


def test_remote_without_any_key_says_how_to_pass_one(server: LiveServer) -> None:
    result = cli("--url", server.url, "projects", "list")  # no admin.key in this directory
    assert result.exit_code == 1
    assert "no API key" in result.stderr


def test_real_executable_remote_mode(server: LiveServer, tmp_path: Path) -> None:
    args = ["--url", server.url, "--key", server.admin_key]
    created = run_loopml(*args, "projects", "create", "remote", "--json", home=tmp_path / "h")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["name"] == "remote"
    wrong = run_loopml(
        "--url", server.url, "--key", "lml_deadbeef_nope", "projects", "list", home=tmp_path / "h"
    )
    assert wrong.returncode == 1
    assert "unknown API key" in wrong.stderr
    assert "Traceback" not in wrong.stderr


# --- the real executable: server and demo --------------------------------------------


def test_server_subprocess_serves_health_until_terminated(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [LOOPML, "server", "--port", str(port)],
            env=loopml_env(home),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> httpx.Response | None:
            if proc.poll() is not None:
                raise AssertionError(f"server exited {proc.returncode}: {log.read_text()}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
            except httpx.TransportError:
                return None

        response = wait_for("the server to answer", healthy, timeout=60)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        assert response.json()["schema_revision"] == head_revision()
    finally:
        proc.terminate()
        code = proc.wait(30)
    output = log.read_text()
    # uvicorn shuts down gracefully (the embedded worker stops), then re-raises the signal
    assert code in (0, -signal.SIGTERM), output
    assert re.search(r"loopml.worker worker \S+ stopped", output), output
    assert f"loopml serving on http://127.0.0.1:{port}" in output
    assert (home / "admin.key").read_text().strip() in output  # first start shows the key


def test_demo_runs_the_loop_and_exits(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    result = subprocess.run(
        [LOOPML, "demo", "--no-serve", "--port", str(port), "--budget", "3"],
        env=loopml_env(home),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    key = (home / "admin.key").read_text().strip()
    assert key in out
    assert "created project demo" in out
    assert "self-check passed" in out
    flat = " ".join(out.split())  # rich wraps long lines at the terminal's width
    assert "upload breast_cancer.csv (569 rows, the last 30 without a diagnosis)" in flat
    assert re.search(r"breast-cancer@1: target 'target' \(binary\), frozen test split", flat)
    assert "30 labels by demo-labeller, approved by the admin" in flat
    assert "breast-cancer@2 has 30 newly labelled rows" in flat
    assert "AutoML trains on breast-cancer@2" in flat
    assert re.search(r"test score\s+│\s+roc_auc 0\.\d{4} \(frozen test split\)", out), out
    assert "model v1 is registered and deployed as demo/cancer" in flat
    served = re.search(r"114 rows: (\d+) abstained, (\d+) of the (\d+) answered are right", flat)
    assert served, out
    abstained, right, answered = map(int, served.groups())
    assert abstained + answered == 114 and right >= 0.9 * answered
    batch = re.search(r"(\d+) rows scored by v1, (\d+) abstained", flat)
    assert batch and int(batch.group(1)) == 569, out
    shadow = re.search(r"shadow v2 answered (\d+) of 114 copies and agrees with the served "
                       r"model's likeliest class on (\d+)", flat)  # fmt: skip
    assert shadow and int(shadow.group(1)) == 114 and int(shadow.group(2)) >= 80, out
    assert "leaderboard (roc_auc, cross-validated)" in out
    assert re.search(r"content hash\s+│\s+[0-9a-f]{20}", out), out
    page = (home / "demo-report.html").read_text()
    assert "ROC curve" in page and "<svg" in page
    base = f"http://127.0.0.1:{port}"
    images = re.search(
        r"leaderboard learners: (.+?); test accuracy on the frozen split ([\d.]+); the last "
        r"image of each digit sent as a PNG body to demo/digits: (\d+) of 10 right",
        flat,
    )
    assert images, out
    assert "linear" in images.group(1) and float(images.group(2)) > 0.8, out
    assert int(images.group(3)) >= 7, out
    flows = re.search(
        r"(\d+) executions, (\d+) succeeded: (\d+) classified, (\d+) queued in (\S+)", flat
    )
    assert flows, out
    executions, succeeded, classified, queued = map(int, flows.groups()[:4])
    assert executions == succeeded == classified + queued == 20, out
    # Half the images blend two digits: the model doubts some, and they wait for a label.
    assert queued >= 1, out
    assert len(list(Path(flows.group(5)).glob("*.png"))) == queued
    assert re.search(
        r"the seed's own workflow on the least sure image: FAILED, ConfidenceThresholdNotMet",
        flat,
    ), out
    assert "40% larger, and people label the answers" in flat
    drifted = re.search(
        r"(\d+) of 30 columns drifted \(\d+%; dataset drift at 50%\): ([^\n]+)", out
    )
    assert drifted, out
    assert {"mean radius", "mean area", "worst radius"} <= set(drifted.group(2).split(", ")), out
    assert re.search(r"model quality: accuracy (0\.\d+|1) \(95% CI", flat), out
    opened = re.search(r"(\d+) open alert\(s\)", flat)
    assert opened and int(opened.group(1)) >= 3, out
    monitored = (home / "demo-monitoring.html").read_text()
    assert "confidence of recent inferences" in monitored and "mean radius" in monitored
    deployment_schema = f"{base}/api/v1/projects/demo/deployments/cancer/openapi.json"
    for url in (f"{base}/api/v1", f"{base}/docs", f"{base}/openapi.json", deployment_schema):
        assert url in out
    assert "Traceback" not in result.stderr
