"""Image models over HTTP, on a live server with its worker: a folder of digit PNGs in
class sub-folders ingested, trained on with its images and deployed; ``/predict`` taking
an image as the body (PNG, JPEG), files in multipart/form-data and base64 text in JSON
records; the 422s for what cannot be an image; captures keeping the image as base64; the
deployment's OpenAPI document; batch predictions of the image dataset version."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from loopml.data import load
from loopml.sdk import Client
from loopml.store.blobs import BlobStore
from tests.api.support import assert_problem
from tests.conftest import LiveServer

PER_DIGIT = 40
DIGITS = "/projects/pics/deployments/digits"
IRIS = "/projects/pics/deployments/iris"
CLASSES = [str(d) for d in range(10)]


def encode(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def sdk(server: LiveServer) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as c:
        yield c


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``PER_DIGIT`` digits of each class as ``<digit>/<n>.png`` in a folder, and unseen
    digits (pixels, labels) to ask about."""
    data = load_digits()
    pixels = (data.images * 255 / 16).round().astype(np.uint8)
    folder = tmp_path_factory.mktemp("digits") / "digits"
    files: dict[str, bytes] = {}
    used: list[int] = []
    for digit in range(10):
        for i in np.flatnonzero(data.target == digit)[:PER_DIGIT]:
            path = folder / str(digit) / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(pixels[i]))
            files[f"{digit}/{i:04d}.png"] = path.read_bytes()
            used.append(int(i))
    unseen = np.setdiff1d(np.arange(len(data.target)), used)[:100]
    return {
        "folder": folder,
        "files": files,
        "pixels": pixels[unseen],
        "labels": [str(d) for d in data.target[unseen]],
    }


@pytest.fixture(scope="module")
def trained(sdk: Client, digits: dict[str, Any]) -> dict[str, Any]:
    """Project "pics": the digit folder (an admin names a server path) with a frozen test
    split, trained with deploy="digits"; iris deployed as "iris"."""
    sdk.projects.create("pics")
    job = sdk.datasets.ingest(
        "pics", "digits", str(digits["folder"]), split={"method": "random", "test_size": 0.2}
    )
    done = sdk.jobs.wait("pics", job.id, timeout=120)
    assert done.state.value == "succeeded", done.error
    # Enough seconds for the CNN to come first (it does where there are images and at least
    # a second per fold is left after importing torch), shaping its training to its time
    # (max_trials would let it train every epoch of every fold).
    started = sdk.trainings.start("pics", "digits", time_budget=15, seed=0, deploy="digits")
    training = sdk.trainings.wait("pics", started.id, timeout=180)
    assert training.state.value == "succeeded", training.error
    assert training.result is not None
    iris = sdk.trainings.start(
        "pics", "builtin:iris", time_budget=2, max_trials=2, seed=0, deploy="iris"
    )
    iris_done = sdk.trainings.wait("pics", iris.id, timeout=120)
    assert iris_done.state.value == "succeeded", iris_done.error
    return {"id": training.id, **training.result}


def predict(http: httpx.Client, url: str = DIGITS, **kwargs: Any) -> list[dict[str, Any]]:
    r = http.post(f"{url}/predict", **kwargs)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == (1 if url == DIGITS else 2)
    return list(body["predictions"])


def png_body(http: httpx.Client, image: bytes, kind: str = "image/png") -> dict[str, Any]:
    (answer,) = predict(http, content=image, headers={"Content-Type": kind})
    return answer


def same_answers(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert [a["label"] for a in got] == [a["label"] for a in want]
    for a, b in zip(got, want, strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"])


# --- the training ------------------------------------------------------------------------


def test_the_image_dataset_trains_on_its_images_and_deploys(
    admin: httpx.Client, sdk: Client, trained: dict[str, Any]
) -> None:
    assert trained["model_version"] == 1
    assert trained["deployed_to"] == "digits"
    version = sdk.datasets.version("pics", "digits", 1)
    assert version.data_schema.target == "label"
    assert version.rows == 10 * PER_DIGIT
    model = admin.get("/projects/pics/models/1").json()
    assert model["classes"] == CLASSES
    assert model["dataset"] == "digits@1"
    inputs = {c["name"]: c["kind"] for c in model["inputs"]}
    assert inputs == {"image": "image"}  # the file name is an identifier, not a feature
    board = sdk.trainings.leaderboard("pics", trained["id"])
    assert {row["learner"] for row in board} >= {"cnn", "linear"}
    assert trained["test_score"] is not None


# --- request shapes --------------------------------------------------------------------------


def test_a_png_body_is_one_image_record(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    said = [png_body(admin, encode(p))["label"] for p in digits["pixels"][:30]]
    right = sum(a == b for a, b in zip(said, digits["labels"][:30], strict=True))
    assert right >= 24, said
    answer = png_body(admin, encode(digits["pixels"][0]))
    assert set(answer["probabilities"]) == set(CLASSES)
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    assert answer["confidence"] == pytest.approx(answer["probabilities"][answer["label"]])
    # a charset or other parameter on the content type changes nothing
    r = admin.post(
        f"{DIGITS}/predict",
        content=encode(digits["pixels"][0]),
        headers={"Content-Type": "image/png; q=1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["label"] == answer["label"]


def test_a_jpeg_body_is_read_as_well(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    big = [np.kron(p, np.ones((4, 4), dtype=np.uint8)) for p in digits["pixels"][:20]]
    said = [png_body(admin, encode(p, "JPEG"), "image/jpeg")["label"] for p in big]
    right = sum(a == b for a, b in zip(said, digits["labels"][:20], strict=True))
    assert right >= 15, said
    # the content type names the body; a PNG sent as image/jpeg is still decoded
    png_as_jpeg = png_body(admin, encode(digits["pixels"][0]), "image/jpeg")
    assert png_as_jpeg["label"] == png_body(admin, encode(digits["pixels"][0]))["label"]


def test_multipart_files_are_one_record_each_in_order(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    first, second = encode(digits["pixels"][3]), encode(digits["pixels"][7])
    files = [
        ("file", ("a.png", first, "image/png")),
        ("file", ("b.png", second, "image/png")),
    ]
    got = predict(admin, files=files, data={"note": "text fields are not images"})
    same_answers(got, [png_body(admin, first), png_body(admin, second)])
    reverse = predict(admin, files=files[::-1])
    same_answers(reverse, got[::-1])


def test_base64_json_records_and_data_urls_answer_alike(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    images = [encode(p) for p in digits["pixels"][:5]]
    want = [png_body(admin, image) for image in images]
    plain = [{"image": b64(image)} for image in images]
    same_answers(predict(admin, json=plain), want)
    same_answers(predict(admin, json={"records": plain}), want)
    urls = [{"image": f"data:image/png;base64,{b64(image)}"} for image in images]
    same_answers(predict(admin, json=urls), want)
    # a record without its image is a missing image, still answered
    assert len(predict(admin, json=[{"image": None}, {}])) == 2


def test_csv_rows_may_carry_base64_images(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    images = [encode(p) for p in digits["pixels"][:3]]
    csv = "image\n" + "".join(f"{b64(i)}\n" for i in images)
    got = predict(admin, content=csv.encode(), headers={"Content-Type": "text/csv"})
    same_answers(got, [png_body(admin, image) for image in images])


# --- refused ---------------------------------------------------------------------------------


def test_bad_base64_is_a_422_naming_record_and_column(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    good = b64(encode(digits["pixels"][0]))
    r = admin.post(
        f"{DIGITS}/predict", json=[{"image": good}, {"image": good}, {"image": "not base64!"}]
    )
    problem = assert_problem(r, 422, field="records[2].image", code="invalid-input")
    assert "record 2" in problem["detail"] and "'image'" in problem["detail"]
    r = admin.post(f"{DIGITS}/predict", json=[{"image": 12}])
    assert_problem(r, 422, field="records[0].image")
    r = admin.post(f"{DIGITS}/predict", json=[{"image": {"png": good}}])
    assert_problem(r, 422, field="records[0].image")


def test_wrapped_base64_is_read_and_a_blank_image_is_missing(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    text = b64(encode(digits["pixels"][0]))
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))  # as `base64` prints
    plain = admin.post(f"{DIGITS}/predict", json=[{"image": text}])
    r = admin.post(f"{DIGITS}/predict", json=[{"image": wrapped}, {"image": ""}])
    assert r.status_code == 200, r.text
    first, blank = r.json()["predictions"]
    assert first["probabilities"] == pytest.approx(plain.json()["predictions"][0]["probabilities"])
    missing = admin.post(f"{DIGITS}/predict", json=[{"image": None}]).json()["predictions"][0]
    assert blank["probabilities"] == pytest.approx(missing["probabilities"])  # blank: missing


def test_bytes_that_are_no_image_are_a_422(admin: httpx.Client, trained: dict[str, Any]) -> None:
    for kind in ("image/png", "image/jpeg"):
        r = admin.post(
            f"{DIGITS}/predict", content=b"GIF89a, or anything", headers={"Content-Type": kind}
        )
        problem = assert_problem(r, 422, code="invalid-input")
        assert "PNG" in problem["detail"], problem
    # a small file that would decode to hundreds of megabytes
    bomb = io.BytesIO()
    Image.new("L", (15_000, 15_000)).save(bomb, format="PNG")
    r = admin.post(
        f"{DIGITS}/predict", content=bomb.getvalue(), headers={"Content-Type": "image/png"}
    )
    problem = assert_problem(r, 422, code="invalid-input")
    assert "too large" in problem["detail"], problem
    # valid base64 of something that is not an image: named like any other bad value
    r = admin.post(f"{DIGITS}/predict", json=[{"image": b64(b"just text")}])
    problem = assert_problem(r, 422, field="records[0].image", code="invalid-input")
    assert "PNG" in problem["detail"] and "record 0" in problem["detail"], problem
    # a multipart body without a file
    r = admin.post(f"{DIGITS}/predict", files={"image": (None, "no file here")})
    problem = assert_problem(r, 422, field="body")
    assert "no file" in problem["detail"]


def test_an_image_for_a_tabular_model_is_a_422(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    image = encode(digits["pixels"][0])
    r = admin.post(f"{IRIS}/predict", content=image, headers={"Content-Type": "image/png"})
    problem = assert_problem(r, 422, field="body", code="invalid-input")
    assert "no image columns" in problem["detail"]
    r = admin.post(f"{IRIS}/predict", files=[("file", ("a.png", image, "image/png"))])
    assert_problem(r, 422, field="body")
    # the tabular deployment still answers its records
    row = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5}
    row |= {"petal length (cm)": 1.4, "petal width (cm)": 0.2}
    (answer,) = predict(admin, IRIS, json=[row])
    assert answer["label"] == "setosa"


# --- captures, the OpenAPI document, batches ---------------------------------------------


def test_captures_hold_the_image_as_base64(
    admin: httpx.Client, trained: dict[str, Any], digits: dict[str, Any]
) -> None:
    image = encode(digits["pixels"][42])
    said = png_body(admin, image)
    deadline = time.monotonic() + 20
    found: dict[str, Any] = {}
    while time.monotonic() < deadline and said["prediction_id"] not in found:
        r = admin.get(f"{DIGITS}/captures", params={"limit": 100_000})
        assert r.status_code == 200, r.text
        found = {c["eventMetadata"]["eventId"]: c for c in r.json()}
        time.sleep(0.2)
    assert said["prediction_id"] in found, "captured within the flush interval"
    capture = found[said["prediction_id"]]["captureData"]
    row = json.loads(capture["endpointInput"]["data"])
    assert set(row) == {"image"}
    assert base64.b64decode(row["image"]) == image
    assert json.loads(capture["endpointOutput"]["data"])["label"] == said["label"]
    # what was captured can be sent again as it is
    (again,) = predict(admin, json=[row])
    assert again["label"] == said["label"]


def test_the_openapi_document_takes_images(admin: httpx.Client, trained: dict[str, Any]) -> None:
    doc = admin.get(f"{DIGITS}/openapi.json").json()
    (operation,) = [
        path["post"] for url, path in doc["paths"].items() if url.endswith("/digits/predict")
    ]
    content = operation["requestBody"]["content"]
    assert {"application/json", "text/csv", "image/png", "image/jpeg"} <= set(content)
    assert content["image/png"]["schema"] == {"type": "string", "format": "binary"}
    assert content["multipart/form-data"]["schema"]["type"] == "object"
    image = json.dumps(doc["components"]["schemas"])
    assert '"contentEncoding": "base64"' in image

    tabular = admin.get(f"{IRIS}/openapi.json").json()
    (operation,) = [
        path["post"] for url, path in tabular["paths"].items() if url.endswith("/iris/predict")
    ]
    assert not {"image/png", "image/jpeg", "multipart/form-data"} & set(
        operation["requestBody"]["content"]
    )


def test_a_batch_prediction_of_the_image_version_reads_its_images(
    admin: httpx.Client,
    sdk: Client,
    server: LiveServer,
    trained: dict[str, Any],
    digits: dict[str, Any],
) -> None:
    r = admin.post(f"{DIGITS}/batch-predictions", json={"dataset": "digits@1", "part": "test"})
    assert r.status_code == 202, r.text
    done = sdk.jobs.wait("pics", r.json()["id"], timeout=120)
    assert done.state.value == "succeeded", done.error
    out = admin.get(f"{DIGITS}/batch-predictions/{done.id}/output")
    assert out.status_code == 200, out.text
    frame = pd.read_parquet(io.BytesIO(out.content))
    version = sdk.datasets.version("pics", "digits", 1)
    mask = load.test_mask(BlobStore(server.settings.resolved_storage_url), version)
    assert done.result is not None
    assert len(frame) == int(mask.sum()) == done.result["rows"]
    assert frame["row"].tolist() == np.flatnonzero(mask).tolist()
    # the output names each image by its hash, not its bytes
    assert frame["input_image"].str.fullmatch(r"[0-9a-f]{64}").all()
    # and answers as /predict does for the same images
    images = [digits["files"][f] for f in frame["input_file"]]
    said = predict(admin, json=[{"image": b64(image)} for image in images])
    assert frame["label"].astype(str).tolist() == [a["label"] for a in said]
    for c in CLASSES:
        want = [a["probabilities"][c] for a in said]
        assert frame[f"probability_{c}"].tolist() == pytest.approx(want)
    right = np.mean(frame["label"].astype(str) == frame["input_label"].astype(str))
    assert right > 0.8


def test_a_batch_prediction_of_a_csv_of_base64_images(
    admin: httpx.Client,
    sdk: Client,
    trained: dict[str, Any],
    digits: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    images = [encode(p) for p in digits["pixels"][:6]]
    path = tmp_path_factory.mktemp("batch") / "images.csv"
    pd.DataFrame({"image": [b64(i) for i in images]}).to_csv(path, index=False)
    r = admin.post(f"{DIGITS}/batch-predictions", json={"source": str(path)})
    assert r.status_code == 202, r.text
    done = sdk.jobs.wait("pics", r.json()["id"], timeout=120)
    assert done.state.value == "succeeded", done.error
    out = admin.get(f"{DIGITS}/batch-predictions/{done.id}/output")
    frame = pd.read_parquet(io.BytesIO(out.content))
    said = [png_body(admin, image) for image in images]
    assert frame["label"].astype(str).tolist() == [a["label"] for a in said]
