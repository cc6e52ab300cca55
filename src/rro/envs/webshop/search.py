"""Product search: BM25 over the text upstream indexes, top 50.

Upstream indexes each product as `title description first-bullet-point option-text`, lower-cased,
with Lucene (pyserini: English stop words, Porter stemming, BM25 k1=0.9 b=0.4) and returns the 50
best products containing at least one query term. Here bm25s does the same scoring; the index is
built once per catalogue and cached under RRO_HOME.
"""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import Stemmer

from rro.envs.webshop.catalog import Catalog, Product, data_files
from rro.derived_cache import open_or_build
from rro.fetch import rro_home

SEARCH_RETURN_N = 50
K1, B = 0.9, 0.4  # pyserini's defaults


def document_text(product: Product) -> str:
    option_text = ", and ".join(f"{name}: {', '.join(values)}" for name, values in product.options.items())
    first_bullet = product.bullet_points[0] if product.bullet_points else ""
    return " ".join([product.title, product.description, first_bullet, option_text]).lower()


_STEMMER = Stemmer.Stemmer("porter")


def _tokens(texts: list[str], return_ids: bool = False):
    # ids (with a vocabulary) for indexing: token strings for a million products do not fit
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, return_ids=return_ids, show_progress=False)


class SearchEngine:
    def __init__(self, catalog: Catalog, cache_dir: Path | None = None):
        self.asins = list(catalog.products)
        cache_dir = cache_dir or _default_cache_dir(catalog)

        def build(folder: Path) -> None:
            retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
            documents = [document_text(p) for p in catalog.products.values()]
            retriever.index(_tokens(documents, return_ids=True), show_progress=False)
            del documents
            retriever.save(folder)
            (folder / "asins.json").write_text(json.dumps(self.asins))

        # Verified when opened, rebuilt when damaged or made for another catalogue (rro.derived_cache).
        open_or_build(cache_dir, build, "the WebShop search index",
                      fits=lambda folder: json.loads((folder / "asins.json").read_text()) == self.asins)
        self.retriever = bm25s.BM25.load(cache_dir)

    def search(self, keywords: str, k: int = SEARCH_RETURN_N) -> list[str]:
        """The ASINs of the best `k` products with at least one query term, best first (ties in
        catalogue order, as Lucene breaks them by document number)."""
        query = [token for token in _tokens([keywords])[0] if token in self.retriever.vocab_dict]
        if not query:
            return []
        k = min(k, len(self.asins))
        ids, scores = self.retriever.retrieve([query], k=k, show_progress=False, return_as="tuple")
        hits = sorted((-float(score), int(doc)) for doc, score in zip(ids[0], scores[0]) if score > 0)
        return [self.asins[doc] for _, doc in hits]


def _default_cache_dir(catalog: Catalog) -> Path:
    products = data_files(catalog.size)[0]
    path = rro_home() / "data" / products.mirror_subdir / products.name
    stat = path.stat() if path.exists() else None
    stamp = f"{stat.st_size}-{stat.st_mtime_ns}" if stat else "unsaved"
    directory = rro_home() / "webshop" / f"bm25-{catalog.size}-{stamp}"
    directory.parent.mkdir(parents=True, exist_ok=True)
    return directory
