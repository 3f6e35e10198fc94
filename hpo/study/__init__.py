"""Running studies: storage, locks, workers, provenance, the fold loop, crashed trials."""

import warnings

import optuna

# Every command that opens a study speaks for itself (hpo run's reporter says per trial what
# Optuna's log would, hpo study widen prints its own lines); Optuna's log lines and its
# experimental-feature warnings would only repeat that, and its warning for a trial stopped
# by Ctrl-C carries a traceback the user should not see.
optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
