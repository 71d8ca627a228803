"""The doors other than the CLI: the web UI (staff chat, editors) and the WeChat official account."""
