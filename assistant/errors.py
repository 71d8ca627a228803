"""Errors that carry a hint saying what to do about them."""

from __future__ import annotations


class AssistantError(Exception):
    """An error a user can act on: `message` says what went wrong, `hint` what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class CorpusError(AssistantError):
    """A corpus file could not be read or parsed; names the file and the reason."""

    def __init__(self, path: str, reason: str, hint: str = "") -> None:
        super().__init__(f"{path}: {reason}", hint)
        self.path = path
        self.reason = reason


class IndexNotBuiltError(AssistantError):
    """The index directory holds no index yet."""

    def __init__(self, index_dir: str) -> None:
        super().__init__(
            f"no index in {index_dir}",
            "run `policy-assistant index` (or pass --index-dir / POLICY_ASSISTANT_INDEX_DIR)",
        )


class ModelError(AssistantError):
    """The embedding model could not be prepared or loaded."""


class InputTooLongError(AssistantError):
    """A question or conversation over the configured limits; `message` is the text shown to the asker."""


class MissingToolError(CorpusError):
    """A file needs an optional system tool that is not installed (`tool`: its command, e.g. `tesseract`)."""

    def __init__(self, path: str, reason: str, tool: str, hint: str = "") -> None:
        super().__init__(path, reason, hint)
        self.tool = tool
