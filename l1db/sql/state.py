"""Saving and restoring an SQL L1 database with each engine's own tools.

- SQLite: the online backup API (`sqlite3.Connection.backup`), a page-by-page
  copy of the whole file (``l1db.sqlite3`` in the saved folder); a restore
  writes a new file beside the target and renames it at the end.
- PostgreSQL: ``pg_dump`` custom format of the L1 tables (``l1db.dump``), of
  the server's major version (``/usr/lib/postgresql/MAJOR/bin`` first);
  ``pg_restore --single-transaction``, so a failed restore leaves nothing.
- MariaDB/MySQL: ``mariadb-dump --single-transaction`` of the L1 tables
  (``l1db.sql``) and the ``mariadb`` client to replay it; DDL commits on its
  own there, so a failed restore drops what it created.

Credentials go to the tools through the environment (``PGPASSWORD``) or a
private option file, never on a command line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from ..backends import backend_for
from ..config import L1dbConfig, normalize_url, safe_url
from ..state import StateError, find_tool, run_tool, tool_version
from .database import error_reason, make_engine
from .schema import L1Schema

__all__ = ["SqlState"]

_LOG = logging.getLogger(__name__)

#: The saved file of each backend, in the state's folder.
_FILES = {"sqlite": "l1db.sqlite3", "postgresql": "l1db.dump", "mysql": "l1db.sql"}


def _sqlite_backup(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` into a new file ``target`` with the online backup API."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as db, \
                contextlib.closing(sqlite3.connect(target)) as copy:
            db.backup(copy)
            # A backup copies pages as they are: check that they make a database.
            problem = copy.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        raise StateError(f"SQLite backup of {source} failed: {exc}") from None
    if problem != "ok":
        raise StateError(f"SQLite backup of {source} failed: {problem}")


class SqlState:
    """Save or restore the L1 database of an SQL config.

    Parameters
    ----------
    config : `L1dbConfig`
        The database to save, or the empty database to restore into.
    run_dir : path-like, optional
        Must be `None`: a run dir of local nodes is the Cassandra backend's
        (the constructor of every backend's state takes the same arguments).
    """

    def __init__(self, config: L1dbConfig, run_dir: str | os.PathLike[str] | None = None) -> None:
        if run_dir is not None:
            raise StateError("--run-dir is for Cassandra configs only")
        self.config = config
        self.url = sa.make_url(normalize_url(config.url))
        self.backend = backend_for(config.url).name
        if self.backend not in _FILES:
            raise StateError(f"saving and restoring {self.backend} databases is not supported")
        self.schema = L1Schema(config)
        self._tools: dict[str, tuple[str, str]] | None = None

    # -- what every backend offers the command ---------------------------------------

    def schema_options(self) -> dict[str, str]:
        """The options the schema is made with (what L1dbMetadata holds)."""
        return self.schema.schema_options()

    def tools(self) -> dict[str, str]:
        """The tools a save or restore runs, by path, with their versions.

        Raises
        ------
        StateError
            If a tool is missing (naming the package that provides it).
        """
        return {path: version for path, version in self._found_tools().values()}

    def _found_tools(self) -> dict[str, tuple[str, str]]:
        """(path, version) of the tool of each role: ``dump`` and ``load`` (the backup API for SQLite)."""
        if self._tools is None:
            if self.backend == "sqlite":
                api = ("sqlite3", f"SQLite {sqlite3.sqlite_version} (Python sqlite3 backup API)")
                self._tools = {"dump": api, "load": api}
            elif self.backend == "postgresql":
                major = self._server_major()
                package = f"postgresql-client-{major}"
                self._tools = {}
                for role, name in (("dump", "pg_dump"), ("load", "pg_restore")):
                    path = find_tool([f"/usr/lib/postgresql/{major}/bin/{name}", name], package)
                    version = tool_version([path, "--version"])
                    found = re.search(r"(\d+)\.\d+", version)
                    if not found or int(found.group(1)) != major:
                        raise StateError(f"{name} of PostgreSQL {major} (the server's) not found ({path} is "
                                         f"{version}): install {package}")
                    self._tools[role] = (path, version)
            else:
                self._tools = {}
                for role, names in (("dump", ["mariadb-dump", "mysqldump"]), ("load", ["mariadb", "mysql"])):
                    path = find_tool(names, "mariadb-client")
                    self._tools[role] = (path, tool_version([path, "--version"]))
        return self._tools

    def _tool(self, role: str) -> str:
        return self._found_tools()[role][0]

    def check_empty(self) -> None:
        """Refuse a target that holds any table.

        Raises
        ------
        StateError
            If the database holds tables (or cannot be reached).
        """
        if self.backend == "sqlite":
            path = Path(self.url.database or "")
            if not path.is_file() or path.stat().st_size == 0:
                return
        tables = self._table_names()
        if tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise StateError(f"{safe_url(self.url)} is not empty ({len(tables)} tables: {shown}): "
                             "restore into an empty database")

    def save(self, folder: Path) -> None:
        """Save the L1 tables into ``folder`` (which exists and is empty)."""
        target = folder / _FILES[self.backend]
        if self.backend == "sqlite":
            _sqlite_backup(Path(self._database()), target)
        elif self.backend == "postgresql":
            names = list(self.schema.tables)
            if self.schema.partitions is not None:
                # pg_dump -t of a partitioned table dumps no rows: they are in its partitions.
                names += self._engine_call("list the time partitions of", lambda conn: [
                    p.name for p in self.schema.partitions.existing(conn)])
            tables = [arg for name in names for arg in ("-t", f'"{name}"')]
            args, env = self._pg_connection()
            run_tool([self._tool("dump"), *args, "--format=custom", "--no-owner", "--no-privileges",
                      f"--file={target}", *tables], "pg_dump", env=env)
        else:
            with self._mysql_options() as options:
                run_tool([self._tool("dump"), options, "--single-transaction", "--skip-dump-date",
                          "--hex-blob", f"--result-file={target}", self._database(), *self.schema.tables],
                         "mariadb-dump")

    def restore(self, folder: Path) -> None:
        """Restore the saved tables of ``folder`` into the (empty) target; `clear` undoes a failed one."""
        saved = folder / _FILES[self.backend]
        if self.backend == "sqlite":
            self._restore_sqlite(saved)
        elif self.backend == "postgresql":
            args, env = self._pg_connection()
            run_tool([self._tool("load"), *args, "--no-owner", "--no-privileges", "--exit-on-error",
                      "--single-transaction", str(saved)], "pg_restore", env=env)
        else:
            with self._mysql_options() as options, open(saved) as script:
                run_tool([self._tool("load"), options, "--batch", self._database()], "mariadb", stdin=script)

    def clear(self) -> None:
        """Drop every table of the target (it was empty before the restore)."""
        if self.backend == "sqlite":
            Path(self._database()).unlink(missing_ok=True)
            return
        engine = make_engine(self.config.url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                meta = sa.MetaData()
                meta.reflect(conn)
                meta.drop_all(conn)
        except sa.exc.SQLAlchemyError as exc:
            _LOG.warning("could not drop the restored tables: %s", error_reason(exc))
        finally:
            engine.dispose()

    # -- helpers ------------------------------------------------------------------------

    def _database(self) -> str:
        """The URL's database (SQLite's file, MariaDB's database), which the tools save and restore."""
        if self.url.database is None:
            raise StateError(f"{safe_url(self.url)}: the URL names no database")
        return self.url.database

    def _restore_sqlite(self, saved: Path) -> None:
        path = Path(self._database())
        if not path.parent.is_dir():
            raise StateError(f"{path.parent}: no such folder")
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            _sqlite_backup(saved, partial)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)

    def _engine_call(self, what: str, call):
        engine = make_engine(self.config.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return call(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StateError(f"cannot {what} {safe_url(self.url)}: {error_reason(exc)}") from None
        finally:
            engine.dispose()

    def _table_names(self) -> list[str]:
        return sorted(self._engine_call("read the tables of", lambda conn: sa.inspect(conn).get_table_names()))

    def _server_major(self) -> int:
        return int(self._engine_call("connect to", lambda conn: conn.dialect.server_version_info[0]))

    def _pg_connection(self) -> tuple[list[str], dict[str, str]]:
        """Connection options of pg_dump and pg_restore, and their environment (the password)."""
        url = self.url
        args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 5432}",
                f"--dbname={url.database}"]
        if url.username:
            args.append(f"--username={url.username}")
        env = {"PGCONNECT_TIMEOUT": "10"}
        if url.password is not None:
            env["PGPASSWORD"] = str(url.password)
        return args, env

    @contextlib.contextmanager
    def _mysql_options(self) -> Iterator[str]:
        """``--defaults-extra-file=F`` (the first argument of a MariaDB tool) with the connection options."""
        url = self.url
        lines = ["[client]", f"host={url.host or '127.0.0.1'}", f"port={url.port or 3306}"]
        if url.username:
            lines.append(f"user={url.username}")
        if url.password is not None:
            lines.append(f'password="{url.password}"')
        with tempfile.TemporaryDirectory(prefix="l1db_state-") as tmp:
            path = Path(tmp) / "client.cnf"
            path.touch(mode=0o600)
            path.write_text("\n".join(lines) + "\n")
            yield f"--defaults-extra-file={path}"
