"""How closely rro's WebShop search (bm25s) reproduces upstream's own Lucene index.

Upstream searches the 1000-product catalogue with pyserini over `search_engine/indexes_1k`, built
from `documents_1k.jsonl`. This script asks both the same goal queries and prints, per query set:

- top-10 overlap: the share of Lucene's first 10 results that rro's first 10 hold (mean over queries);
- same top 10: the share of queries whose first 10 results are the same products in the same order;
- top-50 overlap and same top 50: the same for the 50 results the shop's five result pages show;
- term vectors: the share of documents whose indexed terms (with counts) equal Lucene's, and the
  share of queries analysed to the same terms.

Queries: the oracle's search for each goal of the test split (the instruction without its price
clause, as an agent would type it) and each distinct product `query` of the catalogue (short ones).

pyserini (Java) is a benchmark dependency only: install it in a separate virtual environment, e.g.
    python3 -m venv /tmp/pyserini && /tmp/pyserini/bin/pip install pyserini==0.22.1
(pyserini 0.22 reads the index's Lucene 9.5 format with Java 11 or later; it imports torch, faiss-cpu,
onnxruntime, scikit-learn and transformers at start-up) and name its Python:

    python bench/webshop_search_fidelity.py --pyserini-python /tmp/pyserini/bin/python \
        --index ../shared/data/webshop/search_index_1k

The data come from `rro data fetch webshop` (or RRO_DATA_MIRROR). The script runs its Lucene half
in that Python (`--lucene-side`, which imports nothing of rro) and compares in rro's own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

TOP = 10
SHOWN = 50  # upstream's SEARCH_RETURN_N


def lucene_side(index: str, queries_path: str, out_path: str) -> None:
    """In pyserini's Python: Lucene's results, term vectors and query terms, written as JSON."""
    from pyserini.index.lucene import IndexReader
    from pyserini.search.lucene import LuceneSearcher

    queries = json.loads(Path(queries_path).read_text())
    searcher = LuceneSearcher(index)  # BM25, k1 = 0.9, b = 0.4: what upstream's engine uses
    started = time.perf_counter()
    results = [[hit.docid for hit in searcher.search(query, k=SHOWN)] for query in queries]
    seconds = time.perf_counter() - started
    reader = IndexReader(index)
    vectors = {}
    for internal in range(reader.stats()["documents"]):
        docid = reader.convert_internal_docid_to_collection_docid(internal)
        vectors[docid] = reader.get_document_vector(docid)
    query_terms = [reader.analyze(query) for query in queries]
    Path(out_path).write_text(json.dumps({"results": results, "seconds": seconds, "vectors": vectors,
                                          "query_terms": query_terms}))


def goal_queries(limit: int) -> dict[str, list[str]]:
    from rro.envs.webshop.catalog import load_catalog
    from rro.envs.webshop.expert import search_keywords

    catalog = load_catalog("1000")
    goals = catalog.goals("synthetic")[:limit]
    return {
        "oracle searches (synthetic test goals)": [search_keywords(goal["instruction_text"]) for goal in goals],
        "oracle searches (human goals)": [search_keywords(goal["instruction_text"]) for goal in catalog.goals("human")],
        "product queries (short)": sorted({product.query for product in catalog.products.values()}),
    }


def overlap(ours: list[str], theirs: list[str]) -> float:
    return 1.0 if not theirs and not ours else len(set(ours) & set(theirs)) / max(len(theirs), len(ours))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyserini-python", help="A Python with pyserini installed.")
    parser.add_argument("--index", default="../shared/data/webshop/search_index_1k", help="Upstream's Lucene index (indexes_1k).")
    parser.add_argument("--goals", type=int, default=500, help="How many synthetic goals (from the test split's start).")
    parser.add_argument("--lucene-side", nargs=2, metavar=("QUERIES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lucene_side:
        lucene_side(args.index, *args.lucene_side)
        return
    if not args.pyserini_python:
        parser.error("--pyserini-python is required")

    from rro.envs.webshop.analysis import analyze
    from rro.envs.webshop.catalog import DOCUMENT_FILES, load_catalog
    from rro.envs.webshop.search import SearchEngine
    from rro.fetch import require_cached

    sets = goal_queries(args.goals)
    queries = [query for batch in sets.values() for query in batch]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "queries.json").write_text(json.dumps(queries))
        subprocess.run([args.pyserini_python, __file__, "--index", args.index, "--lucene-side",
                        str(Path(tmp) / "queries.json"), str(Path(tmp) / "lucene.json")], check=True)
        lucene = json.loads((Path(tmp) / "lucene.json").read_text())

    documents = [json.loads(line) for line in require_cached(DOCUMENT_FILES["1000"]).open()]
    same_vectors = sum(Counter(analyze(doc["contents"])) == Counter(lucene["vectors"][doc["id"]]) for doc in documents)
    same_query_terms = sum(analyze(q) == terms for q, terms in zip(queries, lucene["query_terms"]))
    print(f"term vectors equal to Lucene's: {same_vectors}/{len(documents)} documents; "
          f"query terms equal: {same_query_terms}/{len(queries)} queries")

    with tempfile.TemporaryDirectory() as tmp:
        engine = SearchEngine(load_catalog("1000"), cache_dir=Path(tmp) / "index")
        started = time.perf_counter()
        ours = [engine.search(query) for query in queries]
        seconds = time.perf_counter() - started
    print(f"search time for {len(queries)} queries: rro {seconds:.2f} s, pyserini {lucene['seconds']:.2f} s\n")

    print(f"| queries | n | top-{TOP} overlap | same top {TOP} | top-{SHOWN} overlap | same top {SHOWN} |")
    print("|---|---|---|---|---|---|")
    start = 0
    for name, batch in sets.items():
        pairs = list(zip(ours[start:start + len(batch)], lucene["results"][start:start + len(batch)]))
        start += len(batch)
        top = sum(overlap(a[:TOP], b[:TOP]) for a, b in pairs) / len(pairs)
        same_top = sum(a[:TOP] == b[:TOP] for a, b in pairs) / len(pairs)
        shown = sum(overlap(a, b) for a, b in pairs) / len(pairs)
        same_shown = sum(a == b for a, b in pairs) / len(pairs)
        print(f"| {name} | {len(pairs)} | {top:.3f} | {same_top:.3f} | {shown:.3f} | {same_shown:.3f} |")


if __name__ == "__main__":
    sys.exit(main())
