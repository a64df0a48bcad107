"""Every layer against its torch.nn counterpart: weights copied in, outputs and gradients compared."""
import pytest
import torch
import torch.nn as nn

import minitorchnn as mtn

TOL = dict(rtol=1e-5, atol=1e-6)


def grads(*tensors):
    return [t.grad.clone() for t in tensors]


@pytest.mark.parametrize("shape", [(5, 7), (4, 3, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape, bias):
    ours = mtn.Linear(7, 5, bias=bias)
    theirs = nn.Linear(7, 5, bias=bias)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight.T)  # ours is (in, out) as in the lectures, torch's (out, in)
        if bias:
            ours.bias.copy_(torch.randn(5))
            theirs.bias.copy_(ours.bias)
    x = torch.randn(*shape, requires_grad=True)
    y_ours = ours(x)
    (g_ours,) = torch.autograd.grad(y_ours.square().sum(), x)
    y_theirs = theirs(x)
    (g_theirs,) = torch.autograd.grad(y_theirs.square().sum(), x)
    torch.testing.assert_close(y_ours, y_theirs, **TOL)
    torch.testing.assert_close(g_ours, g_theirs, **TOL)


def test_linear_init_and_parameter_count():
    torch.manual_seed(0)
    layer = mtn.Linear(400, 300)
    assert layer.weight.shape == (400, 300) and torch.equal(layer.bias, torch.zeros(300))
    assert abs(layer.weight.std().item() - 400**-0.5) < 0.002  # randn / sqrt(fan_in)
    no_bias = mtn.Linear(7, 5, bias=False)
    assert no_bias.bias is None and len(no_bias.parameters()) == 1


def test_linear_wrong_last_dim_error():
    with pytest.raises(ValueError, match=r"^Linear\(7→5\) expected last dim 7, got 6"):
        mtn.Linear(7, 5)(torch.randn(3, 6))


def test_embedding_matches_torch_forward_and_gradient():
    ours = mtn.Embedding(27, 10)
    theirs = nn.Embedding(27, 10)
    with torch.no_grad():
        theirs.weight.copy_(ours.weight)
    idx = torch.randint(0, 27, (4, 8))
    out_o, out_t = ours(idx), theirs(idx)
    torch.testing.assert_close(out_o, out_t, rtol=0, atol=0)
    upstream = torch.randn(4, 8, 10)
    out_o.backward(upstream)
    out_t.backward(upstream)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, **TOL)


@pytest.mark.parametrize("bad", [27, -1])
def test_embedding_index_out_of_range_is_an_error_naming_the_layer(bad):
    idx = torch.tensor([[1, bad]])
    with pytest.raises(IndexError, match=rf"Embedding\(27, 10\) got index {bad}, expected indices in \[0, 27\)"):
        mtn.Embedding(27, 10)(idx)


def test_embedding_float_indices_error():
    with pytest.raises(TypeError, match=r"Embedding\(27, 10\) expected integer indices, got dtype torch.float32"):
        mtn.Embedding(27, 10)(torch.zeros(2, 3))


def _torch_bn(ours):
    theirs = nn.BatchNorm1d(ours.num_features, eps=ours.eps, momentum=ours.momentum)
    with torch.no_grad():
        theirs.weight.copy_(ours.gamma)
        theirs.bias.copy_(ours.beta)
    return theirs


def _as_torch_layout(x):
    # ours is channels-last (B, T, C); torch.nn.BatchNorm1d wants (B, C, T)
    return x.transpose(1, 2) if x.ndim == 3 else x


def _random_affine(norm):
    """Give a norm layer a non-trivial gamma and beta, so that the test covers them."""
    with torch.no_grad():
        norm.gamma.copy_(torch.rand(norm.num_features) + 0.5)
        norm.beta.copy_(torch.randn(norm.num_features))
    return norm


def _assert_norms_agree(ours, theirs, x, out_o, out_t):
    """Same outputs, and the same gradients for the input, gamma/weight and beta/bias."""
    torch.testing.assert_close(out_o, out_t, **TOL)
    upstream = torch.randn_like(out_o)
    g_o = torch.autograd.grad(out_o, [x, ours.gamma, ours.beta], upstream)
    g_t = torch.autograd.grad(out_t, [x, theirs.weight, theirs.bias], upstream)
    for a, b in zip(g_o, g_t):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(32, 6), (8, 4, 6)])
def test_batchnorm_matches_torch_in_train_and_eval(shape):
    ours = _random_affine(mtn.BatchNorm1d(6))
    theirs = _torch_bn(ours)
    for _ in range(3):  # several steps, so the running statistics accumulate
        x = (torch.randn(*shape) * 3 + 1).requires_grad_()
        _assert_norms_agree(ours, theirs, x, ours(x), _as_torch_layout(theirs(_as_torch_layout(x))))
    torch.testing.assert_close(ours.running_mean, theirs.running_mean, **TOL)
    torch.testing.assert_close(ours.running_var, theirs.running_var, **TOL)  # unbiased, as torch keeps it
    ours.eval()
    theirs.eval()
    x = torch.randn(*shape)
    torch.testing.assert_close(ours(x), _as_torch_layout(theirs(_as_torch_layout(x))), **TOL)


def test_batchnorm_3d_normalises_over_batch_and_time():
    bn = mtn.BatchNorm1d(5)
    x = torch.randn(16, 4, 5) * 2 + torch.arange(4.0)[None, :, None]  # each time step has its own mean
    out = bn(x)
    # over (0, 1) every channel ends with mean 0 and variance 1; normalising over dim 0 alone would
    # have left the per-channel statistics of the whole batch different
    torch.testing.assert_close(out.mean((0, 1)), torch.zeros(5), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.var((0, 1), unbiased=False), torch.ones(5), rtol=0, atol=1e-3)
    torch.testing.assert_close(bn.running_mean, 0.1 * x.mean((0, 1)), **TOL)


def test_batchnorm_eval_does_not_change_running_stats():
    bn = mtn.BatchNorm1d(3)
    bn(torch.randn(10, 3))
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    bn.eval()
    bn(torch.randn(10, 3) + 5)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)


def test_per_position_batchnorm_is_torch_batchnorm_over_position_channel_pairs():
    # the lecture's first 3-D BatchNorm: (B, T, C) normalised over B only, for each (t, c) on its own
    ours = _random_affine(mtn.BatchNorm1dPerPosition(3, positions=4))
    theirs = nn.BatchNorm1d(12)
    with torch.no_grad():
        theirs.weight.copy_(ours.gamma.repeat(4))
        theirs.bias.copy_(ours.beta.repeat(4))
    x = (torch.randn(16, 4, 3) * 2 + torch.arange(4.0)[None, :, None]).requires_grad_()
    out_o, out_t = ours(x), theirs(x.reshape(16, 12)).view(16, 4, 3)
    torch.testing.assert_close(out_o, out_t, **TOL)
    upstream = torch.randn(16, 4, 3)
    g_o = torch.autograd.grad(out_o, [x, ours.gamma], upstream)
    g_t = torch.autograd.grad(out_t, [x, theirs.weight], upstream)
    torch.testing.assert_close(g_o[0], g_t[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_o[1], g_t[1].view(4, 3).sum(0), rtol=1e-5, atol=1e-5)  # gamma shared by positions
    torch.testing.assert_close(ours.running_var.view(-1), theirs.running_var, **TOL)
    ours.eval()
    theirs.eval()
    torch.testing.assert_close(ours(x), theirs(x.reshape(16, 12)).view(16, 4, 3), **TOL)
    with pytest.raises(ValueError, match=r"BatchNorm1dPerPosition\(3, positions=4.*expected a \(B, 4, C\) input, got shape \(2, 5, 3\)"):
        ours(torch.randn(2, 5, 3))


def test_batchnorm_errors():
    bn = mtn.BatchNorm1d(6)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(6, eps=1e-05, momentum=0.1\) expected 6 channels in the last dim, got 5"):
        bn(torch.randn(4, 5))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(6.*\) expected a 2-D \(B, C\) or 3-D \(B, T, C\) input, got shape \(2, 2, 2, 6\)"):
        bn(torch.randn(2, 2, 2, 6))
    with pytest.raises(ValueError, match=r"needs more than 1 value per channel in training, got shape \(1, 6\)"):
        bn(torch.randn(1, 6))


@pytest.mark.parametrize("shape", [(10, 8), (4, 5, 8)])
def test_layernorm_matches_torch(shape):
    ours = _random_affine(mtn.LayerNorm1d(8))
    theirs = nn.LayerNorm(8)
    with torch.no_grad():
        theirs.weight.copy_(ours.gamma)
        theirs.bias.copy_(ours.beta)
    x = (torch.randn(*shape) * 2 + 3).requires_grad_()
    _assert_norms_agree(ours, theirs, x, ours(x), theirs(x))


def test_the_seed_notebooks_layernorm_differs_from_torch_and_ours_does_not():
    x = torch.randn(64, 8)
    # a common hand-written version: unbiased std, eps added outside the square root
    seed = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-8)
    reference = nn.functional.layer_norm(x, (8,))
    assert (seed - reference).abs().max() > 0.03  # std over 8 values: off by a factor sqrt(7/8)
    torch.testing.assert_close(mtn.LayerNorm1d(8)(x), reference, **TOL)


def test_layernorm_wrong_width_error():
    with pytest.raises(ValueError, match=r"LayerNorm1d\(8, eps=1e-05\) expected 8 channels in the last dim, got 4"):
        mtn.LayerNorm1d(8)(torch.randn(2, 4))


def test_flatten_consecutive_shapes_and_values():
    e = torch.randn(4, 8, 10)
    out = mtn.FlattenConsecutive(2)(e)
    assert out.shape == (4, 4, 20)
    # the lecture's explicit version: even positions concatenated with the odd ones after them
    torch.testing.assert_close(out, torch.cat([e[:, ::2, :], e[:, 1::2, :]], dim=2), rtol=0, atol=0)
    assert mtn.FlattenConsecutive(8)(e).shape == (4, 80)  # T == n: the time axis is squeezed
    assert mtn.FlattenConsecutive(8)(e[:1]).shape == (1, 80)  # a batch of one stays a batch


def test_flatten_consecutive_errors():
    with pytest.raises(ValueError, match=r"FlattenConsecutive\(3\) n=3 does not divide the time dimension T=8"):
        mtn.FlattenConsecutive(3)(torch.randn(2, 8, 4))
    with pytest.raises(ValueError, match=r"expected a 3-D \(B, T, C\) input, got shape \(2, 8\)"):
        mtn.FlattenConsecutive(2)(torch.randn(2, 8))


def test_flatten_matches_torch():
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(mtn.Flatten()(x), nn.Flatten()(x), rtol=0, atol=0)


@pytest.mark.parametrize("ours, theirs, tol", [(mtn.Tanh(), nn.Tanh(), 0), (mtn.ReLU(), nn.ReLU(), 0),
                                               (mtn.GELU(), nn.GELU(), 1e-6)])
def test_activations_match_torch(ours, theirs, tol):
    x = (torch.randn(6, 5) * 3).requires_grad_()
    (g_o,) = torch.autograd.grad(ours(x).sum(), x)
    (g_t,) = torch.autograd.grad(theirs(x).sum(), x)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=tol)
    torch.testing.assert_close(g_o, g_t, rtol=0, atol=tol)


def test_layernorm_without_bias_matches_torch_and_learns_no_beta():
    ours = mtn.LayerNorm1d(8, bias=False)
    theirs = nn.LayerNorm(8, bias=False)
    with torch.no_grad():
        ours.gamma.copy_(torch.rand(8) + 0.5)
    with torch.no_grad():
        theirs.weight.copy_(ours.gamma)
    x = torch.randn(4, 5, 8)
    torch.testing.assert_close(ours(x), theirs(x), **TOL)
    assert [p is ours.gamma for p in ours.parameters()] == [True]  # beta is a zero buffer, not a parameter
    assert torch.equal(ours.beta, torch.zeros(8)) and repr(ours) == "LayerNorm1d(8, eps=1e-05, bias=False)"


def test_sequential_chains_layers_and_lists_their_parameters_in_order():
    layers = [mtn.Linear(4, 3), mtn.Tanh(), mtn.Linear(3, 2, bias=False)]
    model = mtn.Sequential(layers)
    expected = [layers[0].weight, layers[0].bias, layers[2].weight]
    assert len(model.parameters()) == 3 and all(a is b for a, b in zip(model.parameters(), expected))
    x = torch.randn(5, 4)
    torch.testing.assert_close(model(x), torch.tanh(x @ layers[0].weight + layers[0].bias) @ layers[2].weight)
    assert len(model) == 3 and model[1] is layers[1] and list(model) == layers


@pytest.mark.parametrize("layer, x, message", [
    (mtn.Linear(7, 5), torch.randn(2, 7, dtype=torch.float64), r"Linear\(7→5\) expected a torch.float32 input like its "
                                                               r"weights, got torch.float64"),
    (mtn.Linear(7, 5), torch.ones(2, 7, dtype=torch.long), r"Linear\(7→5\) expected a torch.float32 input .*got "
                                                            r"torch.int64 \(token ids go into an Embedding first\)"),
    (mtn.BatchNorm1d(4), torch.ones(3, 4, dtype=torch.long), r"BatchNorm1d\(4, eps=1e-05, momentum=0.1\) expected a "
                                                              r"torch.float32 input"),
    (mtn.LayerNorm1d(4), torch.randn(3, 4, dtype=torch.float64), r"LayerNorm1d\(4, eps=1e-05\) expected a "
                                                                  r"torch.float32 input"),
])
def test_an_input_of_another_dtype_is_an_error_naming_the_layer(layer, x, message):
    with pytest.raises(TypeError, match=message):
        layer(x)


@pytest.mark.parametrize("build, message", [
    (lambda: mtn.Linear(0, 5), "Linear: in_features must be an integer >= 1, got 0"),
    (lambda: mtn.Linear(-1, 5), "Linear: in_features must be an integer >= 1, got -1"),
    (lambda: mtn.Linear(2.5, 3), "Linear: in_features must be an integer >= 1, got 2.5"),
    (lambda: mtn.Linear(30, -4), "Linear: out_features must be an integer >= 1, got -4"),
    (lambda: mtn.Linear(30, 100_000_000_000), r"Linear\(30, 100000000000\): a weight of shape \(30, 100000000000\) "
                                              r"would take 11,175.9 GiB, more than this machine's"),
    (lambda: mtn.Embedding(0, 4), "Embedding: num_embeddings must be an integer >= 1, got 0"),
    (lambda: mtn.BatchNorm1d(0), "BatchNorm1d: num_features must be an integer >= 1, got 0"),
    (lambda: mtn.BatchNorm1d(4, momentum=5.0), r"BatchNorm1d: momentum must be a number in \[0, 1\], got 5.0"),
    (lambda: mtn.BatchNorm1d(4, eps=-1), r"BatchNorm1d: eps must be a number in \(0, 1\], got -1"),
    (lambda: mtn.LayerNorm1d(4, eps=float("nan")), r"LayerNorm1d: eps must be a number in \(0, 1\], got nan"),
    (lambda: mtn.MultiHeadAttention(8, -2, 4), "MultiHeadAttention: n_head must be an integer >= 1, got -2"),
    (lambda: mtn.MultiHeadAttention(8, 0, 4), "MultiHeadAttention: n_head must be an integer >= 1, got 0"),
    (lambda: mtn.CausalConv1d(4, 4, kernel_size=0), "CausalConv1d: kernel_size must be an integer >= 1, got 0"),
    (lambda: mtn.FlattenConsecutive(0), "FlattenConsecutive: n must be an integer >= 1, got 0"),
    (lambda: mtn.FlattenConsecutive(-2), "FlattenConsecutive: n must be an integer >= 1, got -2"),
])
def test_every_constructor_refuses_bad_sizes_and_settings_naming_the_layer(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("build, block_size", [(lambda: mtn.wavenet(block_size=8), 8), (lambda: mtn.mlp(block_size=3), 3)])
def test_a_names_model_refuses_a_context_of_another_length(build, block_size):
    model = build()
    assert model(torch.zeros(4, block_size, dtype=torch.long)).shape == (4, 27)
    with pytest.raises(ValueError, match=rf"built for block_size={block_size}: it expected token ids of shape "
                                         rf"\(B, {block_size}\), got \(4, {2 * block_size}\)"):
        model(torch.zeros(4, 2 * block_size, dtype=torch.long))


def test_mtn_dropout_is_the_layer_of_nn_layers():
    from minitorchnn.nn import layers

    assert mtn.Dropout is layers.Dropout
