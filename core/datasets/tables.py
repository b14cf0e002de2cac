"""Read user tables (CSV / TSV / Parquet / JSONL) into DataFrames, with errors naming file and line."""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import BadInputError
from core.ids import readable_key

_CHUNK = 1 << 20  # bytes read at a time when checking the encoding

TABLE_SUFFIXES: dict[str, str] = {
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl",
}


@dataclass
class Table:
    """A read table and how to name its rows in messages (file line numbers where there are lines)."""

    path: Path
    frame: pd.DataFrame
    fmt: str
    line_numbers: list[int] = field(default_factory=list)  # JSONL: file line of each row

    def where(self, row: int) -> str:
        """Human position of data row `row` (0-based): 'line 7' for text files, 'row 6' for Parquet."""
        if self.fmt in ("csv", "tsv"):
            return f"line {row + 2}"  # +1 for the header, +1 for 1-based lines
        if self.fmt == "jsonl" and row < len(self.line_numbers):
            return f"line {self.line_numbers[row]}"
        return f"row {row + 1}"

    def column(self, name: str) -> str:
        """The actual column name: exact match first, then case-insensitive; BadInputError if absent."""
        found = find_column(self.frame, (name,))
        if found is None:
            raise BadInputError(
                f"{self.path}: no column {name!r}; columns are: {', '.join(map(str, self.frame.columns))}"
            )
        return found


def find_column(frame: pd.DataFrame, candidates: tuple[str, ...]) -> str | None:
    """The first column matching a candidate exactly, else case-insensitively, else None."""
    return find_name([str(c) for c in frame.columns], candidates)


def find_name(names: list[str], candidates: tuple[str, ...]) -> str | None:
    """The first name matching a candidate exactly, else case-insensitively, else None."""
    for wanted in candidates:
        if wanted in names:
            return wanted
    lowered = {n.lower(): n for n in reversed(names)}
    for wanted in candidates:
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
    return None


def read_table(path: Path | str) -> Table:
    """Read a .csv / .tsv / .parquet / .jsonl table. Raises BadInputError naming the file (and the
    line, where the parser says) for a missing, unreadable, malformed or empty file."""
    path = Path(path).expanduser()
    fmt = TABLE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise BadInputError(
            f"{path}: unsupported table format {path.suffix!r} (use {', '.join(sorted(TABLE_SUFFIXES))})"
        )
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    if fmt != "parquet":
        check_utf8(path)
    if fmt == "jsonl":
        return _read_jsonl(path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", encoding="utf-8-sig")
    except pd.errors.EmptyDataError as e:
        raise BadInputError(f"{path}: the file is empty") from e
    except pd.errors.ParserError as e:
        raise BadInputError(f"{path}: malformed {fmt.upper()} ({str(e).strip()})") from e
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise BadInputError(f"{path}: cannot read the {fmt} file ({str(e).strip()})") from e
    return Table(path, frame, fmt)


def check_utf8(path: Path) -> None:
    """BadInputError naming the file and the line of the first byte that is not UTF-8 (a byte-order
    mark is fine). Guessing another encoding (latin-1 reads anything) would store garbage labels
    silently; a clear message lets the user save the file as UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines_before = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    raise _not_utf8(path, chunk, e, lines_before) from e
                lines_before += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:  # the file ends inside a multi-byte sequence
        raise BadInputError(f"{path}: the last line is not UTF-8 (it ends inside a character); "
                            "save the file as UTF-8") from e
    except OSError as e:
        raise BadInputError(f"{path}: cannot read the file ({e.strerror or e})") from e


def _not_utf8(path: Path, chunk: bytes, error: UnicodeDecodeError, lines_before: int) -> BadInputError:
    """The message for the first undecodable line of `chunk` (lines decode on their own: a newline
    byte never occurs inside a UTF-8 sequence)."""
    for number, raw in enumerate(chunk.split(b"\n")):
        line = raw.removeprefix(codecs.BOM_UTF8) if lines_before == number == 0 else raw
        if number == 0 and lines_before:  # the chunk may start inside a character cut at the boundary
            cut = next((i for i, byte in enumerate(line[:3]) if not 0x80 <= byte < 0xC0), min(3, len(line)))
            line = line[cut:]
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.start >= len(line) - 3 and number == chunk.count(b"\n"):
                continue  # a character cut by the chunk boundary, not a bad byte
            return BadInputError(
                f"{path}: line {lines_before + number + 1} is not UTF-8 (byte 0x{line[e.start]:02x} at "
                f"column {e.start + 1}); save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
            )
    return BadInputError(f"{path}: not UTF-8 near line {lines_before + 1} ({error.reason}); save the file as UTF-8")


def _read_jsonl(path: Path) -> Table:
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    with path.open("r", encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInputError(f"{path}: line {number} is not valid JSON ({e.msg})") from e
            if not isinstance(row, dict):
                raise BadInputError(f"{path}: line {number} is not a JSON object")
            rows.append(row)
            lines.append(number)
    if not rows:
        raise BadInputError(f"{path}: the file has no rows")
    return Table(path, pd.DataFrame.from_records(rows), "jsonl", lines)


def is_missing(value: Any) -> bool:
    """True for None, NaN / NaT, and blank strings (what an empty CSV cell becomes)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (float, np.floating)):
        return math.isnan(float(value))
    return value is pd.NaT


def as_text(value: Any) -> str | None:
    """A cell as a string: None when missing; 3.0 -> "3" (CSV integer columns with gaps are floats)."""
    if is_missing(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    # readable_key: JSON "\ud800" escapes decode to lone surrogates, which no payload can hold.
    return readable_key(value.strip() if isinstance(value, str) else str(value))


def json_safe(value: Any) -> Any:
    """A cell as a JSON-serialisable value: numpy scalars -> Python, NaN -> None, dates -> ISO text,
    arrays -> lists, bytes -> text; unknown objects -> str."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {readable_key(str(k)): json_safe(v) for k, v in value.items()}
    if is_missing(value) and not isinstance(value, str):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, str):
        return readable_key(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)
