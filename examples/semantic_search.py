"""Use a published st-recipe model in an app: semantic search over a small corpus.

This script imports only sentence-transformers: a published model needs nothing else.

    python examples/semantic_search.py --model my-org/pythia-410m-lora-embed
    python examples/semantic_search.py --model runs/example --offline          # a local run dir
"""

from __future__ import annotations

import argparse

from sentence_transformers import SentenceTransformer

CORPUS = [
    "Return the absolute value of a number.",
    "Open a file and return a stream.",
    "Sort a list in place.",
    "Create a new thread of execution.",
    "Compute the square root of x.",
    "Parse a JSON document into Python objects.",
]
QUERIES = ["read a file from disk", "decode json text", "how to take a square root"]


def main() -> None:
    """Embed the corpus once, then rank it for each query by cosine similarity."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="Hub id or local folder")
    parser.add_argument("--offline", action="store_true", help="the model is a local folder")
    parser.add_argument("--top", type=int, default=2)
    args = parser.parse_args()
    model = SentenceTransformer(args.model, local_files_only=args.offline)
    docs = model.encode(CORPUS, convert_to_tensor=True, normalize_embeddings=True)
    for query in QUERIES:
        q = model.encode([query], convert_to_tensor=True, normalize_embeddings=True)
        scores = (q @ docs.T)[0]
        best = scores.topk(args.top)
        hits = "; ".join(f"{CORPUS[i]!r} ({s:.3f})" for s, i in zip(best.values.tolist(), best.indices.tolist()))
        print(f"{query!r} -> {hits}")


if __name__ == "__main__":
    main()
