"""hpo: Bayesian hyperparameter search for speech emotion recognition."""

# The one place the version is written: pyproject.toml reads it (setuptools' dynamic
# version), `hpo --version` prints it, prepared corpora record it.
__version__ = "0.1.0"
