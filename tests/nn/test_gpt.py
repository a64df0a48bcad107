import pytest
import torch

import minitorchnn as mtn


def small_gpt(**kw):
    torch.manual_seed(0)
    return mtn.GPT(vocab_size=20, block_size=16, n_embd=32, n_head=4, n_layer=2, **kw)


def test_gpt_logits_shape_for_any_length_up_to_block_size():
    model = small_gpt()
    for T in (1, 7, 16):
        assert model(torch.randint(0, 20, (3, T))).shape == (3, T, 20)


def test_gpt_too_long_context_is_an_error():
    with pytest.raises(ValueError, match="got 17 tokens, more than block_size=16; crop the context"):
        small_gpt()(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("build", [small_gpt, lambda: small_gpt(dropout=0.1)])
def test_gpt_is_causal(build):
    model = build().eval()
    idx = torch.randint(0, 20, (2, 16))
    base = model(idx)
    for t in range(15):
        changed = idx.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + torch.randint(0, 18, changed[:, t + 1:].shape)) % 20
        torch.testing.assert_close(model(changed)[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-5)


def test_generate_shape_range_determinism_and_mode():
    model = small_gpt()
    start = torch.zeros(2, 1, dtype=torch.long)
    a = model.generate(start, 40, generator=torch.Generator().manual_seed(1))  # longer than block_size: cropped
    b = model.generate(start, 40, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 41) and torch.equal(a, b)
    assert a.min() >= 0 and a.max() < 20
    assert model.training  # generate() restores the training mode
    top1 = model.generate(start, 5, top_k=1)
    model.eval()
    with torch.no_grad():
        greedy = start
        for _ in range(5):
            greedy = torch.cat([greedy, model(greedy)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(top1, greedy)  # top_k=1 is greedy decoding
    with pytest.raises(ValueError, match=r"temperature must be a number in \(0, inf\)"):
        model.generate(start, 1, temperature=0)


def test_gpt_initial_loss_is_near_uniform_and_it_learns():
    model = small_gpt()
    idx = torch.randint(0, 20, (8, 16))
    targets = torch.roll(idx, -1, dims=1)
    loss0 = mtn.cross_entropy(model(idx), targets).item()
    assert abs(loss0 - torch.log(torch.tensor(20.0)).item()) < 0.2
    opt = mtn.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = mtn.cross_entropy(model(idx), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * loss0


def test_gpt_parameter_count_of_the_cpu_config():
    model = mtn.GPT(vocab_size=65, block_size=64, n_embd=128, n_head=4, n_layer=4)
    # per block: 2 LayerNorms (512) + qkv (49,536) + proj (16,512) + ffwd (66,048 + 65,664) = 198,272
    expected = 65 * 128 + 64 * 128 + 4 * 198_272 + 256 + 128 * 65 + 65
    assert model.num_parameters() == expected
    assert 0.8e6 < expected < 0.83e6


def test_sizes_below_one_and_positional_arguments_are_refused():
    with pytest.raises(ValueError, match="GPT: n_layer must be an integer >= 1, got 0"):
        mtn.GPT(65, n_layer=0)
    with pytest.raises(ValueError, match="WaveGPT: n_head must be an integer >= 1, got -1"):
        mtn.WaveGPT(65, n_head=-1)
    with pytest.raises(TypeError):
        mtn.GPT(65, 64, 128, 4, 4)  # n_head and n_layer cannot be swapped silently: they must be named
    assert mtn.GPT(65).num_parameters() == 818_241  # the defaults are the CPU configuration


def test_generate_refuses_bad_arguments_and_seeds_on_the_models_device():
    model = small_gpt()
    idx = torch.zeros(1, 1, dtype=torch.long)
    for kwargs, message in [({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0, got -1"),
                            ({"top_k": 0}, "top_k must be an integer >= 1, got 0"),
                            ({"top_k": True}, "top_k must be an integer >= 1, got True"),
                            ({"temperature": True}, r"temperature must be a number in \(0, inf\), got True"),
                            ({"temperature": float("nan")}, r"temperature must be a number in \(0, inf\), got nan")]:
        with pytest.raises(ValueError, match=message):
            model.generate(idx, **{"max_new_tokens": 3, **kwargs})
    with pytest.raises(ValueError, match=r"expected a context of token ids of shape \(B, T\) with B, T >= 1, got \(1, 0\)"):
        model.generate(torch.zeros(1, 0, dtype=torch.long), 3)
    assert torch.equal(model.generate(idx, 20, seed=3), model.generate(idx, 20, seed=3))
    assert model.generate(idx, 0).shape == (1, 1)


def test_nanogpts_choices_as_options():
    """bias=False, activation="gelu", tie_weights=True: nanoGPT's model, here as options of ours."""
    torch.manual_seed(0)
    model = mtn.GPT(20, block_size=16, n_embd=32, n_head=4, n_layer=2, bias=False, activation="gelu",
                    tie_weights=True)
    names = [name for name, _ in model.named_parameters()]
    assert not [n for n in names if n.endswith(("bias", "beta"))] and "lm_head.weight" not in names
    assert isinstance(model.blocks[0].ffwd.activation, mtn.GELU)
    idx = torch.randint(0, 20, (2, 16))
    x = model.embed(idx)
    for block in model.blocks:
        x = block(x)
    expected = torch.nn.functional.layer_norm(x, (32,), model.ln_f.gamma) @ model.token_embedding.weight.t()
    torch.testing.assert_close(model(idx), expected, rtol=1e-5, atol=1e-6)  # the head is the embedding
    mtn.cross_entropy(model(idx), torch.roll(idx, -1, 1)).backward()
    assert model.token_embedding.weight.grad is not None
    untied = mtn.GPT(20, block_size=16, n_embd=32, n_head=4, n_layer=2)
    assert untied.num_parameters() - model.num_parameters() == (
        32 * 20 + 20  # the untied head and its bias
        + 2 * (3 * 32 + 32 + 4 * 32 + 32 + 2 * 32)  # per block: qkv, proj, ffwd biases, two LayerNorm betas
        + 32)  # the final LayerNorm's beta
    with pytest.raises(ValueError, match="FeedForward: activation must be one of relu, gelu, got 'swish'"):
        mtn.GPT(20, activation="swish")
