"""The ground floor: config, errors, text normalisation, the log schemas, the observed catalogue and
its attribute words, history, metrics, the experiment window and feature-store access. Imports
nothing of the project."""
