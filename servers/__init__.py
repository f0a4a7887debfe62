"""Thin server adapters over `serving`: KServe model servers and the `aigq serve` supervisor
(the BentoML services are in `bentos/`)."""
