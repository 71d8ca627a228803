"""BM25 over jieba tokens of script-normalised clause text."""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.ingest.normalize import normalize

log = logging.getLogger(__name__)

# Function words and question words that carry no topic (Simplified; text is normalised first).
STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 呀 么 嘛 是 有 在 和 与 及 或 也 都 就 还 又 而 并 但 等 之 其 此 该 对 把 被 给 让 从 向 于 以 "
    "为 由 将 要 会 能 可 可以 能够 需要 应该 应当 不能 能不能 会不会 是不是 有没有 要不要 需不需要 "
    "我 我们 你 你们 他 他们 她 它 自己 这 那 这个 那个 这些 那些 哪 哪些 哪个 哪里 哪儿 什么 怎么 怎样 "
    "怎么办 如何 为什么 多少 几 吗 请问 一下 一些 什么样 谁 呢 么 啥 咋 吗 嗯 哦 个 些 种 上 下 中 里 "
    "没有 不 没 很 太 更 最 已经 正在 如果 因为 所以 但是 然后 还是 或者 以及 关于 对于 根据 按照".split()
)
_TOKEN = re.compile(r"[\w\u4e00-\u9fff%]+")


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens of the normalised text, without punctuation and stopwords."""
    jieba = _jieba()
    tokens = []
    for token in jieba.cut_for_search(normalize(text).lower()):
        token = token.strip()
        if token and token not in STOPWORDS and _TOKEN.fullmatch(token):
            tokens.append(token)
    return tokens


class LexicalIndex:
    """A BM25 index over clause ids, saved beside the vector store."""

    def __init__(self, ids: list[str], model: object, doc_freq: dict[str, int]) -> None:
        self.ids = ids
        self.model = model
        self.doc_freq = doc_freq
        self.position = {clause_id: i for i, clause_id in enumerate(ids)}

    @classmethod
    def build(cls, ids: list[str], texts: list[str]) -> LexicalIndex:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        model = bm25s.BM25()
        corpus = [tokenize(t) or ["\x00"] for t in texts]
        model.index(corpus, show_progress=False)
        doc_freq: dict[str, int] = {}
        for tokens in corpus:
            for token in set(tokens):
                doc_freq[token] = doc_freq.get(token, 0) + 1
        return cls(list(ids), model, doc_freq)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder))  # type: ignore[attr-defined]
        (folder / "ids.json").write_text(json.dumps(self.ids, ensure_ascii=False), encoding="utf-8")
        (folder / "doc_freq.json").write_text(json.dumps(self.doc_freq, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import bm25s

        ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        doc_freq = json.loads((folder / "doc_freq.json").read_text(encoding="utf-8"))
        return cls(ids, bm25s.BM25.load(str(folder)), doc_freq)

    def idf(self, token: str) -> float:
        """Inverse document frequency; a term the corpus never uses weighs most."""
        n = len(self.ids)
        return float(np.log((n + 1) / (self.doc_freq.get(token, 0) + 0.5)))

    def coverage(self, query_tokens: list[str], clause_text: str) -> float:
        """IDF-weighted share of the question's terms found in the (normalised) clause text (0–1)."""
        weights = {t: self.idf(t) for t in query_tokens}
        total = sum(weights.values())
        if total <= 0:
            return 0.0
        return sum(w for t, w in weights.items() if t in clause_text) / total

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every clause for the query tokens (zeros when none is known)."""
        known = [t for t in query_tokens if t in self.model.vocab_dict]  # type: ignore[attr-defined]
        if not known or not self.ids:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self.model.get_scores(known), dtype=np.float32)  # type: ignore[attr-defined]

    def search(self, query_tokens: list[str], k: int) -> list[tuple[str, float]]:
        scores = self.scores(query_tokens)
        if not scores.any():
            return []
        top = np.argsort(-scores)[:k]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]
