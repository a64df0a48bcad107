import subprocess
import sys

from minitorchnn.__main__ import main


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
