"""The simulated shop and its click model: ground truth that only the simulator, evaluation and
the monitoring scenario read; training and serving never import it."""
