"""Running DAGs: task instances, their state, logs, XCom and retries."""
