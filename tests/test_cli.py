import os
import signal
import subprocess
import sys
import time

import pytest

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
