"""train/cpu.py: the OpenMP wait policy follows how busy the CPU is before training starts."""
import os
import subprocess
import sys

from train import cpu

BUSY_LOOP = "import time\nt = time.time()\nwhile time.time() - t < 5: pass"


def test_a_busy_process_at_normal_priority_is_counted():
    child = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        assert cpu.busy_cores(0.5) >= 0.5
    finally:
        child.kill()
        child.wait()


def test_busy_cpu_makes_threads_sleep_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(cpu, "busy_cores", lambda: 1.0)
    assert cpu.choose_wait_policy() == 1.0 and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    cpu.choose_wait_policy()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(cpu, "busy_cores", lambda: 0.1)
    cpu.choose_wait_policy()
    assert "OMP_WAIT_POLICY" not in os.environ
