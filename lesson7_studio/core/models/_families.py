"""Imports every model family so that each registers its names (registration order = listing order)."""

from . import unet  # noqa: F401  unet-resnet18/34/50, unet-densenet121
from . import lite  # noqa: F401  unet-lite
from . import critic  # noqa: F401  gan-critic
from . import wgan  # noqa: F401  wgan-generator, wgan-critic
from . import classifiers  # noqa: F401  cnn-classifier, resnet-classifier, densenet-classifier
from . import rnn  # noqa: F401  rnn-model0 .. rnn-model5 (human numbers)
