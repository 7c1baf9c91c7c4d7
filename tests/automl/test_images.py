"""Image columns in AutoML: detection and one planned size, decoding PNG/JPEG bytes or
pixel arrays, the classic features tabular learners read, and fitting, predicting,
saving and reporting on a column of digit images."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from loopml.automl import AutoML
from loopml.automl.columns import Schema, parse, plan_columns
from loopml.automl.images import classic_features, is_image_value, plan_shape, to_arrays
from loopml.automl.params import usable_learners
from loopml.core.enums import TaskType
from loopml.core.errors import InvalidInput

from .support import automl

N_TRAIN = 500
N_TEST = 300


def encode(pixels: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    """``pixels`` (uint8, H x W or H x W x C) as an image file's bytes."""
    out = io.BytesIO()
    image = Image.fromarray(pixels)
    if mode is not None:
        image = image.convert(mode)
    image.save(out, format=fmt)
    return out.getvalue()


def digit_pixels() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8 x 8 digits as uint8 0-255 images, and their labels."""
    digits = load_digits()
    return (digits.images * 255 / 16).round().astype(np.uint8), digits.target


@pytest.fixture(scope="module")
def digits() -> dict[str, Any]:
    """Digit PNGs: a training frame, held-out images and the labels of both."""
    pixels, labels = digit_pixels()
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:N_TRAIN], order[N_TRAIN : N_TRAIN + N_TEST]
    pngs = [encode(p) for p in pixels]
    return {
        "X": pd.DataFrame({"image": [pngs[i] for i in train]}),
        "y": labels[train],
        "X_test": pd.DataFrame({"image": [pngs[i] for i in test]}),
        "y_test": labels[test],
        "pixels_test": pixels[test],
    }


@pytest.fixture(scope="module")
def fitted(digits: dict[str, Any]) -> AutoML:
    """A linear model (no PyTorch) on the digits' classic image features, with a report;
    a noise column to rank the image above."""
    X = digits["X"].assign(noise=np.random.default_rng(1).normal(size=N_TRAIN))
    return automl(learners=["linear"], max_trials=1, report=True).fit(X, digits["y"])


def accuracy(predicted: Any, truth: np.ndarray) -> float:
    return float(np.mean(np.asarray(predicted) == truth))


# --- detection and the planned size ------------------------------------------------


def test_a_column_of_png_bytes_is_an_image_column_with_a_shape() -> None:
    pixels, _ = digit_pixels()
    frame = pd.DataFrame(
        {"image": [encode(p) for p in pixels[:20]], "size": np.arange(20, dtype=float)}
    )
    schema = plan_columns(frame)
    by_name = {c.name: c for c in schema.columns}
    assert by_name["image"].kind == "image"
    assert by_name["image"].shape == (16, 16, 1)  # 8 x 8 grey, upscaled to the minimum side
    assert by_name["size"].kind == "numeric"
    assert by_name["size"].shape is None
    assert schema.names("image") == ["image"]


def test_a_column_of_pixel_arrays_is_an_image_column() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "grey": [rng.integers(0, 256, (20, 24), dtype=np.uint8) for _ in range(5)],
            "colour": [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(5)],
        }
    )
    shapes = {c.name: (c.kind, c.shape) for c in plan_columns(frame).columns}
    assert shapes == {"grey": ("image", (20, 24, 1)), "colour": ("image", (32, 32, 3))}


def test_missing_leading_values_do_not_hide_an_image_column() -> None:
    pixels, _ = digit_pixels()
    frame = pd.DataFrame({"image": [None, None, *[encode(p) for p in pixels[:5]]]})
    (plan,) = plan_columns(frame).columns
    assert (plan.kind, plan.shape) == ("image", (16, 16, 1))


def test_colour_is_three_channels_and_grey_stored_as_rgb_is_one() -> None:
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    grey = np.repeat(rng.integers(0, 256, (20, 20, 1), dtype=np.uint8), 3, axis=2)
    assert plan_shape([encode(colour)]) == (20, 20, 3)
    assert plan_shape([encode(grey)]) == (20, 20, 1)  # an RGB file of grey pixels
    assert plan_shape([encode(grey[..., 0])]) == (20, 20, 1)  # mode L
    assert plan_shape([encode(colour, "JPEG")]) == (20, 20, 3)
    # one colour image among grey ones makes the column colour
    assert plan_shape([encode(grey), encode(grey), encode(colour)])[2] == 3
    # a palette PNG is read as its colours
    assert plan_shape([encode(colour, mode="P")])[2] == 3


def test_the_planned_side_is_the_most_common_one_kept_between_16_and_64() -> None:
    def blank(h: int, w: int) -> np.ndarray:
        return np.zeros((h, w), dtype=np.uint8)

    assert plan_shape([blank(8, 8)]) == (16, 16, 1)
    assert plan_shape([blank(200, 120)]) == (64, 64, 1)
    assert plan_shape([blank(40, 10)]) == (40, 16, 1)
    assert plan_shape([blank(20, 30), blank(20, 30), blank(50, 50)]) == (20, 30, 1)
    assert plan_shape([encode(blank(100, 48)), encode(blank(100, 48))]) == (64, 48, 1)


def test_what_counts_as_an_image_value() -> None:
    assert is_image_value(b"\x89PNG")
    assert is_image_value(bytearray(b"x"))
    assert is_image_value(np.zeros((4, 4)))
    assert is_image_value(np.zeros((4, 4, 3)))
    assert not is_image_value(np.zeros(4))
    assert not is_image_value("iVBORw0KGgo=")  # base64 text is the server's to decode
    assert not is_image_value([[0, 1], [1, 0]])


def test_the_shape_survives_the_schema_state() -> None:
    pixels, _ = digit_pixels()
    frame = pd.DataFrame({"image": [encode(p) for p in pixels[:5]], "n": [1.0, 2, 3, 4, 5]})
    schema = plan_columns(frame)
    state = json.loads(json.dumps(schema.to_state()))
    again = Schema.from_state(state)
    assert again.columns == schema.columns
    assert {c.name: c.shape for c in again.columns} == {"image": (16, 16, 1), "n": None}


# --- decoding ------------------------------------------------------------------------


def test_to_arrays_resizes_to_the_planned_shape() -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    big = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    out = to_arrays([encode(small), encode(big), big, small], (16, 16, 1))
    assert out.shape == (4, 16, 16, 1)
    assert out.dtype == np.uint8
    # bytes and pixels of the same image decode alike
    assert np.array_equal(out[0], out[3])
    assert np.array_equal(out[1], out[2])
    # a constant image stays that constant at any size
    flat = np.full((10, 12), 77, dtype=np.uint8)
    assert (to_arrays([encode(flat)], (20, 24, 1)) == 77).all()
    # grey read into a colour column fills the three channels alike
    colour = to_arrays([encode(small)], (8, 8, 3))[0]
    assert colour.shape == (8, 8, 3)
    assert np.array_equal(colour[..., 0], colour[..., 2])


def test_to_arrays_drops_alpha_and_scales_other_pixel_ranges() -> None:
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10  # nearly transparent red
    out = to_arrays([encode(rgba), rgba], (16, 16, 3))
    assert (out[..., 0] == 200).all() and (out[..., 1:] == 0).all()

    unit = np.full((16, 16), 0.5)  # floats in [0, 1]
    sixteen = np.full((16, 16), 16.0)  # scikit-learn's digits: 0 to 16
    out = to_arrays([unit, sixteen], (16, 16, 1))
    assert (out[0] == 127).all()
    assert (out[1] == 255).all()
    digits, _ = digit_pixels()
    raw = load_digits().images[:3]
    assert (
        np.abs(
            to_arrays(list(raw), (8, 8, 1)).astype(int) - digits[:3, ..., None].astype(int)
        ).max()
        <= 1
    )


def test_missing_images_are_zeros() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(1, 256, (16, 16), dtype=np.uint8)
    out = to_arrays([None, encode(pixels), float("nan")], (16, 16, 1))
    assert (out[0] == 0).all() and (out[2] == 0).all()
    assert np.array_equal(out[1, ..., 0], pixels)


def test_bad_bytes_are_refused_naming_the_row() -> None:
    good = encode(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(InvalidInput, match="row 2: a value is not an image") as info:
        to_arrays([good, good, b"this is not an image", good], (8, 8, 1))
    assert info.value.extra["row"] == 2
    assert info.value.field == "X"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    cut = encode(noise)[:2000]  # a PNG cut short: its header reads, its pixels do not
    with pytest.raises(InvalidInput, match="row 1: an image cannot be decoded") as info:
        to_arrays([good, cut], (8, 8, 1))
    assert info.value.extra["row"] == 1
    with pytest.raises(InvalidInput, match="row 1: an image column holds str"):
        to_arrays([good, "a cat"], (8, 8, 1))
    with pytest.raises(InvalidInput, match=r"row 0: an image array has shape \(3, 8, 8\)"):
        to_arrays([np.zeros((3, 8, 8))], (8, 8, 1))  # channels first


def test_a_decompression_bomb_is_refused_not_decoded() -> None:
    out = io.BytesIO()
    Image.new("L", (15_000, 15_000)).save(out, format="PNG")  # 225 M pixels in 0.2 MB
    with pytest.raises(InvalidInput, match="row 1: an image is too large") as info:
        to_arrays([encode(np.zeros((8, 8), dtype=np.uint8)), out.getvalue()], (8, 8, 1))
    assert info.value.extra["row"] == 1


# --- classic features ------------------------------------------------------------------


def test_classic_features_are_192_numbers_in_0_to_1() -> None:
    pixels, _ = digit_pixels()
    images = to_arrays(list(pixels[:50]), (16, 16, 1))
    features = classic_features(images)
    assert features.shape == (50, 192)
    assert features.dtype == np.float64
    assert np.isfinite(features).all()
    assert features.min() >= 0 and features.max() <= 1
    # the thumbnail is the image's mean grey, block by block
    assert features[:, :64].mean(axis=1) == pytest.approx(images.mean(axis=(1, 2, 3)) / 255)
    # each image's gradient histograms have unit length
    assert np.linalg.norm(features[:, 64:], axis=1) == pytest.approx(np.ones(50), abs=1e-5)
    # colour images, and sides the cells do not divide, give as many
    rng = np.random.default_rng(0)
    assert classic_features(rng.integers(0, 256, (3, 21, 35, 3), dtype=np.uint8)).shape == (
        3,
        192,
    )


def test_classic_features_of_a_blank_image_are_zeros() -> None:
    assert (classic_features(np.zeros((2, 16, 16, 1), dtype=np.uint8)) == 0).all()


def test_classic_features_tell_digits_apart() -> None:
    pixels, labels = digit_pixels()
    features = classic_features(to_arrays(list(pixels[:400]), (16, 16, 1)))
    centres = np.stack([features[labels[:400] == d].mean(axis=0) for d in range(10)])
    # the same digit is nearer its own class's mean than to other classes' means
    distances = np.linalg.norm(features[:, None, :] - centres[None, :, :], axis=2)
    assert np.mean(distances.argmin(axis=1) == labels[:400]) > 0.8
    zero, one = features[labels[:400] == 0][0], features[labels[:400] == 1][0]
    assert np.abs(zero - one).max() > 0.1


def test_parse_reads_images_from_a_frame_or_lists_alike() -> None:
    pixels, _ = digit_pixels()
    pngs = [encode(p) for p in pixels[:6]]
    frame = pd.DataFrame({"image": pngs, "n": np.arange(6.0)})
    schema = plan_columns(frame)
    from_frame = parse(frame, schema)
    from_lists = parse({"image": pngs, "n": list(range(6))}, schema)
    assert from_frame.image_names == from_lists.image_names == ["image"]
    assert from_frame.images[0].shape == (6, 16, 16, 1)
    assert np.array_equal(from_frame.images[0], from_lists.images[0])
    taken = from_frame.take(np.array([4, 1]))
    assert np.array_equal(taken.images[0], from_frame.images[0][[4, 1]])
    # a frame without the column: every image missing
    assert (parse(pd.DataFrame({"n": [1.0]}), schema).images[0] == 0).all()


# --- AutoML ----------------------------------------------------------------------------


def test_automl_learns_digits_from_an_image_column(fitted: AutoML, digits: dict[str, Any]) -> None:
    assert {c.name: c.kind for c in fitted.schema_.columns} == {
        "image": "image",
        "noise": "numeric",
    }
    assert set(fitted.leaderboard_["learner"]) <= {"linear", "prior", "ensemble"}
    predicted = fitted.predict(digits["X_test"])
    assert accuracy(predicted, digits["y_test"]) > 0.9
    proba = fitted.predict_proba(digits["X_test"])
    assert proba.shape == (N_TEST, 10)
    assert proba.sum(axis=1) == pytest.approx(np.ones(N_TEST))


def test_predicting_lists_of_bytes_or_pixels_equals_the_frame(
    fitted: AutoML, digits: dict[str, Any]
) -> None:
    X = digits["X_test"].head(40)
    want = fitted.predict_proba(X)
    got = fitted.predict_proba({"image": X["image"].tolist()})
    assert got == pytest.approx(want)
    # the same images as pixel arrays, and as JPEG
    pixels = list(digits["pixels_test"][:40])
    assert fitted.predict_proba({"image": pixels}) == pytest.approx(want, abs=1e-9)
    jpegs = [encode(p, "JPEG") for p in digits["pixels_test"][:40]]
    said = fitted.predict(pd.DataFrame({"image": jpegs}))
    assert accuracy(said, digits["y_test"][:40]) > 0.8


def test_predicting_a_bad_image_names_its_row(fitted: AutoML, digits: dict[str, Any]) -> None:
    images = digits["X_test"]["image"].head(3).tolist()
    images[1] = b"GIF89a but not really"
    with pytest.raises(InvalidInput, match="row 1"):
        fitted.predict({"image": images})
    # a missing image is a row of zeros, still predicted
    assert len(fitted.predict({"image": [None, images[0]]})) == 2


def test_save_and_load_keep_the_image_shape_and_predictions(
    fitted: AutoML, digits: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "digits.zip"
    fitted.save(path)
    loaded = AutoML.load(path, expected_hash=fitted.content_hash_)
    (image,) = [c for c in loaded.schema_.columns if c.name == "image"]
    assert (image.kind, image.shape) == ("image", (16, 16, 1))
    X = digits["X_test"]
    assert np.array_equal(loaded.predict(X), fitted.predict(X))
    assert loaded.predict_proba(X) == pytest.approx(fitted.predict_proba(X))


def test_the_report_ranks_the_image_column_by_permutation(
    fitted: AutoML, digits: dict[str, Any]
) -> None:
    report = fitted.report_
    assert report is not None
    json.dumps(report)  # stored with the model
    importance = report["permutation_importance"]
    assert importance["complete"]
    by_name = {f["feature"]: f["importance"] for f in importance["features"]}
    assert set(by_name) == {"image", "noise"}
    assert importance["features"][0]["feature"] == "image"
    assert by_name["image"] > 1.0  # log loss: shuffled images leave the model guessing
    assert abs(by_name["noise"]) < 0.1
    held_out = fitted.evaluate(digits["X_test"], digits["y_test"])
    assert held_out["n_rows"] == N_TEST
    assert held_out["confusion_matrix"]


def test_naming_the_cnn_for_data_without_images_is_invalid() -> None:
    X = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 3})
    y = np.arange(30) % 2
    with pytest.raises(InvalidInput, match="cnn") as info:
        automl(learners=["cnn"]).fit(X, y)
    assert info.value.field == "learners"
    with pytest.raises(InvalidInput) as info:
        usable_learners(["linear", "cnn"], TaskType.binary, images=False)
    assert info.value.field == "learners"


def test_default_learners_skip_image_learners_without_images() -> None:
    names = usable_learners(None, TaskType.binary, images=False)
    assert "cnn" not in names and "linear" in names
