"""One module per pipeline stage, each with a `main(config)`; the `aigq` entry point is `cli.main`."""
