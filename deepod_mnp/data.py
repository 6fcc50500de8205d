"""Load benchmark data as ``X`` (float64) and ``y`` (0 normal, 1 anomaly).

Three kinds of input are understood by :func:`load_dataset`:

* a path to an ADBench ``.npz`` file with arrays ``X`` and ``y``;
* a CSV spec ``path.csv[.gz]:label=COL[,drop=A;B][,anomaly=V1;V2][,onehot=C;D]``:
  ``label`` names the label column, ``drop`` lists columns to leave out,
  ``anomaly`` the label values counted as anomalies (without it the label must
  be 0/1) and ``onehot`` numeric columns to one-hot encode too (``*``: all);
* a shortcut name of :data:`SHORTCUTS` (e.g. ``backdoor``, ``vehicle_insurance``,
  ``pendigits``): a file under the data root (see :func:`data_roots`), found
  wherever the command runs. ``pendigits`` falls back to the copy bundled with
  the package (:mod:`deepod_mnp.datasets`) when the data root lacks it.

The data root is the ``root`` argument (the CLI's ``--data-root``), else the
environment variable ``DEEPOD_MNP_DATA``, else, in a git checkout of
deepod-mnp only, the folder ``shared/data`` beside the checkout (the
developers' layout). A missing file is a :class:`FileNotFoundError` that lists
where it looked and, for a shortcut, where to get the file (README, "Where
each data set comes from").

Text (object, string or category) columns of a CSV are one-hot encoded with
:func:`pandas.get_dummies`; a missing value (and ``?``) is a category of its own.

:func:`load_table` reads the same specs (and Parquet files, ``path.parquet:label=COL,...``)
for ``deepod-mnp fit``: the feature columns as they are, a pandas DataFrame
whose text columns the detector encodes itself, so that the saved model takes
the raw table (see :mod:`deepod_mnp.preprocessing`).
"""
from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

DATA_ENV = "DEEPOD_MNP_DATA"
MISSING = "<missing>"


@dataclass(frozen=True)
class Shortcut:
    """A named data set under the data root, with its expected shape and where to get it.

    ``n_features=0`` means there is no feature count to check. ``source`` says
    where the file comes from (printed when it is missing); ``bundled`` names a
    file of :mod:`deepod_mnp.datasets` used when the data root lacks the file.
    """

    spec: str
    n_rows: int
    n_features: int
    source: str = ""
    bundled: str | None = None


ADBENCH_SOURCE = ("ADBench (Han et al., NeurIPS 2022), https://github.com/Minqi824/ADBench, folder "
                  "adbench/datasets/Classical/, file {name}")
PANG_SOURCE = ("G. Pang's anomaly-detection data repository, "
               "https://github.com/GuansongPang/ADRepository-Anomaly-detection-datasets, file {name}")
SHORTCUTS: dict[str, Shortcut] = {
    "backdoor": Shortcut("raw/UNSW_NB15_traintest_backdoor.csv.gz:label=class", 95_329, 196,
                         PANG_SOURCE.format(name="'numerical data/DevNet datasets/"
                                            "UNSW_NB15_traintest_backdoor.tar.xz' (extract the CSV)")),
    "vehicle_insurance": Shortcut("raw/fraud_oracle.csv:label=FraudFound_P,drop=PolicyNumber", 15_420, 147,
                                  "Kaggle's 'Vehicle Insurance Claim Fraud Detection' data set, "
                                  "file fraud_oracle.csv"),
    "census": Shortcut("raw/census-income-full-nominal.csv.gz:label=class,anomaly=50000+.,onehot=*",
                       299_285, 0,
                       PANG_SOURCE.format(name="'categorical data/census-income-full-nominal.tar.xz' "
                                          "(an ARFF: convert it to CSV with its attribute names as header)")),
    "bank": Shortcut("adbench/5_campaign.npz", 41_188, 62, ADBENCH_SOURCE.format(name="5_campaign.npz")),
    "gamma": Shortcut("adbench/22_magic.gamma.npz", 19_020, 10,
                      ADBENCH_SOURCE.format(name="22_magic.gamma.npz")),
    "pendigits": Shortcut("adbench/28_pendigits.npz", 6_870, 16,
                          ADBENCH_SOURCE.format(name="28_pendigits.npz"), bundled="pendigits.npz"),
    "thyroid": Shortcut("adbench/38_thyroid.npz", 3_772, 6, ADBENCH_SOURCE.format(name="38_thyroid.npz")),
    "annthyroid": Shortcut("adbench/2_annthyroid.npz", 7_200, 6,
                           ADBENCH_SOURCE.format(name="2_annthyroid.npz")),
    "cardio": Shortcut("adbench/6_cardio.npz", 1_831, 21, ADBENCH_SOURCE.format(name="6_cardio.npz")),
    "pima": Shortcut("adbench/29_Pima.npz", 768, 8, ADBENCH_SOURCE.format(name="29_Pima.npz")),
}
_CHECKOUT = Path(__file__).resolve().parents[1]

_CSV_SPEC = re.compile(r"^(?P<path>.+?\.csv(?:\.gz)?)(?::(?P<options>.*))?$", re.IGNORECASE)
_PARQUET_SPEC = re.compile(r"^(?P<path>.+?\.(?:parquet|pq))(?::(?P<options>.*))?$", re.IGNORECASE)


@dataclass
class Dataset:
    """A loaded data set.

    Attributes
    ----------
    name : str
        Short name used in result tables.
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), int64, 1 = anomaly
    info : dict
        Where the data came from and, for CSVs, what was done to each column.
    test_anomalies : ndarray of shape (n_unseen, n_features), optional
        Anomalies that may appear in the test split only (the unseen-type
        experiment); see :func:`deepod_mnp.benchmark.protocol.make_split`.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    info: dict = field(default_factory=dict)
    test_anomalies: np.ndarray | None = None


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """The directories that shortcuts and relative data paths are looked up in, in order.

    Parameters
    ----------
    root : path-like, optional
        An explicit data root (the CLI's ``--data-root``): the only one searched.

    Returns
    -------
    list of Path
        ``[root]`` when given; else ``[$DEEPOD_MNP_DATA]`` when that is set;
        else, when this package runs from a git checkout of deepod-mnp,
        ``shared/data`` beside the checkout (the developers' layout); else none.
    """
    if root:
        return [Path(root).expanduser()]
    if os.environ.get(DATA_ENV):
        return [Path(os.environ[DATA_ENV]).expanduser()]
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / ".git").exists():
        return [_CHECKOUT.parent / "shared" / "data"]
    return []


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """The first of :func:`data_roots`, or None when there is none."""
    roots = data_roots(root)
    return roots[0] if roots else None


def load_npz(path: str | os.PathLike | BinaryIO) -> tuple[np.ndarray, np.ndarray]:
    """Read an ADBench ``.npz`` file (a path or an open binary file): ``X`` as float64, ``y`` as int64 0/1."""
    import pandas as pd  # here, not at module level: the CLI's --help must not load it

    with np.load(path, allow_pickle=False) as data:
        missing = {"X", "y"} - set(data.files)
        if missing:
            raise ValueError(f"{path} lacks array(s) {sorted(missing)}; it holds {data.files}.")
        X = np.asarray(data["X"], dtype=np.float64)
        y = _binary_labels(pd.Series(np.asarray(data["y"]).ravel()), None, "y")
    return X, y


def _binary_labels(labels: pd.Series, anomaly_values: Iterable[Any] | None, name: str) -> np.ndarray:
    """Map a label column to 0/1; ``anomaly_values`` are the values counted as anomalies."""
    import pandas as pd  # here, not at module level: the CLI's --help must not load it

    if anomaly_values is None:
        values = set(pd.unique(labels.dropna()).tolist())
        if labels.isna().any() or not values <= {0, 1}:
            found = sorted(map(str, values))[:10] + (["<missing>"] if labels.isna().any() else [])
            raise ValueError(f"Label column {name!r} is not 0/1 (found {found}); say which values are "
                             "anomalies with anomaly_values (CSV spec: ',anomaly=VALUE').")
        return labels.to_numpy().astype(np.int64)
    wanted = {str(v).strip() for v in anomaly_values}
    as_text = labels.astype(str).str.strip()
    is_anomaly = as_text.isin(wanted)
    if pd.api.types.is_numeric_dtype(labels):
        numbers = pd.to_numeric(pd.Series(sorted(wanted)), errors="coerce").dropna()
        is_anomaly |= labels.isin(numbers.tolist())
    if not is_anomaly.any():
        raise ValueError(f"No row of label column {name!r} has an anomaly value {sorted(wanted)}; "
                         f"its values include {sorted(as_text.unique().tolist())[:10]}.")
    return is_anomaly.to_numpy().astype(np.int64)


def _is_text(column: pd.Series) -> bool:
    import pandas as pd  # here, not at module level: the CLI's --help must not load it

    return not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))


def load_csv(path: str | os.PathLike, label: str, *, anomaly_values: Iterable[Any] | None = None,
             drop: Iterable[str] = (), one_hot: Iterable[str] = (),
             encoding: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a CSV (optionally gzipped) into features and 0/1 labels.

    Parameters
    ----------
    path : path-like
        ``.csv`` or ``.csv.gz`` file with a header row.
    label : str
        Name of the label column.
    anomaly_values : iterable, optional
        Label values counted as anomalies (compared as stripped text, and as
        numbers for a numeric column). By default the label must already be 0/1.
    drop : iterable of str
        Columns to leave out of ``X`` (e.g. a row id).
    one_hot : iterable of str
        Numeric columns to one-hot encode as well (e.g. nominal codes); ``'*'``
        among them means every feature column. Text columns always are.
    encoding : str, optional
        File encoding; by default ``'utf-8-sig'``, which reads plain UTF-8 and
        strips a byte-order mark.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
        Numeric columns as they are, then the one-hot columns of the text ones.
    y : ndarray of shape (n_samples,), int64
    info : dict
        ``label``, ``dropped``, ``numeric`` (kept numeric columns), ``one_hot``
        (text column -> number of categories), ``n_features`` and
        ``feature_names``.

    Raises
    ------
    ValueError
        If the label or a ``drop`` column is missing (the message lists the
        columns), if the label cannot be mapped to 0/1, or if a numeric column
        has missing values.
    """
    import pandas as pd  # here, not at module level: the CLI's --help must not load it

    df = pd.read_csv(path, encoding=encoding or "utf-8-sig", low_memory=False)
    drop, one_hot = list(drop), list(one_hot)
    features, y, text = _label_and_features(df, path, label, anomaly_values, drop, one_hot)
    numeric = [c for c in features.columns if c not in text]
    with_nan = [c for c in numeric if features[c].isna().any()]
    if with_nan:
        raise ValueError(f"{path}: numeric column(s) {with_nan} have missing values; drop them "
                         "(',drop=...') or impute them before loading.")
    encoded = pd.get_dummies(features[text].astype(str).where(features[text].notna(), MISSING),
                             prefix_sep="=", dtype=np.float64) if text else pd.DataFrame(index=df.index)
    X_df = pd.concat([features[numeric].astype(np.float64), encoded], axis=1)
    info = {"source": str(path), "label": label,
            "anomaly_values": None if anomaly_values is None else [str(v) for v in anomaly_values],
            "dropped": drop, "numeric": numeric,
            "one_hot": {c: int(features[c].nunique(dropna=False)) for c in text},
            "n_rows": len(df), "n_features": X_df.shape[1], "feature_names": list(X_df.columns)}
    logger.info("%s: %s", path, describe(info))
    return X_df.to_numpy(dtype=np.float64), y, info


def _label_and_features(df: pd.DataFrame, path: Any, label: str, anomaly_values: Iterable[Any] | None,
                        drop: list[str], one_hot: list[str]) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The feature columns, the 0/1 labels and the columns to one-hot encode (text ones and ``one_hot``)."""
    absent = [c for c in [label, *drop, *one_hot] if c not in df.columns and c != "*"]
    if absent:
        raise ValueError(f"{path}: column(s) {absent} not found; the columns are {list(df.columns)}.")
    y = _binary_labels(df[label], anomaly_values, label)
    features = df.drop(columns=[label, *drop])
    text = [c for c in features.columns if "*" in one_hot or c in one_hot or _is_text(features[c])]
    return features, y, text


@dataclass
class Table:
    """A labeled table as :func:`load_table` reads it: the raw feature columns and 0/1 labels.

    Attributes
    ----------
    name : str
        The shortcut or the file name without extension.
    X : pandas.DataFrame or ndarray of shape (n_samples, n_features)
        The feature columns of a CSV or Parquet file as read (the columns of
        ``onehot=`` as pandas categories, so that a detector encodes them); the
        array ``X`` of an ``.npz`` file.
    y : ndarray of shape (n_samples,), int64
        1 = anomaly (the label column mapped as :func:`load_csv` maps it).
    info : dict
        ``source``, ``label``, ``dropped``, ``text`` (the columns a detector
        will one-hot encode), ``n_rows`` and ``n_columns``.
    """

    name: str
    X: Any
    y: np.ndarray
    info: dict = field(default_factory=dict)


def _parquet(path: Path) -> pd.DataFrame:
    import pandas as pd  # here, not at module level: the CLI's --help must not load it

    try:
        return pd.read_parquet(path)
    except ImportError as exc:
        raise ImportError("Reading Parquet needs pyarrow, a dependency of deepod-mnp that is missing from "
                          f"this environment: pip install 'pyarrow>=14' ({exc}).") from exc


def load_table(spec: str, root: str | os.PathLike | None = None) -> Table:
    """Read a labeled table as it is, for a detector that encodes its text columns itself.

    Parameters
    ----------
    spec : str
        A CSV spec ``path.csv[.gz]:label=COL[,drop=A;B][,anomaly=V][,onehot=C]``,
        the same for Parquet (``path.parquet:label=COL,...``), an ``.npz``
        path or a shortcut of :data:`SHORTCUTS`, as :func:`load_dataset` takes
        them.
    root : path-like, optional
        Data root; see :func:`data_roots`.

    Returns
    -------
    Table
        Unlike :func:`load_dataset`, text columns stay text (``bench`` encodes
        the whole file before its split; a saved model encodes what it is given).

    Raises
    ------
    FileNotFoundError
        If the file is in none of the places looked at.
    ValueError
        If ``spec`` is none of the kinds above, a named column is missing, or
        the label cannot be mapped to 0/1.
    ImportError
        For Parquet without pyarrow.
    """
    import pandas as pd  # here, not at module level: the CLI's --help must not load it

    shortcut = SHORTCUTS.get(spec.lower())
    name = spec.lower() if shortcut else None
    if shortcut:
        spec = shortcut.spec
    table_match = _CSV_SPEC.match(spec) or _PARQUET_SPEC.match(spec)
    if table_match:
        args = _parse_options(spec, table_match)
        path = _resolve(args.pop("path"), root, name)
        if _CSV_SPEC.match(spec):
            df = pd.read_csv(path, encoding=args.get("encoding") or "utf-8-sig", low_memory=False)
        else:
            df = _parquet(path)
        drop, one_hot = list(args.get("drop", [])), list(args.get("one_hot", []))
        X, y, text = _label_and_features(df, path, args["label"], args.get("anomaly_values"), drop, one_hot)
        as_category = [c for c in text if not _is_text(X[c])]  # numeric codes named by onehot=
        if as_category:
            X = X.astype({c: "category" for c in as_category})
        info = {"source": str(path), "label": args["label"], "dropped": drop, "text": text,
                "n_rows": len(X), "n_columns": X.shape[1]}
        return Table(name or _dataset_name(path), X, y, info)
    dataset = load_dataset(name or spec, root)  # .npz (or a bundled shortcut): numbers, no names
    return Table(dataset.name, dataset.X, dataset.y,
                 {**dataset.info, "text": [], "n_columns": dataset.X.shape[1]})


def describe(info: dict) -> str:
    """One line saying how a data set was read: label, dropped and one-hot encoded columns."""
    if "label" not in info:
        return f"{info.get('source', '?')}: X and y as stored, {info.get('n_features', '?')} features"
    one_hot = info["one_hot"]
    text = (f"one-hot encoded {len(one_hot)} column(s) "
            f"({', '.join(f'{c}:{n}' for c, n in one_hot.items())})" if one_hot else "no text columns")
    anomaly = f" (anomaly = {', '.join(info['anomaly_values'])})" if info["anomaly_values"] else " (0/1)"
    dropped = f"dropped {info['dropped']}; " if info["dropped"] else ""
    return (f"label {info['label']!r}{anomaly}; {dropped}kept {len(info['numeric'])} numeric column(s); "
            f"{text}; {info['n_features']} features")


def parse_csv_spec(spec: str) -> dict[str, Any]:
    """Split ``path.csv[.gz]:label=COL[,drop=A;B][,anomaly=V][,onehot=C]`` into :func:`load_csv` arguments."""
    match = _CSV_SPEC.match(spec)
    if not match:
        raise ValueError(f"{spec!r} is not a CSV spec 'path.csv[.gz]:label=COL[,drop=A;B][,anomaly=V]'.")
    return _parse_options(spec, match)


def _parse_options(spec: str, match: re.Match) -> dict[str, Any]:
    """The path and options of a table spec ``PATH:label=COL[,drop=A;B][,anomaly=V][,onehot=C]``."""
    args: dict[str, Any] = {"path": match["path"]}
    keys = {"label": "label", "drop": "drop", "anomaly": "anomaly_values", "onehot": "one_hot",
            "encoding": "encoding"}
    lists = ("drop", "anomaly_values", "one_hot")
    for option in filter(None, (match["options"] or "").split(",")):
        key, sep, value = option.partition("=")
        if not sep or key.strip() not in keys:
            raise ValueError(f"Bad option {option!r} in {spec!r}; "
                             "use label=, drop=, anomaly=, onehot= or encoding=.")
        key = keys[key.strip()]
        args[key] = value.split(";") if key in lists else value
    if "label" not in args:
        raise ValueError(f"{spec!r} names no label column; add ':label=COLUMN'.")
    return args


def _candidates(path: str, roots: Sequence[Path]) -> list[Path]:
    """``path`` as given, then under each root, also by its bare file name and as ``.csv`` for ``.csv.gz``."""
    rel = Path(path).expanduser()
    variants = [rel]
    if not rel.is_absolute():
        variants += [*(r / rel for r in roots), *(r / rel.name for r in roots)]
    if rel.name.lower().endswith(".csv.gz"):
        variants += [v.with_name(v.name[:-3]) for v in variants]
    return list(dict.fromkeys(variants))


def find_data(path: str, root: str | os.PathLike | None = None) -> Path | None:
    """Where the data file ``path`` (relative to the data root, or absolute) is, or None.

    Parameters
    ----------
    path : str
        E.g. ``'adbench/22_magic.gamma.npz'`` or ``'raw/fraud_oracle.csv'``. A
        relative path is tried in the working directory, then under each of
        :func:`data_roots` (also by its bare file name, and a ``.csv.gz`` also
        as the unzipped ``.csv``).
    root : path-like, optional
        Data root; see :func:`data_roots`.
    """
    return next((c for c in _candidates(path, data_roots(root)) if c.is_file()), None)


def _resolve(path: str, root: str | os.PathLike | None, shortcut: str | None = None,
             source: str | None = None) -> Path:
    found = find_data(path, root)
    if found is not None:
        return found
    roots = data_roots(root)
    looked = ", ".join(str(c) for c in _candidates(path, roots))
    target = (str(roots[0] / path) if roots else
              f"DIR/{path} and pass --data-root DIR (or set ${DATA_ENV}=DIR)")
    message = f"No data file {path!r}: looked for {looked}."
    source = source or (SHORTCUTS[shortcut].source if shortcut else None)
    if source:
        message += (f" Get {shortcut or Path(path).name!r} from {source}; save it as {target} "
                    f"(README, 'Where each data set comes from').")
    elif not roots:
        message += f" No data root is set: pass --data-root DIR or set ${DATA_ENV}=DIR."
    raise FileNotFoundError(message)


def _bundled(shortcut: Shortcut) -> tuple[np.ndarray, np.ndarray, dict]:
    from importlib import resources

    with resources.files("deepod_mnp.datasets").joinpath(shortcut.bundled).open("rb") as fh:
        X, y = load_npz(fh)
    info = {"source": f"deepod_mnp.datasets/{shortcut.bundled} (bundled copy)", "n_rows": len(X),
            "n_features": X.shape[1]}
    return X, y, info


def _dataset_name(path: Path) -> str:
    return re.sub(r"\.(npz|csv(\.gz)?|parquet|pq)$", "", path.name, flags=re.IGNORECASE)


def load_dataset(spec: str, root: str | os.PathLike | None = None) -> Dataset:
    """Load a data set from an ``.npz`` path, a CSV spec or a shortcut name.

    Parameters
    ----------
    spec : str
        See the module docstring. Relative paths are tried against the working
        directory first, then against the data root.
    root : path-like, optional
        Data root; see :func:`data_roots`.

    Returns
    -------
    Dataset
        Named after the shortcut or the file name without extension.

    Raises
    ------
    FileNotFoundError
        If the file is in none of the places looked at (the message lists them
        and, for a shortcut, where to get the file).
    ValueError
        If ``spec`` is none of the three kinds, or the file cannot be read as asked.
    """
    shortcut = SHORTCUTS.get(spec.lower())
    name = spec.lower() if shortcut else None
    if shortcut:
        spec = shortcut.spec
    if _CSV_SPEC.match(spec):
        args = parse_csv_spec(spec)
        path = _resolve(args.pop("path"), root, name)
        X, y, info = load_csv(path, **args)
    elif spec.lower().endswith(".npz"):
        found = find_data(spec, root)
        if found is None and shortcut is not None and shortcut.bundled:
            X, y, info = _bundled(shortcut)
            logger.info("%s: not under the data root; using the bundled copy.", name)
        else:
            path = found or _resolve(spec, root, name)
            X, y = load_npz(path)
            info = {"source": str(path), "n_rows": len(X), "n_features": X.shape[1]}
    else:
        raise ValueError(f"{spec!r} is neither a .npz path, a CSV spec 'path.csv[.gz]:label=COL' "
                         f"nor a shortcut of {sorted(SHORTCUTS)}.")
    expected = (shortcut.n_rows, shortcut.n_features or X.shape[1]) if shortcut else X.shape
    if X.shape != expected:
        logger.warning("%s has shape %s; the data README gives %s.", name, X.shape,
                       expected)
    return Dataset(name or _dataset_name(Path(info["source"])), X, y, info)


UNSW_RAW = "raw/UNSW_NB15_training-set.csv.gz"
UNSW_SOURCE = ("the UNSW-NB15 data set (Moustafa and Slay, 2015; UNSW Canberra's UNSW-NB15 page): the "
               "82,332-row partition with columns id .. attack_cat, label (the official release names it "
               "UNSW_NB15_testing-set.csv; many public copies call it UNSW_NB15_training-set.csv)")
UNSW_TYPES = ("DoS", "Reconnaissance", "Analysis", "Backdoor")


def load_unseen_pairs(root: str | os.PathLike | None = None, types: Iterable[str] = UNSW_TYPES,
                      path: str = UNSW_RAW) -> list[Dataset]:
    """The seen/unseen anomaly-type data sets of the paper's Table 3, from the raw UNSW-NB15 partition.

    For every ordered pair (seen, unseen) of ``types``, ``X``/``y`` hold the
    normal records and the seen type (the protocol splits them as usual), and
    ``test_anomalies`` the unseen type, which only the test split receives.
    Columns ``id``, ``label`` and ``attack_cat`` are dropped; the text columns
    ``proto``, ``service`` and ``state`` are one-hot encoded over the whole file,
    so every pair has the same features.

    Parameters
    ----------
    root : path-like, optional
        Data root; see :func:`data_roots`.
    types : iterable of str
        Attack categories (``attack_cat`` values) to pair; at least two.
    path : str
        The CSV, relative to the data root.

    Returns
    -------
    list of Dataset
        Named ``'<seen>-><unseen>'``, in the paper's order (unseen type outer).
    """
    import pandas as pd  # here, not at module level: the CLI's --help must not load it

    types = list(types)
    csv = _resolve(path, root, source=UNSW_SOURCE if path == UNSW_RAW else None)
    X, _, info = load_csv(csv, "label", drop=["id", "attack_cat"])
    category = pd.read_csv(csv, usecols=["attack_cat"], encoding="utf-8-sig")["attack_cat"]
    category = category.astype(str).str.strip()
    counts = category.value_counts()
    missing = [t for t in ["Normal", *types] if t not in counts.index]
    if len(types) < 2 or missing:
        raise ValueError(f"Need two or more attack types present in {csv}; missing {missing}, "
                         f"found {sorted(counts.index)}.")
    normal = (category == "Normal").to_numpy()
    datasets = []
    for unseen in types:
        for seen in (t for t in types if t != unseen):
            rows = normal | (category == seen).to_numpy()
            y = (category[rows] == seen).to_numpy().astype(np.int64)
            pair_info = {**info, "seen": seen, "unseen": unseen, "n_seen": int(counts[seen]),
                         "n_unseen": int(counts[unseen]), "n_normal": int(normal.sum())}
            datasets.append(Dataset(f"{seen}->{unseen}", X[rows], y, pair_info,
                                    test_anomalies=X[(category == unseen).to_numpy()]))
    return datasets
