"""Optimizers written out as ``torch.optim.Optimizer`` subclasses, twins of ``torch.optim``.

Registered in :data:`deepnotes.core.registry.OPTIMIZERS` as ``sgd``, ``momentum``, ``nesterov``,
``adagrad``, ``rmsprop`` and ``adam`` (factories ``f(params, lr=..., **kw)``).
"""

from deepnotes.core.registry import OPTIMIZERS
from deepnotes.optim.adagrad import Adagrad
from deepnotes.optim.adam import Adam
from deepnotes.optim.feeding import STRATEGIES, batch_indices
from deepnotes.optim.plain import adagrad_step, adam_step, rmsprop_step, sgd_step
from deepnotes.optim.rmsprop import RMSProp
from deepnotes.optim.sgd import SGD, Momentum


def _nesterov(params, lr: float = 1e-3, **kw) -> Momentum:
    """Momentum with Nesterov's look-ahead (``nesterov=True``)."""
    return Momentum(params, lr=lr, nesterov=True, **kw)


OPTIMIZERS.add("sgd", SGD, twin="torch.optim.SGD")
OPTIMIZERS.add("momentum", Momentum, twin="torch.optim.SGD(momentum=0.9)")
OPTIMIZERS.add("nesterov", _nesterov, twin="torch.optim.SGD(momentum=0.9, nesterov=True)")
OPTIMIZERS.add("adagrad", Adagrad, twin="torch.optim.Adagrad")
OPTIMIZERS.add("rmsprop", RMSProp, twin="torch.optim.RMSprop")
OPTIMIZERS.add("adam", Adam, twin="torch.optim.Adam")

__all__ = [
    "SGD",
    "Momentum",
    "Adagrad",
    "RMSProp",
    "Adam",
    "STRATEGIES",
    "batch_indices",
    "adagrad_step",
    "adam_step",
    "rmsprop_step",
    "sgd_step",
]
