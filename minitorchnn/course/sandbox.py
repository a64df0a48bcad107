"""Run a notebook for the grader: a fresh folder, a sandboxed kernel, capped output, nothing left running.

The kernel of each submission runs in its own temporary folder, holding only the files the notebook reads
(the data files, the committed results and experiment files). Where bubblewrap (`bwrap`) works, the
kernel runs inside it: the system and Python read-only, the package read-only, no network, its own
process tree, and nothing of the file system but that folder writable; neither the instructor's
notebooks nor any other submission is in its view. Where it does not, the kernel still runs in the fresh
folder but with the grader's own access, and `Run.sandboxed` says so.

Whatever the kernel does, `run_notebook` returns only after every process it started is gone: the sandbox's
process tree is killed with it, and every process that carries the run's token in its environment (a
child that left the kernel's process group included) is killed too.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

OUTPUT_CAP = 1_000_000  # bytes of output kept per cell; the rest is dropped, with a note
TAIL = 262_144  # characters at the end of each cell's stdout searched for the grader's tokens
MESSAGE_CAP = 32_000_000  # bytes in one message from the kernel: a larger one is refused by the socket
TOKEN_VARIABLE = "MINITORCHNN_GRADING_RUN"
PASS_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """Whether bubblewrap is installed and can make a sandbox on this machine (user namespaces allowed)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False
    try:
        out = subprocess.run([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                              "--unshare-net", "--die-with-parent", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def sandbox_command(work: Path, sockets: Path, connection_file: Path, env: dict[str, str]) -> list[str]:
    """The bwrap prefix: read-only system, Python and package; writable work folder; no network; own PIDs."""
    import minitorchnn

    package = Path(minitorchnn.__file__).resolve().parent
    readonly = ["/usr", "/bin", "/lib", "/lib32", "/lib64", "/etc", sys.prefix, sys.exec_prefix, sys.base_prefix,
                str(Path(sys.executable).resolve().parent.parent), str(package)]
    readonly += [p for p in sys.path if p.endswith("site-packages")]
    # an empty /tmp first: what is bound after it stays visible, even where it lies under /tmp (a checkout
    # or a virtual environment there, as in a CI clone)
    command = ["bwrap", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in dict.fromkeys(readonly):
        command += ["--ro-bind-try", path, path]
    command += ["--bind", str(work), str(work), "--bind", str(sockets), str(sockets),
                "--ro-bind", str(connection_file), str(connection_file),
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--new-session",
                "--die-with-parent", "--chdir", str(work), "--clearenv"]
    for name, value in env.items():
        command += ["--setenv", name, value]
    return command + ["--"]


@dataclass
class Run:
    """What running a notebook gave: its cells with outputs, and how the kernel ended."""
    cells: list  # nbformat cells, outputs filled in for those that ran
    ran: list[bool]  # per cell: did it run (a cell after the kernel died did not)
    death: str = ""  # why the kernel stopped before the end, if it did
    died_at: int | None = None  # index of the cell that was running when it died
    sandboxed: bool = False
    tokens: dict[int, list[str]] = field(default_factory=dict)  # cell index -> its output's lines with a token
    seconds: float = 0.0


def _kill_tree(token: str, pgid: int | None) -> None:
    """SIGKILL the kernel's process group and every process whose environment carries the token; wait till gone."""
    if pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    deadline = time.monotonic() + 15
    while True:
        alive = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if needle in environ.split(b"\0") and state != "Z":
                alive.append(int(entry))
                try:
                    os.kill(int(entry), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if not alive or time.monotonic() > deadline:
            return
        time.sleep(0.05)


def _death_reason(returncode: int | None) -> str:
    if returncode is None:
        return "the kernel stopped answering"
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else -returncode
        return f"the kernel was killed by {name}"
    return f"the kernel exited with code {returncode}"


def run_notebook(notebook, files: dict[str, Path], timeout: int, env: dict[str, str], tokens: set[str] = frozenset(),
                 sandbox: bool | None = None, output_cap: int = OUTPUT_CAP) -> Run:
    """Run every code cell of an nbformat notebook in a fresh folder holding `files` (name -> source path).

    timeout: seconds per cell before the kernel is interrupted; one that still runs `timeout` seconds later
    (it ignored the interrupt) is killed, which ends the run there. tokens: strings the grader looks for in
    each cell's own stdout (`Run.tokens`).
    """
    from jupyter_client.asynchronous.client import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    sandbox = bwrap_works() if sandbox is None else sandbox
    token = secrets.token_hex(16)
    base = Path(tempfile.mkdtemp(prefix="minitorchnn-grade-"))
    work, sockets = base / "work", base / "sockets"
    work.mkdir()
    sockets.mkdir()
    for name, source in files.items():
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    kernel_env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    kernel_env.update({k: v for k, v in os.environ.items() if k.startswith("MINITORCHNN_")})
    kernel_env.update(env)
    kernel_env.update({TOKEN_VARIABLE: token, "JPY_PARENT_PID": "1", "HOME": "/tmp" if sandbox else str(work),
                       "MPLCONFIGDIR": "/tmp/matplotlib" if sandbox else str(base / "matplotlib"),
                       "IPYTHONDIR": "/tmp/ipython" if sandbox else str(base / "ipython"), "PYTHONNOUSERSITE": "1"})

    class CappedClient(AsyncKernelClient):
        def _create_connected_socket(self, channel, identity=None):
            import zmq

            from jupyter_client.connect import channel_socket_types

            sock = self.context.socket(channel_socket_types[channel])
            sock.setsockopt(zmq.MAXMSGSIZE, MESSAGE_CAP)  # a huge message drops the connection, not the grader
            sock.linger = 1000
            if identity:
                sock.identity = identity
            sock.connect(self._make_url(channel))
            return sock

    class SandboxManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            command = super().format_kernel_cmd(extra_arguments)
            if sandbox:
                return sandbox_command(work, sockets, Path(self.connection_file), kernel_env) + command
            return command

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw["env"] = kernel_env  # nothing else of the grader's environment
            kw.update(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return await super()._async_launch_kernel(kernel_cmd, **kw)

    class CappedNotebookClient(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            if msg["msg_type"] == "stream" and content.get("name") == "stdout":
                tail = stdout.get(cell_index, "") + str(content.get("text", ""))
                stdout[cell_index] = tail[-TAIL:]  # the tokens come last: keep the end of a long output
            if msg["msg_type"] == "error":  # an error's message and traceback are kept, shortened
                content["evalue"] = str(content.get("evalue", ""))[:2000]
                content["traceback"] = [str(line)[:2000] for line in content.get("traceback", [])[-40:]]
            size = sum(len(str(v)) for v in content.values())
            sizes[cell_index] = sizes.get(cell_index, 0) + size
            if sizes[cell_index] > output_cap and msg["msg_type"] != "error":
                if cell_index not in truncated:
                    truncated.add(cell_index)
                    outs.append(_note(f"[output truncated by the grader: more than {output_cap:,} bytes]\n"))
                return None
            return super().output(outs, msg, display_id, cell_index)

    stdout: dict[int, str] = {}
    sizes: dict[int, int] = {}
    truncated: set[int] = set()
    km = SandboxManager(kernel_name="python3", transport="ipc" if sandbox else "tcp",
                        ip=str(sockets / "kernel") if sandbox else "127.0.0.1")
    km.client_factory = CappedClient
    km.connection_file = str(base / "kernel.json")
    km.kernel_spec.interrupt_mode = "message"  # a signal to bwrap's process group would kill the sandbox
    client = CappedNotebookClient(notebook, km=km, timeout=timeout, allow_errors=True, interrupt_on_timeout=True,
                                  iopub_timeout=5, shutdown_kernel="immediate")
    run = Run(cells=notebook.cells, ran=[False] * len(notebook.cells), sandboxed=sandbox)
    start, pgid, current = time.monotonic(), None, {"cell": None, "since": 0.0}
    stop = threading.Event()

    def watchdog() -> None:  # a cell that ignores the interrupt is killed a timeout later
        while not stop.wait(0.5):
            if current["cell"] is not None and time.monotonic() - current["since"] > 2 * timeout + 5:
                current["killed"] = True
                _kill_tree(token, pgid)
                return

    guard = threading.Thread(target=watchdog, daemon=True)
    try:
        try:
            with client.setup_kernel(cwd=str(work)):
                pgid = getattr(km.provisioner, "pgid", None)
                guard.start()
                for index, cell in enumerate(notebook.cells):
                    if cell.cell_type != "code":
                        continue
                    current.update(cell=index, since=time.monotonic())
                    try:
                        client.execute_cell(cell, index)
                    except Exception as err:  # DeadKernelError, or the kernel's channels failing
                        process = getattr(km.provisioner, "process", None)
                        code = process.poll() if process is not None else None
                        run.died_at = index
                        run.death = ("the cell ran past twice the time limit and ignored the interrupt: killed"
                                     if current.get("killed") else _death_reason(code))
                        if code is None and not current.get("killed"):
                            run.death += f" ({type(err).__name__})"
                        break
                    run.ran[index] = True
                current["cell"] = None
        except Exception as err:  # the kernel did not start, or shutting it down failed
            if run.died_at is None and not any(run.ran):
                run.death, run.died_at = f"the kernel did not start: {type(err).__name__}: {err}", 0
    finally:
        stop.set()
        _kill_tree(token, pgid)
        shutil.rmtree(base, ignore_errors=True)
    run.tokens = {i: [line for line in text.splitlines() if any(t in line for t in tokens)]
                  for i, text in stdout.items()}
    run.seconds = time.monotonic() - start
    return run


def _note(text: str):
    import nbformat

    return nbformat.v4.new_output("stream", name="stderr", text=text)
