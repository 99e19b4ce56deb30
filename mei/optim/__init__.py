"""Feature visualization of any PyTorch model, captum.optim-style, on the project's engine.

Modules: :mod:`~mei.optim.loss` (composable objectives by layer object or name), :mod:`~mei.optim.images`
(pixel, FFT, colour-decorrelated parameterizations), :mod:`~mei.optim.transforms` (robustness transforms),
:mod:`~mei.optim.hooks` (activation collection), :mod:`~mei.optim.output_hook` (captum's ``ModuleOutputsHook`` and
``ActivationFetcher``), :mod:`~mei.optim.optimization` (:class:`InputOptimization`,
:class:`n_steps`), :mod:`~mei.optim.relu` (``RedirectedReLU``), :mod:`~mei.optim.circuits`,
:mod:`~mei.optim.postprocessing` (Yosinski regularizers), :mod:`~mei.optim.models` (a small random-weight zoo),
:mod:`~mei.optim.reducer` (``ChannelReducer``: NMF, PCA or any scikit-learn-style estimator over the channels of
activations), :mod:`~mei.optim.dataset` (a dataset's colour covariance and KLT matrix for ``ToRGB``),
:mod:`~mei.optim.atlas` (activation atlases) and :mod:`~mei.optim.visualize`. Usage mirrors captum.optim::

    import mei.optim as opt
    model = opt.models.googlenet()
    loss_fn = opt.loss.ChannelActivation(model.mixed4a, 465)
    image = opt.images.NaturalImage((224, 224))
    opt.InputOptimization(model, loss_fn, image, opt.transforms.TransformationRobustness()).optimize(
        opt.optimization.n_steps(64, False))
"""

from . import (
    atlas,
    circuits,
    dataset,
    hooks,
    images,
    loss,
    models,
    optimization,
    output_hook,
    postprocessing,
    reducer,
    relu,
    transforms,
    visualize,
)
from .hooks import (
    ActivationFetcher,
    ModuleOutputs,
    ModuleOutputsHook,
    ObjectiveModel,
    collect_activations,
    get_model_layers,
    objective_model,
)
from .optimization import InputOptimization
from .relu import RedirectedReLU, SkipLayer, replace_layers, skip_layers, swapped_layers
from .visualize import hue_to_rgb, make_grid_image, nchannels_to_rgb, save_image, show, weights_to_heatmap_2d

__all__ = [
    "atlas", "circuits", "dataset", "hooks", "images", "loss", "models", "optimization", "postprocessing", "reducer",
    "relu", "transforms", "visualize", "output_hook", "InputOptimization", "ModuleOutputsHook", "ActivationFetcher",
    "ModuleOutputs", "ObjectiveModel", "collect_activations",
    "get_model_layers", "objective_model", "RedirectedReLU", "SkipLayer", "replace_layers", "skip_layers",
    "swapped_layers", "show", "save_image",
    "weights_to_heatmap_2d", "hue_to_rgb", "nchannels_to_rgb", "make_grid_image",
]
