import json
import subprocess
import sys
from pathlib import Path

import pytest

import minitorchnn as mtn
from minitorchnn.lab import comparison
from minitorchnn.cli import main

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"

GOOD = """\
name = "tiny"
steps = 20
seeds = [0]

[train]
lr = 0.1

[variants.plain]
model = "mlp"
block_size = 3

[variants.relu]
block_size = 3
layers = ["Embedding(27, 10)", "FlattenConsecutive(3)", "Linear(30, 50)", "ReLU()", "Linear(50, 27)"]
"""


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_experiments_load_with_the_lectures_parameter_counts():
    counts = {}
    for path in sorted(EXPERIMENTS.glob("*.toml")):
        exp = mtn.load_experiment(path)
        counts[exp.name] = {name: v.build().num_parameters() for name, v in exp.variants.items()}
    assert counts["loss-analysis"] == {"plain-block3": 11_897, "batchnorm-block3": 12_097,
                                       "plain-block8": 21_897, "batchnorm-block8": 22_097}
    assert counts["wavenet-log"] == {"mlp-block3": 12_097, "mlp-block8": 22_097, "hierarchical-bug": 22_397,
                                     "hierarchical": 22_397, "hierarchical-big": 76_579}
    assert set(counts["activations-and-norms"]) == {"tanh", "relu", "tanh-batchnorm", "tanh-layernorm"}


def test_layers_are_built_as_written(tmp_path):
    exp = mtn.load_experiment(write(tmp_path, GOOD))
    model = exp.variants["relu"].build()
    assert [type(layer).__name__ for layer in model] == ["Embedding", "FlattenConsecutive", "Linear", "ReLU", "Linear"]
    assert model[2].weight.shape == (30, 50) and exp.variants["relu"].block_size == 3
    assert exp.train == mtn.TrainConfig(steps=20, lr=0.1, schedule="step") and exp.seeds == (0,) and exp.steps == 20
    constant = mtn.load_experiment(write(tmp_path, GOOD.replace("lr = 0.1", "lr = 1\nschedule = \"constant\""), "c.toml"))
    assert constant.train.schedule == "constant" and constant.train.lr == 1
    assert model[2].weight.data_ptr() != exp.variants["relu"].build()[2].weight.data_ptr()  # a fresh model per call


@pytest.mark.parametrize("text, message", [
    ('name = "x"\nsteps = \n', r"exp.toml: not valid TOML: .*\(at line 2, column 9\)"),
    (GOOD.replace("seeds = [0]", "seeds = [0]\nstpes = 3"), r"exp.toml, line 4: unknown key 'stpes'; known keys: name,"),
    (GOOD.replace("lr = 0.1", "learning_rate = 0.1"),
     r"line 6: train: unknown setting 'learning_rate'; known: batch_size, lr,"),
    (GOOD.replace('"ReLU()"', '"Relu()"'),
     r"line 14: variants.relu.layers\[3\] 'Relu\(\)': unknown layer 'Relu'; known layers: Embedding, Linear, "
     r"BatchNorm1d, BatchNorm1dPerPosition, LayerNorm1d, FlattenConsecutive, Flatten, Tanh, ReLU, Dropout"),
    (GOOD.replace('"Linear(30, 50)"', '"Linear(30, size=50)"'),
     r"line 14: variants.relu.layers\[2\] 'Linear\(30, size=50\)': missing a required argument: "
     r"'out_features'; it takes Linear\(in_features, out_features, bias=True\)"),
    (GOOD.replace('model = "mlp"', 'model = "mlp3"'), r"line 9: variants.plain: unknown model 'mlp3'; known models: mlp, mlp-bn, wavenet, gpt, wavegpt, wavegpt-parallel$"),
    (GOOD.replace('block_size = 3\n\n[variants.relu]', 'block_size = 3\nargs = { hidden = 5 }\n\n[variants.relu]'),
     r"line 11: variants.plain: model 'mlp' cannot be built with these arguments \(.*unexpected keyword argument "
     r"'hidden'\)"),
    (GOOD.replace('block_size = 3\nlayers', 'layers'), r"line 12: variants.relu needs block_size"),
    (GOOD.replace('steps = 20', 'steps = "20"'), r"line 2: steps must be an integer, got '20'"),
    (GOOD.replace('lr = 0.1', 'lr = "0.1"'), r"line 6: train: lr must be a finite number, got '0.1'"),
    (GOOD.replace('lr = 0.1', 'lr = 0'), r"line 6: train: lr must be above 0, got 0"),
    (GOOD.replace('lr = 0.1', 'schedule = "linear"'), r"line 6: train: schedule must be one of constant, step, exponential, cosine"),
    (GOOD.replace('lr = 0.1', 'optimizer = "adam"'), r"line 6: train: optimizer must be one of sgd, adamw, got 'adam'"),
    (GOOD.replace('model = "mlp"\n', ''), r"variants.plain needs exactly one of `model"),
    (GOOD.replace('block_size = 3\n\n', 'block_size = 6\nargs = { n_embd = 10 }\n\n').replace('"mlp"', '"wavenet"'),
     r"line 11: variants.plain: model 'wavenet' cannot be built with these arguments \(wavenet needs block_size "
     r"to be a power of 2"),
])
def test_a_malformed_experiment_is_named_with_key_and_line(tmp_path, text, message):
    with pytest.raises(mtn.ExperimentError, match=message):
        mtn.load_experiment(write(tmp_path, text))


def test_cli_compare_writes_the_run_folder_and_resumes(tmp_path, capsys, monkeypatch):
    path, out = write(tmp_path, GOOD), tmp_path / "run"
    real, calls = comparison._train_one, []

    def interrupted_after_one(name, *args):
        if calls:
            raise KeyboardInterrupt
        calls.append(name)
        return real(name, *args)

    monkeypatch.setattr(comparison, "_train_one", interrupted_after_one)
    assert main(["compare", str(path), "--out", str(out), "--quiet"]) == 130
    assert "interrupted: 1 finished runs are kept" in capsys.readouterr().err

    def counting(name, *args):
        calls.append(name)
        return real(name, *args)

    monkeypatch.setattr(comparison, "_train_one", counting)
    assert main(["compare", str(path), "--out", str(out), "--quiet"]) == 0
    assert calls == ["plain", "relu"]  # the first run was not trained again
    printed = capsys.readouterr().out
    assert "plain" in printed and "relu" in printed and "ms/step" in printed
    for name in ("results.csv", "results.json", "results.md", "losses.png", "experiment.json"):
        assert (out / name).stat().st_size > 0
    stored = json.loads((out / "experiment.json").read_text())
    assert stored["variants"]["plain"] == {"model": "mlp", "block_size": 3} and stored["steps"] == 20
    assert len(list(out.glob("runs/*/seed-0/checkpoint.pt"))) == 2
    # the same folder with other settings is refused, not mixed in
    assert main(["compare", str(path), "--out", str(out), "--steps", "21", "--quiet"]) == 2
    assert "holds runs of a different experiment" in capsys.readouterr().err


def test_cli_reports_a_bad_file_without_a_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace('"ReLU()"', '"Relu()"'))
    result = subprocess.run([sys.executable, "-m", "minitorchnn", "compare", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown layer 'Relu'; known layers:" in result.stderr


@pytest.mark.parametrize("text, message", [
    (GOOD.replace('name = "tiny"', 'name = "../../x"'), r"line 1: name becomes the run folder runs/NAME: .*got '../../x'"),
    (GOOD.replace('name = "tiny"', 'name = "/tmp/x"'), r"line 1: name becomes the run folder runs/NAME"),
    (GOOD.replace("seeds = [0]", "seeds = [0, 1, 0]"), r"line 3: seeds \[0, 1, 0\] repeat a seed"),
    (GOOD.replace("lr = 0.1", "lr = nan"), r"line 6: train: lr must be a finite number, got nan"),
    (GOOD.replace("lr = 0.1", "lr = inf"), r"line 6: train: lr must be a finite number, got inf"),
    (GOOD.replace("lr = 0.1", "clip = 0"), r"line 6: train: clip must be above 0, got 0"),
    (GOOD.replace('model = "mlp"', 'model = "gpt"'), r"line 9: variants.plain: model 'gpt' reads text data, not "
                                                     r"names; models for names: mlp, mlp-bn, wavenet"),
    ('name = "tiny"\ndata = "shakespeare"\nsteps = 20\n\n[variants.plain]\nmodel = "mlp"\n',
     r"line 6: variants.plain: model 'mlp' reads names data, not shakespeare; models for shakespeare: gpt, wavegpt, wavegpt-parallel$"),
    (GOOD.replace("block_size = 3\n\n[variants.relu]", "block_size = 3\nargs = { vocab_size = 65 }\n\n[variants.relu]"),
     r"line 11: variants.plain: args.vocab_size does not match the data: names has a vocabulary of 27"),
    ('name = "tiny"\nsteps = 20\n\n[variants]\nplain = { model = "mlp", block_size = 3 }\n'
     'odd = { model = "mlp", block_size = 3, args = { hidden = 5 } }\n',
     r"exp.toml, line 6: variants.odd: model 'mlp' cannot be built"),
    ('name = "tiny"\nsteps = 20\n\n[variants.a]\nmodel = "mlp"\ntrain = { lr = 0.1, clip = -1 }\n',
     r"exp.toml, line 6: variants.a.train: clip must be above 0, got -1"),
])
def test_hostile_experiment_files_are_refused_with_the_right_line(tmp_path, text, message):
    with pytest.raises(mtn.ExperimentError, match=message):
        mtn.load_experiment(write(tmp_path, text))


def test_a_binary_file_or_a_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(mtn.ExperimentError, match="model.pt: not a text file; an experiment file is TOML"):
        mtn.load_experiment(tmp_path / "model.pt")
    with pytest.raises(mtn.ExperimentError, match="is a folder, not an experiment file"):
        mtn.load_experiment(tmp_path)
    assert main(["compare", str(tmp_path)]) == 2 and "is a folder" in capsys.readouterr().err


def test_each_variant_is_dry_run_before_the_grid_starts(tmp_path, capsys):
    broken = GOOD.replace('"Linear(30, 50)", "ReLU()"', '"Linear(20, 50)", "ReLU()"')
    out = tmp_path / "run"
    assert main(["compare", str(write(tmp_path, broken)), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error: variant 'relu' fails on one batch of the data (2, 3): Linear(20→50) expected last dim 20" in err
    assert not out.exists()  # nothing trained, no run folder claimed
    wrong_vocab = GOOD.replace('"Linear(50, 27)"', '"Linear(50, 65)"')
    with pytest.raises(ValueError, match="variant 'relu' predicts 65 classes, but the data has a vocabulary of 27"):
        mtn.load_experiment(write(tmp_path, wrong_vocab, "v.toml")).run(steps=1)


def test_duplicate_seeds_on_the_command_line_are_refused(tmp_path, capsys):
    assert main(["compare", str(write(tmp_path, GOOD)), "--seeds", "1", "1", "--out", str(tmp_path / "r")]) == 2
    assert "compare got the same seed twice in [1, 1]" in capsys.readouterr().err


def test_a_model_too_large_for_the_machine_is_refused_before_it_is_built(tmp_path):
    path = write(tmp_path, GOOD.replace('model = "mlp"\nblock_size = 3', 'model = "mlp"\nblock_size = 3\n'
                                                                        'args = { n_hidden = 10000000000 }'))
    with pytest.raises(mtn.ExperimentError, match=r"exp.toml, line 11: variants.plain: model 'mlp' cannot be built "
                                                  r"with these arguments \(.*10000000000.*memory"):
        mtn.load_experiment(path)
