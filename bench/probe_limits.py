"""Probe checks: the server, the chat queue and anonymous writes are bounded."""

from __future__ import annotations
