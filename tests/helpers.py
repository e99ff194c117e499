"""Small real-MNIST subsets, so engine tests train for real in a fraction of a second."""

import torch

from psa.data import MNIST


def subset(mnist: MNIST, train: int = 1000, val: int = 500, dtype=torch.float32) -> MNIST:
    return MNIST(
        mnist.x_train[:train],
        mnist.y_train[:train],
        mnist.x_val[:val],
        mnist.y_val[:val],
        mnist.x_test[:val],
        mnist.y_test[:val],
        mnist.y_full_train,
        mnist.train_indices,
        mnist.val_indices,
        mnist.source,
    ).to("cpu", dtype)
