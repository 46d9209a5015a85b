"""Command-line tool `gen_sources`: write the catalogue of variable sources.

Example::

    gen_sources -o sources.npy --per-visit 10000 --seed 1
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from l1db.cli import quiet_broken_pipe

from ..catalog import SKIES, expected_count, generate_catalog

__all__ = ["main"]

_LOG = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gen_sources",
        description=(
            "Write a catalogue of variable sources uniformly distributed on the sky "
            "(a .npy file of float64 ra, dec in degrees, 16 bytes per source), with a "
            "density that puts PER_VISIT sources in one field of view on average. "
            "At the defaults the southern sky holds about 21.4 million sources (343 MB)."
        ),
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="FILE", help="output file (.npy)")
    parser.add_argument(
        "--per-visit", type=float, default=10000, metavar="N",
        help="mean number of sources in one field of view (default: %(default)g)",
    )
    parser.add_argument(
        "--fov", type=float, default=3.5, metavar="DEG",
        help="diameter of the field of view, degrees (default: %(default)g)",
    )
    parser.add_argument(
        "--sky", choices=SKIES, default="south",
        help="southern hemisphere (Dec <= 0) or the whole sky (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: fresh entropy)")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return parser


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 success, 1 failure, 2 bad arguments)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)

    try:
        mean = expected_count(args.per_visit, args.fov, args.sky)
    except ValueError as exc:
        print(f"gen_sources: error: {exc}", file=sys.stderr)
        return 2
    output: Path = args.output
    if output.exists() and not args.force:
        print(f"gen_sources: error: {output} exists (use --force to replace it)", file=sys.stderr)
        return 1
    if not output.parent.is_dir():
        print(f"gen_sources: error: directory {output.parent} does not exist", file=sys.stderr)
        return 1

    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=round(mean), unit=" sources", unit_scale=True, desc="gen_sources")
    try:
        count = generate_catalog(
            output, per_visit=args.per_visit, fov_deg=args.fov, sky=args.sky, seed=args.seed,
            progress=bar.update if bar is not None else None,
        )
    except OSError as exc:
        print(f"gen_sources: error: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gen_sources: interrupted, nothing written", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    size = output.stat().st_size
    print(f"wrote {count:,} sources to {output} ({size / 1e6:,.1f} MB)")
    return 0
