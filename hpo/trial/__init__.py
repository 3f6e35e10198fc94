"""The trial contract every kind and the runner share: the fold loop (``cv``), the fold
metrics (``metrics``) and the in-fold epoch stage (``screening``). It sits below both
``hpo.study`` (which runs trials) and ``hpo.kinds`` (which define what a fold trains)."""
