"""The metadata database: rows, migrations, and the store the engine talks to.

May import: mlpipe.core, mlpipe.errors; SQLAlchemy and Alembic (only here). Never tracking,
settings, connections or anything above.
"""
