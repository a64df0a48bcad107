import pickle
from pathlib import Path

import pytest
import torch

import minitorchnn as mtn
from minitorchnn.nn.optim import make_schedule


class Foreign:
    """Some other program's object: a pickle that torch.load(weights_only=True) will not open."""


def trained(names3, seed=0, steps=20):
    torch.manual_seed(seed)
    reg = mtn.RegisterModel(mtn.mlp(), "mlp", "v1", device="cpu", vocab=names3.vocab, block_size=3, verbose=False)
    reg.train(*names3["train"], steps=steps, seed=seed, momentum=0.9, progress=False)
    return reg


def fresh(seed=1):
    torch.manual_seed(seed)
    return mtn.RegisterModel(mtn.mlp(), "mlp", "v1", device="cpu", verbose=False)


def weights(reg):
    return [p.detach().clone() for p in reg.model.parameters()]


def test_a_checkpoint_missing_entries_leaves_the_model_untouched(names3, tmp_path):
    path = trained(names3).save(tmp_path / "m.pt")
    contents = torch.load(path, weights_only=True)
    del contents["model"]["4.bias"]  # the last Linear's bias
    torch.save(contents, tmp_path / "partial.pt")
    reg = fresh()
    before = weights(reg)
    with pytest.raises(mtn.CheckpointError, match=r"partial.pt: its weights do not list this model's tensors "
                                                  r"\(missing \['4.bias'\]"):
        reg.load(tmp_path / "partial.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, weights(reg))) and reg.optimizer is None
    contents = torch.load(path, weights_only=True)
    contents["optimizer"]["velocity"] = contents["optimizer"]["velocity"][:2]  # state for 2 of 4 tensors
    torch.save(contents, tmp_path / "bad_optimizer.pt")
    with pytest.raises(mtn.CheckpointError, match="bad_optimizer.pt: the optimiser's state does not fit"):
        reg.load(tmp_path / "bad_optimizer.pt")
    assert all(torch.equal(a, b) for a, b in zip(before, weights(reg)))


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b""), "the file is empty, not a checkpoint"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a minitorchnn checkpoint, or a damaged one"),
    (lambda p: p.write_bytes(pickle.dumps(Foreign())), "not a minitorchnn checkpoint, or a damaged one"),
    (lambda p: p.write_bytes(b"\x00\x01 random bytes"), "not a minitorchnn checkpoint, or a damaged one"),
    (lambda p: torch.save({"weights": torch.zeros(3)}, p), "not a minitorchnn checkpoint of format 1"),
])
def test_damaged_or_foreign_files_get_the_projects_own_message(names3, tmp_path, damage, message):
    path = trained(names3, steps=1).save(tmp_path / "m.pt")
    damage(path)
    with pytest.raises(mtn.CheckpointError) as err:
        fresh().load(path)
    text = str(err.value)
    assert text.startswith(str(path)) and message in text and "weights_only" not in text


def test_nan_weights_are_neither_loaded_nor_saved_over_a_good_checkpoint(names3, tmp_path):
    reg = trained(names3)
    path = reg.save(tmp_path / "m.pt")
    good = path.read_bytes()
    contents = torch.load(path, weights_only=True)
    contents["model"]["2.weight"][0, 0] = float("nan")
    torch.save(contents, tmp_path / "nan.pt")
    with pytest.raises(mtn.CheckpointError, match=r"nan.pt: the weights \['2.weight'\] hold NaN"):
        fresh().load(tmp_path / "nan.pt")
    with torch.no_grad():
        reg.model[2].weight.fill_(float("nan"))
    with pytest.raises(mtn.CheckpointError, match=r"m.pt: not saved, the weights \['2.weight'\] hold NaN"):
        reg.save(path)
    assert path.read_bytes() == good  # the good checkpoint is still there, whole


def test_a_missing_file_and_another_architecture_name_the_file(names3, tmp_path):
    with pytest.raises(mtn.CheckpointError, match="nothing.pt: no such checkpoint file"):
        fresh().load(tmp_path / "nothing.pt")
    path = trained(names3, steps=1).save(tmp_path / "mlp.pt")
    other = mtn.RegisterModel(mtn.mlp(n_hidden=100), "mlp", "v1", device="cpu", verbose=False)
    with pytest.raises(mtn.CheckpointError, match=r"mlp.pt was saved from a different architecture"):
        other.load(path)


def test_a_checkpoint_saved_before_training_loads(tmp_path):
    reg = fresh(0)
    path = reg.save(tmp_path / "untrained.pt")
    other = fresh(1).load(path)
    assert other.optimizer is None and all(torch.equal(a, b) for a, b in zip(weights(reg), weights(other)))


def test_check_can_save_refuses_a_folder_or_a_path_under_a_file(tmp_path):
    from minitorchnn.train.checkpoint import check_can_save

    with pytest.raises(mtn.CheckpointError, match="is a folder; give the checkpoint a file name"):
        check_can_save(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(mtn.CheckpointError, match="cannot write a checkpoint there"):
        check_can_save(tmp_path / "file" / "m.pt")
    assert check_can_save(tmp_path / "new" / "m.pt") == tmp_path / "new" / "m.pt"
    assert list((tmp_path / "new").iterdir()) == []  # the probe file is gone


def test_a_checkpoint_written_before_feedforward_named_its_layers_still_loads():
    # written by the code of commit 5a0d811, when FeedForward's layers were "net.0" and "net.2"
    path = Path(__file__).parent / "gpt_format1.ckpt"
    saved = torch.load(path, weights_only=True)["model"]
    reg = mtn.RegisterModel(mtn.GPT(5, block_size=4, n_embd=8, n_head=2, n_layer=1), "gpt", device="cpu",
                            verbose=False).load(path)
    state = reg.model.state_dict()
    assert torch.equal(state["blocks.0.ffwd.fc.weight"], saved["blocks.0.ffwd.net.0.weight"])
    assert torch.equal(state["blocks.0.ffwd.proj.bias"], saved["blocks.0.ffwd.net.2.bias"])
    assert reg.vocab.itos == list("abcd\n") and len(reg.history["loss"]) == 3
    other = mtn.RegisterModel(mtn.GPT(5, block_size=4, n_embd=8, n_head=2, n_layer=1, activation="gelu"), "gpt",
                              device="cpu", verbose=False)
    with pytest.raises(mtn.CheckpointError, match="different architecture"):
        other.load(path)  # the renamed repr is still compared: ReLU is not GELU


def test_text_checkpoints_carry_their_vocabulary_and_refuse_another_corpus(tmp_path):
    torch.manual_seed(0)
    ours, theirs = mtn.CharVocab(list("abc")), mtn.CharVocab(list("xyz"))
    gpt = dict(block_size=8, n_embd=16, n_head=2, n_layer=1)
    reg = mtn.RegisterModel(mtn.GPT(3, **gpt), "gpt", device="cpu", vocab=ours, block_size=8, verbose=False)
    path = reg.save(tmp_path / "gpt.pt")
    assert torch.load(path, weights_only=True)["vocab"] == ["a", "b", "c"]
    other = mtn.RegisterModel(mtn.GPT(3, **gpt), "gpt", device="cpu", vocab=theirs, block_size=8, verbose=False)
    before = weights(other)
    with pytest.raises(mtn.CheckpointError, match=r"gpt.pt: saved with a vocabulary of 3 characters 'abc', but this "
                                                  r"model's data has 3 characters 'xyz': it would decode the wrong"):
        other.load(path)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(other)))
    blank = mtn.RegisterModel(mtn.GPT(3, **gpt), "gpt", device="cpu", verbose=False).load(path)
    assert blank.vocab == ours  # a model without a vocabulary takes the checkpoint's


def test_save_refuses_to_overwrite_a_file_that_is_not_a_checkpoint(names3, tmp_path):
    from minitorchnn.train.checkpoint import check_can_save

    text = tmp_path / "corpus.txt"
    text.write_text("my only copy\n")
    with pytest.raises(mtn.CheckpointError, match="corpus.txt: exists and is not a minitorchnn checkpoint"):
        check_can_save(text)
    path = trained(names3).save(tmp_path / "m.pt")
    assert check_can_save(path) == path  # our own checkpoint may be written again


def test_a_resumed_run_trains_like_one_that_never_stopped(names3, tmp_path):
    config = mtn.TrainConfig(steps=40, lr=0.1, schedule="step", momentum=0.9, seed=3)
    whole = fresh()
    whole.train(*names3["train"], config, progress=False)
    stopped = fresh()  # the first 20 steps of the same run (the lr schedule of 40 steps), then saved
    first_half = config.replace(steps=20, schedule=make_schedule("step", 0.1, 40))
    path = stopped.train(*names3["train"], first_half, progress=False) and stopped.save(tmp_path / "half.pt")
    resumed = fresh(seed=7).load(path)
    resumed.train(*names3["train"], config, progress=False, first_step=len(resumed.history["loss"]))
    assert resumed.history["lr"] == whole.history["lr"]  # the schedule went on: 0.1 until step 30, then 0.01
    assert all(torch.equal(a, b) for a, b in zip(weights(resumed), weights(whole)))


@pytest.mark.parametrize("first_step", [-1, 40, 1.5])
def test_first_step_must_be_inside_the_run(names3, first_step):
    with pytest.raises(ValueError, match=r"first_step must be a whole number in \[0, steps=40\)"):
        fresh().train(*names3["train"], steps=40, first_step=first_step, progress=False)
