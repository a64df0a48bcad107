import pytest
import torch

import minitorchnn as mtn


def assert_same_steps(make_ours, make_theirs, loss, shape, batch, steps, rtol, atol):
    """Both optimisers start from the same weights, see the same inputs, and must stay together."""
    w0 = torch.randn(*shape)
    ours_w, theirs_w = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    ours, theirs = make_ours(ours_w), make_theirs(theirs_w)
    for _ in range(steps):
        x = torch.randn(batch, shape[0])
        for w, opt in ((ours_w, ours), (theirs_w, theirs)):
            opt.zero_grad()
            loss(x, w).backward()
            opt.step()
        torch.testing.assert_close(ours_w, theirs_w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.9, 1e-3), (0.0, 1e-2)])
def test_sgd_matches_torch_optim_sgd_over_several_steps(momentum, weight_decay):
    kw = dict(lr=0.05, momentum=momentum, weight_decay=weight_decay)
    assert_same_steps(lambda w: mtn.SGD([w], **kw), lambda w: torch.optim.SGD([w], **kw),
                      loss=lambda x, w: (x @ w).tanh().square().sum(), shape=(5, 3), batch=4, steps=6,
                      rtol=1e-6, atol=1e-7)


def test_sgd_lr_is_a_plain_attribute_and_zero_grad_clears():
    w = torch.ones(3, requires_grad=True)
    opt = mtn.SGD([w], lr=0.1)
    w.sum().backward()
    opt.lr = 0.5  # schedules just assign it
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.5))
    opt.zero_grad()
    assert w.grad is None
    opt.step()  # a parameter without a gradient is left alone
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.5))


def test_sgd_state_round_trip_keeps_momentum():
    w = torch.ones(3, requires_grad=True)
    opt = mtn.SGD([w], lr=0.1, momentum=0.9)
    w.sum().backward()
    opt.step()
    state = opt.state_dict()
    other = mtn.SGD([torch.ones(3, requires_grad=True)], lr=1.0)
    other.load_state_dict(state)
    assert other.lr == 0.1 and other.momentum == 0.9
    torch.testing.assert_close(other.velocity[0], torch.ones(3))


def test_sgd_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        mtn.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="expected lr, momentum, weight_decay >= 0, got -1"):
        mtn.SGD([torch.ones(1, requires_grad=True)], lr=-1)


def test_step_decay_is_the_lectures_schedule():
    schedule = mtn.StepDecay(200_000)
    assert schedule(0) == 0.1 and schedule(149_999) == 0.1
    assert schedule(150_000) == 0.01 and schedule(199_999) == 0.01


def test_exponential_decay_steps_down_every_200_steps():
    schedule = mtn.ExponentialDecay(0.01)
    assert schedule(0) == 0.01 and schedule(199) == 0.01
    assert schedule(200) == pytest.approx(0.0095) and schedule(1000) == pytest.approx(0.01 * 0.95**5)
    assert mtn.Constant(0.3)(12345) == 0.3


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_matches_torch_over_several_steps(weight_decay):
    kw = dict(lr=1e-2, betas=(0.9, 0.95), weight_decay=weight_decay)
    assert_same_steps(lambda w: mtn.AdamW([w], **kw), lambda w: torch.optim.AdamW([w], **kw),
                      loss=lambda x, w: (x @ w).sin().sum(), shape=(6, 4), batch=3, steps=8,
                      rtol=1e-5, atol=1e-6)


def test_adamw_updates_every_tensor_of_the_list_and_skips_those_without_a_gradient():
    torch.manual_seed(0)
    shapes = [(4, 3), (3,), (2, 2)]
    ours = [torch.randn(s, requires_grad=True) for s in shapes]
    theirs = [w.detach().clone().requires_grad_() for w in ours]
    opt_ours = mtn.AdamW(ours, lr=1e-2, weight_decay=0.1)
    opt_theirs = torch.optim.AdamW(theirs, lr=1e-2, weight_decay=0.1)
    for _ in range(5):
        x = torch.randn(5, 4)
        for ws, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            ((x @ ws[0]).tanh() @ ws[1]).square().sum().backward()  # ws[2] gets no gradient
            opt.step()
    for w, t in zip(ours, theirs):
        torch.testing.assert_close(w, t, rtol=1e-5, atol=1e-6)
    assert torch.equal(opt_ours.m[2], torch.zeros(2, 2))  # never stepped: its state stays zero


def test_adamw_state_round_trip():
    w = torch.ones(3, requires_grad=True)
    opt = mtn.AdamW([w], lr=0.1)
    w.sum().backward()
    opt.step()
    other = mtn.AdamW([torch.ones(3, requires_grad=True)], lr=0.5)
    other.load_state_dict(opt.state_dict())
    assert other.step_count == 1 and other.lr == 0.1
    torch.testing.assert_close(other.m[0], opt.m[0], rtol=0, atol=0)


def test_clip_grad_norm_matches_torch():
    a, b = torch.randn(5, requires_grad=True), torch.randn(3, 2, requires_grad=True)
    (a.sum() * 10 + (b**2).sum() * 10).backward()
    a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    a2.grad, b2.grad = a.grad.clone(), b.grad.clone()
    norm = mtn.clip_grad_norm([a, b], 1.0)
    torch_norm = torch.nn.utils.clip_grad_norm_([a2, b2], 1.0)
    torch.testing.assert_close(norm, torch_norm)
    torch.testing.assert_close(a.grad, a2.grad)
    torch.testing.assert_close(b.grad, b2.grad)
    small = torch.zeros(2, requires_grad=True)
    small.grad = torch.tensor([0.3, 0.4])
    mtn.clip_grad_norm([small], 1.0)
    torch.testing.assert_close(small.grad, torch.tensor([0.3, 0.4]))  # under the limit: untouched


def test_warmup_cosine_schedule():
    s = mtn.WarmupCosine(total_steps=1000, lr=1e-3, warmup_steps=100, min_lr=1e-4)
    assert s(0) == pytest.approx(1e-5) and s(99) == pytest.approx(1e-3)
    assert s(100) == pytest.approx(1e-3) and s(999) == pytest.approx(1e-4)
    assert s(550) == pytest.approx(1e-4 + 0.5 * 9e-4, rel=1e-2)  # half way down the cosine
    assert all(s(i) >= s(i + 1) for i in range(100, 999))
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        mtn.WarmupCosine(total_steps=10, lr=1.0, warmup_steps=10)


def test_make_schedule_is_the_one_place_names_become_schedules():
    assert mtn.make_schedule("constant", 0.1, 100)(99) == 0.1 and mtn.make_schedule(None, 0.1, 100)(0) == 0.1
    step = mtn.make_schedule("step", 0.1, 100)
    assert step(74) == 0.1 and step(75) == pytest.approx(0.01)
    assert mtn.make_schedule("exponential", 0.1, 1000)(400) == pytest.approx(0.1 * 0.95**2)
    cosine = mtn.make_schedule("cosine", 1e-3, 1000, warmup_steps=100, final_lr=1e-4)
    assert cosine(0) == pytest.approx(1e-5) and cosine(99) == pytest.approx(1e-3) and cosine(999) == pytest.approx(1e-4)
    assert mtn.make_schedule("cosine", 1.0, 100)(99) == pytest.approx(0.01)  # default: down to lr / 100
    fn = lambda step: 0.5  # noqa: E731
    assert mtn.make_schedule(fn, 0.1, 10) is fn
    with pytest.raises(ValueError, match="schedule must be one of constant, step, exponential, cosine"):
        mtn.make_schedule("linear", 0.1, 10)


def test_the_optimizer_base_holds_the_shared_parts():
    for cls in (mtn.SGD, mtn.AdamW):  # each writes only its update and names its state
        assert issubclass(cls, mtn.Optimizer)
        assert {"zero_grad", "state_dict", "load_state_dict"}.isdisjoint(vars(cls))
    with pytest.raises(ValueError, match="AdamW got an empty parameter list"):
        mtn.AdamW([])
    with pytest.raises(TypeError, match="SGD expected tensors with requires_grad=True"):
        mtn.SGD([torch.zeros(3)], lr=0.1)
    w = torch.ones(3, requires_grad=True)
    opt = mtn.SGD([w], lr=0.1, momentum=0.9)
    assert repr(opt) == "SGD(lr=0.1, momentum=0.9, weight_decay=0.0)"
    w.grad = torch.ones(3)
    opt.step()
    opt.zero_grad()
    assert w.grad is None
    other = mtn.SGD([w], lr=0.5)
    other.load_state_dict(opt.state_dict())
    assert other.momentum == 0.9 and torch.equal(other.velocity[0], opt.velocity[0])
    with pytest.raises(KeyError, match=r"missing \['velocity'\]"):
        other.load_state_dict({"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0})
