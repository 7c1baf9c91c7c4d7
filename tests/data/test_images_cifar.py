"""Image sources: folders of PNG/JPEG files labelled by sub-folder (or loose and
unlabelled), and CIFAR-10/100 python archives read without trusting their pickles, with
a class filter by name and the archive's own test part kept as the frozen test split."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopml.core.errors import InvalidInput, PayloadTooLarge
from loopml.data.cifar import is_cifar, read_cifar
from loopml.data.images import check_image, image_folder
from loopml.data.sources import stage

from .support import (
    BICYCLE,
    CIFAR10_NAMES,
    MOTORCYCLE,
    cifar10_archive,
    cifar100_archive,
    cifar100_members,
    pixels,
    png,
    write_tar,
)
from .support import image_folder as write_images

CAP = 10_000_000
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def staged_images(tmp_path: Path, layout: dict[str, bytes]):  # type: ignore[no-untyped-def]
    root = write_images(tmp_path / "images", layout)
    return image_folder(stage(str(root), tmp_path, max_bytes=CAP))


# --- image folders ----------------------------------------------------------------


def test_folder_of_class_sub_folders_is_labelled(tmp_path: Path) -> None:
    layout = {
        "cats/a.png": png(RED),
        "cats/b.jpg": png(GREEN, fmt="JPEG"),
        "dogs/c.jpeg": png(BLUE, (16, 16), fmt="JPEG"),
        "dogs/d.PNG": png(BLUE, (4, 4)),
    }
    images = staged_images(tmp_path, layout)
    rows = images.table.to_pylist()
    assert [r["file"] for r in rows] == ["cats/a.png", "cats/b.jpg", "dogs/c.jpeg", "dogs/d.PNG"]
    assert [r["label"] for r in rows] == ["cats", "cats", "dogs", "dogs"]
    for row in rows:
        data = layout[row["file"]]
        assert row["image"] == hashlib.sha256(data).hexdigest()
        assert images.images[row["image"]] == data
    assert images.sizes == {"8x6": 2, "16x16": 1, "4x4": 1}
    assert images.predefined_test is None


def test_identical_images_are_kept_once(tmp_path: Path) -> None:
    same = png(RED)
    images = staged_images(tmp_path, {"a/1.png": same, "a/2.png": same, "b/3.png": png(GREEN)})
    assert images.table.num_rows == 3
    assert len(images.images) == 2
    assert images.table.column("image")[0] == images.table.column("image")[1]


def test_loose_images_are_unlabelled(tmp_path: Path) -> None:
    images = staged_images(tmp_path, {"x.png": png(RED), "y.jpg": png(GREEN, fmt="JPEG")})
    assert images.table.column("label").to_pylist() == [None, None]
    assert images.table.column("file").to_pylist() == ["x.png", "y.jpg"]


def test_nested_folders_label_by_the_innermost_folder(tmp_path: Path) -> None:
    images = staged_images(tmp_path, {"train/cats/1.png": png(RED), "train/dogs/2.png": png(BLUE)})
    assert images.table.column("label").to_pylist() == ["cats", "dogs"]


def test_mixing_loose_and_foldered_images_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidInput, match=r"all be in class sub-folders \(labelled\) or all at the top"
    ):
        staged_images(tmp_path, {"cats/1.png": png(RED), "loose.png": png(GREEN)})


def test_corrupt_png_is_named(tmp_path: Path) -> None:
    good = png(RED)
    truncated = good[: len(good) // 2]
    with pytest.raises(InvalidInput) as err:
        staged_images(tmp_path, {"cats/ok.png": good, "cats/broken.png": truncated})
    assert "cats/broken.png is not a decodable image" in err.value.message
    assert err.value.field == "source"


def test_text_file_with_an_image_suffix_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"dogs/fake\.jpg is not a decodable image"):
        staged_images(tmp_path, {"dogs/fake.jpg": b"just some text"})


def test_other_image_formats_are_refused_naming_png_and_jpeg() -> None:
    with pytest.raises(InvalidInput) as err:
        check_image(png(RED, fmt="GIF"), "anim.png")
    assert err.value.message == "anim.png is a GIF image; loopml reads PNG and JPEG"


def test_check_image_returns_width_and_height() -> None:
    assert check_image(png(RED, (7, 3)), "x.png") == (7, 3)


# --- CIFAR-100 ------------------------------------------------------------------------

TRAIN = [BICYCLE] * 5 + [MOTORCYCLE] * 3 + [0, 1, 2, 99, BICYCLE, 3]
TEST = [MOTORCYCLE, 5, BICYCLE, MOTORCYCLE, 6]


@pytest.fixture
def cifar100(tmp_path: Path) -> Path:
    return cifar100_archive(tmp_path / "cifar-100-python.tar.gz", TRAIN, TEST)


def test_cifar100_class_filter_counts_and_predefined_test(cifar100: Path) -> None:
    assert is_cifar(cifar100)
    images = read_cifar(
        cifar100, cifar100.name, classes=["bicycle", "motorcycle"], max_expanded=CAP
    )
    labels = images.table.column("label").to_pylist()
    assert Counter(labels) == {"bicycle": 7, "motorcycle": 5}
    # Training rows first, then the archive's test part, which becomes the frozen test split.
    assert images.predefined_test == [False] * 9 + [True] * 3
    test_labels = [label for label, t in zip(labels, images.predefined_test, strict=True) if t]
    assert Counter(test_labels) == {"motorcycle": 2, "bicycle": 1}
    files = images.table.column("file").to_pylist()
    assert files[0] == "train/training_batch_1_of_1_0.png"
    assert files[-1] == "test/testing_batch_1_of_1_3.png"
    assert images.sizes == {"32x32": 12}


def test_cifar_pixels_become_the_right_png(cifar100: Path) -> None:
    from PIL import Image

    images = read_cifar(cifar100, "c.tar.gz", classes=["bicycle"], max_expanded=CAP)
    first = images.table.column("image")[0].as_py()
    decoded = np.asarray(Image.open(io.BytesIO(images.images[first])))
    # Rows hold the red, green and blue planes one after another.
    expected = pixels(len(TRAIN), 1)[0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert decoded.shape == (32, 32, 3)
    assert np.array_equal(decoded, expected)


def test_cifar100_without_filter_reads_every_image(cifar100: Path) -> None:
    images = read_cifar(cifar100, "c.tar.gz", max_expanded=CAP)
    assert images.table.num_rows == len(TRAIN) + len(TEST)
    assert len(images.images) == len(TRAIN) + len(TEST)
    assert sum(images.predefined_test or []) == len(TEST)


def test_unknown_class_names_are_listed(cifar100: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read_cifar(cifar100, "c.tar.gz", classes=["bicycle", "unicorn", "Bike"], max_expanded=CAP)
    assert "unknown classes ['unicorn', 'Bike']" in err.value.message
    assert "motorcycle" in err.value.message  # what the archive does have
    assert err.value.field == "classes"


def test_class_with_no_images_is_refused(tmp_path: Path) -> None:
    archive = cifar100_archive(tmp_path / "c.tar.gz", [BICYCLE, 1], [2])
    with pytest.raises(InvalidInput, match="no images of the chosen classes"):
        read_cifar(archive, "c.tar.gz", classes=["worm"], max_expanded=CAP)


def test_archive_pickled_by_python3_is_read(tmp_path: Path) -> None:
    for protocol in (3, 4, 5):
        members = cifar100_members(
            [BICYCLE, MOTORCYCLE], [BICYCLE], dumps=lambda v, p=protocol: pickle.dumps(v, p)
        )
        archive = write_tar(tmp_path / f"p{protocol}.tar.gz", members)
        images = read_cifar(archive, "p.tar.gz", classes=["bicycle"], max_expanded=CAP)
        assert images.table.column("label").to_pylist() == ["bicycle", "bicycle"], protocol


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("member", ["meta", "train"])
def test_pickle_calling_os_system_is_refused_and_not_run(tmp_path: Path, member: str) -> None:
    marker = tmp_path / "pwned"
    members = cifar100_members([BICYCLE], [BICYCLE])
    evil = {b"fine_labels": [0], b"data": _Evil(marker), b"fine_label_names": _Evil(marker)}
    members[f"cifar-100-python/{member}"] = pickle.dumps(evil, protocol=4)
    archive = write_tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(InvalidInput) as err:
        read_cifar(archive, "evil.tar.gz", max_expanded=CAP)
    assert f"cifar-100-python/{member} is not a CIFAR batch" in err.value.message
    assert "refusing to load" in err.value.message
    assert "system" in err.value.message
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../evil", "cifar-100-python/../../evil", "/tmp/evil"])
def test_member_escaping_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    members = cifar100_members([BICYCLE], [BICYCLE])
    members[name] = b"payload"
    archive = write_tar(tmp_path / "escape.tar.gz", members)
    with pytest.raises(InvalidInput) as err:
        read_cifar(archive, "escape.tar.gz", max_expanded=CAP)
    assert "points outside its folder" in err.value.message
    assert repr(name) in err.value.message
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_links_in_the_archive_are_refused(tmp_path: Path, kind: bytes) -> None:
    link = tarfile.TarInfo("cifar-100-python/passwd")
    link.type = kind
    link.linkname = "/etc/passwd"
    archive = write_tar(
        tmp_path / "links.tar.gz", cifar100_members([BICYCLE], [BICYCLE]), extra=[link]
    )
    with pytest.raises(InvalidInput, match="'cifar-100-python/passwd' points outside"):
        read_cifar(archive, "links.tar.gz", max_expanded=CAP)


def test_archive_expanding_past_the_cap_is_refused(cifar100: Path) -> None:
    with tarfile.open(cifar100) as tar:  # each member's header counts too
        expanded = sum(tarfile.BLOCKSIZE + m.size for m in tar.getmembers())
    assert read_cifar(cifar100, "c.tar.gz", max_expanded=expanded).table.num_rows > 0
    with pytest.raises(PayloadTooLarge) as err:
        read_cifar(cifar100, "c.tar.gz", max_expanded=expanded - 1)
    assert f"expands past {expanded - 1:,} bytes" in err.value.message
    assert cifar100.stat().st_size < expanded  # the compressed size alone would pass


def test_other_tar_archives_are_not_cifar(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "photos.tar.gz", {"photos/a.csv": b"a\n1\n"})
    assert not is_cifar(archive)
    with pytest.raises(InvalidInput, match="not a CIFAR python archive"):
        read_cifar(archive, "photos.tar.gz", max_expanded=CAP)
    (tmp_path / "plain.csv").write_text("a\n1\n")
    assert not is_cifar(tmp_path / "plain.csv")


def test_missing_member_is_named(tmp_path: Path) -> None:
    members = cifar100_members([BICYCLE], [BICYCLE])
    del members["cifar-100-python/test"]
    archive = write_tar(tmp_path / "partial.tar.gz", members)
    with pytest.raises(InvalidInput, match="has no cifar-100-python/test"):
        read_cifar(archive, "partial.tar.gz", max_expanded=CAP)


def test_batch_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    members = cifar100_members([BICYCLE], [BICYCLE])
    members["cifar-100-python/train"] = pickle.dumps(
        {b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [8, 8]}
    )
    archive = write_tar(tmp_path / "shape.tar.gz", members)
    with pytest.raises(InvalidInput, match="does not hold 32x32x3 images"):
        read_cifar(archive, "shape.tar.gz", max_expanded=CAP)


# --- CIFAR-10 -------------------------------------------------------------------------


def test_cifar10_layout(tmp_path: Path) -> None:
    archive = cifar10_archive(tmp_path / "cifar-10-python.tar.gz", per_batch=4, test=5)
    assert is_cifar(archive)
    images = read_cifar(archive, archive.name, max_expanded=CAP)
    assert images.table.num_rows == 5 * 4 + 5
    assert images.predefined_test == [False] * 20 + [True] * 5
    labels = images.table.column("label").to_pylist()
    assert set(labels) == set(CIFAR10_NAMES)
    files = images.table.column("file").to_pylist()
    assert files[0].startswith("data_batch_1/") and files[-1].startswith("test_batch/")

    cats = read_cifar(archive, archive.name, classes=["cat", "ship"], max_expanded=CAP)
    assert set(cats.table.column("label").to_pylist()) == {"cat", "ship"}
    assert cats.table.num_rows == labels.count("cat") + labels.count("ship")


def test_thousands_of_empty_members_count_against_the_cap(tmp_path: Path) -> None:
    empty = {f"cifar-100-python/pad/{i}": b"" for i in range(2_000)}
    archive = write_tar(
        tmp_path / "padded.tar.gz", {**cifar100_members([BICYCLE], [BICYCLE]), **empty}
    )
    with pytest.raises(PayloadTooLarge, match="expands past 500,000 bytes"):
        read_cifar(archive, "padded.tar.gz", max_expanded=500_000)


def test_class_names_pickled_as_text_are_read(tmp_path: Path) -> None:
    members = cifar100_members([BICYCLE, MOTORCYCLE], [BICYCLE])
    meta = pickle.loads(members["cifar-100-python/meta"], encoding="bytes")
    meta[b"fine_label_names"] = [n.decode() for n in meta[b"fine_label_names"]]
    members["cifar-100-python/meta"] = pickle.dumps(meta, protocol=4)
    archive = write_tar(tmp_path / "text.tar.gz", members)
    images = read_cifar(archive, "text.tar.gz", classes=["motorcycle"], max_expanded=CAP)
    assert images.table.column("label").to_pylist() == ["motorcycle"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("no-names", "meta holds no 'fine_label_names' list"),
        ("code-150", "label codes [150] beyond the 100 class names"),
        ("few-files", "one label and one file name each"),
    ],
)
def test_a_malformed_cifar_archive_is_named_not_crashed_on(
    tmp_path: Path, change: str, says: str
) -> None:
    members = cifar100_members([BICYCLE, MOTORCYCLE], [BICYCLE])
    if change == "no-names":
        members["cifar-100-python/meta"] = pickle.dumps({b"coarse_label_names": []}, 4)
    else:
        train = pickle.loads(members["cifar-100-python/train"], encoding="bytes")
        if change == "code-150":
            train[b"fine_labels"] = [BICYCLE, 150]
        else:
            train[b"filenames"] = train[b"filenames"][:1]
        members["cifar-100-python/train"] = pickle.dumps(train, 4)
    archive = write_tar(tmp_path / "bad.tar.gz", members)
    with pytest.raises(InvalidInput) as err:
        read_cifar(archive, "bad.tar.gz", max_expanded=CAP)
    assert err.value.message.startswith("bad.tar.gz")
    assert says in err.value.message


def test_an_image_too_large_to_decode_safely_is_named() -> None:
    from PIL import Image

    huge = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(huge, format="PNG")  # 400 million pixels
    with pytest.raises(InvalidInput, match=r"huge\.png is too large an image to decode"):
        check_image(huge.getvalue(), "huge.png")


def test_an_archive_pickled_again_with_text_keys_and_names_is_read(tmp_path: Path) -> None:
    members = cifar100_members([BICYCLE, MOTORCYCLE], [BICYCLE])

    def as_text(value: Any) -> Any:
        if isinstance(value, dict):
            return {k.decode(): as_text(v) for k, v in value.items()}
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            return [v.decode() for v in value]
        return value

    for member, data in list(members.items()):
        members[member] = pickle.dumps(as_text(pickle.loads(data, encoding="bytes")), 4)
    archive = write_tar(tmp_path / "text.tar.gz", members)
    images = read_cifar(archive, "text.tar.gz", classes=["motorcycle"], max_expanded=CAP)
    assert images.table.column("label").to_pylist() == ["motorcycle"]
    assert images.table.column("file").to_pylist()[0].endswith(".png")


def test_label_codes_that_are_not_whole_numbers_are_named(tmp_path: Path) -> None:
    members = cifar100_members([BICYCLE, MOTORCYCLE], [BICYCLE])
    train = pickle.loads(members["cifar-100-python/train"], encoding="bytes")
    train[b"fine_labels"] = ["8", 48]
    members["cifar-100-python/train"] = pickle.dumps(train, 4)
    archive = write_tar(tmp_path / "codes.tar.gz", members)
    with pytest.raises(InvalidInput, match="label codes that are not whole numbers"):
        read_cifar(archive, "codes.tar.gz", max_expanded=CAP)


def test_an_image_over_the_pixel_limit_is_refused_before_it_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)  # Pillow itself only warns to 10,000
    with pytest.raises(InvalidInput, match=r"90x90 pixels, over 5,000"):
        check_image(png(RED, size=(90, 90)), "big.png")
