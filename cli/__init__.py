"""The `aigq` command line: a table of stages, and the demo."""
