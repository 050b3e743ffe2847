"""The data the ported NNI examples use instead of downloading MNIST/CIFAR-10:
scikit-learn's 8x8 digits, upsampled to MNIST's 28x28 (the examples' models are
sized for it). The one difference from NNI's scripts besides imports."""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset


def digits(train: bool, n: int = 16) -> TensorDataset:
    """``n`` digits as a 1x28x28 float image data set (first ``n`` for training,
    the next ``n`` for testing)."""
    x, y = load_digits(return_X_y=True)
    start = 0 if train else n
    images = torch.tensor(x[start : start + n], dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    images = torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False)
    return TensorDataset(images, torch.tensor(y[start : start + n], dtype=torch.long))
