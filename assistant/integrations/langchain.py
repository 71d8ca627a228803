"""`PolicyRetriever`: the assistant's hybrid retrieval (dense + BM25 + exact 文号/条号, judged) as a LangChain
`BaseRetriever`, for anyone's own chains. Each `Document` is one clause with its citation metadata."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from assistant.answer.records import reference
from assistant.config import Settings
from assistant.ingest.records import Clause
from assistant.service import Assistant


class PolicyRetriever(BaseRetriever):
    """Clauses for a query, best first. `k`: how many; `relevant_only`: return nothing when the relevance judge
    finds nothing in the corpus that answers the query (the assistant would refuse).

    >>> retriever = PolicyRetriever.from_settings(Settings())  # the index in POLICY_ASSISTANT_INDEX_DIR
    >>> retriever.invoke("政务公开考核分值是多少？")[0].metadata["citation"]
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Assistant
    k: int = Field(5, ge=1, le=100)
    relevant_only: bool = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> PolicyRetriever:
        return cls(assistant=Assistant(settings or Settings()), **options)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        retrieval = self.assistant.search(query, self.k)
        if self.relevant_only and not retrieval.relevant:
            return []
        return [clause_document(c.clause, c.relevance, rank) for rank, c in enumerate(retrieval.candidates, 1)]


def clause_document(clause: Clause, relevance: float, rank: int) -> Document:
    """One clause as a LangChain `Document`: its text, and what a citation needs in the metadata."""
    return Document(page_content=clause.text, id=clause.clause_id, metadata={
        "clause_id": clause.clause_id, "doc_id": clause.doc_id, "title": clause.title,
        "doc_number": clause.doc_number, "label": clause.label, "heading": clause.heading,
        "status": clause.status, "in_force": clause.in_force(), "rank": rank, "relevance": round(relevance, 4),
        "citation": reference(clause)})
