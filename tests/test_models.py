import pytest
import torch

import minitorchnn as mtn


def test_parameter_counts_match_the_lectures():
    assert mtn.mlp(block_size=3).num_parameters() == 11_897
    assert mtn.mlp(block_size=3, batchnorm=True).num_parameters() == 12_097
    assert mtn.wavenet().num_parameters() == 76_579


def test_wavenet_shapes_at_block_8_and_a_4_level_block_16():
    for block_size in (8, 16):
        model = mtn.wavenet(block_size=block_size)
        assert model(torch.randint(0, 27, (4, block_size))).shape == (4, 27)
        model.eval()  # sampling one name at a time: a batch of one, with the running statistics
        assert model(torch.zeros(1, block_size, dtype=torch.long)).shape == (1, 27)


def test_wavenet_walkthrough_shapes():
    shapes = []
    x = torch.randint(0, 27, (4, 8))
    for layer in mtn.wavenet():
        x = layer(x)
        shapes.append(tuple(x.shape))
    assert shapes[0] == (4, 8, 24) and shapes[1] == (4, 4, 48) and shapes[2] == (4, 4, 128)
    assert shapes[5] == (4, 2, 256) and shapes[9] == (4, 256) and shapes[-1] == (4, 27)


def test_wavenet_block_size_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of 2 .*got 6"):
        mtn.wavenet(block_size=6)


def test_initial_loss_is_near_uniform():
    torch.manual_seed(0)
    x, y = torch.randint(0, 27, (512, 3)), torch.randint(0, 27, (512,))
    for model in (mtn.mlp(), mtn.mlp(batchnorm=True)):
        assert abs(mtn.cross_entropy(model(x), y).item() - torch.log(torch.tensor(27.0)).item()) < 0.1


def test_models_registry_builds_every_model_for_the_vocabulary_it_is_given():
    for name, spec in mtn.MODELS.items():
        for vocab_size in (27, 30):
            model = spec(vocab_size)  # the spec's own default block size
            logits = model(torch.zeros(2, spec.block_size, dtype=torch.long))
            assert logits.shape[-1] == vocab_size and logits.shape[0] == 2, name
    assert mtn.MODELS["wavenet"](27, 16)[0].num_embeddings == 27 and mtn.MODELS["gpt"](65, 32).block_size == 32
    assert {name for name, spec in mtn.MODELS.items() if spec.data == "text"} == {"gpt", "wavegpt", "wavegpt-parallel"}


@pytest.mark.parametrize("block_size", [8, 16])
def test_wavenet_every_position_equals_the_hierarchical_model_on_every_window(block_size):
    model = mtn.wavenet(block_size=block_size)
    model(torch.randint(0, 27, (64, block_size)))  # one training step's worth of running statistics
    model.eval()
    idx = torch.randint(0, 27, (3, block_size + 9))
    every = mtn.wavenet_every_position(model, idx)
    assert every.shape == (3, 10, 27)
    windows = torch.stack([model(idx[:, j:j + block_size]) for j in range(10)], dim=1)
    torch.testing.assert_close(every, windows, rtol=1e-5, atol=1e-5)


def test_wavenet_every_position_refuses_training_mode():
    with pytest.raises(ValueError, match=r"needs model.eval\(\)"):
        mtn.wavenet_every_position(mtn.wavenet(), torch.zeros(2, 8, dtype=torch.long))


def test_wavenet_norm_choices():
    counts = {norm: mtn.wavenet(n_embd=10, n_hidden=68, norm=norm).num_parameters()
              for norm in ("batchnorm", "layernorm", "none", "batchnorm-per-position")}
    # the lecture's 22K WaveNet; without a norm each hidden Linear gets its bias back instead of beta and gamma
    assert counts == {"batchnorm": 22_397, "layernorm": 22_397, "none": 22_193, "batchnorm-per-position": 22_397}
    buggy = mtn.wavenet(n_embd=10, n_hidden=68, norm="batchnorm-per-position")
    assert [type(m).__name__ for m in buggy if "BatchNorm" in type(m).__name__] == [
        "BatchNorm1dPerPosition", "BatchNorm1dPerPosition", "BatchNorm1d"]  # the last level is 2-D
    with pytest.raises(ValueError, match="wavenet: unknown norm 'groupnorm'; known: batchnorm, layernorm"):
        mtn.wavenet(norm="groupnorm")


def test_every_model_carries_its_defaults_and_the_command_line_reads_them():
    from minitorchnn.cli import build_parser, train_config
    from minitorchnn.parallel.workers import GPT_CONFIG

    for name, spec in mtn.MODELS.items():
        args = build_parser().parse_args(["train", "--model", name])
        assert train_config(args, spec) == spec.training.replace(seed=42, **(
            {"eval_interval": None, "warmup_steps": 100} if spec.data == "text" else {}))
    assert GPT_CONFIG == {"block_size": 64, **mtn.MODELS["gpt"].shape}
    # the command line's cosine ends where make_schedule's does when no final_lr is given: lr / 100
    args = build_parser().parse_args(["train", "--model", "gpt", "--steps", "1000"])
    schedule = mtn.make_schedule(**{k: getattr(train_config(args, mtn.MODELS["gpt"]), k)
                                    for k in ("lr", "steps", "warmup_steps", "final_lr")}, name="cosine")
    assert schedule(999) == pytest.approx(1e-5)
