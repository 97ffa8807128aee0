"""The metadata database: rows, migrations, and the store the engine talks to."""
