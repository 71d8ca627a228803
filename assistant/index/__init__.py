"""Index: clause embeddings in Chroma, BM25 beside them."""
