import pytest
import torch

import minitorchnn as mtn


def small_wavegpt():
    torch.manual_seed(0)
    model = mtn.WaveGPT(vocab_size=20, block_size=16, n_embd=32, n_head=4, n_layer=2)
    with torch.no_grad():
        model.beta.fill_(0.7)  # a trained mix: the WaveNet stream matters
    return model


def test_wavegpt_is_causal():
    model = small_wavegpt().eval()
    idx = torch.randint(0, 20, (2, 16))
    base = model(idx)
    for t in range(15):
        changed = idx.clone()
        changed[:, t + 1:] = (changed[:, t + 1:] + 1) % 20
        torch.testing.assert_close(model(changed)[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-5)


def test_wavegpt_uses_its_wavenet_stream():
    model = small_wavegpt()
    idx = torch.randint(0, 20, (2, 16))
    with_wavenet = model(idx)
    with torch.no_grad():
        model.beta.zero_()
    assert (model(idx) - with_wavenet).abs().max() > 1e-3


def test_wavegpt_generate_and_length_error():
    model = small_wavegpt()
    out = model.generate(torch.zeros(1, 1, dtype=torch.long), 20, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 21) and out.max() < 20
    with pytest.raises(ValueError, match="more than block_size=16"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_wavegpt_beta_gets_a_gradient_from_the_start():
    torch.manual_seed(0)
    model = mtn.WaveGPT(vocab_size=20, block_size=16, n_embd=32, n_head=4, n_layer=2)
    assert model.beta.item() == 0.0
    idx = torch.randint(0, 20, (4, 16))
    mtn.cross_entropy(model(idx), torch.roll(idx, -1, 1)).backward()
    assert model.beta.grad.abs().item() > 0


def test_a_narrow_wavenet_stream_matches_a_gpts_parameter_count_within_5_percent():
    gpt = mtn.GPT(65, block_size=64, n_embd=128, n_head=4, n_layer=4)
    wavegpt = mtn.WaveGPT(65, block_size=64, n_embd=128, n_head=4, n_layer=3, wavenet_channels=64)
    assert abs(wavegpt.num_parameters() / gpt.num_parameters() - 1) <= 0.05
    assert wavegpt(torch.zeros(2, 64, dtype=torch.long)).shape == (2, 64, 65)
