"""The doors other than the CLI: the web UI (and, later, WeChat)."""
