"""Adapters of the earn service: SQL repositories."""
