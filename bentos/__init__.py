"""BentoML services: thin adapters over serving/."""
