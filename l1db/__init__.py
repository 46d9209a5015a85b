"""l1db: the L1 (Alert Production) database API, schema and indexing.

``from l1db import L1db`` gives the backend-neutral API; ``L1db(config)``
returns the SQL or the Cassandra implementation for the config's URL.
"""

from .api import AP_OBJECT_COLUMNS, MONTH_DAYS, L1db, to_mjd_tai
from .config import ConfigError, L1dbConfig, load_config
from .errors import DatabaseUnreachable, L1dbError, SchemaError
from .frames import L1dbInputError

__all__ = [
    "L1db",
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
