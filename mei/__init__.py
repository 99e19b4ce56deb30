"""Most exciting inputs (MEIs) for PyTorch models of neurons.

The engine (:mod:`mei.optimization`, :mod:`mei.methods` and the component modules) is pure PyTorch.
The DataJoint pipeline lives in :mod:`mei.main`, :mod:`mei.fabrik` and :mod:`mei.db`; importing any of
them opens no database connection.
"""

__version__ = "0.1.0"
