"""Probe checks: a failed or hostile publish leaves everything as it was."""

from __future__ import annotations
