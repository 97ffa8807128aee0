"""Pure view-model builders for the web pages: the grid matrix, the graph layout, the
trigger form's fields and their validation, log text to HTML, MLflow UI links.

No IO: each takes DAG objects and store records and returns plain dataclasses (or safe
HTML) that templates draw, so each is tested without a server.
"""
