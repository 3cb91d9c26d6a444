"""Import from a clinic's spreadsheet: the template, header variants, both
date orders, errors that name row and column, and good rows never lost."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from click.testing import CliRunner
from helpers import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from calfrehab.cli.main import cli
from calfrehab.engine import api
from calfrehab.engine.casefile.csvimport import normalise, parse_date
from calfrehab.engine.casefile.validation import read_case_file

TEMPLATE = REPO / "examples" / "import" / "clinic-export-template.csv"
CASE_COLUMNS = "age_years,kind,side"
CASE_VALUES = "40,achilles_midportion,left"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.stdout, result.stderr


def test_the_template_imports_into_valid_cases_and_twice_adds_nothing(tmp_path: Path) -> None:
    code, out, err = run("import", str(TEMPLATE), "--into", str(tmp_path))
    assert code == 0, err
    assert "6 of 6 row(s) imported into 2 case file(s); 0 error(s)" in out
    first, _ = read_case_file(tmp_path / "CLINIC-0001.json")
    assert len(first.sessions) == 2 and len(first.sessions[0].exercises) == 2
    assert first.sessions[0].exercises[1].sets_completed == [15, 15, 12]
    assert first.program.bent_knee is not None and first.program.bent_knee.reps == 15
    assert first.review_date.isoformat() == "2026-11-04"
    rupture, _ = read_case_file(tmp_path / "CLINIC-0002.json")
    assert rupture.condition.management == "non_operative"
    assert rupture.program.straight_knee is not None
    assert rupture.program.straight_knee.exercise == "isometric_heel_raise_hold"
    # What examples/README.md says `next` proposes after the import.
    reasoner = api.prepare()
    tracks = api.decide_path(tmp_path / "CLINIC-0001.json", reasoner).decision.tracks
    assert (tracks["straight_knee"].decision, tracks["bent_knee"].decision) == (
        "progress", "hold")
    tracks = api.decide_path(tmp_path / "CLINIC-0002.json", reasoner).decision.tracks
    assert tracks["straight_knee"].decision == "hold"
    before = (tmp_path / "CLINIC-0001.json").read_bytes()
    code, out, _ = run("import", str(TEMPLATE), "--into", str(tmp_path))
    assert code == 0 and "0 of 6 row(s) imported" in out
    assert (tmp_path / "CLINIC-0001.json").read_bytes() == before


def test_header_variants_semicolons_set_columns_and_day_first_dates(tmp_path: Path) -> None:
    text = ("Patient ID;Session date;Exercise;Weight (kg);Set 1;Set 2;Set 3;Pain (0-10);"
            "Morning pain;Age;Diagnosis;Side\n"
            "P-9;13/11/2026;Single-leg heel raise, straight knee;2,5;12;12;10;3;2;52;"
            "Achilles insertional;Right\n"
            "P-9;15/11/2026;single_leg_heel_raise;2,5;12;12;12;2;1;;;\n")
    src = tmp_path / "export.csv"
    src.write_text(text, encoding="utf-8-sig")
    code, _, err = run("import", str(src), "--into", str(tmp_path / "cases"))
    assert code == 0, err
    case, _ = read_case_file(tmp_path / "cases" / "P-9.json")
    assert [s.date.isoformat() for s in case.sessions] == ["2026-11-13", "2026-11-15"]
    assert case.sessions[0].exercises[0].load_kg == 2.5
    assert case.sessions[0].exercises[0].sets_completed == [12, 12, 10]
    assert case.condition.kind == "achilles_insertional" and case.condition.side == "right"


def test_ambiguous_dates_need_the_flag_and_both_orders_work(tmp_path: Path) -> None:
    head = f"case_id,date,exercise,sets_done,pain_during,{CASE_COLUMNS}\n"
    src = tmp_path / "a.csv"
    src.write_text(head + f"A-1,03/04/2026,two_leg_heel_raise,15/15/15,1,{CASE_VALUES}\n")
    code, _, err = run("import", str(src), "--into", str(tmp_path / "x"))
    assert code == 1
    assert "row 2, column date: `03/04/2026` could be day/month or month/day" in err
    assert "--date-order dmy" in err
    for order, expected in (("dmy", "2026-04-03"), ("mdy", "2026-03-04")):
        out_dir = tmp_path / order
        code, _, err = run("import", str(src), "--into", str(out_dir), "--date-order", order)
        assert code == 0, err
        case, _ = read_case_file(out_dir / "A-1.json")
        assert case.sessions[0].date.isoformat() == expected
    assert parse_date("25/12/2026", None).isoformat() == "2026-12-25"
    assert parse_date("12/25/2026", None).isoformat() == "2026-12-25"


def test_a_bad_row_is_named_and_the_good_rows_are_kept(tmp_path: Path) -> None:
    src = tmp_path / "b.csv"
    src.write_text(
        f"case_id,date,exercise,sets_done,pain_during,{CASE_COLUMNS}\n"
        f"B-1,2026-11-01,two_leg_heel_raise,15/15/15,1,{CASE_VALUES}\n"
        "B-1,2026-11-03,two_leg_heel_raise,15/15/15,12,,,\n"
        "B-1,2026-11-05,hopscotch,15/15/15,1,,,\n"
        "B-1,2026-11-07,two_leg_heel_raise,15/x/15,1,,,\n"
        "B-1,2026-11-09,two_leg_heel_raise,15/15/14,2,,,\n")
    code, out, err = run("import", str(src), "--into", str(tmp_path / "c"))
    assert code == 1
    assert "row 3, column pain_during: 12 is out of range; expected pain 0–10" in err
    assert "row 4, column exercise: `hopscotch` is not a known exercise" in err
    assert "row 5, column sets_done: `x` is not a whole number" in err
    assert "2 of 5 row(s) imported" in out
    case, _ = read_case_file(tmp_path / "c" / "B-1.json")
    assert [s.date.isoformat() for s in case.sessions] == ["2026-11-01", "2026-11-09"]


def test_a_missing_column_names_the_header_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "m.csv"
    src.write_text("case_id,date,exercise,sets_done\nA,2026-11-01,two_leg_heel_raise,15\n")
    code, _, err = run("import", str(src), "--into", str(tmp_path / "out"))
    assert code == 1 and "row 1 (the header): no column for pain_during" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_case_that_cannot_be_made_is_named_and_others_are_written(tmp_path: Path) -> None:
    src = tmp_path / "n.csv"
    src.write_text(
        f"case_id,date,exercise,sets_done,pain_during,{CASE_COLUMNS}\n"
        "NOAGE,2026-11-01,two_leg_heel_raise,15/15/15,1,,achilles_midportion,left\n"
        f"OK-1,2026-11-01,two_leg_heel_raise,15/15/15,1,{CASE_VALUES}\n")
    code, _, err = run("import", str(src), "--into", str(tmp_path / "o"))
    assert code == 1
    assert "row 2, column age_years: required field is missing" in err
    assert (tmp_path / "o" / "OK-1.json").exists()
    assert not (tmp_path / "o" / "NOAGE.json").exists()


def test_header_normalising() -> None:
    assert normalise(" Pain during (0-10) ") == "pain_during"
    assert normalise("Weight [kg]") == "weight"
    assert normalise("Next-morning pain") == "next_morning_pain"


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(1, 28), st.booleans(), st.integers(0, 10)),
                     min_size=1, max_size=12, unique_by=lambda r: r[0]))
def test_every_good_row_lands(rows: list[tuple[int, bool, int]]) -> None:
    """Rows on distinct days, some bad (pain 11): exactly the good ones are
    imported, each as its own session, whatever their order."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["case_id", "date", "exercise", "sets_done", "pain_during", "age_years",
                "kind", "side"])
    for day, bad, pain in rows:
        w.writerow(["H-1", f"2026-11-{day:02d}", "two_leg_heel_raise", "15/15/15",
                    11 if bad else pain, 40, "none", "both"])
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "h.csv"
        src.write_text(buf.getvalue(), encoding="utf-8")
        result = api.import_csv(src, Path(tmp) / "out")
        good = sorted(f"2026-11-{d:02d}" for d, bad, _ in rows if not bad)
        assert len(result.errors) == len(rows) - len(good)
        assert all(e.column == "pain_during" for e in result.errors)
        if good:
            doc = json.loads((Path(tmp) / "out" / "H-1.json").read_text())
            assert [s["date"] for s in doc["sessions"]] == good
        else:
            assert result.cases == []


def test_every_column_and_spelling_is_documented() -> None:
    from calfrehab.engine.casefile.csvimport import COLUMNS

    doc = (REPO / "docs" / "csv-import.md").read_text(encoding="utf-8")
    for canon, aliases in COLUMNS.items():
        for alias in aliases:
            assert f"`{alias}`" in doc, f"{canon}: `{alias}` is not in docs/csv-import.md"


def _with_byte(tmp_path: Path, raw: bytes) -> Path:
    """The template with the third row's case id spelled with ``raw``."""
    lines = TEMPLATE.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"CLINIC-0001", b"CLINIC-R" + raw, 1)
    src = tmp_path / "export.csv"
    src.write_bytes(b"\n".join(lines[:3]) + b"\n")
    return src


def test_text_that_is_not_utf8_is_refused_naming_the_row_not_mangled(tmp_path: Path) -> None:
    # Excel's "CSV" on Windows is cp1252: é is the byte E9. The old fallback
    # replaced undecodable bytes with U+FFFD and imported the mangled name.
    src = _with_byte(tmp_path, b"\xe9")
    code, out, err = run("import", str(src), "--into", str(tmp_path / "cases"))
    assert code == 1 and out == ""
    assert "row 3: byte(s) E9 at character 9 are not utf-8 text; nothing was imported" in err
    assert "--encoding cp1252" in err and "Traceback" not in err
    assert not (tmp_path / "cases").exists()


def test_encoding_reads_the_file_as_it_was_saved(tmp_path: Path) -> None:
    src = _with_byte(tmp_path, b"\xe9")
    result = api.import_csv(src, tmp_path / "cases", encoding="cp1252", dry_run=True)
    # The name arrives as é (then the case-id rule refuses it, naming it).
    assert [e.message for e in result.errors if e.column == "case_id"] == [
        "`CLINIC-Ré`: expected 1–64 characters from A-Z a-z 0-9 . _ -"]
    code, _, err = run("import", str(src), "--into", str(tmp_path / "c"), "--encoding", "nope")
    assert code == 1
    assert "--encoding nope: not an encoding Python knows" in err


def _export(tmp_path: Path, *rows: list[str]) -> Path:
    """The template's header and first row, then ``rows`` (each the first
    row with some cells changed)."""
    header, first = TEMPLATE.read_text(encoding="utf-8").split("\n")[:2]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header.split(","))
    writer.writerow(first.split(","))
    for row in rows:
        writer.writerow(row)
    src = tmp_path / "export.csv"
    src.write_text(out.getvalue(), encoding="utf-8")
    return src


def _row(**cells: str) -> list[str]:
    header, first = TEMPLATE.read_text(encoding="utf-8").split("\n")[:2]
    row = first.split(",")
    for name, value in cells.items():
        row[header.split(",").index(name)] = value
    return row


def test_a_cell_cannot_forge_output_lines_or_reach_the_terminal_raw(tmp_path: Path) -> None:
    evil = "\x1b]8;;http://e/\x07\u202ex\nwrote cases/FORGED.json: new case\n0 error(s)" + "y" * 500
    src = _export(tmp_path, _row(case_id="CLINIC-0002", exercise=evil))
    code, out, err = run("import", str(src), "--into", str(tmp_path / "cases"))
    assert code == 1
    assert "FORGED" not in out and out.count("\n") == 2  # one case written, the summary
    (line,) = [x for x in err.splitlines() if "column exercise" in x]
    assert "\\n" in line and "\\x1b" in line and "\\u202e" in line and "\x1b" not in err
    assert len(line) < 1000 and "…" in line  # the 500 y's cut and marked
    assert err.count("\n") == 1


def test_a_huge_cell_and_a_directory_under_a_file_are_one_line_errors(tmp_path: Path) -> None:
    src = _export(tmp_path, _row(case_id="CLINIC-0002", exercise="x" * 140_000))
    code, out, err = run("import", str(src), "--into", str(tmp_path / "cases"))
    assert code == 1 and out == ""
    assert err == (f"error: {src}: row 3: a cell is longer than 131,072 characters, more "
                   "than any field of a case holds; nothing was imported\n")
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    src = _export(tmp_path)
    code, _, err = run("import", str(src), "--into", str(tmp_path / "a-file" / "cases"))
    assert code == 1 and err.count("\n") == 1
    assert "cannot create the directory for the case files" in err
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    code, _, err = run("import", str(src), "--into", str(tmp_path / "dangling"))
    assert code == 1 and err.count("\n") == 1
    assert "cannot create the directory for the case files (it is a symlink to nothing)" in err
    assert not (tmp_path / "nothing").exists()


def test_one_case_that_cannot_be_written_does_not_stop_the_others(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "CLINIC-0001.json").mkdir()  # in the way of the first case
    src = _export(tmp_path, _row(case_id="CLINIC-0002"))
    code, out, err = run("import", str(src), "--into", str(cases))
    assert code == 2  # a directory where a case file goes is refused, as a symlink is
    assert f"wrote {cases / 'CLINIC-0002.json'}: new case" in out
    assert "case CLINIC-0001: refusing to write" in err and "it is a directory" in err
    assert read_case_file(cases / "CLINIC-0002.json")[0].case_id == "CLINIC-0002"


def test_a_symlinked_case_file_is_refused_not_read_naming_the_path(tmp_path: Path) -> None:
    # A symlink to another patient's file, to something that is not a case,
    # and to nothing: each is refused by name before anything is read
    # through it (it was reported "not valid", or read, or created), the
    # targets are untouched, and the case beside them is still written.
    cases, elsewhere = tmp_path / "cases", tmp_path / "elsewhere"
    cases.mkdir()
    elsewhere.mkdir()
    code, _, err = run("import", str(TEMPLATE), "--into", str(elsewhere))
    assert code == 0, err
    other = elsewhere / "CLINIC-0001.json"
    not_a_case = tmp_path / "notes.txt"
    not_a_case.write_text("not a case", encoding="utf-8")
    before = other.read_bytes()
    for target in (other, not_a_case, tmp_path / "nothing-here.json"):
        link = cases / "CLINIC-0001.json"
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        for dry in ([], ["--dry-run"]):
            code, out, err = run("import", str(TEMPLATE), "--into", str(cases), *dry)
            assert code == 2, (target, dry, out, err)
            assert err.count("\n") == 1, err
            assert (f"row 2: case CLINIC-0001: refusing to write {link}: it is a symlink; "
                    "an output may only replace a regular file") in err
            assert "not valid" not in err and "cannot read" not in err
            assert "CLINIC-0001" not in out
            assert "CLINIC-0002.json" in out  # the other case is still imported
        assert link.is_symlink() and link.readlink() == target
    assert other.read_bytes() == before
    assert not_a_case.read_text(encoding="utf-8") == "not a case"
    assert not (tmp_path / "nothing-here.json").exists()
