"""One pydantic-settings `Settings` for the whole assistant (env prefix POLICY_ASSISTANT_)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistant.ingest.limits import Limits

DEFAULT_MODEL = "bundled:multilingual-e5-small"


class IndexSettings(BaseModel):
    """Where the index lives and how clauses are embedded."""

    model: str = Field(
        DEFAULT_MODEL,
        description="Embedding model: the bundled default, a Hugging Face hub id or a local folder "
        "with a sentence-transformers model.",
    )
    tuned: bool = Field(
        True,
        description="Use the bundled model's tuning for citizens' questions (LoRA weights shipped in the package, "
        "and the relevance judge fitted with them); off: plain multilingual-e5-small. Only for the bundled default.",
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
        400, ge=50, description="Clauses longer than this are split at paragraph and sentence ends, and a sentence "
        "longer than this at a comma (or, with none, at this length): no clause is longer."
    )
    max_file_bytes: int = Field(20_000_000, ge=1, description="Corpus files (and uploads) larger than this are "
                                "refused.")
    max_expanded_bytes: int = Field(100_000_000, ge=1000, description="A DOCX whose parts expand past this many "
                                    "bytes is refused before it is unpacked (zip bombs).")
    max_text_chars: int = Field(2_000_000, ge=1000, description="A file whose text is longer than this is refused.")
    max_clauses: int = Field(5000, ge=1, description="A file that splits into more clauses than this is refused.")
    parse_cpu_s: int = Field(60, ge=0, description="CPU seconds that reading one file (an upload, its preview, a "
                             "corpus file at index time) may take, in a child process; past it the file is refused. "
                             "0: read in the server's own process, unbounded.")
    parse_memory_bytes: int = Field(1_000_000_000, ge=200_000_000, description="Address space of the child process "
                                    "that reads one file; a file that needs more is refused.")

    def limits(self) -> Limits:
        """The bounds one corpus file must keep within."""
        return Limits(max_file_bytes=self.max_file_bytes, max_expanded_bytes=self.max_expanded_bytes,
                      max_text_chars=self.max_text_chars, max_clauses=self.max_clauses,
                      parse_cpu_s=self.parse_cpu_s, parse_memory_bytes=self.parse_memory_bytes)


class RetrievalSettings(BaseModel):
    """How candidates are found, fused and judged relevant."""

    candidates: int = Field(30, ge=1, description="Candidates taken from each of dense and BM25.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal-rank-fusion constant.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in the fusion.")
    lexical_weight: float = Field(1.0, ge=0, description="Weight of the BM25 ranking in the fusion.")
    reranker: str = Field(
        "", description="A sentence-transformers CrossEncoder (a hub id such as BAAI/bge-reranker-v2-m3, if "
        "downloaded, or a folder) that scores the judged candidates: its probability is averaged with the judge's "
        "and reorders them. Empty: off.")
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
    max_answer_chars: int = Field(150, ge=20, description="An extractive answer's body (without citations) stops "
                                  "before this many characters; its first sentence is always given whole.")
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


class LimitSettings(BaseModel):
    """Bounds on what one asker may send, in every door (web, WeChat, CLI, API)."""

    max_question_chars: int = Field(500, ge=10, description="Longer questions are refused with a message.")
    max_history_turns: int = Field(20, ge=0, description="A conversation sent with a question may hold at most "
                                   "this many earlier questions.")
    max_history_chars: int = Field(5000, ge=0, description="…and at most this many characters of them in all.")


class WebSettings(BaseModel):
    """The web UI: who may use the editors' page (and, optionally, the chat)."""

    editor_username: str = Field("", description="Editors' login name; the editors' page is off until it is set.")
    editor_password: SecretStr = Field(SecretStr(""), description="Editors' password (set it with the username).")
    chat_username: str = Field("", description="Login for the staff chat; empty: the chat is open.")
    chat_password: SecretStr = Field(SecretStr(""), description="Password for the staff chat login.")
    allowed_origins: list[str] = Field(
        default_factory=list, description="Other sites (scheme://host[:port]) whose pages may call this server from "
        "a browser (CORS and state-changing requests); empty: only the server's own pages.")
    max_request_bytes: int = Field(1_000_000, ge=10_000, description="Larger request bodies are refused (413), "
                                   "uploads excepted.")
    max_upload_files: int = Field(20, ge=1, description="Editors' uploads: at most this many files of at most "
                                  "index.max_file_bytes each in one request.")
    max_upload_folder_bytes: int = Field(2_000_000_000, ge=0, description="Uploads are refused (507) while the "
                                         "upload folder holds this many bytes; 0: no bound.")
    upload_max_age_s: int = Field(3600, ge=60, description="Uploaded files are deleted from the upload cache "
                                  "after this long (a published file is kept in the corpus).")
    max_sessions: int = Field(1000, ge=10, description="Browser sessions whose state (the last answer, for "
                              "feedback) is kept in memory; the least recently used are forgotten first.")
    login_max_failures: int = Field(5, ge=1, description="Failed logins one client may make in the window before "
                                    "it is refused.")
    login_max_account_failures: int = Field(20, ge=1, description="Failed logins for one account (from any "
                                            "client) in the window before the account is refused.")
    login_window_s: int = Field(900, ge=1, description="The window of the failed-login limits (seconds).")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses or networks (e.g. 127.0.0.1, 10.0.0.0/8) of reverse proxies "
        "whose X-Forwarded-For and X-Forwarded-Proto name the client (for the login limits and the logs); "
        "empty: every client is the address it connects from, whatever it sends.")
    max_header_bytes: int = Field(65536, ge=4096, description="A request whose headers (request line included) "
                                  "pass this many bytes is refused (431) and its connection closed.")
    max_headers: int = Field(100, ge=10, description="A request with more headers than this is refused (431).")
    header_timeout_s: float = Field(10.0, gt=0, description="A client must send a request's headers within this "
                                    "many seconds of starting it (or of connecting); else the connection is closed.")
    body_timeout_s: float = Field(30.0, gt=0, description="A request body that stops arriving for this many "
                                  "seconds is abandoned and its connection closed.")
    max_queued_events: int = Field(64, ge=1, description="Chat events (questions, ratings) waiting or running at "
                                   "once in the web chat's queue; beyond it askers are asked to try again later.")
    max_queued_per_client: int = Field(8, ge=1, description="…of which at most this many from one client address.")
    max_event_input_chars: int = Field(32_000, ge=10_000, description="What one chat event may send (its "
                                       "question, history or comment, as JSON characters); more is refused before "
                                       "the browser session keeps any of it.")
    max_comment_chars: int = Field(1000, ge=10, description="Longest feedback comment on an answer.")
    feedback_per_minute: int = Field(10, ge=1, description="Ratings one client address may send per minute.")


class WeChatSettings(BaseModel):
    """The WeChat official-account (公众号) channel at /wechat; live whenever a token is set."""

    token: SecretStr = Field(SecretStr(""), description="Token set in the account's server configuration.")
    app_id: str = Field("", description="The account's AppID (checked inside encrypted messages).")
    app_secret: SecretStr = Field(SecretStr(""), description="AppSecret, for the customer-service API.")
    encoding_aes_key: SecretStr = Field(
        SecretStr(""), description="EncodingAESKey (43 characters) for compatible and safe (AES) modes."
    )
    previous_encoding_aes_key: SecretStr = Field(
        SecretStr(""), description="The key before the last change, still accepted while WeChat rotates it."
    )
    timestamp_window_s: int = Field(300, ge=1, description="Requests signed further from now are rejected.")
    max_body_bytes: int = Field(65536, ge=1024, description="Larger request bodies are rejected.")
    reply_wait_s: float = Field(
        4.5, gt=0, description="How long one delivery waits for its answer (WeChat gives up after 5 s)."
    )
    platform_timeout_s: float = Field(
        5.0, gt=0, description="WeChat's own wait; a delivery that cannot reply holds on past it so WeChat retries."
    )
    deliveries: int = Field(3, ge=1, description="How many times WeChat delivers one message (the last gets a "
                            "placeholder when the answer is not ready).")
    customer_service: bool = Field(
        False, description="The account is verified: late answers are pushed with the customer-service API."
    )
    api_base: str = Field("https://api.weixin.qq.com", description="WeChat API base URL (customer-service API).")
    state_backend: str = Field("sqlite", pattern="^(sqlite|redis)$",
                               description="Where dedupe, pending answers and conversations live: sqlite or redis.")
    redis_url: str = Field("redis://localhost:6379/0", description="Redis URL when state_backend is redis.")
    state_ttl_s: int = Field(172800, ge=60, description="How long message records and kept answers are kept "
                             "(48 h: the customer-service window).")
    history_turns: int = Field(3, ge=0, description="Previous questions kept per user for follow-ups.")
    history_ttl_s: int = Field(1800, ge=0, description="A conversation is forgotten after this long idle.")
    rate_limit_per_minute: int = Field(10, ge=1, description="Messages one user may send per minute.")
    max_concurrent_answers: int = Field(2, ge=1, description="Answers computed at once in one process.")
    max_queued_answers: int = Field(200, ge=1, description="Beyond this many waiting answers, users are asked "
                                    "to try again later.")
    max_reply_bytes: int = Field(2000, ge=200, le=2047, description="Longest passive reply (UTF-8 bytes).")
    welcome: str = Field(
        "您好！我是政策咨询助手，可以解答政策文件中的问题，并注明依据条款。\n例如：\n{examples}\n发送「帮助」查看用法。",
        description="Reply to a new follower; {examples} becomes the example questions.",
    )
    examples: list[str] = Field(
        default_factory=lambda: ["政务热线电话太多打不通，政府会整合吗？", "政务公开考核分值是多少？"],
        description="Example questions shown in the welcome and help replies.",
    )


class LLMSettings(BaseModel):
    """Optional generative answers through any OpenAI-compatible endpoint; with no base URL the assistant is
    LLM-free."""

    base_url: str = Field("", description="OpenAI-compatible API base, e.g. http://localhost:11434/v1 (Ollama); "
                          "empty: extractive answers only.")
    model: str = Field("", description="Model name at that endpoint, e.g. qwen2.5:7b-instruct.")
    api_key: SecretStr = Field(SecretStr(""), description="API key (any text for endpoints that need none).")
    timeout_s: float = Field(20.0, gt=0, description="Longest wait for the model; then the extractive answer.")
    max_context_chars: int = Field(
        6000, ge=500, description="Budget for the clauses put in the prompt (characters; ≈ tokens for Chinese)."
    )
    max_clauses: int = Field(6, ge=1, description="At most this many retrieved clauses are given to the model.")
    max_tokens: int = Field(800, ge=64, description="Longest answer the model may write.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    rewrite_follow_ups: bool = Field(
        True, description="Let the model rewrite follow-up questions into standalone ones (else a rule does)."
    )


class ApiKey(BaseModel):
    """A key another system sends as `Authorization: Bearer <key>`; only its SHA-256 is kept."""

    name: str = Field(pattern=r"^[\w.-]{1,64}$", description="Who holds it (shown in logs instead of the key).")
    scope: Literal["ask", "publish"] = Field(description="ask: questions, search and reading documents; publish: "
                                             "also publishing and changing documents.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key, hex "
                        "(`policy-assistant keys hash` prints it).")
    rate_limit_per_minute: int | None = Field(None, ge=1, description="Requests per minute; empty: api default.")

    @model_validator(mode="before")
    @classmethod
    def _compact(cls, value: Any) -> Any:
        """`name:scope:sha256` is accepted for an environment variable, as well as the object."""
        if isinstance(value, str) and value.count(":") == 2:
            name, scope, digest = value.split(":")
            return {"name": name, "scope": scope, "sha256": digest}
        return value


class ApiSettings(BaseModel):
    """The doors for other systems: the JSON API (/api/v1), the OpenAI-compatible endpoint (/v1) and MCP (/mcp)."""

    keys: list[ApiKey] = Field(
        default_factory=list, description="Keys as a JSON list of {name, scope, sha256} (or 'name:scope:sha256' "
        "strings); keys made with `policy-assistant keys create` are kept in state_dir and count too.")
    rate_limit_per_minute: int = Field(60, ge=1, description="Requests one key may make per minute (429 beyond).")
    max_concurrent_answers: int = Field(2, ge=1, description="Answers computed at once for the API's clients.")
    max_search_results: int = Field(20, ge=1, description="The most clauses one search returns.")
    conversation_ttl_s: int = Field(1800, ge=60, description="A conversation (conversation_id) is forgotten after "
                                    "this long idle; conversations live in the state store of wechat.state_backend.")
    model_name: str = Field("policy-assistant", pattern=r"^[\w.:-]{1,64}$",
                            description="The model id the OpenAI-compatible endpoint lists and answers as.")


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
    limits: LimitSettings = Field(default_factory=LimitSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
