"""``python -m tools.upstream``: write MNP's DeepOD pull request and say what was written."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tools.upstream.build import build_upstream
from tools.upstream.manifest import PATCH_NAME, PIN_FIX_DIR, PIN_FIX_PATCH, TARGET_PATH, UpstreamError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.upstream",
        description="Write MNP as a pull request against DeepOD's main branch (the module, exports, test, "
                    "README and docs, patches, descriptions).")
    parser.add_argument("--out", required=True, help="output folder, laid out as DeepOD's tree")
    parser.add_argument("--deepod-src", default=None,
                        help="DeepOD main: a checkout or `git archive` tarball (default: the tarball in "
                             "../shared/deepod-main)")
    parser.add_argument("--run-tests", action="store_true",
                        help="run DeepOD's tests of its weakly supervised tabular models and MNP's on main "
                             "with both patches applied (pin-fix/EVIDENCE.md, PULL_REQUEST.md)")
    args = parser.parse_args(argv)
    try:
        result = build_upstream(args.out, args.deepod_src, run_tests=args.run_tests)
    except UpstreamError as exc:
        print(f"python -m tools.upstream: {exc}", file=sys.stderr)
        return 1
    src = result["source"]
    print(f"DeepOD source: {src['origin']} (version {src['version']})")
    print(f"Wrote to {result['out_dir']}:")
    for path in result["files"]:
        print(f"  {path}")
    print(f"{PATCH_NAME}: {result['patch_lines']} lines; {PIN_FIX_DIR}/{PIN_FIX_PATCH}: "
          f"{result['pin_fix']['patch_lines']} lines (both checked with git apply on DeepOD main)")
    print("Files of the pull request (lines; for DeepOD's own files, lines added and removed):")
    for path, (added, removed) in result["changes"].items():
        size = f"{result['lines'][path]:5d}" if path in result["new_files"] else f"+{added} -{removed}"
        print(f"  {size:>9}  {path}{'  (new)' if path in result['new_files'] else ''}")
    print(f"{TARGET_PATH} imports: {', '.join(result['module_imports'])}")
    for note in result["pin_fix"]["notes"]:
        print(f"note: {note}")
    if result["evidence"] is not None:
        for r in result["evidence"]["results"]:
            print(f"  {r['module']}: {r['tests']} tests, {r['failures']} failures, {r['errors']} errors "
                  f"({r['seconds']} s)")
        print("DeepOD tests: " + ("all passed" if result["evidence"]["ok"] else "FAILURES (see EVIDENCE.md)"))
        return 0 if result["evidence"]["ok"] else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
