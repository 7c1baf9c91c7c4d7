"""Per-fold encodings of parsed inputs, learned on training rows only.

Two views of the same inputs, one per learner family:

* ``native`` for tree learners: numbers as they are (NaN kept), categories as integer
  codes (NaN for missing, unseen or rare) flagged as categorical, text as a small
  dense projection of hashed n-grams.
* ``dense`` for linear and neighbour models: imputed, standardised numbers with
  missing-value indicators, one-hot frequent categories plus a frequency column,
  and the same text projection.

Both add classic features of each image column (a grey thumbnail and gradient
histograms); a third view, ``image``, is the first image column's pixels as a
normalised ``n x C x H x W`` tensor for convolutional networks; ``pixels`` is the same
in [0, 1], for pretrained networks that normalise as they were trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer

from loopml.automl.columns import RawFrame
from loopml.automl.images import classic_features

_MAX_CODES = 512  # categories beyond the most frequent share one "other" code
_MAX_ONE_HOT = 20
_TEXT_DIMS = 16
_HASHER = HashingVectorizer(
    n_features=2**12, ngram_range=(1, 2), alternate_sign=False, norm="l2", lowercase=True
)


def _vocabulary(values: np.ndarray, limit: int) -> list[str]:
    present = values[values != None]  # noqa: E711 - elementwise on an object array
    if present.size == 0:
        return []
    uniques, counts = np.unique(present.astype(str), return_counts=True)
    order = np.lexsort((uniques, -counts))  # most frequent first, ties by name
    return [str(u) for u in uniques[order][:limit]]


def _codes(values: np.ndarray, vocab: list[str]) -> np.ndarray:
    index = {v: i for i, v in enumerate(vocab)}
    return np.fromiter(
        (-1 if v is None else index.get(v, -1) for v in values),
        dtype=np.int64,
        count=len(values),
    )


class FoldEncoder:
    """Statistics of one training fold, and the transforms that apply them.

    Parameters
    ----------
    seed : int
        Seed of the text projection.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, raw: RawFrame) -> FoldEncoder:
        num = raw.numeric
        with np.errstate(all="ignore"):
            medians = np.nanmedian(num, axis=0) if num.shape[1] else np.empty(0)
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        filled = np.where(np.isnan(num), self.medians_, num)
        self.means_ = filled.mean(axis=0) if len(filled) else np.zeros(num.shape[1])
        stds = filled.std(axis=0) if len(filled) else np.ones(num.shape[1])
        self.stds_ = np.where(stds > 1e-12, stds, 1.0)
        self.indicators_ = np.flatnonzero(np.isnan(num).any(axis=0))
        self.vocabs_ = [_vocabulary(c, _MAX_CODES) for c in raw.categorical]
        self.frequencies_ = []
        for column, vocab in zip(raw.categorical, self.vocabs_, strict=True):
            codes = _codes(column, vocab)
            counts = np.bincount(codes[codes >= 0], minlength=len(vocab))
            self.frequencies_.append(counts / max(len(column), 1))
        self.text_components_ = [self._fit_text(t) for t in raw.text]
        if raw.images:
            pixels = raw.images[0].reshape(-1, raw.images[0].shape[3]).astype(np.float64) / 255
            self.image_mean_ = pixels.mean(axis=0)
            self.image_std_ = np.maximum(pixels.std(axis=0), 1e-3)
        else:
            self.image_mean_ = self.image_std_ = np.empty(0)
        return self

    def image(self, raw: RawFrame, normalise: bool = True) -> np.ndarray:
        """The first image column as ``n x C x H x W`` float32, normalised by the training
        rows' channel means and deviations, or else in [0, 1]."""
        if not raw.images:
            raise ValueError("the image view needs an image column")
        x = raw.images[0].astype(np.float32) / 255.0
        if normalise:
            x = (x - self.image_mean_.astype(np.float32)) / self.image_std_.astype(np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def _fit_text(self, texts: np.ndarray) -> np.ndarray:
        hashed = _HASHER.transform(texts)
        dims = min(_TEXT_DIMS, hashed.shape[0] - 1, hashed.shape[1] - 1)
        if dims < 1 or hashed.nnz == 0:
            return np.zeros((0, hashed.shape[1]))
        svd = TruncatedSVD(n_components=dims, random_state=self.seed, algorithm="randomized")
        svd.fit(hashed)
        return svd.components_.astype(np.float64)

    def _text(self, raw: RawFrame) -> list[np.ndarray]:
        return [
            np.asarray(_HASHER.transform(t) @ comp.T) if comp.size else np.empty((len(t), 0))
            for t, comp in zip(raw.text, self.text_components_, strict=True)
        ]

    def native(self, raw: RawFrame) -> tuple[np.ndarray, list[int]]:
        """The tree view and the indices of its categorical columns."""
        blocks = [raw.numeric]
        cat_index: list[int] = []
        start = raw.numeric.shape[1]
        for column, vocab in zip(raw.categorical, self.vocabs_, strict=True):
            codes = _codes(column, vocab).astype(np.float64)
            codes[codes < 0] = np.nan
            blocks.append(codes[:, None])
            cat_index.append(start)
            start += 1
        blocks.extend(self._text(raw))
        blocks.extend(classic_features(images) for images in raw.images)
        return np.hstack(blocks) if blocks else np.empty((raw.n_rows, 0)), cat_index

    def dense(self, raw: RawFrame) -> np.ndarray:
        """The imputed, scaled, one-hot view."""
        num = raw.numeric
        missing = np.isnan(num)
        filled = np.where(missing, self.medians_, num)
        blocks = [(filled - self.means_) / self.stds_, missing[:, self.indicators_].astype(float)]
        for column, vocab, freq in zip(
            raw.categorical, self.vocabs_, self.frequencies_, strict=True
        ):
            codes = _codes(column, vocab)
            width = min(len(vocab), _MAX_ONE_HOT)
            hot = np.zeros((len(column), width))
            rows = np.flatnonzero((codes >= 0) & (codes < width))
            hot[rows, codes[rows]] = 1.0
            blocks.append(hot)
            looked_up = freq[np.clip(codes, 0, None)] if freq.size else np.zeros(len(codes))
            blocks.append(np.where(codes >= 0, looked_up, 0.0)[:, None])
        blocks.extend(self._text(raw))
        blocks.extend(classic_features(images) for images in raw.images)
        return np.hstack(blocks)

    def transform(self, raw: RawFrame, family: str) -> tuple[np.ndarray, list[int]]:
        if family == "native":
            return self.native(raw)
        if family == "image":
            return self.image(raw), []
        if family == "pixels":
            return self.image(raw, normalise=False), []
        return self.dense(raw), []

    def to_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able metadata and named arrays (no pickles)."""
        arrays = {
            "medians": self.medians_,
            "means": self.means_,
            "stds": self.stds_,
            "indicators": self.indicators_,
            "image_mean": self.image_mean_,
            "image_std": self.image_std_,
        }
        for i, freq in enumerate(self.frequencies_):
            arrays[f"freq{i}"] = freq
        for i, comp in enumerate(self.text_components_):
            arrays[f"text{i}"] = comp
        meta = {"seed": self.seed, "vocabs": self.vocabs_}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> FoldEncoder:
        enc = cls(seed=int(meta["seed"]))
        enc.medians_ = arrays["medians"]
        enc.means_ = arrays["means"]
        enc.stds_ = arrays["stds"]
        enc.indicators_ = arrays["indicators"].astype(np.int64)
        enc.image_mean_ = arrays.get("image_mean", np.empty(0))
        enc.image_std_ = arrays.get("image_std", np.empty(0))
        enc.vocabs_ = [[str(v) for v in vocab] for vocab in meta["vocabs"]]
        enc.frequencies_ = [arrays[f"freq{i}"] for i in range(len(enc.vocabs_))]
        n_text = sum(1 for k in arrays if k.startswith("text"))
        enc.text_components_ = [arrays[f"text{i}"] for i in range(n_text)]
        return enc
