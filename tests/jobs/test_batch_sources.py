"""A batch prediction's source files are read with the same limits as an ingest's."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from loopml.core.errors import PayloadTooLarge
from loopml.jobs.batch import _source_rows


def test_a_compressed_source_expanding_past_the_cap_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "rows.csv.gz"
    bomb.write_bytes(gzip.compress(b"a,b\n" + b"1,2\n" * 250_000))
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(PayloadTooLarge, match=r"rows\.csv\.gz expands past 100,000 bytes"):
        _source_rows(str(bomb), staging, 10_000_000, 100_000, None)
    assert len(_source_rows(str(bomb), staging, 10_000_000, 2_000_000, None)) == 250_000
