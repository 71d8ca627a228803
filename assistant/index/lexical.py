"""BM25 over jieba tokens of script-normalised clause text."""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

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
# What jieba cuts as one block (its `re_han_default`); it is superlinear in a block's length (100,000 characters
# with no punctuation took 31 s), so a longer block is cut into pieces of at most _MAX_BLOCK characters first.
_BLOCK = re.compile(r"[\u4e00-\u9fd5a-zA-Z0-9+#&._%\-]+")
MAX_BLOCK = 200


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
    for token in jieba.cut_for_search(bounded_blocks(normalize(text).lower())):
        token = token.strip()
        if token and token not in STOPWORDS and _TOKEN.fullmatch(token):
            tokens.append(token)
    return tokens


def bounded_blocks(text: str, limit: int = MAX_BLOCK) -> str:
    """The text with a space put into every run that jieba would take as one block, each `limit` characters: a
    sentence of normal length is left as it is."""
    def cut(match: re.Match[str]) -> str:
        run = match.group(0)
        return run if len(run) <= limit else " ".join(run[i:i + limit] for i in range(0, len(run), limit))
    return _BLOCK.sub(cut, text)


class LexicalIndex:
    """BM25 (Lucene scoring, k1=1.5, b=0.75) over the clauses of one generation, as a term × clause matrix.

    Built from term ids kept in the registry, so a generation's index is assembled without tokenising
    the corpus again.
    """

    K1, B = 1.5, 0.75

    def __init__(self, ids: list[str], vocab: dict[str, int], postings: Any, lengths: np.ndarray) -> None:
        self.ids = ids
        self.vocab = vocab
        self.postings = postings  # scipy CSC matrix: rows = clauses, columns = term ids, values = counts
        self.lengths = lengths.astype(np.float32)
        self.position = {clause_id: i for i, clause_id in enumerate(ids)}
        self.doc_freq = np.diff(postings.indptr).astype(np.int64)
        self.avg_length = float(self.lengths.mean()) if len(self.lengths) else 1.0

    @classmethod
    def from_terms(cls, ids: list[str], terms: list[np.ndarray], vocab: dict[str, int]) -> LexicalIndex:
        """One row per clause from its term ids (one per token occurrence)."""
        from scipy import sparse

        lengths = np.asarray([max(len(t), 1) for t in terms], dtype=np.float32)
        rows = np.repeat(np.arange(len(terms), dtype=np.int32), [len(t) for t in terms])
        cols = np.concatenate(terms).astype(np.int32) if terms else np.zeros(0, dtype=np.int32)
        width = max(len(vocab), int(cols.max()) + 1 if len(cols) else 0)
        counts = np.ones(len(cols), dtype=np.float32)
        postings = sparse.csc_matrix((counts, (rows, cols)), shape=(len(terms), width))  # duplicates are summed
        postings.sum_duplicates()
        return cls(list(ids), vocab, postings, lengths)

    @classmethod
    def build(cls, ids: list[str], texts: list[str]) -> LexicalIndex:
        """Tokenise the texts and index them (for one-off indexes; the registry keeps term ids instead)."""
        vocab: dict[str, int] = {}
        terms = [np.asarray([vocab.setdefault(t, len(vocab)) for t in tokenize(text)], dtype=np.int32)
                 for text in texts]
        return cls.from_terms(ids, terms, vocab)

    def save(self, folder: Path) -> None:
        from scipy import sparse

        folder.mkdir(parents=True, exist_ok=True)
        sparse.save_npz(folder / "postings.npz", self.postings, compressed=False)
        np.save(folder / "lengths.npy", self.lengths)
        (folder / "ids.json").write_text(json.dumps(self.ids, ensure_ascii=False), encoding="utf-8")
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        (folder / "terms.json").write_text(json.dumps(terms, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        from scipy import sparse

        ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))
        terms = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
        postings = sparse.load_npz(folder / "postings.npz").tocsc()
        return cls(ids, {t: i for i, t in enumerate(terms)}, postings, np.load(folder / "lengths.npy"))

    def df(self, token: str) -> int:
        """How many clauses use the term."""
        column = self.vocab.get(token)
        return int(self.doc_freq[column]) if column is not None and column < len(self.doc_freq) else 0

    def idf(self, token: str) -> float:
        """Inverse document frequency; a term the corpus never uses weighs most."""
        n = len(self.ids)
        return float(np.log((n + 1) / (self.df(token) + 0.5)))

    def coverage(self, query_tokens: list[str], clause_text: str) -> float:
        """IDF-weighted share of the question's terms found in the (normalised) clause text (0–1)."""
        weights = {t: self.idf(t) for t in query_tokens}
        total = sum(weights.values())
        if total <= 0:
            return 0.0
        return sum(w for t, w in weights.items() if t in clause_text) / total

    def scores(self, query_tokens: list[str]) -> np.ndarray:
        """BM25 score of every clause for the query tokens (zeros when none is known)."""
        scores = np.zeros(len(self.ids), dtype=np.float32)
        n = len(self.ids)
        norm = self.K1 * (1 - self.B + self.B * self.lengths / self.avg_length)
        for token in query_tokens:  # a repeated token counts again, as in the question
            df = self.df(token)
            if not df:
                continue
            column = self.vocab[token]
            start, end = self.postings.indptr[column], self.postings.indptr[column + 1]
            rows = self.postings.indices[start:end]
            tf = self.postings.data[start:end]
            idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
            scores[rows] += idf * tf / (tf + norm[rows])
        return scores

    def search(self, query_tokens: list[str], k: int) -> list[tuple[str, float]]:
        scores = self.scores(query_tokens)
        if not scores.any():
            return []
        top = np.argsort(-scores)[:k]
        return [(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]
