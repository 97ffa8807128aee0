"""Running DAGs: task instances, their state, logs, XCom and retries.

May import: mlpipe.store (its protocols), mlpipe.artifacts, mlpipe.tracking, mlpipe.hooks,
mlpipe.connections, mlpipe.settings, mlpipe.core. Never an operator or mlpipe.ml.
"""
