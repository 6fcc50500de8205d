"""``deepod-mnp score`` as a nightly job meets it: one-line errors, outputs that never touch the input,
bad-row policies with counts that add up, and a resume after the job was killed."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_MNP, make_weak_data

from deepod_mnp import MNP
from deepod_mnp.cli import main

pa = pytest.importorskip("pyarrow", reason="pyarrow is missing")
pq = pytest.importorskip("pyarrow.parquet")

from deepod_mnp.serving.stream import read_summary, rejected_path, work_dir  # noqa: E402

FEATURES = ["a", "b", "c", "d"]
N_ROWS = 3_000
# row -> (column, bad value, what the reason says); positions spread over several chunks of 500
BAD = {7: ("b", np.nan, "is NaN"), 640: ("d", np.inf, "is inf"),
       1_201: ("a", 1e39, "is 1e+39, beyond float32's range"), 1_202: ("c", None, "is missing (null)"),
       2_999: ("a", -np.inf, "is -inf")}


@pytest.fixture(scope="module")
def fitted():
    data = make_weak_data(n_per_mode=60, n_features=len(FEATURES), seed=12)
    return MNP(**TINY_MNP).fit(pd.DataFrame(data.X, columns=FEATURES), data.y)


@pytest.fixture(scope="module")
def checkpoint(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "mnp.pt"
    fitted.save_model(path)
    return path


@pytest.fixture(scope="module")
def clean():
    """Rows to score: the features in another order, an id and an unused column."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame(rng.normal(0, 3, size=(N_ROWS, len(FEATURES))), columns=FEATURES)
    df["id"] = np.arange(N_ROWS, dtype=np.int64) * 10
    df["other"] = rng.random(N_ROWS)
    return df[["other", "c", "id", "a", "d", "b"]]


@pytest.fixture(scope="module")
def dirty(clean):
    df = clean.copy()
    df[FEATURES] = df[FEATURES].astype(object)
    for row, (col, value, _) in BAD.items():
        df.loc[row, col] = value
    return df


def _write_parquet(df: pd.DataFrame, path, row_group_size: int = 700):
    """``df`` as Parquet, a NaN kept as NaN and None as null (pandas would make both null)."""
    arrays = {}
    for c in df.columns:
        values = df[c].tolist()
        if c in FEATURES and all(v is None or isinstance(v, float) for v in values):
            arrays[c] = pa.array(values, type=pa.float64())
        else:
            arrays[c] = pa.array(values if df[c].dtype == object else df[c].to_numpy())
    pq.write_table(pa.table(arrays), path, row_group_size=row_group_size)
    return path


def _digest(path) -> str:
    if path.is_dir():
        return hashlib.sha256(b"".join(_digest(p).encode() + p.name.encode()
                                       for p in sorted(path.rglob("*")) if p.is_file())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _score(capsys, *args) -> tuple[int, str, str]:
    code = main(["score", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, err
    assert line.startswith("deepod-mnp score: error: ")
    for needle in needles:
        assert needle in line, line
    return line


# ----------------------------------------------------------------------------- nothing of the user's is lost
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_out_equal_to_the_input_is_refused_and_the_input_kept(fmt, checkpoint, clean, tmp_path, capsys):
    data = tmp_path / f"t.{fmt}"
    if fmt == "csv":
        clean.to_csv(data, index=False)
    else:
        _write_parquet(clean, data)
    before = _digest(data)
    code, out, err = _score(capsys, "--model", checkpoint, "--data", data, "--out", data)
    _one_line_error(code, err, f"--out {data} is the input", "would overwrite it")
    assert _digest(data) == before and out == ""
    assert not work_dir(data).exists()


def test_out_inside_the_input_directory_is_refused(checkpoint, clean, tmp_path, capsys):
    src = tmp_path / "day"
    src.mkdir()
    _write_parquet(clean, src / "part-0.parquet")
    before = _digest(src)
    code, _, err = _score(capsys, "--model", checkpoint, "--data", src, "--out", src / "scores.parquet")
    _one_line_error(code, err, "is inside the input directory", str(src))
    assert _digest(src) == before and sorted(p.name for p in src.iterdir()) == ["part-0.parquet"]


def test_out_naming_a_directory_is_refused_before_any_work(clean, tmp_path, capsys):
    data = _write_parquet(clean, tmp_path / "t.parquet")
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("not a model")
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    before = _digest(data)
    # the model is not one either: the --out check comes first, before the model is even read
    code, _, err = _score(capsys, "--model", not_a_model, "--data", data, "--out", outdir)
    _one_line_error(code, err, f"--out {outdir} is a directory")
    assert list(outdir.iterdir()) == [] and _digest(data) == before


def test_out_equal_to_the_model_is_refused(checkpoint, clean, tmp_path, capsys):
    data = _write_parquet(clean, tmp_path / "t.parquet")
    before = _digest(checkpoint)
    code, _, err = _score(capsys, "--model", checkpoint, "--data", data, "--out", checkpoint)
    _one_line_error(code, err, "is the model file")
    assert _digest(checkpoint) == before


# ----------------------------------------------------------------------------- one line, exit 2
def _case_missing_column(tmp_path, clean):
    return ["--data", _write_parquet(clean.drop(columns=["d"]), tmp_path / "t.parquet")], \
        ["lacks 1 of the model's feature column(s): ['d']", "t.parquet"]


def _case_text_in_csv(tmp_path, clean):
    df = clean.copy()
    df["c"] = df["c"].astype(object)
    df.loc[1_234, "c"] = "12,5 EUR"
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    return ["--data", path], [f"{path}: row 1,234", "column 'c' is not a number ('12,5 EUR')",
                              "--invalid skip or quarantine"]


def _case_nan_row(tmp_path, clean):
    df = clean.copy()
    df.loc[2_345, "b"] = np.nan
    return ["--data", _write_parquet(df, tmp_path / "t.parquet")], ["row 2,345", "column 'b' is NaN"]


def _case_empty_csv(tmp_path, clean):
    path = tmp_path / "t.csv"
    path.write_bytes(b"")
    return ["--data", path], [f"{path} is empty"]


def _case_not_a_model(tmp_path, clean):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    return ["--data", _write_parquet(clean, tmp_path / "t.parquet"), "--model", bad], \
        [f"{bad} is not a valid deepod-mnp checkpoint"]


def _case_no_data(tmp_path, clean):
    return ["--data", tmp_path / "nowhere.parquet"], ["nowhere.parquet: no such file or directory"]


def _case_no_model(tmp_path, clean):
    return ["--data", _write_parquet(clean, tmp_path / "t.parquet"), "--model", tmp_path / "none.pt"], \
        ["none.pt does not exist"]


def _case_missing_keep(tmp_path, clean):
    return ["--data", _write_parquet(clean, tmp_path / "t.parquet"), "--keep", "id,account"], \
        ["--keep column(s) ['account'] are not in the data"]


def _case_not_parquet(tmp_path, clean):
    path = tmp_path / "t.json"
    path.write_text('{"a": 1}')
    return ["--data", path], [f"{path} is not a readable Parquet file", "a CSV must end in .csv"]


def _case_text_column_type(tmp_path, clean):
    df = clean.copy()
    df["a"] = [[1.0]] * len(df)  # a list column: no number at all
    return ["--data", _write_parquet(df, tmp_path / "t.parquet")], ["feature column 'a' has type list"]


def _case_zero_chunk(tmp_path, clean):
    return ["--data", _write_parquet(clean, tmp_path / "t.parquet"), "--chunk-rows", "0"], \
        ["--chunk-rows must be >= 1"]


ERROR_CASES = {f.__name__[len("_case_"):]: f for f in [
    _case_missing_column, _case_text_in_csv, _case_nan_row, _case_empty_csv, _case_not_a_model, _case_no_data,
    _case_no_model, _case_missing_keep, _case_not_parquet, _case_text_column_type, _case_zero_chunk]}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_usage_and_data_errors_are_one_line_exit_2(case, checkpoint, clean, tmp_path, capsys):
    args, needles = ERROR_CASES[case](tmp_path, clean)
    if "--model" not in args:
        args += ["--model", checkpoint]
    data = args[args.index("--data") + 1]
    before = _digest(data) if data.exists() else None
    out = tmp_path / "out" / "scores.parquet"
    code, stdout, err = _score(capsys, *args, "--out", out)
    _one_line_error(code, err, *needles)
    assert stdout == "" and not out.exists() and not work_dir(out).exists()
    if before is not None:
        assert _digest(data) == before


def test_verbose_adds_the_traceback(checkpoint, clean, tmp_path, capsys):
    df = clean.copy()
    df.loc[3, "a"] = np.nan
    data = _write_parquet(df, tmp_path / "t.parquet")
    code = main(["-v", "score", "--model", str(checkpoint), "--data", str(data), "--out",
                 str(tmp_path / "o.parquet"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" in err and "ScoringError" in err
    assert err.strip().splitlines()[-1].startswith("deepod-mnp score: error: ") and "row 3" in err
    code = main(["score", "--model", str(checkpoint), "--data", str(data), "--out",
                 str(tmp_path / "o.parquet"), "--no-progress", "--verbose"])  # the flag after the command too
    assert code == 2 and "Traceback" in capsys.readouterr().err


def test_missing_pyarrow_is_one_line(checkpoint, clean, tmp_path):
    data = _write_parquet(clean, tmp_path / "t.parquet")
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "from deepod_mnp.cli import main\nsys.exit(main(sys.argv[1:]))")
    run = subprocess.run([sys.executable, "-c", code, "score", "--model", str(checkpoint), "--data",
                          str(data), "--out", str(tmp_path / "o.parquet"), "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().count("\n") == 0 and "pip install 'pyarrow>=14'" in run.stderr


# ----------------------------------------------------------------------------- policies
def _expected(fitted, df: pd.DataFrame) -> pd.DataFrame:
    good = df.drop(index=list(BAD))
    return pd.DataFrame({"id": good["id"].to_numpy(),
                         "score": fitted.decision_function(good[FEATURES].astype(float))})


@pytest.mark.parametrize("layout", ["directory", "csv"])
def test_skip_and_quarantine_account_for_every_row(layout, fitted, checkpoint, dirty, tmp_path, capsys):
    if layout == "csv":
        data = tmp_path / "rows.csv"
        dirty.to_csv(data, index=False)  # NaN and None are both empty fields: missing values
    else:
        data = tmp_path / "rows"
        data.mkdir()
        for i, part in enumerate(np.array_split(np.arange(N_ROWS), 3)):  # 1,000 rows per file
            _write_parquet(dirty.iloc[part], data / f"part-{i}.parquet", row_group_size=300)
    expected = _expected(fitted, dirty)
    for policy in ("skip", "quarantine"):
        out = tmp_path / policy / "scores.parquet"
        code, stdout, err = _score(capsys, "--model", checkpoint, "--data", data, "--out", out, "--keep",
                                   "id", "--label", "--invalid", policy, "--chunk-rows", 500)
        assert code == 0, err
        result = pq.read_table(out).to_pandas()
        assert list(result.columns) == ["id", "score", "label"]
        np.testing.assert_array_equal(result["id"], expected["id"])
        np.testing.assert_allclose(result["score"], expected["score"], rtol=0, atol=1e-6)
        summary = read_summary(out)
        assert (summary.rows_read, summary.rows_scored, summary.rows_rejected) == (N_ROWS, N_ROWS - 5, 5)
        nan = "missing" if layout == "csv" else "NaN"
        assert summary.rejected_by == {"a: beyond float32's range": 1, "a: infinite": 1, f"b: {nan}": 1,
                                       "c: missing": 1, "d: infinite": 1}
        assert f"Read {N_ROWS:,} rows" in stdout and f"scored {N_ROWS - 5:,}" in stdout
        assert "rejected 5" in stdout
        quarantine = rejected_path(out)
        assert quarantine.exists() == (policy == "quarantine")
        if policy == "skip":
            assert "skipped them" in stdout
            continue
        rejected = pq.read_table(quarantine).to_pandas()
        assert rejected["row"].tolist() == sorted(BAD)
        assert rejected["id"].tolist() == [r * 10 for r in sorted(BAD)]
        for reason, row in zip(rejected["reason"], sorted(BAD)):
            what = "is missing (null)" if layout == "csv" and row == 7 else BAD[row][2]
            assert f"column '{BAD[row][0]}' {what}" in reason
        if layout == "directory":  # which file, and where in it
            assert rejected["file"].tolist() == ["part-0.parquet", "part-0.parquet", "part-1.parquet",
                                                 "part-1.parquet", "part-2.parquet"]
            assert rejected["file_row"].tolist() == [7, 640, 201, 202, 999]
        assert read_summary(quarantine) == summary


def test_error_policy_names_the_first_bad_row_of_a_directory(checkpoint, dirty, tmp_path, capsys):
    data = tmp_path / "rows"
    data.mkdir()
    for i, part in enumerate(np.array_split(np.arange(N_ROWS), 3)):
        _write_parquet(dirty.iloc[part].drop(index=[7, 640], errors="ignore"), data / f"part-{i}.parquet")
    out = tmp_path / "scores.parquet"
    code, _, err = _score(capsys, "--model", checkpoint, "--data", data, "--out", out, "--chunk-rows", 256)
    _one_line_error(code, err, f"{data / 'part-1.parquet'}: row 201 of the file (row 1,199 of {data})",
                    "column 'a' is 1e+39")
    assert not out.exists() and not work_dir(out).exists()


def test_score_warns_nothing_when_the_names_were_matched(fitted, checkpoint, clean, tmp_path, capsys):
    data = _write_parquet(clean, tmp_path / "t.parquet")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = _score(capsys, "--model", checkpoint, "--data", data, "--out", tmp_path / "o.parquet",
                              "--explain", "--label")
    assert code == 0, err
    assert not [w for w in caught if "feature names" in str(w.message)], [str(w.message) for w in caught]
    assert "feature names" not in err


# ----------------------------------------------------------------------------- resume
KILLER = """
import os, signal, sys
from deepod_mnp import MNP
calls, original = [0], MNP.decision_function
def dying(self, X, *args, **kwargs):  # the job is killed (SIGKILL, no cleanup) while scoring chunk 4
    calls[0] += 1
    if calls[0] == 4:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, X, *args, **kwargs)
MNP.decision_function = dying
from deepod_mnp.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_killed_job_resumes_from_its_last_finished_chunk(fitted, checkpoint, dirty, tmp_path, capsys,
                                                          monkeypatch):
    data = _write_parquet(dirty, tmp_path / "rows.parquet", row_group_size=1_000)
    out = tmp_path / "scores.parquet"
    args = ["score", "--model", str(checkpoint), "--data", str(data), "--out", str(out), "--keep", "id",
            "--invalid", "quarantine", "--chunk-rows", "400", "--no-progress"]
    killed = subprocess.run([sys.executable, "-c", KILLER, *args], capture_output=True, text=True,
                            timeout=180)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not out.exists() and not rejected_path(out).exists()  # nothing appears before the end
    finished = sorted(p.name for p in work_dir(out).glob("scores-*"))
    assert finished == [f"scores-00000{i}.arrow" for i in range(3)]

    scored_rows = []
    original = MNP.decision_function
    monkeypatch.setattr(MNP, "decision_function",
                        lambda self, X, *a, **k: scored_rows.append(len(X)) or original(self, X, *a, **k))
    code = main([*args, "--resume"])
    stdout = capsys.readouterr().out
    assert code == 0
    assert sum(scored_rows) == N_ROWS - 3 * 400 - 3  # only the rest was scored (3 bad rows after row 1,200)
    assert "resumed at row 1,200" in stdout
    expected = _expected(fitted, dirty)
    result = pq.read_table(out).to_pandas()
    np.testing.assert_array_equal(result["id"], expected["id"])
    np.testing.assert_allclose(result["score"], expected["score"], rtol=0, atol=1e-6)
    summary = read_summary(out)
    assert (summary.rows_read, summary.rows_scored, summary.rows_rejected) == (N_ROWS, N_ROWS - 5, 5)
    assert summary.resumed_from_row == 1_200
    assert pq.read_table(rejected_path(out)).column("row").to_pylist() == sorted(BAD)
    assert not work_dir(out).exists()


def test_resume_refuses_changed_data_and_a_plain_rerun_starts_again(checkpoint, clean, tmp_path, capsys):
    data = _write_parquet(clean, tmp_path / "rows.parquet")
    out = tmp_path / "scores.parquet"
    args = ["--model", checkpoint, "--data", data, "--out", out, "--chunk-rows", 500]
    killed = subprocess.run([sys.executable, "-c", KILLER, "score", *map(str, args), "--no-progress"],
                            capture_output=True, timeout=180)
    assert killed.returncode == -signal.SIGKILL
    assert (work_dir(out) / "state.json").exists()
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))  # the file was rewritten
    code, _, err = _score(capsys, *args, "--resume")
    _one_line_error(code, err, "cannot resume", "the data files changed", "rerun without --resume")
    code, stdout, err = _score(capsys, *args, "--label")  # other options, no --resume: starts again
    assert code == 0 and f"scored {N_ROWS:,}" in stdout and "resumed" not in stdout
    assert pq.read_metadata(out).num_rows == N_ROWS and not work_dir(out).exists()
    code, stdout, _ = _score(capsys, *args, "--resume")  # nothing to resume: a full run
    assert code == 0 and f"scored {N_ROWS:,}" in stdout


def test_text_columns_the_model_encodes_go_in_raw(tmp_path, capsys):
    """A model fitted on a table with a text column: a missing or unseen category in it is no bad row (the
    model encodes it), a NaN in a numeric column still is."""
    rng = np.random.default_rng(8)
    data = make_weak_data(n_per_mode=60, n_features=3, seed=4)
    train = pd.DataFrame(data.X, columns=["a", "b", "c"])
    train["shop"] = rng.choice(["north", "south", "east"], len(train))
    model = MNP(**TINY_MNP).fit(train, data.y)
    assert list(model.encoder_.text_) == ["shop"]
    checkpoint = tmp_path / "mnp.pt"
    model.save_model(checkpoint)
    rows = train.head(300).copy()
    rows["id"] = np.arange(len(rows))
    rows["shop"] = rows["shop"].astype(object)
    rows.loc[5, "shop"], rows.loc[6, "shop"] = None, "west"  # missing and unseen: categories of their own
    rows.loc[9, "b"] = np.nan
    csv = tmp_path / "rows.csv"
    rows.to_csv(csv, index=False)
    out = tmp_path / "scores.parquet"
    code, stdout, err = _score(capsys, "--model", checkpoint, "--data", csv, "--out", out, "--keep", "id",
                               "--invalid", "quarantine")
    assert code == 0, err
    rejected = pq.read_table(rejected_path(out)).to_pandas()
    assert rejected["row"].tolist() == [9] and rejected["reason"].tolist() == ["column 'b' is missing (null)"]
    good = rows.drop(index=[9])
    result = pq.read_table(out).to_pandas()
    np.testing.assert_array_equal(result["id"], good["id"])
    np.testing.assert_allclose(result["score"], model.decision_function(good[["a", "b", "c", "shop"]]),
                               rtol=0, atol=1e-6)
