import math

import pytest
import torch

import minitorchnn as mtn


def wavenet_and_batch():
    torch.manual_seed(0)
    return mtn.wavenet(), torch.randint(0, 27, (64, 8)), torch.randint(0, 27, (64,))


def tanh_outputs(model, x):
    """Every Tanh output, by running the Sequential layer by layer (what the lecture does by hand)."""
    outs = []
    for layer in model:
        x = layer(x)
        if isinstance(layer, mtn.Tanh):
            outs.append(x)
    return outs


def test_activation_stats_match_the_tanh_outputs_and_leave_the_model_as_it_was():
    model, x, _ = wavenet_and_batch()
    model.eval()
    rows = mtn.activation_stats(model, x)
    expected = tanh_outputs(model, x)
    assert [r["layer"] for r in rows] == ["4 (Tanh)", "8 (Tanh)", "12 (Tanh)"]
    for row, t in zip(rows, expected):
        assert row["mean"] == pytest.approx(t.mean().item(), abs=1e-6)
        assert row["std"] == pytest.approx(t.std().item(), abs=1e-6)
        assert row["saturated %"] == pytest.approx(100 * (t.abs() > 0.97).float().mean().item())
    assert not any("forward" in vars(m) for m in model.modules())  # the recording is undone
    assert not model.training


def test_saturation_is_seen_when_the_preactivations_are_large():
    model, x, _ = wavenet_and_batch()
    with torch.no_grad():
        model[3].gamma *= 10  # the first BatchNorm's scale: its Tanh is pushed into its flat tails
    assert mtn.activation_stats(model, x)[0]["saturated %"] > 50
    with pytest.raises(ValueError, match="the model has no ReLU layer to look at"):
        mtn.activation_stats(model, x, layer_type=mtn.ReLU)


def test_gradient_stats_match_autograd_and_leave_grads_alone():
    model, x, y = wavenet_and_batch()
    rows = mtn.gradient_stats(model, x, y)
    weights = [p for p in model.parameters() if p.ndim == 2]
    assert len(rows) == len(weights) == 5 and all(p.grad is None for p in weights)
    model2, _, _ = wavenet_and_batch()  # same seed: same weights, same running statistics as before
    mtn.cross_entropy(model2(x), y).backward()
    w = model2[2].weight
    assert rows[1]["weight"] == "2.weight (48, 128)"
    assert rows[1]["grad std"] == pytest.approx(w.grad.std().item(), rel=1e-5)
    assert rows[1]["grad:data"] == pytest.approx((w.grad.std() / w.std()).item(), rel=1e-5)


def test_update_ratio_tracker_records_log10_of_update_over_data():
    model, _, _ = wavenet_and_batch()
    data = mtn.names_dataset(8)
    reg = mtn.RegisterModel(model, "wavenet", device="cpu", verbose=False)
    tracker = mtn.UpdateRatioTracker(model, every=5)
    reg.train(*data["train"], steps=20, lr=0.1, seed=0, on_step=tracker)
    assert tracker.steps == [5, 10, 15, 20] and len(tracker.ratios) == 5
    # the last value, recomputed from the gradient and the weights left after the last step
    w = model[2].weight
    assert tracker.ratios["2.weight"][-1] == pytest.approx(math.log10(((0.1 * w.grad).std() / w.detach().std()).item()), rel=1e-5)
    assert all(-6 < v < 0 for values in tracker.ratios.values() for v in values)


def test_update_ratio_tracker_follows_the_model_when_it_moves():
    # made before the move, as a notebook does before RegisterModel moves the model to the GPU; a dtype
    # move on the CPU makes new tensors just as a device move does
    model, _, _ = wavenet_and_batch()
    tracker = mtn.UpdateRatioTracker(model, every=5)
    model.to(dtype=torch.float64)
    data = mtn.names_dataset(8)
    reg = mtn.RegisterModel(model, "wavenet", device="cpu", verbose=False)
    reg.train(*data["train"], steps=10, lr=0.1, seed=0, on_step=tracker)
    w = model[2].weight
    assert w.dtype == torch.float64 and tracker.steps == [5, 10]
    assert tracker.ratios["2.weight"][-1] == pytest.approx(math.log10(((0.1 * w.grad).std() / w.detach().std()).item()), rel=1e-6)
    for p in model.parameters():
        p.grad = None
    with pytest.raises(ValueError, match=r"UpdateRatioTracker.record: no gradient on \['0.weight', '2.weight'"):
        tracker.record(11, 0.1)


def test_plots_draw_one_line_per_layer():
    model, x, y = wavenet_and_batch()
    assert len(mtn.plot_activations(model, x).lines) == 3
    assert len(mtn.plot_gradients(model, x, y).lines) == 5
    tracker = mtn.UpdateRatioTracker(model)
    with pytest.raises(ValueError, match="nothing recorded yet"):
        tracker.plot()
