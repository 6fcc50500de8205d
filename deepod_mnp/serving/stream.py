"""Score a table that does not fit in memory: Parquet (a file or a directory of files) or CSV in, Parquet out.

Rows are read, scored and written in chunks of ``chunk_rows`` with pyarrow, so
memory depends on the chunk size and the number of columns, never on the
number of rows. The feature columns are matched by name to the model's
``feature_names_in_`` (other columns are ignored, or copied with ``keep``);
each chunk is scored with the model's own ``decision_function``, so the scores
are those of scoring the whole table in memory.

This is the ``deepod-mnp score`` command::

    deepod-mnp score --model mnp.pt --data transactions/ --out scores.parquet --label --explain

Needs the ``parquet`` extra (pyarrow): ``pip install 'deepod-mnp[parquet]'``.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

PARQUET_HINT = "Streaming scoring needs the 'parquet' extra: pip install 'deepod-mnp[parquet]' (pyarrow)."
COMPONENT_COLUMNS = ("reconstruction_error", "max_similarity", "nearest_prototype", "normality_weight")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv")


def _pyarrow() -> Any:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.csv  # noqa: F401
        import pyarrow.dataset  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError as exc:
        raise ImportError(PARQUET_HINT) from exc
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


def feature_columns(model: Any, available: Sequence[str], keep: Sequence[str] = ()) -> list[str]:
    """The input columns to feed ``model``, in its order.

    With ``feature_names_in_`` (a detector fitted on a DataFrame) they are
    matched by name, whatever the column order of the data; without, every
    column not in ``keep`` is a feature and their number must be
    ``n_features_in_``.
    """
    available = [str(c) for c in available]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        names = [str(c) for c in names]
        missing = [c for c in names if c not in available]
        if missing:
            raise ValueError(f"the data lacks {len(missing)} of the model's feature column(s): "
                             f"{missing[:10]}{' ...' if len(missing) > 10 else ''}.")
        return names
    cols = [c for c in available if c not in set(keep)]
    if len(cols) != model.n_features_in_:
        raise ValueError(f"the model was fitted without feature names on {model.n_features_in_} columns, "
                         f"but the data has {len(cols)} columns besides the kept ones; fit on a DataFrame "
                         "to match columns by name.")
    return cols


def score_frame(model: Any, part: pd.DataFrame, features: Sequence[str], keep: Sequence[str] = (),
                label: bool = False, label_dtype: Any = np.int8) -> pd.DataFrame:
    """One pandas partition scored: its ``keep`` columns, ``score``, and ``label`` (``score > threshold_``).

    The one frame-level scorer behind the Dask and Spark paths, so both give
    the same columns as :func:`score_table`.
    """
    out = part[list(keep)].copy() if keep else pd.DataFrame(index=part.index)
    X = part[list(features)]  # a table: a model that encodes text columns takes them by name
    scores = np.asarray(model.decision_function(X), dtype=np.float64) if len(X) else np.empty(0)
    out["score"] = scores
    if label:
        out["label"] = (scores > model.threshold_).astype(label_dtype)
    return out


@dataclass
class _Source:
    schema: Any  # pyarrow.Schema of the whole input
    total_rows: int | None
    batches: Any  # callable(columns, chunk_rows) -> iterator of RecordBatch


def _open(path: str | Path, chunk_rows: int) -> _Source:
    pa = _pyarrow()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data {path} does not exist.")
    if path.is_file() and path.name.lower().endswith(_CSV_SUFFIXES):
        delimiter = "\t" if path.name.lower().endswith(".tsv") else ","
        parse = pa.csv.ParseOptions(delimiter=delimiter)
        read = pa.csv.ReadOptions(block_size=1 << 22)
        with pa.csv.open_csv(str(path), read_options=read, parse_options=parse) as head:
            schema = head.schema

        def csv_batches(columns: list[str], rows: int) -> Iterator[Any]:
            # empty and NA-like fields are missing in text columns too, as pandas reads them in `fit`
            convert = pa.csv.ConvertOptions(include_columns=columns, strings_can_be_null=True)
            with pa.csv.open_csv(str(path), read_options=read, parse_options=parse,
                                 convert_options=convert) as reader:
                yield from reader

        return _Source(schema, None, csv_batches)
    dataset = pa.dataset.dataset(str(path), format="parquet")

    def parquet_batches(columns: list[str], rows: int) -> Iterator[Any]:
        scanner = dataset.scanner(columns=columns, batch_size=rows, batch_readahead=1, fragment_readahead=1)
        yield from scanner.to_batches()

    return _Source(dataset.schema, dataset.count_rows(), parquet_batches)


def _rechunk(batches: Iterator[Any], rows: int) -> Iterator[Any]:
    """Tables of ``rows`` rows (the last may be shorter) from record batches of any size."""
    pa = _pyarrow()
    pending, n = [], 0
    for batch in batches:
        while batch.num_rows:
            take = min(rows - n, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch, n = batch.slice(take), n + take
            if n == rows:
                yield pa.Table.from_batches(pending)
                pending, n = [], 0
    if n:
        yield pa.Table.from_batches(pending)


def score_table(model: Any, data: str | Path, out: str | Path, *, label: bool = False, explain: bool = False,
                keep: Sequence[str] = (), chunk_rows: int = 65_536, progress: bool = True) -> int:
    """Score every row of ``data`` with ``model`` and write the scores to the Parquet file ``out``.

    Parameters
    ----------
    model : fitted detector or OnnxScorer
        Anything with ``decision_function`` and ``n_features_in_`` (and
        ``threshold_`` for ``label``, ``score_components`` for ``explain``).
    data : path-like
        A Parquet file, a directory of Parquet files (read as one dataset),
        or a CSV file (``.csv``, ``.csv.gz``, ``.tsv``) with a header row.
    out : path-like
        Output Parquet file: the ``keep`` columns, ``score`` (float64), then
        ``label`` (int8, ``score > threshold_``) and the explanation columns of
        ``score_components`` when asked, one row per input row, in input order.
    label : bool, default=False
        Add ``label``.
    explain : bool, default=False
        Add ``reconstruction_error``, ``max_similarity``, ``nearest_prototype``
        and ``normality_weight`` (MNP only; costs a second pass of each chunk).
    keep : sequence of str
        Input columns to copy to the output (e.g. an id).
    chunk_rows : int, default=65536
        Rows read, scored and written at a time; memory grows with it, not
        with the table.
    progress : bool, default=True
        Show a tqdm progress bar over rows.

    Returns
    -------
    int
        Rows written.
    """
    pa = _pyarrow()
    from tqdm.auto import tqdm

    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}.")
    if explain and not hasattr(model, "score_components"):
        raise ValueError(f"{type(model).__name__} has no score_components; "
                         "explain=True needs an MNP checkpoint.")
    if label and not np.isfinite(getattr(model, "threshold_", np.nan)):
        raise ValueError("label=True needs the model's threshold_.")
    source = _open(data, chunk_rows)
    names = list(source.schema.names)
    missing_keep = [c for c in keep if c not in names]
    if missing_keep:
        raise ValueError(f"keep columns {missing_keep} are not in the data.")
    features = feature_columns(model, names, keep)
    read_cols = list(dict.fromkeys([*keep, *features]))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    writer, n_rows = None, 0
    try:
        with tqdm(total=source.total_rows, unit="row", unit_scale=True, desc="scoring",
                  disable=not progress) as bar:
            for table in _rechunk(source.batches(read_cols, chunk_rows), chunk_rows):
                X = table.select(features).to_pandas()  # by name; text columns for a model that encodes them
                columns = {c: table.column(c) for c in keep}
                if explain:
                    comp = model.score_components(X)
                    scores = comp["score"].to_numpy()
                else:
                    scores = np.asarray(model.decision_function(X), dtype=np.float64)
                columns["score"] = pa.array(scores, type=pa.float64())
                if label:
                    columns["label"] = pa.array((scores > model.threshold_).astype(np.int8))
                if explain:
                    for c in COMPONENT_COLUMNS:
                        columns[c] = pa.array(comp[c].to_numpy())
                batch = pa.table(columns)
                if writer is None:
                    writer = pa.parquet.ParquetWriter(str(tmp), batch.schema)
                writer.write_table(batch)
                n_rows += batch.num_rows
                bar.update(batch.num_rows)
        if writer is None:  # no rows: an empty file with the output's columns
            fields = [source.schema.field(c) for c in keep] + [pa.field("score", pa.float64())]
            fields += [pa.field("label", pa.int8())] if label else []
            fields += [pa.field(c, pa.int64() if c == "nearest_prototype" else pa.float64())
                       for c in (COMPONENT_COLUMNS if explain else ())]
            writer = pa.parquet.ParquetWriter(str(tmp), pa.schema(fields))
        writer.close()
        writer = None
        tmp.replace(out)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    logger.info("Scored %d rows of %s into %s.", n_rows, data, out)
    return n_rows
