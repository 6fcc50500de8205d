"""The command line's help: fast (no torch, DeepOD or pandas at import), plain text, examples and defaults."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deepod_mnp import cli

REPO = Path(__file__).resolve().parents[1]
#: Every command of the CLI, read from its parser (a new command is checked as soon as it exists).
COMMANDS = list(next(a for a in cli._build_parser()._actions
                     if isinstance(a, argparse._SubParsersAction)).choices)


def test_every_command_is_checked():
    assert COMMANDS == ["fit", "info", "score", "bench", "experiment", "report", "demo"]


def _run(code: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_help_loads_neither_torch_nor_deepod_nor_pandas():
    out = _run("""
        import contextlib, io, sys
        from deepod_mnp.cli import main
        for argv in (["--help"], *([command, "--help"] for command in sys.argv[1:])):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                main(argv)
        print(sorted(m for m in ("torch", "deepod", "pandas", "sklearn", "scipy", "pyarrow")
                     if m in sys.modules))
    """, *COMMANDS)
    assert out.strip() == "[]"


def test_deepod_finds_mnp_after_a_light_import():
    # `import deepod_mnp` loads no torch; DeepOD's modules still resolve MNP (DeepOD imported after us) ...
    out = _run("""
        import importlib, sys
        import deepod_mnp
        light = "torch" not in sys.modules and "deepod" not in sys.modules
        tabular = importlib.import_module("deepod.models.tabular")
        models = importlib.import_module("deepod.models")
        print(light, tabular.MNP is deepod_mnp.MNP, models.DevNetAnoOnly.__module__, "MNP" in tabular.__all__)
    """)
    assert out.split() == ["True", "True", "deepod_mnp.models.anoonly", "True"]
    # ... and when DeepOD was imported first
    out = _run("""
        import deepod.models.tabular as tabular
        import deepod_mnp
        from deepod.models.tabular import MNP
        print(MNP is deepod_mnp.MNP, tabular.__all__.count("MNP"))
    """)
    assert out.split() == ["True", "1"]


def test_lazy_exports_name_what_register_with_deepod_registers():
    import importlib

    from deepod_mnp.deepod_plugin import EXPORTS, register_with_deepod

    register_with_deepod()
    tabular = importlib.import_module("deepod.models.tabular")
    registered = {n for n in tabular.__all__ if getattr(tabular, n).__module__.startswith("deepod_mnp.")}
    assert registered == set(EXPORTS)
    assert all(getattr(tabular, name).__module__ == path for name, path in EXPORTS.items())


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_plain_text_with_examples(command, capsys):
    text = _help([command, "--help"] if command else ["--help"], capsys)
    assert "``" not in text and ":class:" not in text and ":func:" not in text
    assert "example" in text and "deepod-mnp " in text.split("example")[1]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_with_a_default_states_it(command):
    parser = cli._build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) \
                and action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
            assert "default" in action.help, (command, action.option_strings)
        if action.option_strings and action.required:
            assert "required" in action.help, (command, action.option_strings)


def test_names_kept_in_the_cli_match_the_library():
    from deepod_mnp.benchmark.experiments import EXPERIMENTS
    from deepod_mnp.benchmark.runner import BACKENDS

    assert tuple(cli.BACKENDS) == tuple(BACKENDS)
    assert list(cli.EXPERIMENT_HELP) == list(EXPERIMENTS)


def test_labeled_ratio_default_is_shown(capsys):
    assert "share of the train anomalies that is labeled (default: 0.01)" in " ".join(
        _help(["bench", "--help"], capsys).split())
