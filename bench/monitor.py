"""Running the programs a benchmark times, and watching what they use.

``run_monitored`` runs a pipeline of programs (argument lists, never a shell) and reports
its wall time, each process's peak RSS and CPU time, the database server's CPU time, and
how busy the whole machine was meanwhile, so that other work on shared cores shows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

_TICKS = os.sysconf("SC_CLK_TCK")


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, every core) since boot.

    The difference over an interval, less what the measured processes used, is what other
    work on the machine took meanwhile: the load the figures were measured under.
    """
    with open("/proc/stat", encoding="ascii") as fh:
        fields = fh.readline().split()
    # cpu user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


class Monitor(threading.Thread):
    """Polls the RSS and CPU time of some processes and of all their descendants every
    ``interval`` s, and the CPU time of the server's processes (``server_pid``'s children,
    when it is given: the postmaster).

    ``peaks``: peak RSS by role (the roots' given names, descendants by program name);
    ``hwm``: the last VmHWM (the kernel's own peak) read for each role; ``cpu``: CPU seconds
    (user + system) by role, as last seen before each process ended, with the server's
    backends and workers as "server" (what they used from the monitor's start).
    """

    def __init__(self, server_pid: int = 0, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.roots: dict[str, int] = {}
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self.hwm: dict[str, int] = {}
        self._cpu: dict[int, tuple[str, float]] = {}
        self._procs: dict[int, tuple[str, psutil.Process]] = {}
        self._server_base: dict[int, float] = {}
        self._server_last: dict[int, float] = {}
        self._server_procs: dict[int, psutil.Process] = {}
        self._halt = threading.Event()
        self._server = None
        if server_pid:
            try:
                self._server = psutil.Process(server_pid)
                children = self._server.children()
            except psutil.Error:
                self._server, children = None, []
            for child in children:
                try:
                    t = child.cpu_times()
                except psutil.Error:
                    continue  # a backend that just ended (the settling CHECKPOINT's): not this step's
                self._server_procs[child.pid] = child
                self._server_base[child.pid] = self._server_last[child.pid] = t.user + t.system

    def watch(self, roots: dict[str, int]) -> "Monitor":
        self.roots = roots
        for role, pid in roots.items():
            try:
                self._procs[pid] = (role, psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        self.start()
        return self

    def run(self) -> None:
        while True:
            self._sample()
            if self._halt.wait(self.interval):
                break

    def _sample(self) -> None:
        for pid, (role, proc) in list(self._procs.items()):
            try:
                if pid in self.roots.values():
                    for child in proc.children(recursive=True):
                        if child.pid not in self._procs:
                            self._procs[child.pid] = (child.name(), child)
                rss = proc.memory_info().rss
                times = proc.cpu_times()
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            self.peaks[role] = max(self.peaks.get(role, 0), rss)
            self._cpu[pid] = (role, times.user + times.system)
            hwm = _vm_hwm(pid)
            if hwm:
                self.hwm[role] = max(self.hwm.get(role, 0), hwm)
        if self._server is not None:
            try:
                children = self._server.children()
            except psutil.Error:
                children = []
            for child in children:
                proc = self._server_procs.setdefault(child.pid, child)
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                self._server_base.setdefault(child.pid, 0.0)
                self._server_last[child.pid] = t.user + t.system

    @property
    def cpu(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for role, seconds in self._cpu.values():
            total[role] = round(total.get(role, 0.0) + seconds, 2)
        if self._server is not None:
            total["server"] = round(sum(last - self._server_base[pid] for pid, last in self._server_last.items()), 2)
        return total

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def run_monitored(steps: list[tuple[str, list[str]]], *, env: dict | None = None, stdin_file: Path | None = None,
                  stdout_file: Path | None = None, tolerate_sigpipe: bool = False, server_pid: int = 0) -> dict:
    """Run a pipeline of programs (argument lists, no shell), stdout of each into the next;
    return wall time, exit codes, peaks, CPU time by process (``server_pid``'s children as
    "server"), the machine's busy CPU time over the same interval and this process's own (the
    monitor's polling), every program's stderr and the last program's stdout (when not to a file)."""
    procs: list[subprocess.Popen] = []
    opened = []
    monitor = Monitor(server_pid)  # before the programs start: its baseline of the server's CPU time
    machine, own = busy_cpu_seconds(), time.process_time()
    started = time.perf_counter()
    previous = open(stdin_file, "rb") if stdin_file else subprocess.DEVNULL
    if stdin_file:
        opened.append(previous)
    out_fh = open(stdout_file, "wb") if stdout_file else None
    if out_fh:
        opened.append(out_fh)
    stderr_files = []
    for i, (role, argv) in enumerate(steps):
        last = i == len(steps) - 1
        err = tempfile.TemporaryFile()
        stderr_files.append(err)
        proc = subprocess.Popen(argv, stdin=previous, stdout=(out_fh or subprocess.PIPE) if last else subprocess.PIPE,
                                stderr=err, env=env)
        if i > 0 and previous is not None:
            previous.close()  # the next program holds it now
        previous = proc.stdout
        procs.append(proc)
    monitor.watch({role: p.pid for (role, _), p in zip(steps, procs)})
    output = procs[-1].stdout.read() if out_fh is None else b""
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - started
    machine, own = busy_cpu_seconds() - machine, time.process_time() - own
    monitor.stop()
    for fh in opened:
        fh.close()
    errors, stderr = [], {}
    for (role, _), err, code in zip(steps, stderr_files, codes):
        err.seek(0)
        text = stderr[role] = err.read().decode("utf-8", "replace").strip()
        err.close()
        if code != 0 and not (tolerate_sigpipe and code == -signal.SIGPIPE):
            errors.append(f"{role} exited {code}: {text[-800:]}")
    return {"seconds": elapsed, "codes": codes, "errors": errors, "peaks": monitor.peaks, "hwm": monitor.hwm,
            "cpu": monitor.cpu, "machine_cpu_s": round(machine, 2), "bench_cpu_s": round(own, 2), "stderr": stderr,
            "stdout": output}


def fmt_cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items()) or "-"
