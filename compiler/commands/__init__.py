"""The compiler's commands (`check`, `build`, `summary`, `graph`, `diff`, `schema`), one module each,
each with `add_parser(commands)` and `run(args) -> exit status`; `common` holds what they share.
`nncompile.cli` puts them, and the runtime's `train`, under one `nncompile` command."""
