"""Adapters of the notify service: SQL repositories, the outcome publisher and the channels."""
