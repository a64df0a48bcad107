import errno
import os
import re
import signal

import pytest
import torch

import minitorchnn as mtn
from minitorchnn.train import loop as training
from minitorchnn.nn.module import Module


def registered(model=None, block_size=3, vocab=None, **kw):
    """A registered model on the CPU; the default MLP is built from seed 0."""
    if model is None:
        torch.manual_seed(0)
        model = mtn.mlp(block_size=block_size or 3)
    return mtn.RegisterModel(model, "mlp", "v1", device="cpu", vocab=vocab, block_size=block_size, **kw)


def seeded_bn_mlp(seed=0):
    torch.manual_seed(seed)
    return mtn.mlp(batchnorm=True)


def test_registration_prints_parameter_count_and_configuration(capsys):
    registered()
    out = capsys.readouterr().out
    assert out.startswith("Model registered with 11897 Parameters\n")
    assert "Model name    : mlp" in out and "Device        : cpu" in out and "0x" not in out


def test_summary_lists_output_shapes_and_parameter_counts(capsys):
    reg = registered(mtn.wavenet(), block_size=8, verbose=False)
    reg.summary()
    text = capsys.readouterr().out
    assert re.search(r"0: Embedding\(27, 24\)\s+\(4, 8, 24\)\s+648", text)
    assert re.search(r"1: FlattenConsecutive\(2\)\s+\(4, 4, 48\)\s+0", text)
    assert re.search(r"9: FlattenConsecutive\(2\)\s+\(4, 256\)", text)
    assert re.search(r"13: Linear\(in_features=128, out_features=27, bias=True\)\s+\(4, 27\)\s+3,483", text)
    assert re.search(r"Total\s+76,579", text)


def test_summary_dry_run_leaves_batchnorm_statistics_alone():
    reg = registered(mtn.mlp(batchnorm=True), verbose=False)
    bn = reg.model[3]
    reg.summary(torch.randint(0, 27, (10, 3)))
    assert torch.equal(bn.running_mean, torch.zeros(200)) and reg.model.training


def test_same_seed_gives_identical_loss_history(names3):
    runs = []
    for _ in range(2):
        reg = registered(seeded_bn_mlp(), verbose=False)
        runs.append(reg.train(*names3["train"], steps=300, seed=7, progress=False)["loss"])
    assert len(runs[0]) == 300 and runs[0] == runs[1]
    other = registered(seeded_bn_mlp(), verbose=False).train(*names3["train"], steps=300, seed=8, progress=False)
    assert other["loss"] != runs[0]


def test_mlp_reaches_val_loss_below_2_3(names3):
    reg = registered(verbose=False)
    run = reg.train(*names3["train"], steps=6000, lr=0.1, schedule="step", seed=0, progress=False)
    assert run["lr"][0] == 0.1 and run["lr"][-1] == pytest.approx(0.01)
    val = reg.evaluate(*names3["val"])
    assert val < 2.3, f"val loss {val:.4f} after 6000 steps"
    assert reg.history["loss"] == run["loss"]


def test_evaluate_uses_eval_mode_and_restores_the_mode(names3):
    reg = registered(mtn.mlp(batchnorm=True), verbose=False)
    reg.train(*names3["train"], steps=50, seed=0, progress=False)
    bn = reg.model[3]
    mean = bn.running_mean.clone()
    X, Y = names3["val"]
    loss = reg.evaluate(X, Y, batch_size=5000)  # chunks of 5000 give the same mean as one pass
    reg.model.eval()
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(reg.model(X), Y).item()
    reg.model.train()
    assert loss == pytest.approx(expected, rel=1e-5)
    assert torch.equal(bn.running_mean, mean) and reg.model.training


def test_split_losses_table(names3):
    reg = registered(verbose=False)
    table = reg.split_losses(names3)
    assert set(table.rows[0]) == {"model", "version", "train", "val", "test"}
    assert abs(table["val"] - 3.2958) < 0.05  # an untrained model guesses near uniformly: log(27)
    both = table + table
    assert len(both.rows) == 2 and both.to_markdown().count("\n") == 3
    assert repr(both).splitlines()[0].split() == ["model", "version", "train", "val", "test"]


class Exploding(Module):
    """Logits that turn to NaN from the 8th call on: stands in for a learning rate that is too high."""

    def __init__(self):
        self.inner = mtn.mlp()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.inner(x)
        return out * float("nan") if self.calls > 7 else out


def test_non_finite_loss_stops_training_naming_step_and_lr(names3):
    reg = registered(Exploding(), verbose=False)
    with pytest.raises(FloatingPointError, match=r"loss became nan at step 8 of 500 \(lr=0.05\)"):
        reg.train(*names3["train"], steps=500, lr=0.05, progress=False)
    assert reg.model.calls == training.CHECK_EVERY  # stopped at the first check, not after 500 steps
    assert len(reg.history["loss"]) == 8  # the history keeps the steps up to the bad one


def test_sample_names_are_deterministic_with_a_seed(names3):
    reg = registered(vocab=names3.vocab, verbose=False)
    reg.train(*names3["train"], steps=300, seed=0, progress=False)
    a, b = reg.sample(12, seed=3), reg.sample(12, seed=3)
    assert a == b and len(a) == 12
    assert all(set(name) <= set("abcdefghijklmnopqrstuvwxyz") for name in a)
    assert reg.model.training
    with pytest.raises(ValueError, match="sample\\(\\) needs a vocab and a block_size"):
        registered(verbose=False, block_size=None).sample(3)


def test_plot_losses_averages_over_windows(names3):
    reg = registered(verbose=False)
    with pytest.raises(ValueError, match="nothing to plot yet"):
        reg.plot_losses()
    reg.train(*names3["train"], steps=1050, seed=0, progress=False)
    ax = reg.plot_losses(window=100)
    (line,) = ax.get_lines()
    y = line.get_ydata()
    assert len(y) == 10  # the last 50 steps do not fill a window and are left out
    assert float(y[0]) == pytest.approx(sum(reg.history["loss"][:100]) / 100, rel=1e-5)


def test_checkpoint_round_trip(names3, tmp_path):
    reg = registered(mtn.mlp(batchnorm=True), vocab=names3.vocab, verbose=False)
    reg.train(*names3["train"], steps=200, momentum=0.9, seed=0, progress=False)
    path = reg.save(tmp_path / "ckpt" / "mlp.pt")
    assert path.exists() and list(path.parent.iterdir()) == [path]
    fresh = registered(mtn.mlp(batchnorm=True), verbose=False)
    fresh.load(path)
    X = names3["val"][0][:100]
    reg.model.eval(), fresh.model.eval()
    torch.testing.assert_close(fresh.model(X), reg.model(X), rtol=0, atol=0)
    assert fresh.history == reg.history and fresh.vocab == names3.vocab and fresh.block_size == 3
    torch.testing.assert_close(fresh.optimizer.velocity[0], reg.optimizer.velocity[0], rtol=0, atol=0)
    # training goes on identically from the checkpoint
    reg.model.train(), fresh.model.train()
    a = reg.train(*names3["train"], steps=20, momentum=0.9, seed=1, progress=False)["loss"]
    b = fresh.train(*names3["train"], steps=20, momentum=0.9, seed=1, progress=False)["loss"]
    assert a == b


def test_checkpoint_of_another_architecture_is_refused_and_changes_nothing(tmp_path):
    path = registered(mtn.mlp(block_size=3), verbose=False).save(tmp_path / "mlp3.pt")
    other = registered(mtn.mlp(block_size=8), block_size=8, verbose=False)
    before = {k: v.clone() for k, v in other.model.state_dict().items()}
    with pytest.raises(ValueError, match=r"different architecture .*first difference: checkpoint has \('2.weight', \(30, 200\)\), this model has \('2.weight', \(80, 200\)\)"):
        other.load(path)
    assert all(torch.equal(v, before[k]) for k, v in other.model.state_dict().items())


def test_a_full_disk_during_save_names_the_file_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    reg = registered(verbose=False)
    path = reg.save(tmp_path / "mlp.pt")
    good = path.read_bytes()

    def disk_full(fd):  # the bytes are written, then the disk turns out to be full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError) as error:
        reg.save(path)
    assert str(error.value) == f"{path}: could not write it (No space left on device); any file already there was " \
                               f"left as it was"
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]


def test_device_defaults_to_cuda_when_present_else_cpu():
    reg = mtn.RegisterModel(mtn.mlp(), "mlp", "v1", verbose=False)
    assert reg.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert all(p.device.type == reg.device.type for p in reg.model.parameters())


def test_train_input_errors(names3):
    reg = registered(verbose=False)
    X, Y = names3["train"]
    with pytest.raises(ValueError, match="train got 10 inputs but 9 targets"):
        reg.train(X[:10], Y[:9], steps=1)
    with pytest.raises(mtn.ConfigError, match="schedule must be one of constant, step, exponential, cosine"):
        reg.train(X, Y, steps=1, schedule="linear")


def test_progress_bar_is_quiet_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not training.progress_enabled(None, 100_000)
    monkeypatch.delenv("CI")
    monkeypatch.delenv("MINITORCHNN_PROGRESS", raising=False)
    assert training.progress_enabled(None, 100_000) and not training.progress_enabled(None, 10)
    assert training.progress_enabled(True, 10)


def test_train_text_with_adamw_and_clipping_learns_and_checkpoints(tmp_path, capsys):
    text = "to be or not to be, that is the question. " * 200
    dataset = mtn.TextDataset(text)
    torch.manual_seed(0)
    model = mtn.GPT(dataset.vocab_size, block_size=16, n_embd=32, n_head=4, n_layer=2)
    reg = mtn.RegisterModel(model, "gpt", "tiny", device="cpu", verbose=False)
    before = reg.estimate_loss(dataset, eval_iters=5, batch_size=8, block_size=16)
    assert before == reg.estimate_loss(dataset, eval_iters=5, batch_size=8, block_size=16)  # fixed batches
    run = reg.train_text(dataset, steps=150, batch_size=8, block_size=16, lr=3e-3, optimizer="adamw",
                         schedule=mtn.WarmupCosine(150, 3e-3, warmup_steps=10), clip=1.0, seed=0,
                         eval_interval=50, eval_iters=5)
    assert [step for step, _, _ in run["eval"]] == [50, 100, 150]
    assert run["eval"][-1][2] < 0.5 * before["val"]
    assert isinstance(reg.optimizer, mtn.AdamW) and "step     50: train" in capsys.readouterr().out
    path = reg.save(tmp_path / "gpt.pt")
    torch.manual_seed(1)
    other = mtn.RegisterModel(mtn.GPT(dataset.vocab_size, block_size=16, n_embd=32, n_head=4, n_layer=2),
                              "gpt", "tiny", device="cpu", verbose=False).load(path)
    assert isinstance(other.optimizer, mtn.AdamW) and other.optimizer.step_count == 150
    idx = torch.zeros(1, 1, dtype=torch.long)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(reg.model.generate(idx, 30, generator=g()), other.model.generate(idx, 30, generator=g()))


# --- the redesigned harness trains exactly as before -----------------------------------------
# Losses recorded with the harness before the TrainConfig / fit() redesign (commit fc89088), same
# seeds, CPU, one process: every value must come out the same (up to float printing).
RECORDED_LOSSES = {
    "mlp": [3.315671443939209, 2.7810375690460205, 2.4689300060272217, 2.671257257461548, 2.511375665664673,
            2.2865350246429443, 2.3639023303985596],
    "mlp_splits": (2.5110468856947294, 2.506976419388656, 2.5110759082808536),
    "mlp_bn_momentum_cosine": [3.3007373809814453, 2.796586275100708, 2.6327478885650635, 2.735064744949341,
                               2.278669834136963],
    "gpt_adamw": [4.183757305145264, 3.900944471359253, 3.6190829277038574, 3.5393307209014893, 3.6196532249450684],
    "gpt_adamw_eval": (3.5728015899658203, 3.5936798095703124),
}


def test_seeded_names_losses_match_the_recorded_runs(names3):
    torch.manual_seed(42)
    reg = mtn.RegisterModel(mtn.mlp(block_size=3), "mlp", "v1", device="cpu", verbose=False)
    run = reg.train(*names3["train"], steps=300, lr=0.1, schedule="step", seed=42, progress=False)
    assert run["loss"][::50] + [run["loss"][-1]] == pytest.approx(RECORDED_LOSSES["mlp"], abs=1e-6)
    table = reg.split_losses(names3)
    assert (table["train"], table["val"], table["test"]) == pytest.approx(RECORDED_LOSSES["mlp_splits"], abs=1e-6)
    torch.manual_seed(1)
    reg = mtn.RegisterModel(mtn.mlp(block_size=3, batchnorm=True), "mlp-bn", "v1", device="cpu", verbose=False)
    config = mtn.TrainConfig(steps=200, batch_size=64, lr=0.05, schedule="cosine", momentum=0.9,
                             weight_decay=1e-4, seed=3)
    run = reg.train(*names3["train"], config, progress=False)  # the same run, as a TrainConfig
    assert run["loss"][::50] + [run["loss"][-1]] == pytest.approx(RECORDED_LOSSES["mlp_bn_momentum_cosine"], abs=1e-6)


def test_seeded_text_losses_match_the_recorded_runs():
    shakespeare = mtn.shakespeare_dataset()
    torch.manual_seed(0)
    model = mtn.GPT(shakespeare.vocab_size, block_size=32, n_embd=32, n_head=4, n_layer=2)
    reg = mtn.RegisterModel(model, "gpt", "v1", device="cpu", verbose=False)
    run = reg.train_text(shakespeare, steps=40, batch_size=8, block_size=32, lr=1e-3, optimizer="adamw",
                         schedule=mtn.WarmupCosine(40, 1e-3, warmup_steps=4, min_lr=1e-4), betas=(0.9, 0.99),
                         clip=1.0, seed=0, eval_iters=5, progress=False, log=False)
    assert run["loss"][::10] + [run["loss"][-1]] == pytest.approx(RECORDED_LOSSES["gpt_adamw"], abs=1e-5)
    assert run["eval"][-1][1:] == pytest.approx(RECORDED_LOSSES["gpt_adamw_eval"], abs=1e-5)


# --- the loop: one hook, divergence, Ctrl-C ---------------------------------------------------
def test_on_step_hooks_see_every_step_and_print_every_prints(names3, capsys):
    seen = []
    reg = registered(verbose=False)
    reg.train(*names3["train"], steps=40, seed=0, progress=False,
              on_step=[lambda s: seen.append((s.step, s.steps, s.lr, s.loss.item())), mtn.print_every(20)])
    assert [s[0] for s in seen] == list(range(1, 41)) and all(s[1] == 40 and s[2] == 0.1 for s in seen)
    assert [s[3] for s in seen] == pytest.approx(reg.history["loss"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("step      20/40: loss ") and "lr 0.1" in lines[1]
    with pytest.raises(TypeError, match="on_step must be a function of the Step"):
        reg.train(*names3["train"], steps=1, on_step=3)
    with pytest.raises(ValueError, match="print_every expected a number of steps >= 1, got 0"):
        mtn.print_every(0)


def test_a_finite_loss_that_explodes_stops_training(names3):
    reg = registered(verbose=False)
    with pytest.raises(mtn.TrainingDiverged, match=r"more than 10x its starting value .* at step \d+ of 2000 "
                                                   r"\(lr=1e\+06\); training stopped"):
        reg.train(*names3["train"], steps=2000, lr=1e6, seed=0, progress=False)
    assert len(reg.history["loss"]) <= training.CHECK_EVERY  # stopped at the first check, not after 2000 steps
    assert reg.history["loss"][-1] > 10 * reg.history["loss"][0]  # the history ends at the step that exploded


def test_ctrl_c_finishes_the_step_under_way_then_stops(names3):
    def interrupt_at_step_5(s):
        if s.step == 5:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, in the middle of training

    # Ctrl-C as in an interactive session, also when pytest was started with SIGINT ignored (`cmd &` in a script)
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reg = registered(verbose=False)
        with pytest.raises(KeyboardInterrupt, match="interrupted after step 5 of 100"):
            reg.train(*names3["train"], steps=100, seed=0, progress=False, on_step=interrupt_at_step_5)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C is itself again
    finally:
        signal.signal(signal.SIGINT, outer)
    assert len(reg.history["loss"]) == 5
    same = registered(verbose=False)
    same.train(*names3["train"], steps=5, seed=0, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(reg.model.parameters(), same.model.parameters()))  # whole steps


def test_train_text_refuses_a_split_shorter_than_the_block_before_training():
    text = mtn.TextDataset("abcdefghij" * 10)  # 90 train tokens, 10 val tokens
    reg = mtn.RegisterModel(mtn.GPT(text.vocab_size, block_size=16, n_embd=16, n_head=2, n_layer=1), "gpt",
                            device="cpu", verbose=False)
    with pytest.raises(ValueError, match=r"the val split of TextDataset.* has 10 tokens, too few for windows of "
                                         r"block_size=16"):
        reg.train_text(text, steps=5, batch_size=2)
    assert reg.history["loss"] == []


def test_the_registration_banner_names_no_optimiser_before_one_is_chosen(names3, capsys):
    reg = registered()
    assert "Optimiser" not in capsys.readouterr().out
    reg.train(*names3["train"], steps=1, lr=0.05, momentum=0.9, weight_decay=1e-3)
    assert "Optimiser     : SGD(lr=0.05, momentum=0.9, weight_decay=0.001)" in reg.configuration()


def test_sample_needs_room_for_a_character(names3):
    reg = registered(vocab=names3.vocab, verbose=False)
    with pytest.raises(ValueError, match="sample expected max_len, the most characters of a name, >= 1, got 0"):
        reg.sample(3, max_len=0)


def test_training_on_no_examples_is_an_error_naming_x():
    reg = registered(verbose=False)
    with pytest.raises(ValueError, match=r"train got no examples: x has shape \(0, 3\)"):
        reg.train(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, dtype=torch.long), steps=5)


@pytest.mark.parametrize("setting, value", [("steps", 100_000_000_000), ("batch_size", 10_000_000_000)])
def test_absurd_sizes_are_refused_before_anything_is_allocated(names3, setting, value):
    reg = registered(verbose=False)
    with pytest.raises(ValueError, match=f"{setting}: too large for this machine: training would need about"):
        reg.train(*names3["train"], **{setting: value})
    assert reg.history["loss"] == []


@pytest.mark.parametrize("device, message", [
    ("gpu", "device: expected cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("meta", "device: expected cpu, cuda, cuda:N or mps, got 'meta'"),
    ("cuda:9", "device: got 'cuda:9', but this machine has"),
])
def test_a_device_that_cannot_train_is_refused_by_name(device, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        mtn.RegisterModel(mtn.mlp(), "mlp", device=device, verbose=False)
