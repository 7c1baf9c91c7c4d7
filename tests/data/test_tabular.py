"""Tabular files read as a user means them: CSV delimiters and encodings are sniffed,
compressed and columnar formats round-trip, and a malformed file is refused with a
message that names the line (and column) to fix."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from loopml.core.errors import InvalidInput, PayloadTooLarge
from loopml.data.sniff import sniff_csv
from loopml.data.tabular import FORMATS, read_table, tabular_format

ROWS = [
    {"id": 1, "amount": 12.5, "city": "Paris"},
    {"id": 2, "amount": 7.25, "city": "Lyon"},
    {"id": 3, "amount": 100.0, "city": "Nice"},
]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def read(tmp_path: Path, name: str, content: str | bytes, **options: object) -> pa.Table:
    return read_table(write(tmp_path, name, content), name, options or None)


def as_csv(delimiter: str) -> str:
    header = delimiter.join(ROWS[0])
    lines = [delimiter.join(str(v) for v in row.values()) for row in ROWS]
    return "\n".join([header, *lines]) + "\n"


# --- CSV dialects and encodings ------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    path = write(tmp_path, "data.csv", as_csv(delimiter))
    assert sniff_csv(path) == (delimiter, "utf-8")
    table = read_table(path, "data.csv")
    assert table.column_names == ["id", "amount", "city"]
    assert table.to_pylist() == ROWS


def test_semicolon_file_with_decimal_commas_in_text_keeps_its_columns(tmp_path: Path) -> None:
    # Commas inside values must not fool the sniffer into splitting on them.
    content = "name;note;score\n" + "".join(f"item {i};red, large, heavy;{i}\n" for i in range(30))
    table = read(tmp_path, "items.csv", content)
    assert table.column_names == ["name", "note", "score"]
    assert table.column("note")[0].as_py() == "red, large, heavy"
    assert table.column("score").to_pylist() == list(range(30))


def test_tsv_suffix_reads_tabs(tmp_path: Path) -> None:
    table = read(tmp_path, "data.tsv", as_csv("\t"))
    assert table.to_pylist() == ROWS


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_western_european_legacy_encoding_is_read_correctly(tmp_path: Path, encoding: str) -> None:
    text = "nom,ville\nJosé,Zürich\nRené,Besançon\nFrançois,Orléans\n"
    table = read(tmp_path, "people.csv", text.encode(encoding))
    assert table.column("nom").to_pylist() == ["José", "René", "François"]
    assert table.column("ville").to_pylist() == ["Zürich", "Besançon", "Orléans"]


def test_cp1252_euro_sign_and_longer_text(tmp_path: Path) -> None:
    rows = [("Anaïs", "Saint-Étienne", "coût 5 €"), ("Ægir", "Århus", "smørrebrød")] * 10
    text = "nom,ville,remarque\n" + "".join(",".join(r) + "\n" for r in rows)
    table = read(tmp_path, "notes.csv", text.encode("cp1252"))
    assert table.column("remarque").to_pylist()[:2] == ["coût 5 €", "smørrebrød"]
    assert table.column("ville")[0].as_py() == "Saint-Étienne"


def test_other_scripts_keep_their_code_page(tmp_path: Path) -> None:
    text = "имя,город\nИван,Москва\nПётр,Санкт-Петербург\nАнна,Новосибирск\n"  # noqa: RUF001
    table = read(tmp_path, "ru.csv", text.encode("cp1251"))
    assert table.column_names == ["имя", "город"]
    assert table.column("город").to_pylist() == ["Москва", "Санкт-Петербург", "Новосибирск"]


def test_explicit_encoding_wins_over_sniffing(tmp_path: Path) -> None:
    text = "name\nZoë\nNoël\n"
    table = read(tmp_path, "names.csv", text.encode("utf-16"), encoding="utf-16")
    assert table.column("name").to_pylist() == ["Zoë", "Noël"]


def test_unknown_encoding_is_refused_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "x.csv", "a\n1\n", encoding="klingon-8")
    assert err.value.field == "encoding"
    assert "klingon-8" in err.value.message


def test_utf8_bom_does_not_stick_to_the_first_column_name(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.csv", b"\xef\xbb\xbfid,name\n1,Zo\xc3\xab\n2,Ann\n")
    assert sniff_csv(path)[1] == "utf-8-sig"
    table = read_table(path, "bom.csv")
    assert table.column_names == ["id", "name"]
    assert table.column("name").to_pylist() == ["Zoë", "Ann"]


def test_gzip_compressed_csv(tmp_path: Path) -> None:
    assert tabular_format("data.csv.gz") == "csv"
    table = read(tmp_path, "data.csv.gz", gzip.compress(as_csv(";").encode()))
    assert table.to_pylist() == ROWS


def test_no_header_option_names_columns(tmp_path: Path) -> None:
    table = read(tmp_path, "raw.csv", "1,a\n2,b\n", header=False)
    assert table.num_rows == 2
    assert table.column(0).to_pylist() == [1, 2]


# --- refusals -------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["\n", ""])
def test_header_only_file_is_refused(tmp_path: Path, ending: str) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "header.csv", "id,amount,city" + ending)
    assert err.value.message == "header.csv has a header but no rows"


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "empty.csv", b"")
    assert err.value.message == "empty.csv is empty"
    assert err.value.field == "source"


def test_line_with_an_extra_field_is_named(tmp_path: Path) -> None:
    content = "a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n11,12,13\n"
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "extra.csv", content)
    assert "extra.csv" in err.value.message
    assert "line 4" in err.value.message
    assert "1 field(s) more" in err.value.message
    assert err.value.extra["line"] == 4


def test_line_with_a_missing_field_names_the_column(tmp_path: Path) -> None:
    content = "a,b,c\n1,2,3\n4,5\n7,8,9\n"
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "short.csv", content)
    assert "line 3" in err.value.message
    assert "'c'" in err.value.message
    assert err.value.extra == {"line": 3, "column": "c"}


@pytest.mark.parametrize(
    ("content", "line"),
    [
        # The quote opens in the last column: Arrow alone would swallow the rest of the file.
        ('a,b,c\n1,2,3\n4,5,"open\n7,8,9\n10,11,12\n', 3),
        # ... in a middle column: the row comes up short.
        ('a,b,c\n1,2,3\n4,"open,6\n7,8,9\n', 3),
        # ... on the last line, with no newline after it.
        ('a,b\n1,2\n3,4\n5,"never closed', 4),
    ],
)
def test_unterminated_quote_names_the_line_it_starts_on(
    tmp_path: Path, content: str, line: int
) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "quotes.csv", content)
    assert f"line {line}" in err.value.message
    assert "never closed" in err.value.message
    assert err.value.extra["line"] == line


def test_quoted_newlines_and_escaped_quotes_are_values_not_errors(tmp_path: Path) -> None:
    content = 'id,note\n1,"two\nlines"\n2,"say ""hi"""\n3,5" screen\n'
    table = read(tmp_path, "ok.csv", content)
    assert table.column("note").to_pylist() == ["two\nlines", 'say "hi"', '5" screen']


def test_repeated_column_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "dup.csv", "id,x,x,y,y\n1,2,3,4,5\n")
    assert "repeated column names ['x', 'y']" in err.value.message


def test_blank_column_name_is_refused_with_its_position(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "blank.csv", "a,,c\n1,2,3\n")
    assert "column 2 has no name" in err.value.message


def test_unsupported_suffix_lists_the_formats(tmp_path: Path) -> None:
    assert tabular_format("book.xlsx") is None
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "book.xlsx", "a,b\n1,2\n")
    assert err.value.field == "format"
    assert "book.xlsx" in err.value.message
    for fmt in FORMATS:
        assert fmt in err.value.message


def test_format_option_reads_any_suffix(tmp_path: Path) -> None:
    table = read(tmp_path, "export.dat", as_csv(","), format="csv")
    assert table.to_pylist() == ROWS


# --- columnar and JSON formats --------------------------------------------------


def test_parquet_round_trip(tmp_path: Path) -> None:
    original = pa.Table.from_pylist(ROWS)
    pq.write_table(original, tmp_path / "rows.parquet")
    table = read_table(tmp_path / "rows.parquet", "rows.parquet")
    assert table.equals(original)


@pytest.mark.parametrize("name", ["rows.feather", "rows.arrow"])
def test_feather_round_trip(tmp_path: Path, name: str) -> None:
    original = pa.Table.from_pylist(ROWS)
    feather.write_feather(original, tmp_path / name)
    table = read_table(tmp_path / name, name)
    assert table.equals(original)


def test_corrupt_parquet_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "broken.parquet", b"PAR1 this is not really parquet")
    assert "broken.parquet is not a readable parquet file" in err.value.message


def test_json_array_of_records_round_trip(tmp_path: Path) -> None:
    table = read(tmp_path, "rows.json", json.dumps(ROWS, indent=2))
    assert table.to_pylist() == ROWS


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.ndjson"])
def test_json_lines_round_trip(tmp_path: Path, name: str) -> None:
    content = "".join(json.dumps(row) + "\n" for row in ROWS)
    table = read(tmp_path, name, content)
    assert table.to_pylist() == ROWS


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    content = '[\n  {"a": 1, "b": "x"},\n  {"a": 2 "b": "y"}\n]\n'
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "bad.json", content)
    assert "bad.json: invalid JSON at line 3 column 11" in err.value.message
    assert err.value.extra["line"] == 3


def test_invalid_json_lines_names_the_bad_line(tmp_path: Path) -> None:
    content = '{"a": 1}\n{"a": 2}\n{"a": 3,\n{"a": 4}\n'
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "bad.jsonl", content)
    assert "bad.jsonl" in err.value.message
    assert "line 3" in err.value.message
    assert err.value.extra["line"] == 3


def test_json_array_of_non_objects_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "numbers.json", "[1, 2, 3]")
    assert "item 0 of the JSON array is not an object" in err.value.message
    assert "({column: value})" in err.value.message


def test_nested_values_are_refused_naming_the_column(tmp_path: Path) -> None:
    content = json.dumps([{"id": 1, "address": {"city": "Lyon"}}])
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "nested.json", content)
    assert "'address' holds nested values" in err.value.message


@pytest.mark.parametrize("block_bytes", [16, 64, 1 << 20])
@pytest.mark.parametrize(
    ("content", "line", "column"),
    [
        # a quoted delimiter and a quoted newline do not count; the short line is line 5
        ('a,b,c\r\n1,"x,y",3\r\n"multi\nline",5,6\r\n7,8\r\n', 5, "c"),
        # blank lines are skipped, as pandas skips them
        ("a,b,c\n\n1,2,3\n\n4\n", 5, "b"),
        # the last line has no newline
        ('a,b,c\n1,2,3\n"q""uote",5', 3, "c"),
    ],
)
def test_short_lines_are_found_across_block_boundaries(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    block_bytes: int,
    content: str,
    line: int,
    column: str,
) -> None:
    from loopml.data import csvfile

    monkeypatch.setattr(csvfile, "_BLOCK_BYTES", block_bytes)
    path = tmp_path / "short.csv"
    path.write_bytes(content.encode())
    with pytest.raises(InvalidInput) as err:
        read_table(path, "short.csv")
    assert err.value.extra["line"] == line
    assert err.value.extra["column"] == column
    assert f"line {line}" in err.value.message


@pytest.mark.parametrize("block_bytes", [16, 1 << 20])
def test_well_formed_quoting_passes_the_shape_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    from loopml.data import csvfile

    monkeypatch.setattr(csvfile, "_BLOCK_BYTES", block_bytes)
    path = tmp_path / "ok.csv"
    path.write_bytes(b'a,b\r\n"1,5","two\nlines"\r\n\r\n3,""""\r\n4,x')
    table = read_table(path, "ok.csv")
    assert table.column("a").to_pylist() == ["1,5", "3", "4"]
    assert table.column("b").to_pylist() == ["two\nlines", '"', "x"]


# --- Types fixed by the first block of a large file --------------------------------


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    from loopml.data import csvfile

    monkeypatch.setattr(csvfile, "_BLOCK_BYTES", 4096)
    return 4096


def test_late_decimal_makes_an_integer_column_decimal_not_text(
    tmp_path: Path, small_blocks: int
) -> None:
    lines = [f"{i},{i % 7},x{i % 3}" for i in range(3_000)] + ["3000,2.5,x0"]
    table = read(tmp_path, "late.csv", "id,score,tag\n" + "\n".join(lines) + "\n")
    assert table.num_rows == 3_001
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("id").type == pa.int64()
    assert table.column("score").to_pylist()[-2:] == [2999 % 7, 2.5]


def test_dates_and_missing_markers_read_as_pandas_reads_them(
    tmp_path: Path, small_blocks: int
) -> None:
    lines = [f"2024-01-{1 + i % 28:02d},{i},{'None' if i % 5 == 0 else 'a'}" for i in range(2_000)]
    lines += ["NA,<NA>,n/a"]
    table = read(tmp_path, "dates.csv", "day,n,label\n" + "\n".join(lines) + "\n")
    assert pa.types.is_date(table.schema.field("day").type)
    assert table.column("n").to_pylist()[-1] is None
    assert table.column("label").null_count == 400 + 1
    assert table.column("day").null_count == 1


def test_text_in_another_encoding_after_the_first_block_names_the_byte(
    tmp_path: Path, small_blocks: int
) -> None:
    head = "".join(f"{i},Zoe\n" for i in range(2_000)).encode()
    content = b"id,name\n" + head + "2000,Zoë\n".encode("latin-1")
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "names.csv", content)
    offset = len(b"id,name\n" + head + b"2000,Zo")
    assert err.value.field == "encoding"
    assert f"byte {offset}" in err.value.message
    assert "'name'" in err.value.message
    assert "encoding=latin-1" in err.value.message
    table = read(tmp_path, "names2.csv", content, encoding="latin-1")
    assert table.column("name").to_pylist()[-1] == "Zoë"


def test_unclosed_quote_is_found_when_a_stray_quote_makes_the_count_even(
    tmp_path: Path,
) -> None:
    content = 'id,price,desc\n1,499,TV 55"\n2,20,"Lamp, small\n3,150,Desk\n4,80,Chair\n'
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "products.csv", content)
    assert err.value.extra["line"] == 3
    assert "never closed" in err.value.message


def test_a_value_longer_than_pythons_csv_limit_reads(tmp_path: Path) -> None:
    long = "x" * 200_000
    table = read(tmp_path, "long.csv", f'id,note\n1,{long}\n2,TV 55"\n')
    assert [len(v) for v in table.column("note").to_pylist()] == [200_000, 6]


def test_times_of_day_stay_text_and_dates_become_dates(tmp_path: Path) -> None:
    table = read(tmp_path, "t.csv", "t,d\n12:30:00,2024-01-02\n08:15:00,2024-02-03\n")
    assert table.column("t").to_pylist() == ["12:30:00", "08:15:00"]
    assert pa.types.is_date(table.schema.field("d").type)


# --- what the audit of bad input found --------------------------------------------------


def test_a_json_array_keeps_every_records_keys(tmp_path: Path) -> None:
    rows = [{"a": 1}, {"a": 2, "b": "x"}, {"c": True, "a": 3}]
    table = read(tmp_path, "ragged.json", json.dumps(rows))
    assert table.column_names == ["a", "b", "c"]  # in the order they first appear
    assert table.to_pylist() == [
        {"a": 1, "b": None, "c": None},
        {"a": 2, "b": "x", "c": None},
        {"a": 3, "b": None, "c": True},
    ]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('[{"a": 1}, {"a": true}]', "the values of 'a' are not of one type"),
        ('[{"a": 1.5}, {"a": true}]', "'a' are not of one type (numbers, text, true/false): "),
        ('[{"a": 1}, {"a": 123456789012345678901234}]', "'a' hold a whole number beyond 64"),
        ("[]", "empty JSON array"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
    ids=["mixed", "fractions-and-true", "too-large", "empty", "deep"],
)
def test_json_arrays_that_no_table_holds_are_refused_by_name(
    tmp_path: Path, content: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "odd.json", content)
    assert err.value.message.startswith("odd.json")
    assert says in err.value.message


@pytest.mark.parametrize("name", ["latin.json", "latin.jsonl"])
def test_json_that_is_not_utf8_is_refused_not_garbled(tmp_path: Path, name: str) -> None:
    content = b'[{"city": "Z\xfcrich"}]' if name.endswith(".json") else b'{"city": "Z\xfcrich"}\n'
    with pytest.raises(InvalidInput, match="is not UTF-8 text"):
        read(tmp_path, name, content)


def test_a_json_array_after_a_byte_order_mark_is_read_as_an_array(tmp_path: Path) -> None:
    table = read(tmp_path, "bom.json", b"\xef\xbb\xbf" + json.dumps(ROWS).encode())
    assert table.to_pylist() == ROWS


def test_a_compressed_file_that_expands_past_the_cap_is_refused(tmp_path: Path) -> None:
    bomb = write(tmp_path, "bomb.csv.gz", gzip.compress(b"a,b\n" + b"1,2\n" * 250_000))
    assert bomb.stat().st_size < 10_000  # a million bytes inside
    with pytest.raises(PayloadTooLarge, match=r"bomb\.csv\.gz expands past 100,000 bytes"):
        read_table(bomb, "bomb.csv.gz", max_expanded=100_000)
    assert read_table(bomb, "bomb.csv.gz", max_expanded=2_000_000).num_rows == 250_000


@pytest.mark.parametrize(
    ("options", "field", "says"),
    [
        ({"encoding": "rot13"}, "encoding", "'rot13' is not a text encoding"),
        ({"encoding": "hex"}, "encoding", "'hex' is not a text encoding"),
        ({"encoding": "utf-16"}, "encoding", "cannot be read as utf-16 text"),
        ({"delimiter": "é"}, "delimiter", "delimiter 'é' is not one character of ASCII"),
        ({"delimiter": '"'}, "delimiter", "other than a quote"),
    ],
)
def test_reader_options_that_cannot_read_a_csv_are_refused_by_name(
    tmp_path: Path, options: dict[str, str], field: str, says: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "plain.csv", as_csv(","), **options)
    assert err.value.field == field
    assert says in err.value.message


def test_utf8_text_with_one_stray_byte_names_the_byte_instead_of_garbling(
    tmp_path: Path,
) -> None:
    rows = "".join(f"{i},José Müller\n" for i in range(200)).encode()
    stray = "200,Zürich\n".encode("latin-1")  # one row saved by another program
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "people.csv", b"id,name\n" + rows + stray + rows)
    assert "people.csv is not utf-8 text" in err.value.message
    offset = len(b"id,name\n" + rows) + len(b"200,Z")
    assert f"(byte {offset})" in err.value.message


def test_decimal_commas_between_semicolons_are_read_as_numbers(tmp_path: Path) -> None:
    content = "id;price;qty;note\n" + "".join(
        f"{i};{i},{i % 10}5;{i % 3};size {i},5 cm\n" for i in range(1, 40)
    )
    table = read(tmp_path, "prices.csv", content)
    assert table.schema.field("price").type == pa.float64()
    assert table.column("price").to_pylist()[:2] == [1.15, 2.25]
    assert table.column("note")[0].as_py() == "size 1,5 cm"  # text stays text
    # Named, the mark wins over the sniffing; a mark that is the delimiter is refused.
    named = read(tmp_path, "prices.csv", content, decimal=".")
    assert named.schema.field("price").type == pa.string()
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "commas.csv", as_csv(","), decimal=",")
    assert err.value.field == "decimal"


def test_dot_decimals_between_semicolons_stay_dots(tmp_path: Path) -> None:
    content = "a;b\n" + "".join(f"{i}.5;{i},5\n" for i in range(20))  # dots are numbers
    table = read(tmp_path, "mixed.csv", content)
    assert table.column("a").to_pylist()[:2] == [0.5, 1.5]
    assert table.schema.field("b").type == pa.string()


def test_repeated_parquet_column_names_are_named(tmp_path: Path) -> None:
    table = pa.Table.from_arrays([pa.array([1, 2]), pa.array([3, 4])], names=["a", "a"])
    pq.write_table(table, tmp_path / "twice.parquet")
    with pytest.raises(InvalidInput, match=r"twice\.parquet: repeated column names \['a'\]"):
        read_table(tmp_path / "twice.parquet", "twice.parquet")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_its_byte_mark_is_read(tmp_path: Path, encoding: str) -> None:
    table = read(tmp_path, "wide.csv", "name,age\nJosé,3\nAnn,4\n".encode(encoding))
    assert table.to_pylist() == [{"name": "José", "age": 3}, {"name": "Ann", "age": 4}]


def test_a_json_lines_column_that_changes_type_late_names_the_line(tmp_path: Path) -> None:
    lines = "".join(json.dumps({"id": i, "score": i / 2}) + "\n" for i in range(40_000))
    content = lines + json.dumps({"id": 40_000, "score": "n/a"}) + "\n"
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "scores.jsonl", content)
    assert err.value.message.startswith(
        "scores.jsonl: 'score' holds numbers until line 40001, which holds text ('n/a')"
    )
    assert (err.value.extra["line"], err.value.extra["column"]) == (40_001, "score")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("counts.tsv", "a\tb\n" + "".join(f"{i}\t{i},234\n" for i in range(1, 30))),
        ("counts.csv", "a;b\n" + "".join(f"{i};{i},500\n" for i in range(1, 30))),
    ],
    ids=["tab", "semicolon-thousands"],
)
def test_numbers_that_may_be_thousands_are_not_read_as_fractions(
    tmp_path: Path, name: str, content: str
) -> None:
    table = read(tmp_path, name, content)
    assert table.schema.field("b").type == pa.string()  # 1,234 stays as written


def test_a_central_european_code_page_is_not_taken_for_utf8(tmp_path: Path) -> None:
    # cp1250's ÓŁ happens to form a UTF-8 (Cyrillic) character.
    streets = ["UL. PÓŁNOCNA", "UL. DÓŁ", "UL. KOŚCIELNA", "UL. ŁĄKOWA"] * 10
    content = "id,street\n" + "".join(f"{i},{s}\n" for i, s in enumerate(streets))
    table = read(tmp_path, "streets.csv", content.encode("cp1250"))
    assert table.column("street").to_pylist()[:3] == streets[:3]


def test_a_utf8_file_padded_with_zero_bytes_is_not_utf16(tmp_path: Path) -> None:
    content = b"a,b\n1,2\n3,4\n" + b"\x00" * 4096
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "padded.csv", content)
    assert "utf-16" not in err.value.message


def test_an_upper_case_compressed_suffix_is_decompressed(tmp_path: Path) -> None:
    path = write(tmp_path, "ROWS.CSV.GZ", gzip.compress(as_csv(",").encode()))
    assert read_table(path, "ROWS.CSV.GZ").to_pylist() == ROWS


def test_a_late_type_change_after_a_byte_order_mark_names_its_line(tmp_path: Path) -> None:
    content = "\ufeff" + "".join(json.dumps({"n": i}) + "\n" for i in range(40_000))
    content += json.dumps({"n": "many"}) + "\n"
    with pytest.raises(InvalidInput) as err:
        read(tmp_path, "bom.jsonl", content)
    assert err.value.extra["line"] == 40_001
