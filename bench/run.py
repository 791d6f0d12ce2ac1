"""roboforge against the tools you would pick instead, on this machine, in one run, as ratios.

    python -m bench.run [--quick] [--only throughput,scaling,demos,diffusion,learning,export] [--no-install]

``make bench`` runs this. Each benchmark runs its workers as subprocesses, ours with the project's
interpreter and each peer with the interpreter of its own virtual environment under
``bench/peers/`` (created here on first use from PyPI, never a project dependency):

- ``.venv-maniskill``: torch 2.13.0 (the local CPU wheel), mani-skill 3.0.1, numpy<2 (mplib 0.1.1,
  which ManiSkill's motion planner uses, crashes with numpy 2). Needs Vulkan (lavapipe on CPU).
- ``.venv-robosuite``: robosuite 1.5.2 with mujoco<3.4, as robosuite requires.
- ``.venv-lerobot``: lerobot 0.4.4 with the torch/torchvision pair it pins (torch<2.11): PyPI's
  torch 2.10.0 is the CUDA build, so this is ~3 GB to download and ~8 GB on disk; it runs on CPU.

Every worker prints one JSON line; this script writes ``bench/results/<benchmark>.json``
(the date, machine, versions and command included), regenerates the table in
``docs/benchmarks.md`` from all result files, and prints that table. Peer rounds alternate with
ours so a busy neighbour on a shared machine slows both alike; the best round of each counts.
``--quick`` (< 5 minutes once the peer venvs exist) runs fewer steps and one repeat; it writes to
``bench/results/quick/`` (gitignored) and leaves ``docs/benchmarks.md`` alone.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PEERS = BENCH / "peers"
DOC = ROOT / "docs" / "benchmarks.md"
BENCHMARKS = ("throughput", "scaling", "demos", "diffusion", "learning", "export")
TABLE_START, TABLE_END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"

# name -> pip install steps, in order (each step one `pip install` call)
PEER_VENVS = {
    "maniskill": [["torch==2.13.0"], ["mani-skill==3.0.1", "numpy<2"]],
    "robosuite": [["robosuite==1.5.2", "mujoco<3.4"]],
    "lerobot": [["lerobot==0.4.4"]],
}
VULKAN_HELP = ("ManiSkill/SAPIEN needs Vulkan; on CPU that is lavapipe: echo 'deb http://deb.debian.org/debian "
               "bookworm-backports main' > /etc/apt/sources.list.d/backports.list && apt-get update && "
               "apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1")


# -- environment -----------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    os_name = platform.platform()
    try:
        rel = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        os_name = rel.get("PRETTY_NAME", os_name).strip('"')
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1), "os": os_name, "gpu": gpu_name(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}


def gpu_name() -> str:
    """The first NVIDIA GPU's name from nvidia-smi (no torch import), or "none"."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=20)
        names = out.stdout.strip().splitlines() if out.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired):
        names = []
    return f"{len(names)}x {names[0]}" if names else "none"


def machine_short(m: dict) -> str:
    gpu = "no GPU" if m.get("gpu", "none") == "none" else m["gpu"]
    return f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB, {m['os']}, {gpu}"


def vulkan_ok() -> bool:
    have_loader = any(Path(p).exists() for p in ("/usr/lib/x86_64-linux-gnu/libvulkan.so.1", "/usr/lib/libvulkan.so.1",
                                                   "/usr/lib/aarch64-linux-gnu/libvulkan.so.1"))
    icds = list(Path("/usr/share/vulkan/icd.d").glob("*.json")) if Path("/usr/share/vulkan/icd.d").exists() else []
    return have_loader and bool(icds)


def peer_python(name: str, install: bool) -> Path | None:
    """The peer venv's interpreter, creating the venv first when missing (and ``install``)."""
    venv = PEERS / f".venv-{name}"
    py, stamp = venv / "bin" / "python", venv / ".bench-installed"
    spec = json.dumps(PEER_VENVS[name])
    if py.exists() and stamp.exists() and stamp.read_text() == spec:
        return py
    if not install:
        return None
    log(f"creating {venv.relative_to(ROOT)} ({'; '.join(' '.join(s) for s in PEER_VENVS[name])})")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    for step in PEER_VENVS[name]:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *step], env=env, capture_output=True, text=True)
        if r.returncode:
            log(f"pip install {' '.join(step)} failed in {venv.name}:\n{r.stderr[-2000:]}")
            return None
    stamp.write_text(spec)
    return py


def _base_python() -> str:
    """A python outside any venv, to create the peer venvs from (not the project venv's)."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(base) if base.exists() else "python3"


def run_worker(python: Path | str, module: str, args: list[str], timeout: float) -> dict:
    """Run ``python -m module args`` from the repo root; its last stdout line is its JSON answer."""
    cmd = [str(python), "-m", module, *args]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    log(f"{Path(python).parent.parent.name}: python -m {module} {' '.join(args)}")
    try:
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if r.returncode or not lines:
        tail = (r.stderr or r.stdout).strip().splitlines()[-6:]
        return {"error": f"exit {r.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def best(results: list[dict], key: str) -> dict:
    """The result with the highest ``key`` among those without an error (or the last error)."""
    ok = [r for r in results if "error" not in r]
    return max(ok, key=lambda r: r[key]) if ok else results[-1]


def ratio(a, b, digits: int = 2):
    try:
        return round(a / b, digits) if a and b else None
    except TypeError:
        return None


# -- benchmarks ------------------------------------------------------------------------------
def bench_throughput(a, peers) -> dict:
    steps, rounds = (600, 2) if a.quick else (2000, 3)
    common = ["--steps", str(steps), "--rounds", str(rounds)]
    ours, ms, rs = [], [], []
    for rep in range(a.repeats):
        last = rep == a.repeats - 1
        ours.append(run_worker(sys.executable, "bench.throughput", common + (["--profile"] if last else []), 900))
        if peers.get("maniskill"):
            ms.append(run_worker(peers["maniskill"], "bench.peers.maniskill_throughput", common, 1200))
        if peers.get("robosuite"):
            rs.append(run_worker(peers["robosuite"], "bench.peers.robosuite_throughput", common, 1200))
    o = best(ours, "env_steps_per_cpu_s") if all("error" not in r for r in ours) else ours[-1]
    prof = next((r["profile"] for r in reversed(ours) if "profile" in r), None)
    if prof and "profile" not in o:
        o = {**o, "profile": prof}
    m = best(ms, "env_steps_per_cpu_s") if ms else {"error": peers.get("maniskill_why", "peer not run")}
    r = best(rs, "env_steps_per_cpu_s") if rs else {"error": peers.get("robosuite_why", "peer not run")}
    g = lambda d, k: d.get(k) if "error" not in d else None  # noqa: E731
    return {"roboforge": o, "maniskill": m, "robosuite": r, "repeats": a.repeats, "ratios": {
        "vs_maniskill_cpu_time": ratio(g(o, "env_steps_per_cpu_s"), g(m, "env_steps_per_cpu_s")),
        "vs_maniskill_wall": ratio(g(o, "env_steps_per_s"), g(m, "env_steps_per_s")),
        "vs_robosuite_cpu_time": ratio(g(o, "env_steps_per_cpu_s"), g(r, "env_steps_per_cpu_s")),
        "vs_robosuite_wall": ratio(g(o, "env_steps_per_s"), g(r, "env_steps_per_s")),
        "floor_over_ours_cpu_time": ratio(g(o, "floor_steps_per_cpu_s"), g(o, "env_steps_per_cpu_s")),
        "floor_over_ours_wall": ratio(g(o, "floor_steps_per_s"), g(o, "env_steps_per_s")),
    }}


def bench_scaling(a, peers) -> dict:
    res = run_worker(sys.executable, "bench.scaling", ["--steps", "150" if a.quick else "500"], 900)
    return {"roboforge": res}  # the ManiSkill3 GPU num_envs sweep: bench/maniskill_gpu.py (CUDA)


def bench_demos(a, peers) -> dict:
    n = "10" if a.quick else "40"
    ours, theirs = [], []
    for _ in range(a.repeats):
        ours.append(run_worker(sys.executable, "bench.demos", ["--episodes", n], 900))
        if peers.get("maniskill"):
            theirs.append(run_worker(peers["maniskill"], "bench.peers.maniskill_demos", ["--episodes", n], 1800))
    o = best(ours, "demos_per_cpu_min")
    m = best(theirs, "demos_per_cpu_min") if theirs else {"error": peers.get("maniskill_why", "peer not run")}
    g = lambda d, k: d.get(k) if "error" not in d else None  # noqa: E731
    return {"roboforge": o, "maniskill": m, "ratios": {
        "demos_per_min_wall": ratio(g(o, "demos_per_min"), g(m, "demos_per_min")),
        "demos_per_min_cpu_time": ratio(g(o, "demos_per_cpu_min"), g(m, "demos_per_cpu_min"))}}


def bench_diffusion(a, peers) -> dict:
    args = ["--steps", "6" if a.quick else "15", "--rounds", "1" if a.quick else "3",
            "--calls", "6" if a.quick else "30"]
    ours, lr = [], []
    for _ in range(a.repeats):
        ours.append(run_worker(sys.executable, "bench.diffusion", args, 1200))
        if peers.get("lerobot"):
            lr.append(run_worker(peers["lerobot"], "bench.peers.lerobot_diffusion", args, 1800))
    o = best(ours, "train_samples_per_cpu_s")
    le = best(lr, "train_samples_per_cpu_s") if lr else {"error": peers.get("lerobot_why", "peer not run")}
    ol = le.get("roboforge_same_torch", {"error": le.get("error", "not run")})
    g = lambda d, k: d.get(k) if "error" not in d else None  # noqa: E731
    return {"roboforge": o, "roboforge_same_torch": ol, "lerobot": le, "ratios": {
        # same process, same torch build, alternating rounds: the implementation difference alone
        "train_same_torch_cpu_time": ratio(g(ol, "train_samples_per_cpu_s"), g(le, "train_samples_per_cpu_s")),
        "train_same_torch_wall": ratio(g(ol, "train_samples_per_s"), g(le, "train_samples_per_s")),
        "latency_speedup_same_torch_cpu_time": ratio(g(le, "chunk_latency_cpu_ms"), g(ol, "chunk_latency_cpu_ms")),
        "latency_speedup_same_torch_wall": ratio(g(le, "chunk_latency_ms"), g(ol, "chunk_latency_ms")),
        # what a user of each gets out of the box (our torch 2.13 CPU build vs LeRobot's pinned torch)
        "train_as_installed_cpu_time": ratio(g(o, "train_samples_per_cpu_s"), g(le, "train_samples_per_cpu_s")),
        "latency_speedup_as_installed_cpu_time": ratio(g(le, "chunk_latency_cpu_ms"), g(o, "chunk_latency_cpu_ms"))}}


def latest_demo_run(sim: str = "mujoco") -> Path | None:
    """The newest `make demo`-style run (diffusion policy on stack_blocks, demos and policy on
    ``sim``, metrics written), or None."""
    runs = sorted(ROOT.glob("outputs/**/metrics.json"), key=lambda p: p.stat().st_mtime)
    want = {"policy": "diffusion", "task": "stack_blocks", "sim": sim, "demo_sim": sim}

    def is_demo(m: dict) -> bool:  # runs from before demo_sim existed used their own sim
        return all(m.get(k, m.get("sim") if k == "demo_sim" else None) == v for k, v in want.items())
    runs = [p for p in runs if is_demo(json.loads(p.read_text()))]
    return runs[-1].parent if runs else None


def bench_export(a, peers) -> dict:
    """Exported policy latency vs torch eager (same process, alternating calls) and the exported
    `make demo` policy's success next to the torch one's on the same unseen seeds."""
    args = ["--calls", "10" if a.quick else "40", "--rounds", "1" if a.quick else "3"]
    run = latest_demo_run()
    if run is not None and (run / "checkpoints" / "last").exists():
        args += ["--checkpoint", str(run / "checkpoints" / "last"), "--episodes", "10" if a.quick else "50"]
    o = run_worker(sys.executable, "bench.export", args, 1800)  # rounds alternate inside the worker
    return {"roboforge": o, "run_dir": str(run.relative_to(ROOT)) if run else None}


def _run_summary(run: Path) -> dict:
    p = run / "metrics.json"
    m = json.loads(p.read_text())
    keep = {k: m.get(k) for k in ("success_rate", "num_successes", "num_episodes", "wall_time_s", "task", "sim",
                                  "policy")}
    cfg = run / "config.yaml"
    return {**keep, "run_dir": str(run.relative_to(ROOT)),
            "run_finished": dt.datetime.fromtimestamp(p.stat().st_mtime).isoformat(timespec="seconds"),
            "config": cfg.read_text() if cfg.exists() else None}


def bench_learning(a, peers) -> dict:
    """The latest `make demo` run, and the same job on ManiSkill (`train.py sim=maniskill`). A run
    whose outputs/ are gone (a fresh checkout) keeps its last recorded figure."""
    out = {}
    last = RESULTS / "learning.json"
    previous = json.loads(last.read_text()) if last.exists() else {}
    for key, sim, how in (("roboforge", "mujoco", "run `make demo`"),
                          ("maniskill", "maniskill", "run `python train.py env=stack_blocks sim=maniskill`")):
        run = latest_demo_run(sim)
        kept = previous.get(key, {"error": "none"})
        if run:
            out[key] = {**_run_summary(run), "machine_short": machine_short(machine())}
        elif "error" not in kept:
            out[key] = {"machine_short": previous.get("machine_short", "—"), **kept}
        else:
            out[key] = {"error": f"no {sim} stack_blocks diffusion run in outputs/ yet: {how}, "
                                 "then `python -m bench.run --only learning`"}
    return out


RUNNERS = {"throughput": bench_throughput, "scaling": bench_scaling, "demos": bench_demos,
           "diffusion": bench_diffusion, "learning": bench_learning, "export": bench_export}
PEERS_NEEDED = {"throughput": ("maniskill", "robosuite"), "demos": ("maniskill",), "diffusion": ("lerobot",)}


# -- report ----------------------------------------------------------------------------------
def _v(d: dict, *names: str) -> str:
    v = d.get("versions", {}) if isinstance(d, dict) else {}
    return ", ".join(f"{n} {v[n]}" for n in names if n in v)


def _f(x, fmt="{:,.0f}") -> str:
    return "—" if x is None else fmt.format(x)


def rows_from(results: dict[str, dict]) -> list[dict]:
    """One table row per comparison, from the per-benchmark result files."""
    rows = []

    def add(name, ours, peer, ratio_txt, res, versions, note=""):
        rows.append({"benchmark": name, "roboforge": ours, "peer": peer, "ratio": ratio_txt, "note": note,
                     "machine": res.get("machine_short", "—"), "versions": versions,
                     "command": res.get("command", "—"), "date": res.get("date", "—")})

    t = results.get("throughput")
    if t:
        o, m, r, q = t["roboforge"], t["maniskill"], t["robosuite"], t["ratios"]
        ours_txt = (f"{_f(o.get('env_steps_per_s'))} st/s wall, {_f(o.get('env_steps_per_cpu_s'))} st/CPU-s"
                    if "error" not in o else f"failed: {o['error']}")
        for label, peer, key in (("ManiSkill3 StackCube-v1 (physx_cpu, pd_ee_delta_pose)", m, "maniskill"),
                                 ("robosuite Stack (Panda, OSC_POSE, 20 Hz)", r, "robosuite")):
            peer_txt = (f"{_f(peer.get('env_steps_per_s'))} st/s wall, {_f(peer.get('env_steps_per_cpu_s'))} st/CPU-s"
                        if "error" not in peer else f"not run: {peer['error']}")
            rt = (f"**{_f(q[f'vs_{key}_cpu_time'], '{:.1f}')}x** (CPU time), {_f(q[f'vs_{key}_wall'], '{:.1f}')}x (wall)"
                  if q.get(f"vs_{key}_cpu_time") else "—")
            vers = _v(o, "mujoco", "gymnasium") + "; " + (_v(peer, "mani-skill", "sapien", "torch")
                                                          if key == "maniskill" else _v(peer, "robosuite", "mujoco"))
            add(f"Env steps/s, 1 process, state obs, EE-delta 20 Hz, random actions — vs {label}",
                ours_txt, peer_txt, rt, t, vers)
        if "error" not in o:
            add("Env steps/s vs raw `mj_step` floor (same model and trajectory, nstep=25 per control step)", ours_txt,
                f"{_f(o.get('floor_steps_per_s'))} st/s wall, {_f(o.get('floor_steps_per_cpu_s'))} st/CPU-s (floor)",
                f"floor is **{_f(q['floor_over_ours_cpu_time'], '{:.2f}')}x** ours (CPU time), "
                f"{_f(q['floor_over_ours_wall'], '{:.2f}')}x (wall)", t, _v(o, "mujoco", "numpy"),
                f"physics {o.get('physics_us_per_step')} µs + Python {o.get('python_overhead_us_per_step')} µs per step")
    s = results.get("scaling")
    if s:
        o = s["roboforge"]
        if "error" in o:
            add("Scaling with N envs (MuJoCo)", f"failed: {o['error']}", "—", "—", s, "")
        else:
            txt = "; ".join(f"N={x['n']}: {_f(x['processes_steps_per_s'])} st/s (eff {x['processes_efficiency']:.2f})"
                            for x in o["rows"])
            thr = "; ".join(f"N={x['n']}: {_f(x['threads_physics_steps_per_s'])} (eff {x['threads_physics_efficiency']:.2f})"
                            for x in o["rows"])
            add(f"Scaling: AsyncVectorEnv processes, N envs on {o['cpu_count']} cores", txt,
                f"physics-only threads (mj_step releases the GIL): {thr}", "vs N=1 of itself", s,
                _v(o, "mujoco", "gymnasium"), f"only {o['cpu_count']} cores: N>{o['cpu_count']} oversubscribes")
    mo = results.get("maniskill_overhead")
    for r in (mo or {}).get("rows", []):
        add(f"ManiSkill3 backend: stack_blocks vs StackCube-v1, physx_cpu, {r['control_mode']} / "
            f"{r['maniskill_control_mode']}", f"{_f(r['roboforge_stack_blocks_steps_per_s'])} st/s",
            f"{_f(r['stackcube_v1_steps_per_s'])} st/s", f"overhead **{r['overhead']:+.0%}** (target <= +15%)", mo,
            _v(mo, "mani_skill", "sapien", "torch"), "1 process, 1 torch thread, random actions, best of alternating rounds")
    mg = results.get("maniskill_gpu")
    if mg:
        for r in mg["rows"]:
            o, m = r["roboforge"], r["stackcube"]
            txt = lambda x: f"{_f(x['env_steps_per_s'])} st/s" if "error" not in x else f"failed: {x['error']}"  # noqa: E731
            add(f"ManiSkill3 backend on the GPU: stack_blocks vs StackCube-v1, num_envs={r['num_envs']}, "
                f"{mg['control_mode']}", txt(o), txt(m),
                f"overhead **{r['overhead']:+.0%}** (target <= +15%)" if "overhead" in r else "—", mg,
                _v(mg, "mani-skill", "sapien", "torch"), "physx_cuda, batched random actions on the device")
    else:
        add("ManiSkill3 backend on the GPU: num_envs sweep 1-4096 vs StackCube-v1", "—", "—", "—", {}, "",
            "needs a CUDA machine: `python bench/maniskill_gpu.py`")
    d = results.get("demos")
    if d:
        o, m, q = d["roboforge"], d["maniskill"], d["ratios"]
        fmt = lambda x: (f"{_f(x.get('demos_per_min'))} demos/min wall ({_f(x.get('demos_per_cpu_min'))}/CPU-min), "  # noqa: E731
                         f"success {x['successes']}/{x['episodes']}" if "error" not in x else f"not run: {x['error']}")
        add("Oracle demos: stack_blocks oracle vs ManiSkill3 StackCube-v1 motion planner (mplib)", fmt(o), fmt(m),
            f"**{_f(q['demos_per_min_wall'], '{:.1f}')}x** (wall), {_f(q['demos_per_min_cpu_time'], '{:.1f}')}x (CPU time)"
            if q.get("demos_per_min_wall") else "—", d,
            _v(o, "mujoco") + "; " + _v(m, "mani-skill", "mplib", "numpy"))
    f = results.get("diffusion")
    if f and "roboforge_same_torch" in f:
        o, ol, le, q = f["roboforge"], f["roboforge_same_torch"], f["lerobot"], f["ratios"]
        ok = lambda x: "error" not in x  # noqa: E731
        vers = _v(o, "torch") + " (ours); " + _v(le, "lerobot", "torch", "diffusers")
        thr = f"{o.get('torch_threads', '?')} torch thread(s)"
        tr = lambda x: (f"{_f(x.get('train_samples_per_s'))}/s wall, {_f(x.get('train_samples_per_cpu_s'))}/CPU-s")  # noqa: E731
        same = f" [on LeRobot's torch, same process: {tr(ol)}]" if ok(ol) else ""
        add(f"Diffusion policy training samples/s (U-Net 64-128-256, horizon 16, batch 64, CPU, {thr})",
            (tr(o) + same) if ok(o) else f"failed: {o['error']}",
            tr(le) if ok(le) else f"not run: {le['error']}",
            f"**{_f(q['train_same_torch_cpu_time'], '{:.2f}')}x** same torch (CPU time; "
            f"{_f(q['train_same_torch_wall'], '{:.2f}')}x wall), {_f(q['train_as_installed_cpu_time'], '{:.2f}')}x "
            f"as installed" if q.get("train_same_torch_cpu_time") else "—", f, vers)
        lt = lambda x: f"{_f(x.get('chunk_latency_ms'), '{:.1f}')} ms wall, {_f(x.get('chunk_latency_cpu_ms'), '{:.1f}')} ms CPU"  # noqa: E731
        same = f" [on LeRobot's torch: {lt(ol)}]" if ok(ol) else ""
        add(f"Diffusion policy DDIM-10 latency per 8-action chunk (batch 1, CPU, {thr}, median)",
            (lt(o) + same) if ok(o) else f"failed: {o['error']}",
            lt(le) if ok(le) else f"not run: {le['error']}",
            f"**{_f(q['latency_speedup_same_torch_cpu_time'], '{:.2f}')}x** faster same torch (CPU time; "
            f"{_f(q['latency_speedup_same_torch_wall'], '{:.2f}')}x wall), "
            f"{_f(q['latency_speedup_as_installed_cpu_time'], '{:.2f}')}x as installed"
            if q.get("latency_speedup_same_torch_cpu_time") else "—", f, vers,
            "params identical" if ok(o) and ok(le) and o["params"] == le["params"] else "")
    lg = results.get("learning")
    if lg:
        o = lg["roboforge"]
        ours = (f"success {o['success_rate']:.2f} ({o.get('num_successes')}/{o.get('num_episodes')} unseen seeds), "
                f"wall {o['wall_time_s'] / 60:.1f} min" if "error" not in o else o["error"])
        add("Learning: `make demo` (diffusion on stack_blocks, 100 oracle demos)", ours, "—", "—",
            {**lg, "date": o.get("run_finished", lg.get("date")), "machine_short": o.get("machine_short", lg.get("machine_short"))}, "",
            f"run {o.get('run_dir', '')}".strip() if "error" not in o else "")
        o = lg.get("maniskill")
        if o and "error" not in o:
            add("Learning: the same job on ManiSkill3 (`train.py env=stack_blocks sim=maniskill`, physx_cpu)",
                f"success {o['success_rate']:.2f} ({o.get('num_successes')}/{o.get('num_episodes')} unseen seeds), "
                f"wall {o['wall_time_s'] / 60:.1f} min", "—", "—",
                {**lg, "date": o["run_finished"], "machine_short": o.get("machine_short", lg.get("machine_short"))}, "",
                f"run {o['run_dir']}")
    rl = results.get("rl_learning")
    if rl:
        mach = rl.get("machine_short", "—")
        vers = ", ".join(f"{k} {v}" for k, v in rl.get("versions", {}).items()) or "stable-baselines3"
        for name, r in rl.get("learning", {}).items():
            ov = r.get("overrides", {})
            budget = f"{r['env_steps']:,} env steps, {r['train_wall_s'] / 60:.0f} min training on {r['num_envs']} envs"
            add(f"RL: {r['algorithm'].upper()} on {r['task']} ({r.get('sim', 'mujoco')}"
                f"{', %d oracle demos' % r['demo_episodes'] if r.get('demo_episodes') else ''})",
                f"success {r['success_rate']:.0%} of {r['eval_episodes']} unseen seeds ({r['eval_seeds']}); {budget}",
                "—", "—", {"machine_short": r.get("machine_short", mach),
                           "command": r.get("command", f"python bench/rl_learning.py --part learning --runs {name}"),
                           "date": r.get("date", "—")}, vers,
                f"{r['train_steps_per_s']:.0f} steps/s; overrides {json.dumps(ov)}"
                + (f"; {r['note']}" if r.get("note") else ""))
        tp = rl.get("throughput")
        if tp:
            raw = tp["raw_env_steps_per_s"]
            add(f"RL glue: env steps/s while training on {tp['task']} ({tp['num_envs']} envs) vs the raw env",
                f"SB3 vec env {tp['sb3_vec_env_steps_per_s']:,.0f}; PPO collect {tp['ppo']['collect_steps_per_s']:,.0f}, "
                f"loop {tp['ppo']['train_steps_per_s']:,.0f}; SAC collect {tp['sac']['collect_steps_per_s']:,.0f}, "
                f"loop {tp['sac']['train_steps_per_s']:,.0f}", f"raw env {raw:,.0f} (1 process)",
                f"vec env **{tp['sb3_vec_env_steps_per_s'] / raw:.2f}x**, PPO loop {tp['ppo']['train_steps_per_s'] / raw:.2f}x, "
                f"SAC loop {tp['sac']['train_steps_per_s'] / raw:.2f}x",
                {"machine_short": tp.get("machine_short", mach), "command": "python bench/rl_learning.py --part throughput",
                 "date": tp.get("date", "—")}, vers, "SAC's loop is bound by its gradient steps")
    ex = results.get("export")
    if ex:
        o = ex["roboforge"]
        if "error" in o:
            add("Export: exported policy latency", f"failed: {o['error']}", "—", "—", ex, "")
        else:
            vers = _v(o, "onnxruntime", "torch", "onnxscript")
            cfg = o["config"]
            shape = f"U-Net {'-'.join(map(str, cfg['down_dims']))}, DDIM-{cfg['num_inference_steps']}, {o['threads']} thread"
            for b, who in ((1, "a robot"), (50, "lockstep sim evaluation")):
                r = o[f"batch_{b}"]
                add(f"Export: latency per {cfg['n_action_steps']}-action chunk, batch {b} ({who}); {shape}",
                    f"onnxruntime {r['onnxruntime']['median_ms']:.1f} ms; TorchScript {r['torchscript']['median_ms']:.1f} ms",
                    f"torch eager {r['torch_eager']['median_ms']:.1f} ms",
                    f"**{r['onnxruntime_speedup_vs_torch_eager']:.2f}x** (onnxruntime), "
                    f"{r['torchscript_speedup_vs_torch_eager']:.2f}x (TorchScript)", ex, vers,
                    f"median of alternating calls, best of rounds; export took {o['export_onnx_s']:.0f} s (ONNX)")
            v = o.get("verify")
            if v:
                t, e, own = v["success_torch"], v["success_exported"], v["success_torch_own_sampler"]
                add(f"Export: `make demo` policy exported to ONNX, success on {e['num_episodes']} unseen seeds "
                    f"({e['seeds']})",
                    f"exported {e['success_rate']:.2f} ({e['num_successes']}/{e['num_episodes']}); "
                    f"max abs diff {v['fidelity']['max_abs_diff']:.1e}",
                    f"torch {t['success_rate']:.2f} ({t['num_successes']}/{t['num_episodes']}) with the same noise; "
                    f"{own['success_rate']:.2f} with its own sampler",
                    f"gap **{v['success_gap_points']:+.0f} points**", ex, vers, f"run {ex.get('run_dir')}")
    return rows


def profile_md(results: dict[str, dict]) -> list[str]:
    """Where one roboforge env step's CPU time goes, from the throughput run's in-place stage timers."""
    o = results.get("throughput", {}).get("roboforge", {})
    st = o.get("profile", {}).get("stage_us")
    if not st:
        return []
    total = st["total"]
    lines = ["", f"Where one `stack_blocks` step's CPU time goes ({results['throughput']['date'][:10]}, "
                 f"stage timers in place over {o.get('steps_per_round', '?')} random-action steps; "
                 f"raw `mj_step` floor alone: {o.get('physics_us_per_step')} µs):", "",
             "| Stage | µs per step | share |", "|---|---|---|"]
    for k, v in st.items():
        if k != "total":
            lines.append(f"| {k} | {v:.1f} | {100 * v / total:.0f}% |")
    lines.append(f"| **total** | **{total:.1f}** | 100% |")
    return lines


def write_doc(rows: list[dict], extra: list[str] = ()) -> None:
    def cell(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    head = ["Benchmark", "roboforge", "Peer", "Ratio (ours vs peer)", "Note", "Machine", "Versions", "Command", "Date"]
    lines = [TABLE_START, "<!-- generated by `python -m bench.run`; edit bench/run.py, not this table -->", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(cell(r[k]) for k in ("benchmark", "roboforge", "peer", "ratio", "note",
                                                              "machine", "versions", "command", "date")) + " |")
    lines += [*extra, TABLE_END]
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{TABLE_START}\n{TABLE_END}\n"
    if TABLE_START not in text:
        text += f"\n{TABLE_START}\n{TABLE_END}\n"
    pre, rest = text.split(TABLE_START, 1)
    post = rest.split(TABLE_END, 1)[1] if TABLE_END in rest else ""
    DOC.write_text(pre + "\n".join(lines) + post)


def print_table(rows: list[dict]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for r in rows:
            print(f"{r['benchmark']}\n  ours: {r['roboforge']}\n  peer: {r['peer']}\n  ratio: {r['ratio']}")
        return
    tab = Table(title="roboforge benchmarks (ratios: ours vs peer; >1 means roboforge is faster)", show_lines=True)
    for col in ("Benchmark", "roboforge", "Peer", "Ratio", "Note", "Date"):
        tab.add_column(col, overflow="fold")
    for r in rows:
        tab.add_row(r["benchmark"], r["roboforge"], r["peer"], r["ratio"].replace("**", ""), r["note"], r["date"])
    Console(width=max(160, shutil.get_terminal_size().columns)).print(tab)
    if rows:
        print(f"machine: {rows[0]['machine']}")


def load_results(folder: Path = RESULTS) -> dict[str, dict]:
    out = {}
    for name in BENCHMARKS:
        p = folder / f"{name}.json"
        if p.exists():
            out[name] = json.loads(p.read_text())
    # written by their own scripts, not by this runner: long (RL), or needing a GPU / the ManiSkill extra
    for name in ("rl_learning", "maniskill_overhead", "maniskill_gpu"):
        p = folder / f"{name}.json"
        if p.exists():
            out[name] = json.loads(p.read_text())
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, one repeat (< 5 min with peer venvs in place)")
    ap.add_argument("--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    ap.add_argument("--repeats", type=int, default=None, help="alternating ours/peer repeats (default 2; 1 with --quick)")
    ap.add_argument("--no-install", action="store_true", help="skip peers whose venv is missing instead of creating it")
    ap.add_argument("--no-peers", action="store_true", help="measure roboforge only")
    ap.add_argument("--report-only", action="store_true", help="regenerate docs/benchmarks.md from bench/results/")
    a = ap.parse_args(argv)
    a.repeats = a.repeats or (1 if a.quick else 2)
    only = [b.strip() for b in a.only.split(",") if b.strip()]
    unknown = set(only) - set(BENCHMARKS)
    if unknown:
        ap.error(f"--only: unknown {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")

    # quick runs are smoke checks: their files stay out of the committed results and this page
    out_dir = RESULTS / "quick" if a.quick else RESULTS
    if not a.report_only:
        out_dir.mkdir(parents=True, exist_ok=True)
        m = machine()
        if m["load_avg_1m_at_start"] > m["cores"]:
            log(f"load average {m['load_avg_1m_at_start']} > {m['cores']} cores: the machine is busy; wall-clock "
                f"figures will be low, per-CPU-second figures hold up better")
        peers: dict = {}
        for name in sorted({p for b in only for p in PEERS_NEEDED.get(b, ())} if not a.no_peers else ()):
            if name == "maniskill" and not vulkan_ok():
                peers[f"{name}_why"] = "no Vulkan driver: " + VULKAN_HELP
                continue
            py = peer_python(name, install=not a.no_install)
            if py is None:
                peers[f"{name}_why"] = (f"bench/peers/.venv-{name} missing (--no-install)" if a.no_install
                                        else f"could not create bench/peers/.venv-{name}; see the log above")
            peers[name] = py
        cmd = "python -m bench.run " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
        for name in only:
            t0 = time.time()
            res = RUNNERS[name](a, peers)
            res = {"benchmark": name, "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   "command": cmd.strip(), "machine": {**m, "load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
                   "machine_short": machine_short(m), "duration_s": round(time.time() - t0, 1), **res}
            (out_dir / f"{name}.json").write_text(json.dumps(res, indent=2) + "\n")
            log(f"{name}: {res['duration_s']:.0f} s -> {(out_dir / f'{name}.json').relative_to(ROOT)}")
    results = load_results(out_dir)
    rows = rows_from(results)
    if not a.quick:
        write_doc(rows, profile_md(results))
    print_table(rows)


if __name__ == "__main__":
    main()
