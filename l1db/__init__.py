"""l1db: the L1 (Alert Production) database API, schema and indexing.

``from l1db import L1db`` gives the backend-neutral API (the type to annotate
with); ``open_l1db(config)`` returns the SQL or the Cassandra implementation
for the config's URL (the backends: `l1db.backends`).
"""

from .api import L1db
from .config import ConfigError, L1dbConfig, load_config
from .constants import AP_OBJECT_COLUMNS, MONTH_DAYS, to_mjd_tai
from .errors import DatabaseUnreachable, L1dbError, SchemaError
from .factory import open_l1db
from .frames import L1dbInputError

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
