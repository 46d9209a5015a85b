"""`open_l1db`: the L1 database client for a config, whatever the backend.

The backend is picked from the config's URL by the table of
`l1db.backends`; its wing is imported only then, so that nothing below this
module imports a backend. The API (pandas, SQLAlchemy, numba's kernels) comes
with the wing: a command that imports this module pays for it only when it
opens a database, not for ``--help`` or a bad config.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .backends import backend_for
from .config import L1dbConfig, load_config

if TYPE_CHECKING:
    from .api import L1db
    from .timer import TimingSink

__all__ = ["open_l1db"]


def open_l1db(config: str | Path | L1dbConfig, monitor: TimingSink | None = None) -> L1db:
    """A client of the database of ``config``: the implementation of `L1db` for its URL.

    Parameters
    ----------
    config : `str`, `pathlib.Path` or `L1dbConfig`
        Configuration file (read and validated once, here) or validated configuration.
    monitor : callable, optional
        Default sink of the timing records of the stores (see `L1db`).

    Raises
    ------
    l1db.config.ConfigError
        If the file cannot be read or is not valid.
    """
    if not isinstance(config, L1dbConfig):
        config = load_config(config)
    implementation: type[L1db] = backend_for(config.url).load()
    return implementation(config, monitor)
