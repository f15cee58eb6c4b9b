import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from deepnotes.core.registry import DATASETS, UnknownNameError
from deepnotes.data import (
    LazyFileDataset,
    TensorDataset,
    collate_variable,
    digits,
    image_folder,
    linear,
    make_linear,
    make_loader,
    split_dataset,
)


def test_tensor_dataset_applies_transform_per_item():
    ds = TensorDataset(np.arange(6.0).reshape(3, 2), [0, 1, 0], transform=lambda x: x * 10)
    x, y = ds[1]
    assert torch.equal(x, torch.tensor([20.0, 30.0])) and int(y) == 1 and len(ds) == 3
    with pytest.raises(ValueError, match="inputs has 3, targets has 2"):
        TensorDataset(torch.zeros(3, 2), torch.zeros(2))
    with pytest.raises(TypeError, match="transform must be callable"):
        TensorDataset(torch.zeros(3), torch.zeros(3), transform=5)


def test_lazy_dataset_reads_only_on_access(tmp_path):
    reads = []
    paths = []
    for i in range(3):
        p = tmp_path / f"{i}.npy"
        np.save(p, np.full(2, i, dtype=np.float32))
        paths.append(p)

    def reader(p):
        reads.append(p.name)
        return torch.from_numpy(np.load(p))

    ds = LazyFileDataset(paths, [0, 1, 2], reader=reader, transform=lambda t: t + 1)
    assert reads == []
    x, y = ds[2]
    assert reads == ["2.npy"] and torch.equal(x, torch.tensor([3.0, 3.0])) and y == 2
    with pytest.raises(TypeError, match="reader must be callable"):
        LazyFileDataset(paths, [0, 1, 2], reader=None)


def test_split_is_seeded_disjoint_and_complete():
    ds = TensorDataset(torch.arange(100), torch.arange(100))
    a = [s.indices for s in split_dataset(ds, (0.6, 0.2, 0.2), seed=1)]
    b = [s.indices for s in split_dataset(ds, (0.6, 0.2, 0.2), seed=1)]
    c = [s.indices for s in split_dataset(ds, (0.6, 0.2, 0.2), seed=2)]
    assert a == b and a != c
    assert [len(i) for i in a] == [60, 20, 20]
    assert sorted(a[0] + a[1] + a[2]) == list(range(100))
    with pytest.raises(ValueError, match="fractions must sum to 1"):
        split_dataset(ds, (0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="fractions must have 3 entries"):
        split_dataset(ds, (0.5, 0.5))


def test_embedded_datasets_need_no_network():
    d = digits(seed=0)
    assert d.in_shape == (1, 8, 8) and d.num_classes == 10
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    x, y = d.train[0]
    assert x.shape == (1, 8, 8) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    lin = linear(seed=0, n=50)
    assert lin.task == "regression" and lin.in_shape == (1,)
    assert {"digits", "linear"} <= set(DATASETS.names())
    with pytest.raises(UnknownNameError, match="valid names: .*digits"):
        DATASETS.get("mnist")


def test_make_linear_matches_its_formula():
    x, y = make_linear(n=20000, w=3.0, b=-1.0, noise=0.0, seed=0)
    torch.testing.assert_close(y, 3.0 * x - 1.0)
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_linear(noise=-1)


def test_loader_shuffle_is_seeded_and_epochs_differ():
    ds = TensorDataset(torch.arange(20), torch.arange(20))
    order = lambda loader: torch.cat([x for x, _ in loader]).tolist()  # noqa: E731
    l1, l2 = make_loader(ds, 4, shuffle=True, seed=3), make_loader(ds, 4, shuffle=True, seed=3)
    first = order(l1)
    assert first == order(l2)
    assert order(l1) != first  # next epoch: new order from the same generator
    assert len(make_loader(ds, 6, drop_last=True)) == 3 and len(make_loader(ds, 6)) == 4
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        make_loader(ds, 0)
    with pytest.raises(ValueError, match="dataset must not be empty"):
        make_loader(TensorDataset(torch.zeros(0), torch.zeros(0)))


class _NumpyNoise(Dataset):
    """A dataset drawing from numpy's global stream — the classic per-worker duplication trap."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor(np.random.rand()), i


def test_workers_are_reseeded_so_streams_differ():
    loader = make_loader(_NumpyNoise(), batch_size=1, num_workers=2, seed=0)
    values = [float(x) for x, _ in loader]
    # worker 0 yields items 0,2,4,6 and worker 1 items 1,3,5,7; without reseeding they would match
    assert values[0::2] != values[1::2]


def test_collate_variable_keeps_ragged_targets():
    batch = [(torch.zeros(3), torch.zeros(2, 4)), (torch.ones(3), torch.zeros(5, 4))]
    x, y = collate_variable(batch)
    assert x.shape == (2, 3) and [t.shape[0] for t in y] == [2, 5]
    ds = [(torch.zeros(3), torch.zeros(k, 4)) for k in (1, 2, 3)]
    xs, ys = next(iter(make_loader(ds, 3, collate_fn=collate_variable)))
    assert xs.shape == (3, 3) and [len(t) for t in ys] == [1, 2, 3]
    with pytest.raises(ValueError, match="batch must not be empty"):
        collate_variable([])


def test_image_folder_reads_written_images(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            mpimg.imsave(tmp_path / cls / f"{i}.png", rng.random((6, 5, 3)))
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    ds = image_folder(tmp_path)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4
    x, y = ds[3]
    assert x.shape[0] in (3, 4) and x.shape[1:] == (6, 5) and y == 1
    assert 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
    with pytest.raises(ValueError, match="is not a directory"):
        image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders with images"):
        image_folder(tmp_path / "empty")


def test_loader_feeding_options_pass_through():
    ds = TensorDataset(torch.arange(12.0), torch.arange(12))
    loader = make_loader(ds, 4, num_workers=1, prefetch_factor=3, pin_memory=False)
    assert loader.prefetch_factor == 3 and loader.num_workers == 1
    assert torch.equal(torch.cat([x for x, _ in loader]), torch.arange(12.0))
    with pytest.raises(ValueError, match="prefetch_factor must be >= 1"):
        make_loader(ds, 4, num_workers=1, prefetch_factor=0)
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        make_loader(ds, 4, num_workers=-1)


def test_image_folder_splits_resize_and_channels(tmp_path):
    import matplotlib.image as mpimg

    from deepnotes.data import image_folder_splits, resolve_dataset

    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            shape = (7 + i, 9, 3) if i % 2 else (5, 6)  # mixed sizes, RGB and grey
            mpimg.imsave(tmp_path / cls / f"{i}.png", rng.random(shape), cmap="gray")
    splits = image_folder_splits(tmp_path, seed=0, size=(8, 8), channels=3)
    assert splits.in_shape == (3, 8, 8) and splits.num_classes == 2
    x, _ = next(iter(make_loader(splits.train, 4)))
    assert x.shape == (4, 3, 8, 8)
    grey = resolve_dataset(f"folder:{tmp_path}")(seed=0)
    assert grey.num_classes == 2
    with pytest.raises(ValueError, match="channels must be one of 1, 3"):
        image_folder_splits(tmp_path, channels=2)
