"""Reading finished runs: statistics over seeds (``stats``: mean, median, IQM, bootstrap intervals),
comparisons of runs (``compare``, the ``softac compare`` command) and learning-curve figures (``plot``)."""
