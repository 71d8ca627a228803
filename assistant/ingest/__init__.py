"""Ingest: files → policy documents → clauses."""
