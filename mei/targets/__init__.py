"""What to optimize beyond one output unit: contrastive and group objectives (:mod:`~mei.targets.contrastive`),
inner layers (:mod:`~mei.targets.layers`) and video configs and frames (:mod:`~mei.targets.video`)."""
