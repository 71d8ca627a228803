"""One pydantic-settings `Settings` for the whole assistant (env prefix POLICY_ASSISTANT_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "bundled:multilingual-e5-small"


class IndexSettings(BaseModel):
    """Where the index lives and how clauses are embedded."""

    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: the bundled default, a Hugging Face hub id or a local folder "
        "with a sentence-transformers model.",
    )
    query_prefix: str = Field("query: ", description="Prompt put before a question (e5-style models).")
    passage_prefix: str = Field("passage: ", description="Prompt put before a clause (e5-style models).")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "policy-assistant",
        description="Where the bundled model is materialised once as a sentence-transformers folder.",
    )
    collection_prefix: str = Field(
        "clauses",
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,40}$",
        description="Start of the Chroma collection names; give each index its own when several share a server.",
    )
    quantize: bool = Field(
        True,
        description="Run the model's linear layers in int8 (dynamic quantisation): about 1.5x faster on CPU.",
    )
    batch_size: int = Field(32, ge=1, description="Clauses embedded per batch.")
    max_clause_chars: int = Field(
        400, ge=50, description="Clauses longer than this are split at sentence ends into paragraphs."
    )
    max_file_bytes: int = Field(20_000_000, ge=1, description="Corpus files larger than this are refused.")


class RetrievalSettings(BaseModel):
    """How candidates are found, fused and judged relevant."""

    candidates: int = Field(30, ge=1, description="Candidates taken from each of dense and BM25.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in the fusion.")
    lexical_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in the fusion.")
    min_relevance: float = Field(
        0.6,
        ge=0,
        le=1,
        description="Relevance (0–1, calibrated on held-out questions) below which the assistant refuses.",
    )


class AnswerSettings(BaseModel):
    """How answers are composed."""

    max_citations: int = Field(3, ge=1, description="At most this many clauses are cited in one answer.")
    max_sentences: int = Field(4, ge=1, description="At most this many sentences in an extractive answer.")
    relative_cut: float = Field(
        0.75,
        ge=0,
        le=1,
        description="A further clause is cited only if its fused score is at least this fraction of the best one's.",
    )
    relative_relevance: float = Field(
        0.6,
        ge=0,
        le=1,
        description="…and its relevance at least this fraction of the best clause's relevance.",
    )
    referral: str = Field(
        "建议拨打12345政务服务便民热线，或咨询相关主管部门。",
        description="Where to ask when nothing relevant is found.",
    )


class WebSettings(BaseModel):
    """The web UI: who may use the editors' page (and, optionally, the chat)."""

    editor_username: str = Field("", description="Editors' login name; the editors' page is off until it is set.")
    editor_password: SecretStr = Field(SecretStr(""), description="Editors' password (set it with the username).")
    chat_username: str = Field("", description="Login for the staff chat; empty: the chat is open.")
    chat_password: SecretStr = Field(SecretStr(""), description="Password for the staff chat login.")


class Settings(BaseSettings):
    """Effective settings, read from the environment (POLICY_ASSISTANT_*, nested with __)."""

    model_config = SettingsConfigDict(
        env_prefix="POLICY_ASSISTANT_", env_nested_delimiter="__", extra="ignore"
    )

    index_dir: Path = Field(Path("indexes"), description="Directory of the clause index.")
    corpus_dir: Path = Field(Path("corpus"), description="Default corpus folder for `index`.")
    chroma_url: str = Field(
        "", description="URL of a Chroma server (`chroma run`); empty uses the embedded store in index_dir."
    )
    state_dir: Path = Field(Path("state"), description="Where staff feedback on answers is kept (SQLite).")
    index: IndexSettings = Field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    web: WebSettings = Field(default_factory=WebSettings)
