"""The SQL backend (SQLite, PostgreSQL, MariaDB/MySQL through SQLAlchemy): `l1db.sql.l1db_sql.L1dbSql`."""
