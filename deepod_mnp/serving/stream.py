"""Score a table that does not fit in memory: Parquet (a file or a directory of files) or CSV in, Parquet out.

Rows are read in record batches of bounded size (never a whole Parquet row
group: a file written with 1M-row groups costs no more memory than one with
small ones), checked, scored and written in chunks of ``chunk_rows``, so
memory depends on the chunk size and the number of columns, never on the
number of rows. The feature columns are matched by name to the model's
``feature_names_in_`` (other columns are ignored, or copied with ``keep``);
each chunk is scored with the model's own ``decision_function``, so the scores
are those of scoring the whole table in memory.

Bad rows (in a numeric feature column: a missing value, NaN, an infinite
value, a number beyond float32's range, text that is not a number; the text
columns a model one-hot encodes itself go in raw) follow a policy: ``'error'`` stops at the
first one and names its row and column; ``'skip'`` leaves them out;
``'quarantine'`` writes them, with their row number and the reason, to a
Parquet file beside the output (``scores.rejected.parquet`` for
``scores.parquet``). Either way :class:`ScoreSummary` counts them:
rows read = rows scored + rows rejected.

Nothing appears at ``out`` until every row is scored. Each finished chunk is
kept in a work directory beside it (``scores.parquet.partial/``), so a run
that was interrupted (killed, out of memory, the machine rebooted) continues
from its last finished chunk with ``resume=True`` (``--resume``), provided the
model, the data and the options are those of the interrupted run.

This is the ``deepod-mnp score`` command::

    deepod-mnp score --model mnp.pt --data transactions/ --out scores.parquet --label --invalid quarantine

Needs pyarrow (a dependency of deepod-mnp).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepod_mnp.serving.rows import (  # noqa: F401 - feature_columns, score_frame: also importable from here
    COMPONENT_COLUMNS,
    POLICIES,
    Column,
    check_policy,
    check_rows,
    feature_columns,
    score_frame,
    scores_of,
    text_column,
    text_features,
)

logger = logging.getLogger(__name__)

PYARROW_HINT = ("streaming scoring needs pyarrow, a dependency of deepod-mnp that is missing from this "
                "environment: pip install 'pyarrow>=14'")
SUMMARY_KEY = b"deepod_mnp.summary"
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv")
_READ_BUFFER = 1 << 20  # Parquet pages are read through a buffer of this size, not a column chunk at once
_BATCH_CELLS = 1 << 22  # a record batch read holds at most about this many values
_STATE_VERSION = 1
_HINT_POLICY = "--invalid skip or quarantine scores the other rows"


class ScoringError(ValueError):
    """A usage or data error of scoring; the message (one line) names the file, the column or the row."""


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.dataset  # noqa: F401
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise ImportError(PYARROW_HINT) from exc
    return pyarrow


def load_scorer(path: str | Path, *, device: str = "cpu") -> Any:
    """A fitted detector from ``path``: an ``.onnx`` file (:class:`~deepod_mnp.serving.onnx.OnnxScorer`)
    or a checkpoint written by the ``save_model`` of any of our detectors (``deepod-mnp fit`` writes one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist.")
    if path.suffix == ".onnx":
        from deepod_mnp.serving.onnx import OnnxScorer

        return OnnxScorer(path)
    from deepod_mnp import load_model

    return load_model(path, device=device)


# ----------------------------------------------------------------------------- paths
def work_dir(out: str | Path) -> Path:
    """Where :func:`score_table` keeps the finished chunks of ``out`` until it is complete."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def rejected_path(out: str | Path) -> Path:
    """The quarantine file beside ``out``: ``scores.rejected.parquet`` for ``scores.parquet``."""
    out = Path(out)
    stem = out.name[: -len(".parquet")] if out.name.endswith(".parquet") else out.name
    return out.with_name(stem + ".rejected.parquet")


def check_paths(data: str | Path, out: str | Path, model: str | Path | None = None) -> None:
    """Refuse, before any work, an output that would overwrite or sit inside the input (or the model).

    ``out``, its work directory and its quarantine file must not be ``data``,
    lie inside the directory ``data``, or be ``model``; ``out`` must not be a
    directory. Raises :class:`ScoringError` (one line).
    """
    data, out = Path(data).expanduser(), Path(out).expanduser()
    if not data.exists():
        raise ScoringError(f"--data {data}: no such file or directory.")
    if out.is_dir():
        raise ScoringError(f"--out {out} is a directory; give the path of the Parquet file to write, "
                           f"e.g. {out / 'scores.parquet'}.")
    real_data = data.resolve()
    real_model = Path(model).expanduser().resolve() if model is not None else None
    for what, path in (("--out", out), ("its work directory", work_dir(out)),
                       ("its quarantine file", rejected_path(out))):
        real = path.resolve()
        prefix = f"--out {out}" + ("" if what == "--out" else f": {what} {path}")
        if real == real_data or (path.exists() and data.is_file() and os.path.samefile(path, data)):
            raise ScoringError(f"{prefix} is the input (--data {data}); scoring would overwrite it. "
                               "Choose another output path.")
        if real_data.is_dir() and real_data in real.parents:
            raise ScoringError(f"{prefix} is inside the input directory {data}; it would become part of the "
                               "input. Choose a path outside it.")
        if real_model is not None and real == real_model:
            raise ScoringError(f"{prefix} is the model file; scoring would overwrite it.")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise ScoringError(f"--out {out}: {parent} is not a directory.")


# ----------------------------------------------------------------------------- reading
@dataclass
class _Origin:
    """Where a run of rows comes from: ``file`` (None for one input file), its first row in the file,
    its first row in the data."""

    file: str | None
    file_row: int
    row: int


class _Source:
    """The input table: its files, unified column types, row count, and record batches from any row."""

    def __init__(self, path: Path) -> None:
        pa = _pyarrow()
        self.path = path
        self.csv = path.is_file() and path.name.lower().endswith(_CSV_SUFFIXES)
        if self.csv:
            self.files = [path]
            delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
            self._parse = pa.csv.ParseOptions(delimiter=delimiter)
            self._read = pa.csv.ReadOptions(block_size=1 << 22)
            try:
                with pa.csv.open_csv(str(path), read_options=self._read, parse_options=self._parse) as head:
                    self.schemas = {str(path): head.schema}
            except pa.ArrowInvalid as exc:
                if "Empty CSV" in str(exc):
                    raise ScoringError(f"{path} is empty: a CSV needs a header row.") from exc
                raise ScoringError(f"{path}: cannot read it as CSV ({exc}).") from exc
            self.total_rows = None
            self.row_counts = None
        else:
            if path.is_dir():
                try:
                    found = pa.dataset.dataset(str(path), format="parquet").files
                    self.files = sorted(Path(f) for f in found)
                except (pa.ArrowInvalid, OSError) as exc:
                    raise ScoringError(f"{path}: cannot list its Parquet files ({exc}).") from exc
                if not self.files:
                    raise ScoringError(f"{path} holds no Parquet file.")
            else:
                self.files = [path]
            self.schemas, self.row_counts = {}, []
            for f in self.files:
                try:
                    meta = pa.parquet.read_metadata(str(f))
                except (pa.ArrowInvalid, OSError) as exc:
                    what = "a CSV must end in .csv, .csv.gz or .tsv; " if f == path else ""
                    raise ScoringError(f"{f} is not a readable Parquet file ({what}{exc}).") from exc
                self.schemas[str(f)] = meta.schema.to_arrow_schema()
                self.row_counts.append([meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
            self.total_rows = sum(sum(r) for r in self.row_counts)
        first = next(iter(self.schemas.values()))
        self.names = list(first.names)

    def fingerprint(self) -> list[list[Any]]:
        root = self.path if self.path.is_dir() else self.path.parent
        return [[str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns] for f in self.files]

    def check_columns(self, features: Sequence[str], keep: Sequence[str],
                      text: Sequence[str] = ()) -> dict[str, Any]:
        """The type each read column gets (features: float64, or string where any file has text; the
        ``text`` columns, which the model encodes itself, as read); every file must hold every column,
        the other features numeric or text. Raises :class:`ScoringError`."""
        pa = _pyarrow()
        types: dict[str, Any] = {}
        for f, schema in self.schemas.items():
            for c in [*keep, *features]:
                if schema.get_field_index(c) < 0:
                    what = "feature" if c in features else "--keep"
                    raise ScoringError(f"{f} has no {what} column {c!r}.")
                t = schema.field(c).type
                if c in text:
                    types[c] = pa.string() if self.csv else types.get(c, t)
                if c in keep:
                    types.setdefault(c, t)
                if c in keep or c in text:
                    continue
                numeric = (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                           or pa.types.is_decimal(t) or pa.types.is_null(t))
                if not numeric and not (pa.types.is_string(t) or pa.types.is_large_string(t)):
                    raise ScoringError(f"{f}: feature column {c!r} has type {t}, not a number.")
                if self.csv or not numeric:
                    types[c] = pa.string()
                else:
                    types.setdefault(c, pa.float64())
        return types

    def batches(self, columns: Sequence[str], types: dict[str, Any], start: int,
                batch_rows: int) -> Iterator[tuple[Any, _Origin]]:
        """Record batches of at most ``batch_rows`` rows of ``columns`` (cast to ``types``) from the data's
        row ``start`` on, each with its origin."""
        pa = _pyarrow()
        target = pa.schema([pa.field(c, types[c]) for c in columns])
        if self.csv:
            yield from self._csv_batches(columns, target, start, batch_rows)
            return
        row = 0
        for f, groups in zip(self.files, self.row_counts):
            n = sum(groups)
            if row + n <= start:
                row += n
                continue
            # whole row groups before ``start`` are not read at all
            skip_groups, file_row = 0, 0
            while skip_groups < len(groups) and row + file_row + groups[skip_groups] <= start:
                file_row += groups[skip_groups]
                skip_groups += 1
            label = str(f.relative_to(self.path)) if self.path.is_dir() else None
            pos = row + file_row  # the data's row number of the next batch's first row
            try:
                with pa.parquet.ParquetFile(str(f), buffer_size=_READ_BUFFER, pre_buffer=False) as reader:
                    for batch in reader.iter_batches(batch_size=batch_rows, columns=list(columns),
                                                     use_threads=False,
                                                     row_groups=range(skip_groups, len(groups))):
                        drop = max(0, start - pos)
                        if drop < batch.num_rows:
                            yield (_cast(batch.slice(drop), target, label or str(f)),
                                   _Origin(label, file_row + drop, pos + drop))
                        file_row, pos = file_row + batch.num_rows, pos + batch.num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                raise ScoringError(f"{f}: cannot read it ({str(exc).splitlines()[0]}).") from exc
            row += n

    def _csv_batches(self, columns: Sequence[str], target: Any, start: int,
                     batch_rows: int) -> Iterator[tuple[Any, _Origin]]:
        pa = _pyarrow()
        # empty and NA-like fields are missing values (text columns too), as pandas reads them in `fit`
        convert = pa.csv.ConvertOptions(
            include_columns=list(columns), strings_can_be_null=True,
            column_types={c: target.field(c).type for c in columns if target.field(c).type == pa.string()})
        row = 0
        try:
            with pa.csv.open_csv(str(self.path), read_options=self._read, parse_options=self._parse,
                                 convert_options=convert) as reader:
                for big in reader:
                    for offset in range(0, big.num_rows, batch_rows):
                        batch = big.slice(offset, batch_rows)
                        drop = min(max(0, start - row), batch.num_rows)
                        if drop < batch.num_rows:
                            yield (_cast(batch.slice(drop), target, str(self.path)),
                                   _Origin(None, row + drop, row + drop))
                        row += batch.num_rows
        except pa.ArrowInvalid as exc:
            raise ScoringError(f"{self.path}: cannot read it as CSV after row {row:,} "
                               f"({str(exc).splitlines()[0]}).") from exc


def _cast(batch: Any, target: Any, where: str) -> Any:
    pa = _pyarrow()
    if batch.schema.equals(target):
        return batch
    arrays = []
    for f in target:
        col = batch.column(f.name)
        try:
            arrays.append(col if col.type == f.type else col.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ScoringError(f"{where}: column {f.name!r} cannot be read as {f.type} ({exc}).") from exc
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _chunks(batches: Iterator[tuple[Any, _Origin]],
            rows: int) -> Iterator[tuple[Any, list[tuple[int, _Origin]]]]:
    """Tables of ``rows`` rows (the last may be shorter) from record batches of any size, each with the
    origins of its runs of rows (offset in the chunk, origin)."""
    pa = _pyarrow()
    pending, origins, n = [], [], 0
    for batch, origin in batches:
        while batch.num_rows:
            take = min(rows - n, batch.num_rows)
            pending.append(batch.slice(0, take))
            origins.append((n, origin))
            batch, n = batch.slice(take), n + take
            origin = _Origin(origin.file, origin.file_row + take, origin.row + take)
            if n == rows:
                yield pa.Table.from_batches(pending), origins
                pending, origins, n = [], [], 0
    if n:
        yield pa.Table.from_batches(pending), origins


def _locate(origins: list[tuple[int, _Origin]], i: int) -> _Origin:
    offset, origin = [o for o in origins if o[0] <= i][-1]
    return _Origin(origin.file, origin.file_row + i - offset, origin.row + i - offset)


def _arrow_columns(table: Any, features: Sequence[str]) -> list[Column]:
    """:func:`check_rows`'s input from an Arrow table (features read as float64 or as text)."""
    pa = _pyarrow()
    out = []
    for name in features:
        col = table.column(name)
        missing = (col.is_null().to_numpy(zero_copy_only=False) if col.null_count
                   else np.zeros(len(col), dtype=bool))
        try:  # text columns: Arrow's parser first, pandas' (and a reason per value) where it fails
            values = col if col.type == pa.float64() else pa.compute.cast(col, pa.float64())
            out.append(Column(name, values.to_numpy(zero_copy_only=False), missing))
        except pa.ArrowInvalid:
            out.append(text_column(name, col.to_numpy(zero_copy_only=False).astype(object), missing))
    return out


# ----------------------------------------------------------------------------- scoring
@dataclass
class ScoreSummary:
    """What :func:`score_table` did: rows read = rows scored + rows rejected.

    Attributes
    ----------
    data, out : str
        Input and output.
    invalid : str
        The bad-row policy.
    rows_read, rows_scored, rows_rejected : int
        ``rows_read == rows_scored + rows_rejected``.
    rejected_by : dict of str to int
        Rejected rows per ``'<column>: <what>'`` (the first bad column of each).
    rejected_file : str or None
        The quarantine file (``invalid='quarantine'``).
    resumed_from_row : int
        Rows taken from an interrupted run (0 unless resumed).
    """

    data: str
    out: str
    invalid: str
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    rejected_by: dict[str, int] = field(default_factory=dict)
    rejected_file: str | None = None
    resumed_from_row: int = 0

    def line(self) -> str:
        """One line for people: rows read, scored and rejected, and where they went."""
        text = (f"Read {self.rows_read:,} rows from {self.data}: scored {self.rows_scored:,} "
                f"into {self.out}, rejected {self.rows_rejected:,}")
        if self.rows_rejected:
            top = sorted(self.rejected_by.items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{n:,} {k}" for k, n in top[:4])
            text += f" ({shown}{', ...' if len(top) > 4 else ''})"
        if self.rejected_file:
            text += f"; rejected rows and reasons in {self.rejected_file}"
        elif self.rows_rejected:
            text += " and skipped them"
        if self.resumed_from_row:
            text += f"; resumed at row {self.resumed_from_row:,}"
        return text + "."


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def _output_schema(source_types: dict[str, Any], keep: Sequence[str], label: bool, explain: bool) -> Any:
    pa = _pyarrow()
    fields = [pa.field(c, source_types[c]) for c in keep] + [pa.field("score", pa.float64())]
    fields += [pa.field("label", pa.int8())] if label else []
    fields += [pa.field(c, pa.int64() if c == "nearest_prototype" else pa.float64())
               for c in (COMPONENT_COLUMNS if explain else ())]
    return pa.schema(fields)


def _rejected_schema(source_types: dict[str, Any], keep: Sequence[str], features: Sequence[str],
                     by_file: bool) -> Any:
    pa = _pyarrow()
    fields = [pa.field("row", pa.int64())]
    fields += [pa.field("file", pa.string()), pa.field("file_row", pa.int64())] if by_file else []
    fields.append(pa.field("reason", pa.string()))
    fields += [pa.field(c, source_types[c]) for c in dict.fromkeys([*keep, *features])]
    return pa.schema(fields)


def score_table(model: Any, data: str | Path, out: str | Path, *, label: bool = False, explain: bool = False,
                keep: Sequence[str] = (), chunk_rows: int = 65_536, progress: bool = True,
                invalid: str = "error", resume: bool = False,
                model_path: str | Path | None = None) -> ScoreSummary:
    """Score every row of ``data`` with ``model`` and write the scores to the Parquet file ``out``.

    Parameters
    ----------
    model : fitted detector or OnnxScorer
        Anything with ``decision_function`` and ``n_features_in_`` (and
        ``threshold_`` for ``label``, ``score_components`` for ``explain``).
    data : path-like
        A Parquet file, a directory of Parquet files (read in the order of
        their sorted paths), or a CSV file (``.csv``, ``.csv.gz``, ``.tsv``)
        with a header row.
    out : path-like
        Output Parquet file: the ``keep`` columns, ``score`` (float64), then
        ``label`` (int8, ``score > threshold_``) and the explanation columns of
        ``score_components`` when asked, one row per scored input row, in
        input order. It must not be ``data``, lie inside it, or be a directory.
        Its schema metadata holds the :class:`ScoreSummary` as JSON
        (key ``deepod_mnp.summary``).
    label : bool, default=False
        Add ``label``.
    explain : bool, default=False
        Add ``reconstruction_error``, ``max_similarity``, ``nearest_prototype``
        and ``normality_weight`` (MNP only; costs a second pass of each chunk).
    keep : sequence of str
        Input columns to copy to the output (e.g. an id, to join the scores
        back when rows are skipped or quarantined).
    chunk_rows : int, default=65536
        Rows read, scored and written at a time; memory grows with it (and
        the number of columns), not with the table.
    progress : bool, default=True
        Show a tqdm progress bar over rows.
    invalid : {'error', 'skip', 'quarantine'}, default='error'
        What a bad row does (a missing value, NaN, an infinite value, a
        number beyond float32's range, text that is not a number): stop with
        :class:`ScoringError` naming its row and column; leave it out; or
        leave it out and write it, with ``row`` (its 0-based position in the
        data; ``file`` and ``file_row`` too for a directory) and ``reason``,
        to :func:`rejected_path` of ``out``.
    resume : bool, default=False
        Continue an interrupted run from its last finished chunk (kept in
        :func:`work_dir` of ``out``); the model, the data files (size and
        modification time) and the options must be the interrupted run's,
        else :class:`ScoringError`. Without an interrupted run it starts
        from the beginning. Without ``resume`` an unfinished run is discarded.
    model_path : path-like, optional
        The model's file, which ``out`` must not be and whose checksum
        identifies the model for ``resume``.

    Returns
    -------
    ScoreSummary

    Raises
    ------
    ScoringError
        A usage or data error, one line naming the file, the column or the row.
    """
    _pyarrow()  # or a one-line ImportError naming it
    from tqdm.auto import tqdm

    check_policy(invalid)
    if chunk_rows < 1:
        raise ScoringError(f"chunk_rows must be >= 1, got {chunk_rows}.")
    check_paths(data, out, model_path)
    if explain and not hasattr(model, "score_components"):
        raise ScoringError(f"{type(model).__name__} has no score_components; "
                           "explain=True needs an MNP checkpoint.")
    if label and not np.isfinite(getattr(model, "threshold_", np.nan)):
        raise ScoringError("label=True needs the model's threshold_.")
    data, out = Path(data).expanduser(), Path(out).expanduser()
    source = _Source(data)
    keep = list(keep)
    reserved = ["score", "label", *COMPONENT_COLUMNS]
    clash = [c for c in keep if c in reserved]
    if clash:
        raise ScoringError(f"--keep column(s) {clash} would clash with the output's own columns.")
    missing_keep = [c for c in keep if c not in source.names]
    if missing_keep:
        raise ScoringError(f"{data}: --keep column(s) {missing_keep} are not in the data.")
    try:
        features = feature_columns(model, source.names, keep)
    except ValueError as exc:
        raise ScoringError(f"{data}: {exc}") from exc
    types = source.check_columns(features, keep, text_features(model))
    read_cols = list(dict.fromkeys([*keep, *features]))
    by_file = data.is_dir()
    out_schema = _output_schema(types, keep, label, explain)
    rej_schema = _rejected_schema(types, keep, features, by_file)

    fingerprint = {"version": _STATE_VERSION, "data": [str(data.resolve()), source.fingerprint()],
                   "model": _sha256(Path(model_path)) if model_path is not None else type(model).__name__,
                   "options": {"features": features, "keep": keep, "label": label, "explain": explain,
                               "invalid": invalid, "chunk_rows": chunk_rows}}
    work = work_dir(out)
    summary = ScoreSummary(str(data), str(out), invalid)
    done = 0  # finished chunks
    state_file = work / "state.json"
    if resume and state_file.is_file():
        state = json.loads(state_file.read_text(encoding="utf-8"))
        changed = [k for k in ("version", "data", "model", "options")
                   if state["fingerprint"].get(k) != fingerprint[k]]
        if changed:
            what = {"version": "the work directory's format", "data": "the data files", "model": "the model",
                    "options": "the options"}
            raise ScoringError(f"cannot resume {work}: {', '.join(what[k] for k in changed)} changed since "
                               "the interrupted run; rerun without --resume to start again.")
        done = int(state["chunks"])
        summary = ScoreSummary(**{**state["summary"], "resumed_from_row": state["summary"]["rows_read"]})
        logger.info("Resuming %s at row %d (%d chunks done).", out, summary.rows_read, done)
    else:
        if work.exists():
            logger.warning("Discarding the unfinished run in %s (rerun with --resume to continue one).", work)
            shutil.rmtree(work)
        out.parent.mkdir(parents=True, exist_ok=True)
        work.mkdir()
    start = done * chunk_rows
    batch_rows = max(1, min(chunk_rows, _BATCH_CELLS // max(1, len(read_cols))))
    try:
        with tqdm(total=source.total_rows, initial=start, unit="row", unit_scale=True, desc="scoring",
                  disable=not progress) as bar:
            for k, (table, origins) in enumerate(_chunks(source.batches(read_cols, types, start, batch_rows),
                                                         chunk_rows), start=done):
                scored, rejected, kinds = _score_chunk(model, table, origins, features, keep, label, explain,
                                                       invalid, data, out_schema, rej_schema, by_file)
                for prefix, part in (("scores", scored), ("rejected", rejected)):
                    if part is not None and part.num_rows:
                        _write_part(part, work / f"{prefix}-{k:06d}.arrow")
                summary.rows_read += table.num_rows
                summary.rows_scored += scored.num_rows
                summary.rows_rejected += len(kinds)
                for kind in kinds:
                    summary.rejected_by[kind] = summary.rejected_by.get(kind, 0) + 1
                _write_json(state_file, {"fingerprint": fingerprint, "chunks": k + 1,
                                         "summary": asdict(summary)})
                bar.update(table.num_rows)
    except ScoringError:
        shutil.rmtree(work, ignore_errors=True)  # a data error: resuming the same data would meet it again
        raise
    if invalid == "quarantine":
        summary.rejected_file = str(rejected_path(out))
    _assemble(work, "rejected", rej_schema, summary, rejected_path(out) if invalid == "quarantine" else None)
    _assemble(work, "scores", out_schema, summary, out)
    shutil.rmtree(work)
    logger.info("%s", summary.line())
    return summary


def _score_chunk(model: Any, table: Any, origins: list[tuple[int, _Origin]], features: Sequence[str],
                 keep: Sequence[str], label: bool, explain: bool, invalid: str, data: Path, out_schema: Any,
                 rej_schema: Any, by_file: bool) -> tuple[Any, Any, list[str]]:
    """One chunk: its scored rows (as ``out_schema``), its rejected rows (as ``rej_schema``, quarantine
    only) and the kind of each rejected row."""
    pa = _pyarrow()
    text = text_features(model)
    numeric = [c for c in features if c not in text]
    checked = check_rows(_arrow_columns(table, numeric))
    bad = np.flatnonzero(checked.bad)
    if len(bad) and invalid == "error":
        at = _locate(origins, int(bad[0]))
        where = (f"{data / at.file}: row {at.file_row:,} of the file (row {at.row:,} of {data})" if at.file
                 else f"{data}: row {at.row:,}")
        raise ScoringError(f"{where} (counting data rows from 0): {checked.reasons[0]} ({_HINT_POLICY}).")
    good = np.flatnonzero(~checked.bad)
    X = checked.X[good]
    scored_rows = table.take(pa.array(good)) if len(bad) else table
    columns: dict[str, Any] = {c: scored_rows.column(c) for c in keep}
    raw = scored_rows.select(text).to_pandas() if text else None  # the model encodes these itself
    comp = scores_of(model, X, numeric, raw, explain=True) if explain else None
    scores = comp["score"].to_numpy(dtype=np.float64) if explain else scores_of(model, X, numeric, raw)
    columns["score"] = pa.array(scores, type=pa.float64())
    if label:
        columns["label"] = pa.array((scores > model.threshold_).astype(np.int8))
    if explain:
        for c in COMPONENT_COLUMNS:
            columns[c] = pa.array(comp[c].to_numpy(), type=out_schema.field(c).type)
    scored = pa.table(columns, schema=out_schema)
    rejected = None
    if len(bad) and invalid == "quarantine":
        where = [_locate(origins, int(i)) for i in bad]
        cols: dict[str, Any] = {"row": pa.array([w.row for w in where], pa.int64())}
        if by_file:
            cols["file"] = pa.array([w.file for w in where], pa.string())
            cols["file_row"] = pa.array([w.file_row for w in where], pa.int64())
        cols["reason"] = pa.array(checked.reasons, pa.string())
        idx = pa.array(bad)
        for c in rej_schema.names[len(cols):]:
            cols[c] = table.column(c).take(idx)
        rejected = pa.table(cols, schema=rej_schema)
    return scored, rejected, checked.kinds


def _write_part(table: Any, path: Path) -> None:
    """A finished chunk as an Arrow IPC file (fast to write and read; Parquet is encoded once, at the end),
    moved into place only when complete."""
    pa = _pyarrow()
    tmp = path.with_suffix(".tmp")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def _assemble(work: Path, prefix: str, schema: Any, summary: ScoreSummary, target: Path | None) -> None:
    """The finished chunks ``work/prefix-*.arrow`` as one Parquet file at ``target`` (moved there only
    when complete), the summary in its schema metadata; a chunk is one row group."""
    if target is None:
        return
    pa = _pyarrow()
    tmp = work / f"{prefix}.assembled"
    schema = schema.with_metadata({SUMMARY_KEY: json.dumps(asdict(summary)).encode()})
    with pa.parquet.ParquetWriter(str(tmp), schema) as writer:
        for part in sorted(work.glob(f"{prefix}-*.arrow")):
            with pa.memory_map(str(part)) as source:
                table = pa.ipc.open_file(source).read_all()
            writer.write_table(table.replace_schema_metadata(schema.metadata))
    os.replace(tmp, target)


def read_summary(path: str | Path) -> ScoreSummary:
    """The :class:`ScoreSummary` stored in an output (or quarantine) file of :func:`score_table`."""
    pa = _pyarrow()
    meta = pa.parquet.read_schema(str(path)).metadata or {}
    if SUMMARY_KEY not in meta:
        raise ValueError(f"{path} holds no deepod-mnp scoring summary.")
    return ScoreSummary(**json.loads(meta[SUMMARY_KEY]))
