"""What a run costs: FLOPs per method (the paper's accounting and an exact meter), memory, and method pricing."""
