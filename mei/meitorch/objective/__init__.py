"""meitorch's ``objective`` package: Gabor stimuli (:mod:`mei.meitorch.objective.gabor`) and ``deepdraw``, which
runs an optimization built as a result class (:mod:`mei.meitorch.objective.deepdraw`)."""
