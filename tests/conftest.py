"""Shared fixtures: the names dataset is built once per session; plots never open a window."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(scope="session")
def names8():
    import minitorchnn as mtn

    return mtn.names_dataset(block_size=8)


@pytest.fixture(scope="session")
def names3():
    import minitorchnn as mtn

    return mtn.names_dataset(block_size=3)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
