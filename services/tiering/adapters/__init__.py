"""Adapters of the tiering service: SQL repositories and the events it publishes."""
