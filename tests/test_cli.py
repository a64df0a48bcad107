import errno
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import minitorchnn as mtn
from minitorchnn.cli import main


def test_help_explains_the_options():
    out = subprocess.run([sys.executable, "-m", "minitorchnn", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for option in ("--model", "--steps", "--block-size", "--lr", "--schedule", "--seed", "--samples", "--save"):
        assert option in out


def test_a_short_run_prints_losses_and_samples(capsys, tmp_path):
    assert main(["--model", "mlp-bn", "--steps", "200", "--samples", "5", "--quiet", "--save", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "Model registered with 12097 Parameters" in out and "trained 200 steps" in out
    table_row = next(line for line in out.splitlines() if line.startswith("mlp-bn"))
    assert len(table_row.split()) == 5  # model, version, train, val, test
    samples = next(line for line in out.splitlines() if line.startswith("samples: "))
    assert len(samples.removeprefix("samples: ").split(", ")) == 5
    assert (tmp_path / "m.pt").exists()


def test_unknown_model_is_refused_with_the_known_ones():
    result = subprocess.run([sys.executable, "-m", "minitorchnn", "--model", "gpt9"], capture_output=True, text=True)
    assert result.returncode == 2 and "invalid choice: 'gpt9'" in result.stderr and "wavenet" in result.stderr


def test_sync_batchnorm_on_a_model_without_batchnorm_is_refused(capsys):
    assert main(["--model", "mlp", "--sync-batchnorm", "--steps", "1"]) == 2
    assert "--sync-batchnorm needs a model with BatchNorm (mlp-bn, wavenet), not mlp" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, expected", [
    ("--lr", "0", "a finite number > 0"), ("--lr", "-1", "a finite number > 0"), ("--lr", "nan", "a finite number > 0"),
    ("--lr", "inf", "a finite number > 0"), ("--steps", "0", "a whole number >= 1"),
    ("--steps", "-3", "a whole number >= 1"), ("--batch-size", "0", "a whole number >= 1"),
    ("--samples", "-1", "a whole number >= 0"), ("--block-size", "0", "a whole number >= 1"),
    ("--n-layer", "0", "a whole number >= 1"), ("--eval-interval", "0", "a whole number >= 1"),
    ("--dropout", "1", "a number in [0, 1)"),
    ("--seed", "99999999999999999999999", "a whole number from 0 to 2**64 - 1"),
    ("--seed", "-1", "a whole number from 0 to 2**64 - 1"), ("--threads", "0", "a whole number >= 1"),
])
def test_bad_numbers_are_refused_before_training(capsys, option, value, expected):
    with pytest.raises(SystemExit) as exit_:
        main(["--model", "gpt" if option in ("--n-layer", "--eval-interval", "--dropout") else "mlp", option, value])
    captured = capsys.readouterr()
    assert exit_.value.code == 2 and f"error: argument {option}: expected {expected}, got '{value}'" in captured.err
    assert "Traceback" not in captured.err and "trained" not in captured.out


def test_compare_steps_zero_is_refused_not_read_as_not_given(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", "experiments/loss_analysis.toml", "--steps", "0"])
    assert exit_.value.code == 2 and "argument --steps: expected a whole number >= 1, got '0'" in capsys.readouterr().err


def test_a_learning_rate_that_diverges_stops_with_a_clear_error(capsys, tmp_path):
    assert main(["--model", "mlp", "--lr", "1e6", "--steps", "3000", "--quiet", "--save", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mlp: the loss reached") and "more than 10x its starting value" in err
    assert "nothing was saved" in err and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("argv, message", [
    (["--model", "mlp", "--level", "byte"], "--level chooses how --data FILE is read; without --data it does nothing"),
    (["--model", "mlp-bn", "--sync-batchnorm"], "--sync-batchnorm acts under torchrun with several processes"),
    (["--model", "mlp", "--n-layer", "2"], "--n-layer set(s) the GPT's shape; mlp does not read it"),
    (["--model", "mlp", "--data", "x.txt"], "--data trains a text model (gpt or wavegpt), not mlp"),
    (["--model", "mlp", "--save", "README.md/m.pt"], "README.md/m.pt: cannot write a checkpoint there"),
])
def test_options_that_would_do_nothing_or_lose_the_model_are_errors_before_training(capsys, argv, message):
    assert main(argv + ["--steps", "5"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err and "Model registered" not in captured.out


def test_missing_data_from_the_shell(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MINITORCHNN_DATA"}
    code = ("import urllib.request, minitorchnn.data.files as d; d.project_root = lambda: __import__('pathlib').Path("
            f"{str(tmp_path)!r}); urllib.request.urlopen = lambda *a, **k: (_ for _ in ()).throw(OSError('offline'));"
            "from minitorchnn.cli import main; raise SystemExit(main(['--steps', '5']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 2 and result.stderr.startswith("error: Could not find names.txt. Tried:")
    assert "Traceback" not in result.stderr and "set MINITORCHNN_DATA to a folder that has names.txt" in result.stderr


def test_the_configuration_printed_is_what_trains(capsys):
    assert main(["--model", "gpt", "--optimizer", "sgd", "--steps", "2", "--n-layer", "1", "--n-embd", "16",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Training      : steps=2, batch_size=12, lr=0.001, schedule='cosine', warmup_steps=0, final_lr=1e-05, " \
           "optimizer='sgd', momentum=0.9, weight_decay=0.0, clip=1.0, seed=42" in out


def test_the_checkpoint_is_written_before_sampling(tmp_path, capsys, monkeypatch):
    from minitorchnn.train.register import RegisterModel

    def broken_sample(self, *args, **kwargs):
        raise ValueError("sampling broke")
    monkeypatch.setattr(RegisterModel, "sample", broken_sample)
    assert main(["--model", "mlp", "--steps", "50", "--quiet", "--save", str(tmp_path / "m.pt")]) == 2
    assert "error: sampling broke" in capsys.readouterr().err and (tmp_path / "m.pt").exists()


def test_ctrl_c_during_train_save_keeps_what_was_trained(tmp_path):
    path = tmp_path / "m.pt"
    process = subprocess.Popen([sys.executable, "-m", "minitorchnn", "--model", "mlp", "--steps", "5000000",
                                "--quiet", "--save", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    for line in process.stdout:  # the banner's last line comes just before training starts
        if line.lstrip().startswith("Training"):
            break
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "saved the model trained so far to" in out and "Traceback" not in err
    reg = mtn.RegisterModel(mtn.mlp(), "mlp", "block3", device="cpu", verbose=False).load(path)
    assert 0 < len(reg.history["loss"]) < 5_000_000


# --- issue 25: threads, nothing lost, clear errors ------------------------------------------------------------
def test_the_names_models_train_on_one_thread_and_the_banner_says_why(capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    assert main(["--model", "mlp", "--steps", "5", "--samples", "0", "--quiet"]) == 0
    assert "Threads       : 1 (models under 200,000 parameters run fastest on one)" in capsys.readouterr().out
    assert torch.get_num_threads() == before  # put back for whoever called main()
    assert main(["--model", "mlp", "--steps", "5", "--samples", "0", "--quiet", "--threads", "2"]) == 0
    assert "Threads       : 2 (--threads)" in capsys.readouterr().out


def test_omp_num_threads_overrides_the_choice(capsys, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert main(["--model", "mlp", "--steps", "5", "--samples", "0", "--quiet"]) == 0
    assert "(OMP_NUM_THREADS)" in capsys.readouterr().out


def test_compare_chooses_threads_by_the_largest_variant(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert main(["compare", "experiments/loss_analysis.toml", "--steps", "3", "--seeds", "0", "--quiet",
                 "--out", str(tmp_path / "run")]) == 0
    assert "threads: 1 (models under 200,000 parameters run fastest on one)" in capsys.readouterr().out


def test_save_refuses_to_overwrite_the_corpus_or_any_file_that_is_not_a_checkpoint(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 50)
    before = corpus.read_bytes()
    assert main(["train", "--data", str(corpus), "--save", str(corpus), "--steps", "2", "--n-layer", "1",
                 "--n-embd", "16", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {corpus}: exists and is not a minitorchnn checkpoint; refusing to overwrite it (give " \
                  f"the checkpoint a new file name)\n"
    assert corpus.read_bytes() == before


def test_a_full_disk_is_one_line_naming_the_file_and_the_cause(tmp_path, capsys, monkeypatch):
    path = tmp_path / "m.pt"
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    assert main(["--model", "mlp", "--steps", "50", "--quiet", "--save", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}: could not write it (No space left on device); any file " \
                                      f"already there was left as it was\n"
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_kill_9_loses_at_most_one_interval_and_resume_carries_on_to_the_same_model(tmp_path, capsys):
    path, steps = tmp_path / "m.pt", 20_000  # a checkpoint every 2,000 steps
    args = ["--model", "mlp", "--steps", str(steps), "--quiet", "--samples", "0", "--save", str(path)]
    process = subprocess.Popen([sys.executable, "-m", "minitorchnn", *args], stdout=subprocess.DEVNULL)
    while not path.exists() and process.poll() is None:
        time.sleep(0.02)
    process.kill()  # kill -9: no handler runs, nothing is saved on the way out
    assert process.wait() == -signal.SIGKILL
    done = len(load_mlp(path).history["loss"])
    assert done % 2_000 == 0 and 0 < done < steps
    assert main([*args, "--resume"]) == 0
    assert f"resuming at step {done} of {steps}" in capsys.readouterr().out
    resumed = load_mlp(path)
    assert len(resumed.history["loss"]) == steps
    whole = tmp_path / "whole.pt"
    assert main([*args[:-1], str(whole)]) == 0  # the same run, never stopped
    uninterrupted = load_mlp(whole)
    assert all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), uninterrupted.model.parameters()))
    assert resumed.history == uninterrupted.history


def load_mlp(path):
    return mtn.RegisterModel(mtn.mlp(), "mlp", "block3", device="cpu", verbose=False).load(path)


@pytest.mark.parametrize("argv, message", [
    (["--resume"], "--resume carries on from the --save checkpoint; give --save PATH"),
    (["--resume", "--save", "nowhere.pt"], "--resume: nowhere.pt does not exist yet; train without --resume first"),
])
def test_resume_needs_a_checkpoint(capsys, argv, message):
    assert main(["--model", "mlp", "--steps", "5", *argv]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


def test_resume_of_a_finished_run_asks_for_more_steps(tmp_path, capsys):
    args = ["--model", "mlp", "--steps", "20", "--quiet", "--samples", "0", "--save", str(tmp_path / "m.pt")]
    assert main(args) == 0
    assert main([*args, "--resume"]) == 2
    assert "has trained 20 steps already, --steps is 20; give more --steps to train on" in capsys.readouterr().err


@pytest.mark.parametrize("device, message", [
    ("gpu", "--device: expected cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("", "--device: expected cpu, cuda, cuda:N or mps, got ''"),
    ("meta", "--device: expected cpu, cuda, cuda:N or mps, got 'meta' (a meta device cannot train here)"),
    ("cuda:9", "--device: got 'cuda:9', but this machine has "),
])
def test_a_device_that_cannot_train_is_an_error_naming_the_option(capsys, device, message):
    assert main(["--model", "mlp", "--steps", "5", "--device", device]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {message}") and "Model registered" not in captured.out


def test_a_bad_minitorchnn_device_names_the_variable(capsys, monkeypatch):
    monkeypatch.setenv("MINITORCHNN_DEVICE", "cuda:9")
    assert main(["--model", "mlp", "--steps", "5"]) == 2
    assert capsys.readouterr().err.startswith("error: MINITORCHNN_DEVICE: got 'cuda:9', but this machine has ")


@pytest.mark.parametrize("option, value", [("--steps", "100000000000"), ("--batch-size", "10000000000")])
def test_absurd_sizes_are_refused_by_a_memory_estimate_naming_the_option(capsys, option, value):
    assert main(["--model", "mlp", option, value]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {option}: too large for this machine: training would need about ")
    assert "Model registered" not in captured.out


def test_a_fifo_given_as_data_is_named_as_one(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["--data", str(fifo), "--steps", "1"]) == 2
    assert capsys.readouterr().err == f"error: {fifo} is a FIFO (named pipe), not a regular text file (a corpus " \
                                      f"is read twice: give a file)\n"
