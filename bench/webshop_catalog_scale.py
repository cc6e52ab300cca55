"""Does a full-size WebShop catalogue load within this machine's memory, and how fast?

WebShop's full product file (`items_shuffle.json`, ~1.18M products) is only on Google Drive, out
of reach here, so this writes a synthetic catalogue of the same size in the same file format, with
text lengths like WebShop's (a ~100-character title, a ~1,000-character description, five bullet
points, two option groups, fields that loading drops), then measures, in one process:

    load_catalog_files   streaming parse, goals          seconds, peak RSS
    SearchEngine         BM25 index build (or load)      seconds, peak RSS
    search               a query                         milliseconds

    python bench/webshop_catalog_scale.py --products 1181436 --dir /tmp/webshop-scale
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def write_catalogue(directory: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 10))) for _ in range(50_000)]

    def words(k: int) -> str:
        return " ".join(rng.choices(vocabulary, k=k))

    directory.mkdir(parents=True, exist_ok=True)
    attributes, human = {}, {}
    with open(directory / "items_shuffle.json", "w") as f:
        f.write("[")
        for i in range(n):
            asin = f"B{i:09d}"
            product = {
                "asin": asin, "name": words(15).title(), "full_description": words(150),
                "small_description": [words(20) for _ in range(5)], "pricing": f"${rng.randint(1, 300)}.99",
                "customization_options": {"Color": [{"value": words(2), "image": None} for _ in range(4)],
                                          "Size": [{"value": words(1), "image": None} for _ in range(4)]},
                "category": "beauty", "query": words(2), "product_category": " › ".join(words(1) for _ in range(4)),
                "images": [f"https://example.invalid/{asin}.jpg"], "product_information": {"weight": words(3)},
                "brand": words(1), "average_rating": None,
            }
            f.write(("," if i else "") + json.dumps(product))
            attributes[asin] = {"attributes": [words(2) for _ in range(3)]}
            if i % 100 == 0:  # upstream: ~12k human instructions over the full catalogue
                human[asin] = [{"instruction": words(12), "instruction_attributes": [words(2)],
                                "instruction_options": [words(1)]}]
        f.write("]")
    (directory / "items_ins_v2.json").write_text(json.dumps(attributes))
    (directory / "items_human_ins.json").write_text(json.dumps(human))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=1_181_436)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/webshop-scale"))
    args = parser.parse_args()
    products = args.dir / "items_shuffle.json"
    if not products.exists():
        started = time.perf_counter()
        write_catalogue(args.dir, args.products)
        print(f"wrote {args.products} products ({products.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - started:.0f} s")

    from rro.envs.webshop.catalog import load_catalog_files
    from rro.envs.webshop.search import SearchEngine

    started = time.perf_counter()
    catalog = load_catalog_files(products, args.dir / "items_ins_v2.json", args.dir / "items_human_ins.json", size="full")
    print(f"load_catalog_files: {len(catalog.products)} products, {len(catalog.goals('human'))} goals, "
          f"{time.perf_counter() - started:.0f} s, peak RSS {peak_rss_gib():.1f} GiB")
    cached = (args.dir / "bm25").exists()
    started = time.perf_counter()
    engine = SearchEngine(catalog, cache_dir=args.dir / "bm25")
    print(f"SearchEngine ({'cached index loaded' if cached else 'index built'}): "
          f"{time.perf_counter() - started:.0f} s, peak RSS {peak_rss_gib():.1f} GiB")
    query = catalog.goals("human")[0]["instruction_text"]
    started = time.perf_counter()
    hits = engine.search(query)
    print(f"search: {len(hits)} results in {1000 * (time.perf_counter() - started):.0f} ms")


if __name__ == "__main__":
    main()
