import re

import pytest
import torch

import minitorchnn as mtn
from minitorchnn.nn.conv import DepthwiseCausalConv1d
from minitorchnn.nn.wavegpt import ConvAttention, ParallelWaveGPT


def small_parallel():
    torch.manual_seed(0)
    model = ParallelWaveGPT(vocab_size=20, block_size=16, n_embd=32, n_head=4, n_layer=2)
    with torch.no_grad():
        model.beta.fill_(0.7)  # a trained mix: the WaveNet stream matters
    return model


def test_parallel_wavegpt_is_causal():
    model = small_parallel().eval()
    idx = torch.randint(0, 20, (2, 16))
    base = model(idx)
    for t in range(15):
        changed = idx.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1) % 20
        torch.testing.assert_close(model(changed)[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-5)


def test_parallel_wavegpt_uses_its_wavenet_stream():
    model = small_parallel()
    idx = torch.randint(0, 20, (2, 16))
    with_wavenet = model(idx)
    with torch.no_grad():
        model.beta.zero_()
    assert (model(idx) - with_wavenet).abs().max() > 1e-3


def test_parallel_wavegpt_generate_and_length_error():
    model = small_parallel()
    out = model.generate(torch.zeros(1, 1, dtype=torch.long), 20, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 21) and out.max() < 20
    with pytest.raises(ValueError, match="more than block_size=16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_parallel_wavegpt_beta_gets_a_gradient_from_the_start():
    torch.manual_seed(0)
    model = ParallelWaveGPT(vocab_size=20, block_size=16, n_embd=32, n_head=4, n_layer=2)
    assert model.beta.item() == 0.0
    idx = torch.randint(0, 20, (4, 16))
    mtn.cross_entropy(model(idx), torch.roll(idx, -1, 1)).backward()
    assert model.beta.grad.abs().item() > 0


def test_a_narrow_wavenet_stream_matches_a_gpts_parameter_count_within_5_percent():
    gpt = mtn.GPT(65, block_size=64, n_embd=128, n_head=4, n_layer=4)
    wavegpt = ParallelWaveGPT(65, block_size=64, n_embd=128, n_head=4, n_layer=3, wavenet_channels=64)
    assert abs(wavegpt.num_parameters() / gpt.num_parameters() - 1) <= 0.05
    assert wavegpt(torch.zeros(2, 64, dtype=torch.long)).shape == (2, 64, 65)


# --- WaveGPT: dilated depthwise causal convolutions inside every block ---------------------------

def trained_looking_wavegpt(**kwargs):
    """A small WaveGPT whose convolutions are not zero (as after training), so that they matter."""
    torch.manual_seed(0)
    model = mtn.WaveGPT(20, block_size=16, n_embd=32, n_head=4, n_layer=3, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, DepthwiseCausalConv1d):
                module.weight.normal_(0.0, 0.5)
    return model


ALL_PLACEMENTS = [("attn",), ("qkv",), ("mlp",), ("attn", "mlp"), ("attn", "qkv", "mlp")]


@pytest.mark.parametrize("conv_at", ALL_PLACEMENTS)
@pytest.mark.parametrize("dilations", ["doubling", 1, (3, 1, 2)])
def test_wavegpt_is_causal_at_every_position(conv_at, dilations):
    model = trained_looking_wavegpt(conv_at=conv_at, dilations=dilations).eval()
    idx = torch.randint(0, 20, (2, 16))
    base = model(idx)
    for t in range(15):
        changed = idx.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + t) % 20
        torch.testing.assert_close(model(changed)[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-5)
    changed = idx.clone()
    changed[:, 0] = (changed[:, 0] + 1) % 20
    assert (model(changed)[:, 15] - base[:, 15]).abs().max() > 1e-4  # and the last position sees the first


@pytest.mark.parametrize("conv_at", ALL_PLACEMENTS)
def test_wavegpt_convolutions_sit_where_conv_at_says_and_change_the_output(conv_at):
    model = trained_looking_wavegpt(conv_at=conv_at)
    block = model.blocks[0]
    assert (block.conv_attn is not None) == ("attn" in conv_at)
    assert (block.conv_mlp is not None) == ("mlp" in conv_at)
    assert isinstance(block.attn, ConvAttention) == ("qkv" in conv_at)
    idx = torch.randint(0, 20, (2, 16))
    with_convs = model(idx)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, DepthwiseCausalConv1d):
                module.weight.zero_()
    assert (model(idx) - with_convs).abs().max() > 1e-3


def test_wavegpt_defaults_are_the_ablations_choice_and_doubling_is_wavenets():
    model = mtn.WaveGPT(65)  # a width-4 convolution before the feed-forward net, dilation 1, in every block
    assert model.conv_at == ("mlp",) and model.kernel_size == 4 and model.dilations == (1, 1, 1, 1)
    assert all(b.conv_attn is None and b.conv_mlp.dilation == 1 for b in model.blocks)
    doubling = mtn.WaveGPT(65, conv_at=("attn", "mlp"), dilations="doubling")
    assert doubling.dilations == (1, 2, 4, 8)
    assert [b.conv_attn.dilation for b in doubling.blocks] == [1, 2, 4, 8]
    assert [b.conv_mlp.receptive_field for b in doubling.blocks] == [4, 7, 13, 25]


def test_an_untrained_wavegpt_computes_what_its_gpt_does():
    """The convolutions start at zero: with the GPT's weights copied in, the outputs are the GPT's."""
    torch.manual_seed(0)
    gpt, wavegpt = mtn.GPT(20, block_size=16, n_embd=32, n_head=4, n_layer=2), mtn.WaveGPT(
        20, block_size=16, n_embd=32, n_head=4, n_layer=2, conv_at=("attn", "qkv", "mlp"))
    gpt_params = dict(gpt.named_parameters())
    wave_params = dict(wavegpt.named_parameters())
    extra = sorted(set(wave_params) - set(gpt_params))
    assert extra == sorted(f"blocks.{i}.{name}.weight" for i in range(2) for name in ("attn.qkv_conv", "conv_attn",
                                                                                    "conv_mlp"))
    with torch.no_grad():
        for name, p in gpt_params.items():
            wave_params[name].copy_(p)
    idx = torch.randint(0, 20, (3, 16))
    torch.testing.assert_close(wavegpt(idx), gpt(idx), rtol=0, atol=0)


def test_wavegpt_has_within_2_percent_of_gpts_parameters_at_the_cpu_config():
    gpt, wavegpt = mtn.GPT(65), mtn.WaveGPT(65)  # same arguments, each with its own defaults
    assert gpt.num_parameters() == 818_241
    assert wavegpt.num_parameters() == 818_241 + 4 * 4 * 128  # 4 blocks x one convolution x kernel 4 x 128
    assert abs(wavegpt.num_parameters() / gpt.num_parameters() - 1) <= 0.02
    assert mtn.WaveGPT(65, conv_at=("attn", "qkv", "mlp")).num_parameters() <= 1.02 * gpt.num_parameters()


def test_wavegpt_convolutions_learn_from_the_first_step():
    torch.manual_seed(0)
    model = mtn.WaveGPT(20, block_size=16, n_embd=32, n_head=4, n_layer=2, conv_at=("attn", "qkv", "mlp"))
    idx = torch.randint(0, 20, (4, 16))
    mtn.cross_entropy(model(idx), torch.roll(idx, -1, 1)).backward()
    for name, p in model.named_parameters():
        if "conv" in name:
            assert p.grad.abs().max() > 0, f"{name} gets no gradient at zero"


def test_wavegpt_generates_deterministically_under_a_seed():
    model = trained_looking_wavegpt()
    context = torch.zeros(2, 1, dtype=torch.long)
    first = model.generate(context, 30, temperature=0.8, top_k=5, seed=3)
    assert first.shape == (2, 31) and int(first.max()) < 20
    assert torch.equal(first, model.generate(context, 30, temperature=0.8, top_k=5, seed=3))
    assert not torch.equal(first, model.generate(context, 30, temperature=0.8, top_k=5, seed=4))
    long = model.generate(context, 40, seed=0)  # longer than block_size: the context is cropped
    assert long.shape == (2, 41)


def test_wavegpt_training_is_deterministic_under_a_seed():
    def run():
        torch.manual_seed(5)
        reg = mtn.RegisterModel(mtn.WaveGPT(20, block_size=8, n_embd=16, n_head=2, n_layer=2), "w", "v",
                                device="cpu", verbose=False)
        idx = torch.randint(0, 20, (64, 9), generator=torch.Generator().manual_seed(0))
        reg.train(idx[:, :-1], idx[:, 1:], steps=20, batch_size=8, lr=1e-2, optimizer="adamw", seed=1,
                  progress=False)
        return torch.cat([p.detach().flatten() for p in reg.model.parameters()]), reg.history

    (weights_a, losses_a), (weights_b, losses_b) = run(), run()
    assert torch.equal(weights_a, weights_b) and losses_a == losses_b


@pytest.mark.parametrize("kwargs, message", [
    (dict(conv_at=("ffn",)), "WaveGPT: conv_at must name one or more of ('attn', 'qkv', 'mlp'), got ('ffn',)"),
    (dict(conv_at=()), "WaveGPT: conv_at must name one or more of"),
    (dict(dilations=(1, 2)), "WaveGPT: dilations must be 'doubling', one integer or 3 integers (one per block), "
                             "got (1, 2)"),
    (dict(dilations="tripling"), "WaveGPT: dilations must be 'doubling', one integer or 3 integers"),
    (dict(dilations=(1, 0, 2)), "WaveGPT: every dilation must be an integer >= 1, got 0 in (1, 0, 2)"),
    (dict(dilations=0), "WaveGPT: every dilation must be an integer >= 1, got 0"),
    (dict(kernel_size=0), "DepthwiseCausalConv1d: kernel_size must be an integer >= 1, got 0"),
    (dict(n_embd=30), "n_embd=30 is not divisible by n_head=4"),
])
def test_wavegpt_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        mtn.WaveGPT(20, **{"block_size": 16, "n_embd": 32, "n_head": 4, "n_layer": 3, **kwargs})


def test_wavegpt_refuses_too_long_input():
    with pytest.raises(ValueError, match="WaveGPT got 17 tokens, more than block_size=16"):
        trained_looking_wavegpt()(torch.zeros(1, 17, dtype=torch.long))
