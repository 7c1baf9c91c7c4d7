"""Builders of small, real-format inputs for the data tests: CIFAR archives laid out and
pickled as the published ones are, image folders written by Pillow."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# The real CIFAR-100 fine label names, in the archive's order.
CIFAR100_NAMES = (  # noqa: SIM905
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
    "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster "
    "house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree "
    "motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear "
    "pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
    "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel "
    "streetcar sunflower sweet_pepper table tank telephone television tiger tractor train "
    "trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()
assert len(CIFAR100_NAMES) == 100
BICYCLE, MOTORCYCLE = 8, 48
assert CIFAR100_NAMES[BICYCLE] == "bicycle" and CIFAR100_NAMES[MOTORCYCLE] == "motorcycle"

CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"
]  # fmt: skip


class _Py2Pickler(pickle._Pickler):  # type: ignore[misc,name-defined]
    """Pickles as Python 2's cPickle wrote the published archives: text and byte strings
    as STRING opcodes (read back as bytes), numpy under its old module name."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode())

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def py2_pickle(value: Any) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(value)
    # numpy 2 names its module numpy._core; the archives were written by numpy 1.
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def pixels(n: int, seed: int) -> np.ndarray:
    """``n`` distinct random 32x32x3 images as CIFAR rows (channel planes, 3072 bytes)."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def batch(labels: Sequence[int], label_key: bytes, seed: int, name: str) -> dict[bytes, Any]:
    return {
        b"batch_label": name.encode(),
        label_key: list(labels),
        b"data": pixels(len(labels), seed),
        b"filenames": [f"{name.replace(' ', '_')}_{i}.png".encode() for i in range(len(labels))],
    }


def write_tar(
    path: Path, members: dict[str, bytes], *, extra: Sequence[tarfile.TarInfo] = ()
) -> Path:
    """A gzip tar of ``members`` (name -> content), plus raw extra entries (links ...)."""
    with tarfile.open(path, "w:gz") as tar:
        folders = sorted(
            {n.split("/")[0] for n in members if "/" in n and not n.startswith(("/", ".."))}
        )
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return path


def cifar100_members(
    train: Sequence[int], test: Sequence[int], *, dumps: Any = py2_pickle
) -> dict[str, bytes]:
    """``cifar-100-python/{meta,test,train}`` with the given fine labels."""
    coarse = [b"coarse_%d" % i for i in range(20)]
    meta = {
        b"fine_label_names": [n.encode() for n in CIFAR100_NAMES],
        b"coarse_label_names": coarse,
    }

    def part(labels: Sequence[int], seed: int, name: str) -> bytes:
        value = batch(labels, b"fine_labels", seed, name)
        value[b"coarse_labels"] = [label % 20 for label in labels]
        return bytes(dumps(value))

    return {
        "cifar-100-python/meta": bytes(dumps(meta)),
        "cifar-100-python/test": part(test, 2, "testing batch 1 of 1"),
        "cifar-100-python/train": part(train, 1, "training batch 1 of 1"),
    }


def cifar100_archive(path: Path, train: Sequence[int], test: Sequence[int]) -> Path:
    return write_tar(path, cifar100_members(train, test))


def cifar10_archive(path: Path, per_batch: int = 4, test: int = 5) -> Path:
    """``cifar-10-batches-py`` with five training batches and a test batch, labels 0..9
    cycling; returns the archive."""
    members = {
        "cifar-10-batches-py/batches.meta": py2_pickle(
            {b"label_names": [n.encode() for n in CIFAR10_NAMES], b"num_cases_per_batch": 10}
        ),
        "cifar-10-batches-py/readme.html": b"<html>CIFAR-10</html>",
    }
    for i in range(1, 6):
        labels = [(i * per_batch + j) % 10 for j in range(per_batch)]
        members[f"cifar-10-batches-py/data_batch_{i}"] = py2_pickle(
            batch(labels, b"labels", 10 + i, f"training batch {i} of 5")
        )
    members["cifar-10-batches-py/test_batch"] = py2_pickle(
        batch([j % 10 for j in range(test)], b"labels", 99, "testing batch 1 of 1")
    )
    return write_tar(path, members)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (8, 6), fmt: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def image_folder(root: Path, layout: dict[str, bytes]) -> Path:
    """Write ``layout`` (relative name -> image bytes) under ``root``."""
    for name, data in layout.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root
