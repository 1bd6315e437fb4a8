"Each dataset reader on the real files (skipped when they are absent)."
import numpy as np
from fastdit_lab.data import make_dataset, CIFAR10_CLASSES

def test_mnist(data_dir):
    tr, te = make_dataset('mnist', data_dir), make_dataset('mnist', data_dir, train=False)
    assert (len(tr), len(te), tr.image_shape) == (60_000, 10_000, (1, 28, 28))
    assert abs(tr.images.mean() / 255 - 0.1307) < 1e-3                    # the usual MNIST pixel mean
    assert np.bincount(te.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    x, y = tr[0]
    assert y == 5 and x.shape == (1, 28, 28) and -1 <= x.min() and x.max() <= 1   # the first training digit is a 5

def test_fashion_mnist(data_dir):
    tr = make_dataset('fashion-mnist', data_dir)
    assert len(tr) == 60_000 and np.bincount(tr.labels).tolist() == [6000] * 10
    assert make_dataset('fashion-mnist', data_dir, image_size=32)[0][0].shape == (1, 32, 32)

def test_cifar10_zip(data_dir):
    te = make_dataset('cifar10', data_dir, train=False)
    assert (len(te), te.image_shape) == (10_000, (3, 32, 32))
    assert np.bincount(te.labels).tolist() == [1000] * 10
    means = te.images.reshape(-1, 3).mean(0) / 255
    assert np.allclose(means, [0.494, 0.485, 0.450], atol=0.01)           # CIFAR-10 test-set channel means
    assert len(CIFAR10_CLASSES) == 10
