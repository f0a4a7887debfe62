"""One module per pipeline stage, each with a `main(config)`; `cli.py` is the `aigq` entry point."""
