"""Data parallelism on the CPU: 2 gloo processes with batch B/2 each must train exactly like 1 process with B."""
import subprocess
import sys

import pytest
import torch

import minitorchnn as mtn
from minitorchnn.parallel import distributed

STEPS, BATCH = 20, 16


def ln_mlp():
    torch.manual_seed(0)
    return mtn.Sequential([mtn.Embedding(27, 10), mtn.FlattenConsecutive(3), mtn.Linear(30, 64, bias=False),
                           mtn.LayerNorm1d(64), mtn.Tanh(), mtn.Linear(64, 27)])


def bn_mlp():
    torch.manual_seed(0)
    return distributed.sync_batchnorm(mtn.mlp(n_hidden=64, batchnorm=True))


def tiny_gpt():
    torch.manual_seed(0)
    return mtn.GPT(65, block_size=16, n_embd=32, n_head=2, n_layer=2)


def train_all() -> dict:
    """The three runs every test compares: same seeds, same global batches, whatever the process count."""
    results = {}
    names = mtn.names_dataset(3)
    for name, build in (("layernorm-mlp", ln_mlp), ("sync-batchnorm-mlp", bn_mlp)):
        reg = mtn.RegisterModel(build(), name, device="cpu", verbose=False)
        run = reg.train(*names["train"], steps=STEPS, batch_size=BATCH, lr=0.1, momentum=0.9, seed=0, progress=False)
        results[name] = (reg.model.state_dict(), run["loss"])
    reg = mtn.RegisterModel(tiny_gpt(), "gpt", device="cpu", verbose=False)
    run = reg.train_text(mtn.shakespeare_dataset(), steps=STEPS, batch_size=BATCH, block_size=16, lr=1e-3, optimizer="adamw", clip=1.0, seed=0,
                         eval_iters=1, progress=False)
    results["gpt"] = (reg.model.state_dict(), run["loss"])
    return results


def worker(out_dir: str) -> None:
    results = train_all()
    try:
        distributed.shard(33)
    except ValueError as err:
        results["odd batch"] = str(err)
    reg = mtn.RegisterModel(ln_mlp(), "ln-mlp", device="cpu", verbose=False)
    real_save, writes = torch.save, []
    torch.save = lambda obj, f, *a, **kw: (writes.append(str(f)), real_save(obj, f, *a, **kw))[1]
    try:
        path = reg.save(f"{out_dir}/checkpoint.pt")  # rank 0 writes; rank 1 waits until it is whole
    finally:
        torch.save = real_save
    results["checkpoint"] = dict(writes=len(writes), whole=path.exists() and torch.load(path)["model_name"] == "ln-mlp")
    torch.save(results, f"{out_dir}/rank{distributed.rank()}.pt")


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    distributed.launch_local(worker, 2, str(out))
    return [torch.load(out / f"rank{r}.pt") for r in (0, 1)]


@pytest.fixture(scope="module")
def one_process():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the 2 processes runs: the same kernels, the same rounding
    try:
        return train_all()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["layernorm-mlp", "sync-batchnorm-mlp", "gpt"])
def test_two_processes_with_half_batches_equal_one_process_with_the_whole_batch(name, one_process, two_processes):
    single_state, single_loss = one_process[name]
    for state, loss in (two_processes[0][name], two_processes[1][name]):
        assert state.keys() == single_state.keys()
        for key in single_state:  # every weight, and BatchNorm's running statistics, after 20 steps
            torch.testing.assert_close(state[key], single_state[key], atol=1e-5, rtol=0, msg=f"{name}: {key}")
        torch.testing.assert_close(torch.tensor(loss), torch.tensor(single_loss), atol=1e-5, rtol=0)


def bn_statistics_worker(out_dir: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 5, 6) * 3 + 1  # the global batch; each rank normalises its half
    upstream = torch.randn(16, 5, 6)
    mine = distributed.shard(16)
    result = {}
    for name, layer in (("sync", distributed.SyncBatchNorm1d(6)), ("local", mtn.BatchNorm1d(6))):
        xr = x[mine].clone().requires_grad_()
        out = layer(xr)
        (out * upstream[mine]).sum().backward()
        result[name] = dict(out=out.detach(), dx=xr.grad, dgamma=layer.gamma.grad, mean=layer.running_mean,
                            var=layer.running_var)
    torch.save(result, f"{out_dir}/bn{distributed.rank()}.pt")


def test_synchronised_batchnorm_gives_the_single_process_statistics(tmp_path):
    distributed.launch_local(bn_statistics_worker, 2, str(tmp_path))
    ranks = [torch.load(tmp_path / f"bn{r}.pt") for r in (0, 1)]
    torch.manual_seed(0)
    x = (torch.randn(16, 5, 6) * 3 + 1).requires_grad_()
    upstream = torch.randn(16, 5, 6)
    bn = mtn.BatchNorm1d(6)
    out = bn(x)
    (out * upstream).sum().backward()
    sync = [r["sync"] for r in ranks]
    torch.testing.assert_close(torch.cat([s["out"] for s in sync]), out.detach(), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cat([s["dx"] for s in sync]), x.grad, atol=1e-5, rtol=0)
    torch.testing.assert_close(sync[0]["dgamma"] + sync[1]["dgamma"], bn.gamma.grad, atol=1e-4, rtol=0)
    for s in sync:
        torch.testing.assert_close(s["mean"], bn.running_mean, atol=1e-6, rtol=0)
        torch.testing.assert_close(s["var"], bn.running_var, atol=1e-5, rtol=0)
    # without synchronisation each rank keeps statistics of its own half: they differ from each other
    local = [r["local"] for r in ranks]
    assert not torch.allclose(local[0]["mean"], local[1]["mean"], atol=1e-3)
    assert not torch.allclose(torch.cat([s["out"] for s in local]), out.detach(), atol=1e-3)


def test_only_rank_0_writes_the_checkpoint_and_every_rank_waits_for_it(two_processes):
    assert two_processes[0]["checkpoint"] == {"writes": 1, "whole": True}
    assert two_processes[1]["checkpoint"] == {"writes": 0, "whole": True}


def test_a_batch_that_does_not_split_evenly_is_refused(two_processes):
    assert two_processes[0]["odd batch"] == "the batch size 33 must be divisible by the number of processes 2"


def test_single_process_helpers_are_no_ops():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.shard(7) == slice(0, 7)
    p = torch.ones(3, requires_grad=True)
    p.grad = torch.full((3,), 2.0)
    distributed.all_reduce_gradients([p])
    assert torch.equal(p.grad, torch.full((3,), 2.0))
    with pytest.raises(TypeError, match="SyncBatchNorm1d replaces BatchNorm1d layers, not BatchNorm1dPerPosition"):
        distributed.SyncBatchNorm1d.from_batchnorm(mtn.BatchNorm1dPerPosition(4, 2))


def test_torchrun_trains_once_and_prints_once():
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "minitorchnn",
                             "train", "--model", "mlp", "--steps", "50", "--batch-size", "32", "--samples", "3",
                             "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("Model registered with 11897 Parameters") == 1  # rank 0 only
    assert "trained 50 steps" in result.stdout and "x 2 processes" in result.stdout


def batchnorm_with_one_row_per_process() -> None:
    torch.manual_seed(0)
    reg = mtn.RegisterModel(mtn.mlp(batchnorm=True), "mlp-bn", device="cpu", verbose=False)  # not synchronised
    x, y = torch.randint(0, 27, (64, 3)), torch.randint(0, 27, (64,))
    reg.train(x, y, steps=1, batch_size=2)  # 2 rows over 2 processes: 1 row each


def test_under_data_parallelism_a_batchnorm_error_says_the_batch_is_split():
    with pytest.raises(Exception, match=r"needs more than 1 value per channel in training, got shape \(1, 200\) "
                                        r"\(the batch is split over the 2 data-parallel processes"):
        distributed.launch_local(batchnorm_with_one_row_per_process, 2)


def never_runs():
    raise AssertionError("launch_local ran a worker it should have refused")


@pytest.mark.parametrize("nprocs", [0, -1, 1.5, True])
def test_launch_local_refuses_fewer_than_one_process(nprocs):
    with pytest.raises(ValueError, match=f"launch_local expected nprocs, the number of processes, >= 1, got {nprocs!r}"):
        distributed.launch_local(never_runs, nprocs)


def train_until_rank1_is_killed(path: str) -> None:
    """Both ranks train with --save; rank 1 is killed (SIGKILL) once the first periodic checkpoint exists."""
    import os
    import signal
    import threading
    import time
    from pathlib import Path

    from minitorchnn.cli import main

    def kill_when_saved() -> None:
        while not Path(path).exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)
    if distributed.rank() == 1:
        threading.Thread(target=kill_when_saved, daemon=True).start()
    main(["--model", "mlp", "--steps", "20000", "--quiet", "--samples", "0", "--save", path])


def test_a_dead_worker_loses_at_most_one_interval_and_resume_carries_on(tmp_path, capsys):
    from minitorchnn.cli import main

    path = tmp_path / "m.pt"
    with pytest.raises(Exception, match="process 1 terminated with signal SIGKILL"):
        distributed.launch_local(train_until_rank1_is_killed, 2, str(path))
    saved = mtn.RegisterModel(mtn.mlp(), "mlp", device="cpu", verbose=False).load(path)
    done = len(saved.history["loss"])
    assert done % 2_000 == 0 and 0 < done < 20_000  # a checkpoint every tenth of the run
    assert main(["--model", "mlp", "--steps", "20000", "--quiet", "--samples", "0", "--save", str(path),
                 "--resume"]) == 0
    assert f"resuming at step {done} of 20000" in capsys.readouterr().out
    assert len(mtn.RegisterModel(mtn.mlp(), "mlp", device="cpu", verbose=False).load(path).history["loss"]) == 20_000
