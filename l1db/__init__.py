"""l1db: the L1 (Alert Production) database API, schema and indexing.

``from l1db import L1db`` gives the backend-neutral API (the type to annotate
with); ``open_l1db(config)`` returns the SQL or the Cassandra implementation
for the config's URL (the backends: `l1db.backends`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import L1db
    from .config import ConfigError, L1dbConfig, load_config
    from .constants import AP_OBJECT_COLUMNS, MONTH_DAYS, to_mjd_tai
    from .errors import DatabaseUnreachable, L1dbError, SchemaError
    from .factory import open_l1db
    from .frames import L1dbInputError

#: Where each name of the package's API lives. Imported on first use (PEP 562): a command that
#: needs one module of the package (``cassandra_nodes``, any ``--help``) does not pay for pandas,
#: SQLAlchemy, numba and healpy.
_EXPORTS = {
    "L1db": "api",
    "open_l1db": "factory",
    "L1dbConfig": "config",
    "load_config": "config",
    "AP_OBJECT_COLUMNS": "constants",
    "MONTH_DAYS": "constants",
    "to_mjd_tai": "constants",
    "ConfigError": "config",
    "L1dbError": "errors",
    "DatabaseUnreachable": "errors",
    "SchemaError": "errors",
    "L1dbInputError": "frames",
}

__all__ = [
    "L1db",
    "open_l1db",
    "L1dbConfig",
    "load_config",
    "AP_OBJECT_COLUMNS",
    "MONTH_DAYS",
    "to_mjd_tai",
    "ConfigError",
    "L1dbError",
    "DatabaseUnreachable",
    "SchemaError",
    "L1dbInputError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
