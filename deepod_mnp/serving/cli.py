"""The ``deepod-mnp score`` subcommand: its arguments and its handler (heavy imports inside the handler).

Every usage or data error of ``score`` reaches the command line as
:class:`~deepod_mnp.serving.stream.ScoringError`, one line naming the file,
the column or the row; the CLI prints it and exits with status 2 (with
``--verbose`` after the traceback).
"""
from __future__ import annotations

import argparse
import sys

SCORE_EPILOG = """\
examples:
  deepod-mnp score --model mnp.pt --data rows.parquet --out scores.parquet --label --keep id
  deepod-mnp score --model mnp.pt --data day/ --out day.parquet --invalid quarantine --keep id
  deepod-mnp score --model mnp.pt --data day/ --out day.parquet --invalid quarantine --keep id --resume

Bad rows (a missing value, NaN, inf, a number beyond float32's range, text
that is not a number): --invalid error (default) stops at the first one and
names its row and column; skip leaves them out; quarantine leaves them out
and writes them with their row and reason to OUT's .rejected.parquet (e.g.
scores.rejected.parquet). The last line counts rows read, scored and rejected.

OUT appears only when every row is scored; finished chunks wait in
OUT.partial/. After an interruption, the same command with --resume goes on
from the last finished chunk. Exit status: 0, or 2 after a usage or data
error (one line; --verbose adds the traceback), 130 when interrupted.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``score`` to the CLI's subparsers."""
    score = sub.add_parser(
        "score", help="score a Parquet file/directory or a CSV with a saved model, streamed in chunks",
        description="Score every row of a table with a saved model (a checkpoint or an exported .onnx) and "
                    "write the scores as Parquet, reading and writing in bounded chunks: memory does not "
                    "grow with the number of rows. Feature columns are matched by name to the columns the "
                    "model was fitted on; text columns go in raw (the model encodes them).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SCORE_EPILOG)
    score.add_argument("--model", required=True,
                       help="a checkpoint of any of our detectors (save_model, deepod-mnp fit) or an "
                            "exported .onnx file (required)")
    score.add_argument("--data", required=True,
                       help="a Parquet file, a directory of Parquet files, or a .csv/.csv.gz/.tsv file "
                            "(required)")
    score.add_argument("--out", required=True,
                       help="output Parquet file, not the input nor inside an input directory (required)")
    score.add_argument("--label", action="store_true", help="add 'label' (score above the model's threshold)")
    score.add_argument("--explain", action="store_true",
                       help="add the explanation columns of score_components (MNP checkpoints only)")
    score.add_argument("--keep", default="",
                       help="comma-separated input columns to copy, e.g. an id (default: none)")
    score.add_argument("--invalid", choices=("error", "skip", "quarantine"), default="error",
                       help="what a bad row does: stop the run naming it (error, the default), leave it out "
                            "(skip), or leave it out and write it with the reason to OUT's .rejected.parquet "
                            "(quarantine)")
    score.add_argument("--resume", action="store_true",
                       help="continue an interrupted run of the same command from its last finished chunk")
    score.add_argument("--chunk-rows", type=int, default=65_536, help="rows per chunk (default 65536)")
    score.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    score.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    score.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="log progress and print the traceback of an error")
    return score


def run(args: argparse.Namespace) -> int:
    """Handler of ``deepod-mnp score``: raises ``ScoringError`` (one line) for usage and data errors."""
    from deepod_mnp.serving.stream import ScoringError, _pyarrow, check_paths, load_scorer, score_table

    try:
        if args.chunk_rows < 1:
            raise ScoringError(f"--chunk-rows must be >= 1, got {args.chunk_rows}.")
        if args.threads is not None and args.threads < 1:
            raise ScoringError(f"--threads must be >= 1, got {args.threads}.")
        check_paths(args.data, args.out, args.model)  # before any work
        _pyarrow()
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = load_scorer(args.model)
        keep = [c.strip() for c in args.keep.split(",") if c.strip()]
        summary = score_table(model, args.data, args.out, label=args.label, explain=args.explain, keep=keep,
                              chunk_rows=args.chunk_rows, progress=not args.no_progress, invalid=args.invalid,
                              resume=args.resume, model_path=args.model)
    except ScoringError:
        raise
    except KeyboardInterrupt:
        print(f"deepod-mnp score: interrupted; rerun with --resume to go on from the last finished chunk "
              f"(kept in {args.out}.partial).", file=sys.stderr)
        return 130
    except (ValueError, ImportError, OSError) as exc:  # CheckpointError, missing files, pyarrow's own
        raise ScoringError(" ".join(str(exc).split())) from exc
    print(summary.line())
    return 0
