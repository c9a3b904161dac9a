"""nncompile's runtime: the `nncompile` command, and (soon) training compiled models."""
