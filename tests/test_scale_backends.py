"""The same server code on PostgreSQL and S3-compatible storage, end to end over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from loopml.sdk import Client
from tests.conftest import LiveServer, make_settings


def test_server_on_postgres_and_s3_runs_jobs_against_both(
    tmp_path: Path, postgres_url: str, s3_storage: tuple[str, dict[str, Any]], s3_endpoint: str
) -> None:
    storage_url, options = s3_storage
    settings = make_settings(
        tmp_path / "home", postgres_url, storage_url=storage_url, storage_options=options
    )
    with LiveServer(settings) as server, Client(server.url, server.admin_key) as client:
        assert client.health()["database"] == "ok"
        client.projects.create("scale")
        job = client.jobs.submit("scale", "selfcheck")
        done = client.jobs.wait("scale", job.id, timeout=60)
        assert done.state.value == "succeeded", done.error
        assert done.result["storage"] == storage_url
        server.app.state.home.blobs.put("marker/ok.txt", b"written through the server's store")

    # Nothing of the installation went to the local home but the admin key file.
    assert not (tmp_path / "home" / "loopml.db").exists()
    assert not (tmp_path / "home" / "blobs").exists()
    bucket, prefix = storage_url.removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert f"{prefix}/marker/ok.txt" in keys
    # The self-check cleaned up after itself.
    assert not any("selfcheck/" in k for k in keys)
