"""Policy-interpretation assistant: cited answers from government policy clauses."""

__version__ = "0.1.0"
