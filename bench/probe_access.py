"""Probe checks: logins, exports, rendering and retention hold against hostile input."""

from __future__ import annotations
