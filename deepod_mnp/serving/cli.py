"""The ``deepod-mnp score`` subcommand: its arguments and its handler (heavy imports inside the handler)."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``score`` to the CLI's subparsers."""
    score = sub.add_parser(
        "score", help="score a Parquet file/directory or a CSV with a saved model, streamed in chunks",
        description="Score every row of a table with a saved model (MNP checkpoint or exported .onnx) and "
                    "write the scores as Parquet, reading and writing in bounded chunks: memory does not "
                    "grow with the number of rows. Feature columns are matched by name to the columns the "
                    "model was fitted on; text columns go in raw (the model encodes them).")
    score.add_argument("--model", required=True,
                       help="an MNP.save_model checkpoint or an exported .onnx file")
    score.add_argument("--data", required=True,
                       help="a Parquet file, a directory of Parquet files, or a .csv/.csv.gz/.tsv file")
    score.add_argument("--out", required=True, help="output Parquet file")
    score.add_argument("--label", action="store_true", help="add 'label' (score above the model's threshold)")
    score.add_argument("--explain", action="store_true",
                       help="add the explanation columns of score_components (MNP checkpoints only)")
    score.add_argument("--keep", default="", help="comma-separated input columns to copy, e.g. an id")
    score.add_argument("--chunk-rows", type=int, default=65_536, help="rows per chunk (default 65536)")
    score.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    score.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return score


def run(args: argparse.Namespace) -> int:
    """Handler of ``deepod-mnp score``."""
    from deepod_mnp.serving.stream import load_scorer, score_table

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = load_scorer(args.model)
    keep = [c.strip() for c in args.keep.split(",") if c.strip()]
    n = score_table(model, args.data, args.out, label=args.label, explain=args.explain, keep=keep,
                    chunk_rows=args.chunk_rows, progress=not args.no_progress)
    print(f"Scored {n:,} rows into {args.out}")
    return 0
