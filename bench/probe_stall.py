"""Probe checks: a hostile document cannot stall answers or publishing (linear text paths)."""

from __future__ import annotations
