"""The ground-truth demo: a synthetic V1 population with known receptive fields, through the whole pipeline.

* :mod:`mei.demo.population` — the neurons (Gabor simple cells, energy-model complex cells, centre-surround
  cells), 1/f images and Poisson responses;
* :mod:`mei.demo.models`, :mod:`mei.demo.training` — the CNN model and its Poisson-loss training;
* :mod:`mei.demo.lab` — dataset, model and trainer functions for the fabrik tables;
* :mod:`mei.demo.tables` — the demo's tables (trained models, ensembles, objectives, MEIs, report cards);
* :mod:`mei.demo.pipeline` — :func:`~mei.demo.pipeline.run_demo`, what ``mei demo`` runs;
* :mod:`mei.demo.report` — the HTML report with PNG figures.

See ``docs/demo.md``.
"""
