"""Adapters that put the assistant into other frameworks."""
