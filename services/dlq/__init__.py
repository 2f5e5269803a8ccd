"""services.dlq: list, inspect and replay the dead letters of every consumed topic."""
