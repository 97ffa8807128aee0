"""The pure core: DAGs, operators' base, groups, mapping, trigger rules, templating.

Nothing here does IO, reads the clock or the environment, or imports a heavy library.

May import: mlpipe.errors and the standard library (plus jinja2, croniter); never the engine.
"""
