"""Publish a run dir to the Hugging Face Hub with a model card (or write the folder that would be uploaded).

    HF_TOKEN=... python examples/publish.py runs/my-model --repo my-org/pythia-70m-lora-embed
    python examples/publish.py runs/example --repo my-org/example --offline           # dry run, no network
"""

from __future__ import annotations

import argparse

from st_recipe.publishing import publish


def main() -> None:
    """Push (or dry-run) and say where the result is."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--repo", required=True, help="ORG/NAME")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--offline", action="store_true", help="dry run into <run_dir>.upload (random-init allowed)")
    args = parser.parse_args()
    if args.offline:
        target = args.run_dir.rstrip("/") + ".upload"
        publish(args.run_dir, args.repo, dry_run=target, allow_random=True)
        print(f"wrote the folder that would be uploaded to {target}; see {target}/README.md")
    else:
        result = publish(args.run_dir, args.repo, private=args.private)
        print(f"published {args.repo}: {result}")


if __name__ == "__main__":
    main()
