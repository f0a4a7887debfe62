"""The online HintQ request path shared by the BentoML and KServe adapters."""
