"""A saved benchmark state: the folder ``l1db_state save`` writes and ``l1db_state restore`` reads.

Reaching steady state takes hours; a saved state lets later runs start from
the same database. The folder holds what each engine's own tools made (a
``pg_dump`` archive, a ``mariadb-dump`` script, an SQLite backup, Cassandra
snapshot SSTables; the backend's module says which) and ``manifest.json``:

======================  =====================================================
key                     meaning
======================  =====================================================
``format``              version of this layout (`FORMAT`)
``backend``             sqlite, postgresql, mysql or cassandra
``url``                 the source database (without its password)
``config``              the source's configuration (`L1dbConfig.as_dict`)
``schema_options``      the options the schema was made with (L1dbMetadata)
``schema_digest``       SHA-256 of the table definitions (the schema file)
``first_visit``         ``{"id", "mjd_tai"}`` of the first stored visit, or null
``last_visit``          the same for the last stored visit: ap_proto resumes after it
``row_counts``          rows of every table of the schema
``tools``               the tools used and their versions
``server_version``      the source server's version
``created``             when the state was saved (UTC, ISO)
``files``               every file of the folder with its size in bytes
======================  =====================================================

A folder is written under a temporary name beside its final one and renamed
only once complete (`new_state_dir`), so a folder with a manifest is whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import L1dbError
from .schema_model import SchemaDef

__all__ = [
    "FORMAT",
    "MANIFEST",
    "Manifest",
    "StateError",
    "check_matching",
    "find_tool",
    "new_state_dir",
    "read_manifest",
    "run_tool",
    "schema_digest",
    "tool_failure",
    "tool_version",
    "write_manifest",
]

#: Version of the folder layout and manifest keys.
FORMAT = 1
#: Name of the manifest file in a saved state's folder.
MANIFEST = "manifest.json"


class StateError(L1dbError):
    """A state cannot be saved or restored; the message is one line."""


@dataclasses.dataclass
class Manifest:
    """What ``manifest.json`` holds (see the module docstring for each key)."""

    backend: str
    url: str
    config: dict[str, Any]
    schema_options: dict[str, str]
    schema_digest: str
    first_visit: dict[str, Any] | None
    last_visit: dict[str, Any] | None
    row_counts: dict[str, int]
    tools: dict[str, str]
    server_version: str
    created: str = dataclasses.field(
        default_factory=lambda: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    files: dict[str, int] = dataclasses.field(default_factory=dict)
    format: int = FORMAT


def schema_digest(schema_def: SchemaDef) -> str:
    """SHA-256 of the table definitions: two configs with the same digest make the same columns."""
    tables = {name: dataclasses.asdict(table) for name, table in sorted(schema_def.tables.items())}
    return hashlib.sha256(json.dumps(tables, sort_keys=True, default=str).encode()).hexdigest()


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Write ``manifest.json`` into ``folder``, listing the files already there."""
    manifest.files = {str(p.relative_to(folder)): p.stat().st_size
                      for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(dataclasses.asdict(manifest), indent=2) + "\n")


def read_manifest(folder: str | os.PathLike[str]) -> Manifest:
    """Read and check a saved state's manifest and that its files are all there.

    Raises
    ------
    StateError
        If the folder, the manifest or a file it lists is missing, unreadable
        or of another format.
    """
    path = Path(folder) / MANIFEST
    where = f"{folder}: not a saved state"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise StateError(f"{where} (no {MANIFEST})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{where}: unreadable {MANIFEST} ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else None
        raise StateError(f"{where}: {MANIFEST} is of format {got!r}, this toolkit reads format {FORMAT}")
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise StateError(f"{where}: unreadable {MANIFEST} ({exc})") from None
    for name, size in manifest.files.items():
        file = Path(folder) / name
        if not file.is_file() or file.stat().st_size != size:
            raise StateError(f"{folder}: {name} is missing or not the size the manifest says ({size} bytes)")
    return manifest


def check_matching(manifest: Manifest, backend: str, options: Mapping[str, str], digest: str, folder: Path) -> None:
    """Refuse to restore a state into a database of another backend or another schema.

    Raises
    ------
    StateError
        Naming what differs.
    """
    if manifest.backend != backend:
        raise StateError(f"{folder} holds a {manifest.backend} database; the config's database is {backend}")
    diffs = [f"{k}: saved {v!r}, config {options.get(k)!r}" for k, v in manifest.schema_options.items()
             if options.get(k) != v]
    if diffs:
        raise StateError(f"{folder} was saved with other schema options ({'; '.join(diffs)}); "
                         "restore it with a config of the same options")
    if manifest.schema_digest != digest:
        # The packaged definitions change with the toolkit, e.g. when DiaObjectLast took its published columns.
        raise StateError(f"{folder} was saved with other table definitions than the config's (its schema_file, "
                         "else the toolkit's packaged schema): restore it with the toolkit version that saved it")


@contextlib.contextmanager
def new_state_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary folder beside ``path`` that becomes ``path`` when the block ends without error.

    On error the temporary folder is removed: ``path`` is either whole or absent.

    Raises
    ------
    StateError
        If ``path`` exists (a saved state is never overwritten) or its parent
        folder cannot be made.
    """
    final = Path(path)
    if final.exists():
        raise StateError(f"{final} exists: save into a new folder (a saved state is never overwritten)")
    for parent in (final.parent, *final.parent.parents):
        if parent.exists() and not parent.is_dir():
            raise StateError(f"{parent} is a file, not a folder: cannot save into {final}")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"{final.parent}: cannot make the folder: {exc.strerror}") from None
    partial = final.parent / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
    except OSError as exc:
        raise StateError(f"{final.parent}: cannot write the saved state there: {exc.strerror}") from None
    try:
        yield partial
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def find_tool(candidates: Sequence[str], package: str) -> str:
    """Path of the first of ``candidates`` (names on the PATH or absolute paths) that exists.

    Raises
    ------
    StateError
        Naming the tool and the package that provides it.
    """
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    raise StateError(f"{Path(candidates[0]).name} not found: install {package}")


def tool_version(command: Sequence[str]) -> str:
    """First line of what a tool says of its version (``command`` includes the flag)."""
    try:
        proc = subprocess.run(list(command), capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def run_tool(command: Sequence[str], what: str, env: Mapping[str, str] | None = None,
             stdin: Any = None, stdout: Any = None, timeout: float | None = None) -> str:
    """Run an engine's tool; return its standard output (unless redirected to ``stdout``).

    Raises
    ------
    StateError
        ``what`` and the tool's last error line, if it fails.
    """
    full_env = dict(os.environ)
    full_env.update(env or {})
    try:
        proc = subprocess.run(list(command), stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=full_env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise StateError(f"{what}: {Path(command[0]).name} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise StateError(f"{what}: cannot run {command[0]}: {exc}") from None
    if proc.returncode != 0:
        raise tool_failure(what, proc.stderr or proc.stdout or "", proc.returncode)
    return proc.stdout if stdout is None else ""


def tool_failure(what: str, output: str, status: int) -> StateError:
    """The one-line error of a tool that failed: ``what`` and the last line of its ``output`` naming an error."""
    # nodetool ends with where to read its help: the line before says what went wrong.
    lines = [line.strip() for line in output.splitlines() if line.strip() and not line.startswith("See '")]
    errors = [line for line in lines if "error" in line.lower() or "exception" in line.lower()]
    reason = (errors or lines or [f"exit code {status}"])[-1]
    return StateError(f"{what} failed: {reason[:400]}")
