"""The imitation trainer under `accelerate launch` (DDP, gloo on CPU): two processes draw
different windows, end with identical weights, one of them writes the checkpoint, and a second
launch resumes from it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate")
REPO = Path(__file__).resolve().parents[1]


def _launch(out: Path, steps: int) -> None:
    with socket.socket() as s:   # a free port for the process group's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                           "--main_process_port", str(port), str(REPO / "tests" / "scripts" / "ddp_train.py"),
                           str(out), str(steps)], env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow   # 2 x 2 fresh processes importing torch: ~1 min idle, many under load
@pytest.mark.timeout(1800)
def test_two_processes_see_different_data_and_end_with_the_same_weights(tmp_path):
    _launch(tmp_path, 6)
    r0, r1 = (torch.load(tmp_path / f"rank{i}_6.pt", weights_only=False) for i in (0, 1))
    assert r0["seen"] != r1["seen"]                  # each process drew its own share of every batch
    assert torch.equal(r0["weights"], r1["weights"])  # gradients averaged: the same model everywhere
    assert r0["stats"]["effective_batch_size"] == 16 and r0["stats"]["processes"] == 2
    ckpt = tmp_path / "run" / "checkpoints" / "last"
    assert (ckpt / "model.safetensors").exists() and torch.load(ckpt / "trainer_state.pt")["step"] == 6

    _launch(tmp_path, 9)   # resumes from the main process's checkpoint, on both processes
    r0, r1 = (torch.load(tmp_path / f"rank{i}_9.pt", weights_only=False) for i in (0, 1))
    assert r0["stats"]["start_step"] == r1["stats"]["start_step"] == 6
    assert torch.equal(r0["weights"], r1["weights"])
    assert torch.load(ckpt / "trainer_state.pt")["step"] == 9
