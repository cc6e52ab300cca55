"""Product search: BM25 over the text upstream indexes, top 50, as upstream's Lucene index answers.

Upstream indexes each product as `title description first-bullet-point option-text`, lower-cased,
with Lucene (pyserini: StandardTokenizer, English possessives, stop words and Porter stemming; BM25
k1=0.9 b=0.4) and returns the 50 best products containing at least one query term, ties broken by
ASIN. Here the same terms (`analysis.analyze`) are weighted as Lucene weighs them, in float32 and
with Lucene's one-byte document lengths (exact below 24 terms, then 3 significant bits: a 150-term
product counts as 144), and bm25s stores and serves the weights. The index is built once per
catalogue and cached under RRO_HOME. `bench/webshop_search_fidelity.py` measures how close the
results come to upstream's own index.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import bm25s
import numpy as np
import scipy.sparse
from bm25s.tokenization import Tokenized

from rro.derived_cache import open_or_build
from rro.envs.webshop.analysis import analyze
from rro.envs.webshop.catalog import Catalog, Product
from rro.fetch import rro_home

SEARCH_RETURN_N = 50
K1, B = 0.9, 0.4  # pyserini's defaults
INDEX_VERSION = 3  # how documents become terms: a change here must not reuse indexes cached before it


def document_text(product: Product) -> str:
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product.options.items())
    first_bullet = product.bullet_points[0] if product.bullet_points else ""
    return " ".join([product.title, product.description, first_bullet, option_text]).lower()


def _index_terms(products) -> Tokenized:
    # term ids with a vocabulary: term strings for a million products do not fit
    vocabulary: dict[str, int] = {}
    ids = [[vocabulary.setdefault(term, len(vocabulary)) for term in analyze(document_text(p))] for p in products]
    return Tokenized(ids=ids, vocab=vocabulary)


def lucene_length(terms: int) -> int:
    """A document's length as Lucene's BM25 sees it: stored in one byte (`SmallFloat.intToByte4`),
    read back (`byte4ToInt`)."""
    free = 24  # lengths below this are stored as they are
    if terms < free:
        return terms
    rest = terms - free
    shift = max(rest.bit_length() - 4, 0)  # keep the 4 leading bits (the first is implicit)
    return free + (rest >> shift << shift)


def _lucene_weights(terms: Tokenized) -> scipy.sparse.csc_matrix:
    """Documents x terms: each term's BM25 weight in each document, computed as Lucene 9's
    `BM25Similarity` does (float32; idf = ln(1 + (N - df + 0.5) / (df + 0.5)); the average length
    exact, each document's length one-byte-encoded)."""
    documents = len(terms.ids)
    rows = np.repeat(np.arange(documents), [len(ids) for ids in terms.ids])
    columns = np.fromiter((i for ids in terms.ids for i in ids), dtype=np.int64, count=len(rows))
    counts = scipy.sparse.csc_matrix((np.ones(len(rows), np.float32), (rows, columns)),
                                     shape=(documents, len(terms.vocab)))
    counts.sum_duplicates()
    lengths = np.array([len(ids) for ids in terms.ids])
    average = np.float32(lengths.sum() / documents)
    stored = np.array([lucene_length(int(n)) for n in lengths], dtype=np.float32)
    k1, b, one = np.float32(K1), np.float32(B), np.float32(1)
    norm_inverse = one / (k1 * ((one - b) + b * stored / average))
    df = np.diff(counts.indptr)
    idf = np.log(1 + (documents - df + 0.5) / (df + 0.5)).astype(np.float32)
    weight = np.repeat(idf, df)
    counts.data = weight - weight / (one + counts.data * norm_inverse[counts.indices])
    return counts


class SearchEngine:
    def __init__(self, catalog: Catalog, cache_dir: Path | None = None):
        self.asins = list(catalog.products)
        cache_dir = cache_dir or _default_cache_dir(catalog)

        def build(folder: Path) -> None:
            retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
            terms = _index_terms(catalog.products.values())
            retriever.index(terms, create_empty_token=False, show_progress=False)
            weights = _lucene_weights(terms)  # Lucene's weights, in bm25s's own layout
            if not (np.array_equal(weights.indptr, retriever.scores["indptr"])
                    and np.array_equal(weights.indices, retriever.scores["indices"])):
                raise RuntimeError("bm25s laid out its index unlike a documents x terms CSC matrix")
            retriever.scores["data"] = weights.data.astype(retriever.scores["data"].dtype)
            del terms, weights
            retriever.save(folder)
            (folder / "asins.json").write_text(json.dumps(self.asins))

        # Verified when opened, rebuilt when damaged or made for another catalogue (rro.derived_cache).
        open_or_build(cache_dir, build, "the WebShop search index",
                      fits=lambda folder: json.loads((folder / "asins.json").read_text()) == self.asins)
        self.retriever = bm25s.BM25.load(cache_dir)
        self._ranked_asins = np.argsort(np.array(self.asins))  # documents in ASIN order

    def search(self, keywords: str, k: int = SEARCH_RETURN_N) -> list[str]:
        """The ASINs of the best `k` products with at least one query term, best first; equal scores
        in ASIN order, as upstream's searcher sorts them."""
        query = [term for term in analyze(keywords) if term in self.retriever.vocab_dict]
        if not query:
            return []
        scores = self.retriever.get_scores(query).astype(np.float32)  # a repeated term counts twice, as in Lucene
        in_asin_order = scores[self._ranked_asins]
        # stable sort of the ASIN-ordered scores: best first, ties stay in ASIN order
        best = np.argsort(-in_asin_order, kind="stable")[:k]
        return [self.asins[self._ranked_asins[i]] for i in best if in_asin_order[i] > 0]


def _default_cache_dir(catalog: Catalog) -> Path:
    # named after the file the products came from (its checksum, or size and time where it has none)
    stamp = hashlib.sha256(f"{INDEX_VERSION} {catalog.source}".encode()).hexdigest()[:16]
    directory = rro_home() / "webshop" / f"bm25-{catalog.size}-{stamp}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    return directory
