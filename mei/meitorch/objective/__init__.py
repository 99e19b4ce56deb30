"""meitorch's ``objective`` package: Gabor stimuli (:mod:`mei.meitorch.objective.gabor`)."""
