"""Which weights: the embedded default, pulled and local GGUF files."""
