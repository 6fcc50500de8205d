"""The documents say what the code does: README's commands and snippets run, its numbers come from results.

- Every shell command shown in README.md, BENCHMARKS.md, CONTRIBUTING.md and
  docs/ is one the CLI's parser, the Makefile or the repository accepts.
- README's command-line and Python quick starts, and those of the getting
  started page, run as written (on small tables and the bundled data).
- README states no test count; its demo table is the committed demo output,
  whose MNP records today's code reproduces; its results table is what
  ``scripts/benchmark_tables.py headline`` prints.
- Every numeric table of BENCHMARKS.md is printed by ``benchmark_tables.py``
  or stored in a committed ``results/**/*.md`` file, and every file the
  documents name (results, scripts, tests, links, images) exists.
- The paper map finds every equation of the paper in the code.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_weak_data

from deepod_mnp.cli import _build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if not p.name.startswith("_"))
DOCUMENTS = [README, BENCHMARKS, ROOT / "CONTRIBUTING.md", ROOT / "PROTOCOL.md", *DOCS]
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def code_blocks(path: Path, *languages: str) -> list[str]:
    """The fenced code blocks of a Markdown file in the given languages."""
    return [body for lang, body in _FENCE.findall(path.read_text(encoding="utf-8")) if lang in languages]


def shell_commands(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.M))


# ------------------------------------------------------------------ commands the documents show
def _check_command(command: str, parser, targets: set[str]) -> str | None:
    """None if the repository accepts the command (or it is not ours to check), else why not."""
    argv = shlex.split(command, comments=True)
    if not argv:
        return None
    head, rest = argv[0], argv[1:]
    if head == "deepod-mnp":
        try:
            parser.parse_args(rest)
        except SystemExit:
            return "the CLI's parser refuses it"
        return None
    if head == "make":
        missing = [t for t in rest if "=" not in t and t not in targets]
        return f"no make target {missing}" if missing else None
    if head in ("python", "bash") and rest and rest[0] == "-m":
        return None if importlib.util.find_spec(rest[1]) else f"no module {rest[1]}"
    script = rest[0] if head in ("python", "bash") and rest else head
    if script.startswith("scripts/"):
        if not (ROOT / script).is_file():
            return f"{script} does not exist"
        if script == "scripts/benchmark_tables.py" and len(rest) > 1:
            tables = _load_script("benchmark_tables")
            if rest[1] not in {*tables.COMMANDS, "dev", "figure", "sets"}:
                return f"benchmark_tables.py has no table {rest[1]!r}"
    return None


def test_every_shell_command_in_the_documents_is_accepted():
    parser, targets = _build_parser(), _make_targets()
    checked, refused = 0, []
    for path in DOCUMENTS:
        for block in code_blocks(path, "bash", "sh", "shell"):
            for command in shell_commands(block):
                problem = _check_command(command, parser, targets)
                checked += command.split()[0] in ("deepod-mnp", "make", "python", "bash") or \
                    command.startswith("scripts/")
                if problem:
                    refused.append(f"{path.relative_to(ROOT)}: {command!r}: {problem}")
    assert not refused, "\n".join(refused)
    assert checked >= 40  # the documents show dozens of commands: the extraction must find them


def test_the_check_refuses_a_command_the_cli_does_not_know():
    parser, targets = _build_parser(), _make_targets()
    assert _check_command("deepod-mnp fit --dat x.csv --out m.pt", parser, targets)
    assert _check_command("make demos", parser, targets)
    assert _check_command("python scripts/issue14_tables.py pool", parser, targets)
    assert _check_command("python scripts/benchmark_tables.py nope", parser, targets)
    assert _check_command("deepod-mnp fit --data x.csv:label=y --out m.pt", parser, targets) is None


# ------------------------------------------------------------------ quick starts run as written
@pytest.fixture
def claims(tmp_path, monkeypatch):
    """claims.csv (label 'fraud', an id, a text column) and new_claims.csv (no label) in the working dir."""
    data = make_weak_data(n_per_mode=60, seed=3)
    rng = np.random.default_rng(3)
    table = pd.DataFrame(data.X[:, :4], columns=["amount", "age", "balance", "score"])
    table.insert(0, "claim_id", [f"C{i:05d}" for i in range(len(table))])
    table["region"] = rng.choice(["north", "south", "east"], len(table))
    table.assign(fraud=data.y).to_csv(tmp_path / "claims.csv", index=False)
    table.sample(frac=0.5, random_state=0).to_csv(tmp_path / "new_claims.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("path", [README, ROOT / "docs" / "getting-started.md"], ids=lambda p: p.name)
def test_the_command_line_quick_start_runs_as_written(path, claims, capsys):
    commands = [c for block in code_blocks(path, "bash") for c in shell_commands(block)
                if c.startswith("deepod-mnp ") and "claims" in c]
    assert [c.split()[1] for c in commands] == ["fit", "info", "score"]
    for command in commands:
        argv = shlex.split(command, comments=True)[1:]
        assert main([*argv, "--no-progress"] if argv[0] != "info" else argv) == 0, command
    assert "MNP" in capsys.readouterr().out  # the model card
    scores = pd.read_parquet(claims / "scores.parquet")
    new = pd.read_csv(claims / "new_claims.csv")
    assert list(scores["claim_id"]) == list(new["claim_id"])
    assert np.isfinite(scores["score"]).all() and set(scores["label"]) <= {0, 1}


@pytest.mark.parametrize("path", [README, ROOT / "docs" / "getting-started.md"], ids=lambda p: p.name)
def test_the_python_quick_start_runs_as_written(path, claims):
    blocks = code_blocks(path, "python")
    assert blocks
    for block in blocks:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            exec(compile(block, f"{path.name} snippet", "exec"), {"__name__": "__docs__"})
        if "auc_pr(" in block:  # the bundled Pendigits with one labeled anomaly: MNP's demo level
            auc = float(re.search(r"(\d\.\d+)", out.getvalue()).group(1))
            assert auc > 0.75, out.getvalue()


def test_every_python_snippet_of_the_documents_compiles():
    for path in DOCUMENTS:
        for i, block in enumerate(code_blocks(path, "python")):
            compile(block, f"{path.name} python block {i}", "exec")


# ------------------------------------------------------------------ README's numbers
def test_readme_states_no_test_count():
    for path in (README, *DOCS):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\b\d[\d,]* (passed|tests? (?:pass|ran))", text), path.name


def test_readme_counts_of_peers_and_data_sets():
    """"compares MNP with N peers on M data sets": the registry's peers (no detector of ours, no control)
    and the data sets of the committed results (the nine main sets and the pool)."""
    import pandas as pd

    from deepod_mnp.benchmark.pool import CHOOSING, CONFIRMING
    from deepod_mnp.registry import DETECTORS

    text = " ".join(README.read_text(encoding="utf-8").split())
    claim = re.search(r"compares MNP with (\d+) peers on (\d+) data sets", text)
    assert claim, "README no longer states its counts: drop this test"
    peers = [n for n, spec in DETECTORS.items() if not spec.module.startswith("deepod_mnp.models.")]
    main_sets = pd.read_csv(ROOT / "results" / "main" / "results.csv")["dataset"].nunique()
    n_sets = main_sets + len(CHOOSING) + len(CONFIRMING)
    assert (int(claim.group(1)), int(claim.group(2))) == (len(peers), n_sets)


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_readme_demo_table_is_the_committed_demo_output():
    demo = _table_lines((ROOT / "results" / "demo" / "demo_output.txt").read_text(encoding="utf-8"))
    assert demo and "\n".join(demo) in README.read_text(encoding="utf-8")


def test_the_demo_records_of_mnp_are_reproduced_by_todays_code():
    """``make demo`` prints what README shows: MNP's seed-42 record of results/demo refits the same."""
    from deepod_mnp.benchmark.protocol import make_split
    from deepod_mnp.benchmark.runner import Job, job_data, run_job
    from deepod_mnp.datasets import load_pendigits

    record = json.loads((ROOT / "results/demo/jobs/pendigits__MNP__42.json").read_text(encoding="utf-8"))
    X, y = load_pendigits()
    got = run_job(Job("pendigits", "MNP", 42), job_data(make_split(X, y, labeled_ratio=0.01)), device="cpu")
    assert got["status"] == "ok"
    assert got["auc_pr"] == pytest.approx(record["auc_pr"], abs=1e-6)
    assert got["auc_roc"] == pytest.approx(record["auc_roc"], abs=1e-6)


@pytest.fixture(scope="module")
def all_tables() -> str:
    """Everything ``python scripts/benchmark_tables.py all`` prints, run from the repository root."""
    tables = _load_script("benchmark_tables")
    here = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            tables.all_tables()
    finally:
        os.chdir(here)
    return out.getvalue()


def test_readme_results_table_is_benchmark_tables_headline(all_tables):
    headline = all_tables.split("## headline", 1)[1].split("\n## ", 1)[0].strip()
    assert headline.startswith("| model |")
    assert headline in README.read_text(encoding="utf-8")


def _tables(text: str) -> list[str]:
    blocks, current = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            blocks.append("\n".join(current))
            current = []
    return blocks


_NUMBER = re.compile(r"^\**[-+−]?\d[\d,]*(\.\d+)?( ± [\d.]+| ±)?\**( [†(].*)?$")


def test_every_numeric_table_of_benchmarks_is_printed_by_a_command_or_stored_in_results(all_tables):
    sources = [all_tables, *(p.read_text(encoding="utf-8") for p in (ROOT / "results").rglob("*.md"))]
    numeric = [t for t in _tables(BENCHMARKS.read_text(encoding="utf-8"))
               if any(_NUMBER.match(cell.strip()) for row in t.splitlines()[2:] for cell in row.split("|"))]
    assert len(numeric) >= 15
    orphans = [t.splitlines()[0] for t in numeric if not any(t in s for s in sources)]
    assert not orphans, "tables of BENCHMARKS.md that no command prints:\n" + "\n".join(orphans)


def test_the_table_check_catches_an_edited_number(all_tables):
    table = _tables(all_tables)[0]
    mnp_mean = re.search(r"\d\.\d{3}", table.splitlines()[2]).group()  # MNP's mean on the nine sets
    off_by_one = mnp_mean[:-1] + str((int(mnp_mean[-1]) + 1) % 10)  # its last digit changed
    edited = table.replace(mnp_mean, off_by_one, 1)
    assert edited != table and edited not in all_tables


# ------------------------------------------------------------------ files the documents name
_PATH = re.compile(r"(?<![\w/.-])((?:results|scripts|tests|notebooks|tools|docs)/[\w./*-]*[\w*/])")
_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s]+)\)")


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_file_a_document_names_exists(path):
    text = path.read_text(encoding="utf-8")
    base = path.parent
    missing = []
    for link in _LINK.findall(text):
        target = link.split("#", 1)[0]
        if target and not (base / target).exists():
            missing.append(target)
    prose = re.sub(r"^```\{.*?^```", "", text, flags=re.S | re.M)  # not MyST directives (toctree entries)
    prose = re.sub(r"\{doc\}`[^`]*`", "", prose)  # nor the site's page names
    for name in _PATH.findall(prose):
        placeholder = any(part.isupper() for part in re.split(r"[/.]", name))  # results/NAME/
        if placeholder or name.startswith(("docs/_build", "docs/generated")):
            continue
        if "*" in name:
            if not any(ROOT.glob(name)):
                missing.append(name)
        elif not (ROOT / name).exists():
            missing.append(name)
    assert not missing, f"{path.name} names files that do not exist: {missing}"


# ------------------------------------------------------------------ the paper map
def test_the_paper_map_finds_every_equation_where_the_code_computes_it():
    sys.path.insert(0, str(ROOT))
    try:
        from tools import paper_map
    finally:
        sys.path.remove(str(ROOT))
    import deepod_mnp

    sites = paper_map.equation_sites()
    assert set(sites) == set(range(1, 14))
    assert all(sites.values()), [n for n, s in sites.items() if not s]
    for site in (s for group in sites.values() for s in group):  # every entry names a real object
        obj = importlib.import_module(site.module)
        for part in filter(None, site.qualname.split(".")):
            obj = getattr(obj, part)
        line = (ROOT / site.path).read_text(encoding="utf-8").splitlines()[site.line - 1]
        assert "Eq." in line
    owners = paper_map.hook_owners(deepod_mnp.MNP)
    assert set(owners) >= {"training_prepare", "training_forward", "inference_forward"}
    for target in owners.values():
        module, cls, hook = target.rsplit(".", 2)
        assert hook in vars(getattr(importlib.import_module(module), cls))

