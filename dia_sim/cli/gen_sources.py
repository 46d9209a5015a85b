"""Command-line tool `gen_sources`: write the catalogue of variable sources.

Example::

    gen_sources -o sources.npy --per-visit 10000 --seed 1
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
from pathlib import Path

from l1db.cli import quiet_broken_pipe

from ..catalog import CATALOG_DTYPE, expected_count, generate_catalog
from ..survey import FOV_DEG, SKIES, SKY

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
        "--fov", type=float, default=FOV_DEG, metavar="DEG",
        help="diameter of the field of view, degrees (default: %(default)g)",
    )
    parser.add_argument(
        "--sky", choices=SKIES, default=SKY,
        help="southern hemisphere (Dec <= 0) or the whole sky (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: fresh entropy)")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    return parser


def _check_values(args: argparse.Namespace) -> float:
    """Check the option values; return the expected number of sources.

    Raises
    ------
    ValueError
        One line naming the option and its value.
    """
    if not (math.isfinite(args.per_visit) and args.per_visit > 0):
        raise ValueError(f"--per-visit: bad value {args.per_visit:g}; allowed: a number > 0")
    if not (math.isfinite(args.fov) and 0 < args.fov < 180):
        raise ValueError(f"--fov: bad value {args.fov:g}; allowed: a number of degrees between 0 and 180")
    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed: bad value {args.seed}; allowed: an integer >= 0")
    return expected_count(args.per_visit, args.fov, args.sky)


@quiet_broken_pipe
def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 success, 1 failure or bad value, 2 usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help or a usage error, already printed
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)

    try:
        mean = _check_values(args)
    except ValueError as exc:
        print(f"gen_sources: error: {exc}", file=sys.stderr)
        return 1
    output: Path = args.output
    if output.exists() and not args.force:
        print(f"gen_sources: error: {output} exists (use --force to replace it)", file=sys.stderr)
        return 1
    if not output.parent.is_dir():
        print(f"gen_sources: error: directory {output.parent} does not exist", file=sys.stderr)
        return 1
    # A catalogue that cannot fit is refused before it is drawn (a huge --per-visit, e.g. 1e300).
    size = mean * CATALOG_DTYPE.itemsize
    free = shutil.disk_usage(output.parent).free
    if size > free:
        print(f"gen_sources: error: --per-visit {args.per_visit:g} makes about {mean:.3g} sources "
              f"({size / 1e9:.3g} GB), more than the {free / 1e9:.3g} GB free in {output.parent}; give a smaller "
              f"--per-visit", file=sys.stderr)
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


if __name__ == "__main__":  # python -m dia_sim.cli.gen_sources
    sys.exit(main())
