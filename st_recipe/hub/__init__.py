"""The Hugging Face Hub's shared rules: what a repo id is, and whether the Hub or its cache can serve a command."""
