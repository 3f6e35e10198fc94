"""hpo: Bayesian hyperparameter search for speech emotion recognition."""

__version__ = "0.1.0"
