"""The results table of docs/benchmarks.md, rendered from ``bench/results/*.json``.

Each result file has one row builder (:data:`ROW_BUILDERS`, in table order) that turns it into
table rows; :func:`write_doc` replaces the part of the page between the table markers and leaves
the prose around it alone. ``python -m bench.run --report-only`` runs just this.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from bench.common import RESULTS, ROOT, position_note

DOC = ROOT / "docs" / "benchmarks.md"
TABLE_START, TABLE_END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"
COLUMNS = {"benchmark": "Benchmark", "roboforge": "roboforge", "peer": "Peer", "ratio": "Ratio (ours vs peer)",
           "note": "Note", "machine": "Machine", "versions": "Versions", "command": "Command", "date": "Date"}


def row(benchmark: str, *, ours: str, peer: str, ratio: str, source: dict, versions: str, note: str = "") -> dict:
    """One table row; its machine, command and date come from the result file ``source``."""
    return {"benchmark": benchmark, "roboforge": ours, "peer": peer, "ratio": ratio, "note": note,
            "machine": source.get("machine_short", "—"), "versions": versions,
            "command": source.get("command", "—"), "date": source.get("date", "—")}


def _v(d: dict, *names: str) -> str:
    """``"name version, ..."`` for those of ``names`` the result records."""
    v = d.get("versions", {}) if isinstance(d, dict) else {}
    return ", ".join(f"{n} {v[n]}" for n in names if n in v)


def _f(x, fmt="{:,.0f}") -> str:
    return "—" if x is None else fmt.format(x)


def _ok(x: dict) -> bool:
    return "error" not in x


# -- one row builder per result file ---------------------------------------------------------
def throughput_rows(t: dict) -> list[dict]:
    o, m, r, q = t["roboforge"], t["maniskill"], t["robosuite"], t["ratios"]
    rows = []
    ours_txt = (f"{_f(o.get('env_steps_per_s'))} st/s wall, {_f(o.get('env_steps_per_cpu_s'))} st/CPU-s"
                if _ok(o) else f"failed: {o['error']}")
    for label, peer, key in (("ManiSkill3 StackCube-v1 (physx_cpu, pd_ee_delta_pose)", m, "maniskill"),
                             ("robosuite Stack (Panda, OSC_POSE, 20 Hz)", r, "robosuite")):
        peer_txt = (f"{_f(peer.get('env_steps_per_s'))} st/s wall, {_f(peer.get('env_steps_per_cpu_s'))} st/CPU-s"
                    if _ok(peer) else f"not run: {peer['error']}")
        rt = (f"**{_f(q[f'vs_{key}_cpu_time'], '{:.1f}')}x** (CPU time), {_f(q[f'vs_{key}_wall'], '{:.1f}')}x (wall)"
              if q.get(f"vs_{key}_cpu_time") else "—")
        vers = _v(o, "mujoco", "gymnasium") + "; " + (_v(peer, "mani-skill", "sapien", "torch")
                                                      if key == "maniskill" else _v(peer, "robosuite", "mujoco"))
        rows.append(row(f"Env steps/s, 1 process, state obs, EE-delta 20 Hz, random actions — vs {label}",
                        ours=ours_txt, peer=peer_txt, ratio=rt, source=t, versions=vers))
    if _ok(o):
        rows.append(row(
            "Env steps/s vs raw `mj_step` floor (same model and trajectory, nstep=25 per control step)",
            ours=ours_txt,
            peer=f"{_f(o.get('floor_steps_per_s'))} st/s wall, {_f(o.get('floor_steps_per_cpu_s'))} st/CPU-s (floor)",
            ratio=f"floor is **{_f(q['floor_over_ours_cpu_time'], '{:.2f}')}x** ours (CPU time), "
                  f"{_f(q['floor_over_ours_wall'], '{:.2f}')}x (wall)",
            source=t, versions=_v(o, "mujoco", "numpy"),
            note=f"physics {o.get('physics_us_per_step')} µs + Python {o.get('python_overhead_us_per_step')} µs "
                 "per step"))
    return rows


def failed_row(title: str, result: dict, source: dict) -> list[dict]:
    """The one row a benchmark whose run failed gets: its error in place of the figures."""
    return [row(title, ours=f"failed: {result['error']}", peer="—", ratio="—", source=source, versions="")]


def scaling_rows(s: dict) -> list[dict]:
    o = s["roboforge"]
    if not _ok(o):
        return failed_row("Scaling with N envs (MuJoCo)", o, s)
    procs = "; ".join(f"N={x['n']}: {_f(x['processes_steps_per_s'])} st/s (eff {x['processes_efficiency']:.2f})"
                      for x in o["rows"])
    threads = "; ".join(f"N={x['n']}: {_f(x['threads_physics_steps_per_s'])} "
                        f"(eff {x['threads_physics_efficiency']:.2f})" for x in o["rows"])
    return [row(f"Scaling: AsyncVectorEnv processes, N envs on {o['cpu_count']} cores", ours=procs,
                peer=f"physics-only threads (mj_step releases the GIL): {threads}", ratio="vs N=1 of itself",
                source=s, versions=_v(o, "mujoco", "gymnasium"),
                note=f"only {o['cpu_count']} cores: N>{o['cpu_count']} oversubscribes")]


def maniskill_overhead_rows(mo: dict) -> list[dict]:
    return [row(f"ManiSkill3 backend: stack_blocks vs StackCube-v1, physx_cpu, {r['control_mode']} / "
                f"{r['maniskill_control_mode']}", ours=f"{_f(r['roboforge_stack_blocks_steps_per_s'])} st/s",
                peer=f"{_f(r['stackcube_v1_steps_per_s'])} st/s",
                ratio=f"overhead **{r['overhead']:+.0%}** (target <= +15%)", source=mo,
                versions=_v(mo, "mani_skill", "sapien", "torch"),
                note="1 process, 1 torch thread, random actions, best of alternating rounds")
            for r in mo.get("rows", [])]


def maniskill_gpu_rows(mg: dict) -> list[dict]:
    def txt(x: dict) -> str:
        return f"{_f(x['env_steps_per_s'])} st/s" if _ok(x) else f"failed: {x['error']}"
    return [row(f"ManiSkill3 backend on the GPU: stack_blocks vs StackCube-v1, num_envs={r['num_envs']}, "
                f"{mg['control_mode']}", ours=txt(r["roboforge"]), peer=txt(r["stackcube"]),
                ratio=f"overhead **{r['overhead']:+.0%}** (target <= +15%)" if "overhead" in r else "—",
                source=mg, versions=_v(mg, "mani-skill", "sapien", "torch"),
                note="physx_cuda, batched random actions on the device")
            for r in mg["rows"]]


def demos_rows(d: dict) -> list[dict]:
    o, m, q = d["roboforge"], d["maniskill"], d["ratios"]

    def fmt(x: dict) -> str:
        return (f"{_f(x.get('demos_per_min'))} demos/min wall ({_f(x.get('demos_per_cpu_min'))}/CPU-min), "
                f"success {x['successes']}/{x['episodes']}" if _ok(x) else f"not run: {x['error']}")
    return [row("Oracle demos: stack_blocks oracle vs ManiSkill3 StackCube-v1 motion planner (mplib)",
                ours=fmt(o), peer=fmt(m),
                ratio=f"**{_f(q['demos_per_min_wall'], '{:.1f}')}x** (wall), "
                      f"{_f(q['demos_per_min_cpu_time'], '{:.1f}')}x (CPU time)"
                if q.get("demos_per_min_wall") else "—",
                source=d, versions=_v(o, "mujoco") + "; " + _v(m, "mani-skill", "mplib", "numpy"))]


def diffusion_rows(f: dict) -> list[dict]:
    if "roboforge_same_torch" not in f:  # files from before the same-torch comparison
        return []
    o, ol, le, q = f["roboforge"], f["roboforge_same_torch"], f["lerobot"], f["ratios"]
    vers = _v(o, "torch") + " (ours); " + _v(le, "lerobot", "torch", "diffusers")
    thr = f"{o.get('torch_threads', '?')} torch thread(s)"

    def train(x: dict) -> str:
        return f"{_f(x.get('train_samples_per_s'))}/s wall, {_f(x.get('train_samples_per_cpu_s'))}/CPU-s"

    def latency(x: dict) -> str:
        return (f"{_f(x.get('chunk_latency_ms'), '{:.1f}')} ms wall, "
                f"{_f(x.get('chunk_latency_cpu_ms'), '{:.1f}')} ms CPU")
    same_train = f" [on LeRobot's torch, same process: {train(ol)}]" if _ok(ol) else ""
    same_latency = f" [on LeRobot's torch: {latency(ol)}]" if _ok(ol) else ""
    return [
        row(f"Diffusion policy training samples/s (U-Net 64-128-256, horizon 16, batch 64, CPU, {thr})",
            ours=(train(o) + same_train) if _ok(o) else f"failed: {o['error']}",
            peer=train(le) if _ok(le) else f"not run: {le['error']}",
            ratio=f"**{_f(q['train_same_torch_cpu_time'], '{:.2f}')}x** same torch (CPU time; "
                  f"{_f(q['train_same_torch_wall'], '{:.2f}')}x wall), "
                  f"{_f(q['train_as_installed_cpu_time'], '{:.2f}')}x as installed"
            if q.get("train_same_torch_cpu_time") else "—",
            source=f, versions=vers),
        row(f"Diffusion policy DDIM-10 latency per 8-action chunk (batch 1, CPU, {thr}, median)",
            ours=(latency(o) + same_latency) if _ok(o) else f"failed: {o['error']}",
            peer=latency(le) if _ok(le) else f"not run: {le['error']}",
            ratio=f"**{_f(q['latency_speedup_same_torch_cpu_time'], '{:.2f}')}x** faster same torch (CPU time; "
                  f"{_f(q['latency_speedup_same_torch_wall'], '{:.2f}')}x wall), "
                  f"{_f(q['latency_speedup_as_installed_cpu_time'], '{:.2f}')}x as installed"
            if q.get("latency_speedup_same_torch_cpu_time") else "—",
            source=f, versions=vers,
            note="params identical" if _ok(o) and _ok(le) and o["params"] == le["params"] else ""),
    ]


def learning_rows(lg: dict) -> list[dict]:
    """Each run names the machine and date it was measured on, which may predate the file."""
    def success(o: dict) -> str:
        return (f"success {o['success_rate']:.2f} ({o.get('num_successes')}/{o.get('num_episodes')} unseen seeds), "
                f"wall {o['wall_time_s'] / 60:.1f} min")
    o = lg["roboforge"]
    rows = [row("Learning: `make demo` (diffusion on stack_blocks, 100 oracle demos)",
                ours=success(o) if _ok(o) else o["error"], peer="—", ratio="—",
                source={**lg, "date": o.get("run_finished", lg.get("date")),
                        "machine_short": o.get("machine_short", lg.get("machine_short"))},
                versions="", note=f"run {o.get('run_dir', '')}".strip() if _ok(o) else "")]
    o = lg.get("maniskill")
    if o and _ok(o):
        rows.append(row("Learning: the same job on ManiSkill3 (`train.py env=stack_blocks sim=maniskill`, physx_cpu)",
                        ours=success(o), peer="—", ratio="—",
                        source={**lg, "date": o["run_finished"],
                                "machine_short": o.get("machine_short", lg.get("machine_short"))},
                        versions="", note=f"run {o['run_dir']}"))
    return rows


def rl_learning_rows(rl: dict) -> list[dict]:
    mach = rl.get("machine_short", "—")
    vers = ", ".join(f"{k} {v}" for k, v in rl.get("versions", {}).items()) or "stable-baselines3"
    rows = []
    for name, r in rl.get("learning", {}).items():
        ov = r.get("overrides", {})
        budget = f"{r['env_steps']:,} env steps, {r['train_wall_s'] / 60:.0f} min training on {r['num_envs']} envs"
        demos = ", %d oracle demos" % r["demo_episodes"] if r.get("demo_episodes") else ""
        rows.append(row(
            f"RL: {r['algorithm'].upper()} on {r['task']} ({r.get('sim', 'mujoco')}{demos})",
            ours=f"success {r['success_rate']:.0%} of {r['eval_episodes']} unseen seeds ({r['eval_seeds']}); {budget}",
            peer="—", ratio="—",
            source={"machine_short": r.get("machine_short", mach),
                    "command": r.get("command", f"python bench/rl_learning.py --part learning --runs {name}"),
                    "date": r.get("date", "—")},
            versions=vers,
            note=f"{r['train_steps_per_s']:.0f} steps/s; overrides {json.dumps(ov)}"
                 + (f"; {r['note']}" if r.get("note") else "")))
    tp = rl.get("throughput")
    if tp:
        raw = tp["raw_env_steps_per_s"]
        ppo, sac = tp["ppo"], tp["sac"]
        rows.append(row(
            f"RL glue: env steps/s while training on {tp['task']} ({tp['num_envs']} envs) vs the raw env",
            ours=f"SB3 vec env {tp['sb3_vec_env_steps_per_s']:,.0f}; PPO collect {ppo['collect_steps_per_s']:,.0f}, "
                 f"loop {ppo['train_steps_per_s']:,.0f}; SAC collect {sac['collect_steps_per_s']:,.0f}, "
                 f"loop {sac['train_steps_per_s']:,.0f}",
            peer=f"raw env {raw:,.0f} (1 process)",
            ratio=f"vec env **{tp['sb3_vec_env_steps_per_s'] / raw:.2f}x**, "
                  f"PPO loop {ppo['train_steps_per_s'] / raw:.2f}x, SAC loop {sac['train_steps_per_s'] / raw:.2f}x",
            source={"machine_short": tp.get("machine_short", mach),
                    "command": "python bench/rl_learning.py --part throughput", "date": tp.get("date", "—")},
            versions=vers, note="SAC's loop is bound by its gradient steps"))
    return rows


def export_rows(ex: dict) -> list[dict]:
    o = ex["roboforge"]
    if not _ok(o):
        return failed_row("Export: exported policy latency", o, ex)
    vers = _v(o, "onnxruntime", "torch", "onnxscript")
    cfg = o["config"]
    shape = f"U-Net {'-'.join(map(str, cfg['down_dims']))}, DDIM-{cfg['num_inference_steps']}, {o['threads']} thread"
    rows = []
    for b, who in ((1, "a robot"), (50, "lockstep sim evaluation")):
        r = o[f"batch_{b}"]
        rows.append(row(
            f"Export: latency per {cfg['n_action_steps']}-action chunk, batch {b} ({who}); {shape}",
            ours=f"onnxruntime {r['onnxruntime']['median_ms']:.1f} ms; "
                 f"TorchScript {r['torchscript']['median_ms']:.1f} ms",
            peer=f"torch eager {r['torch_eager']['median_ms']:.1f} ms",
            ratio=f"**{r['onnxruntime_speedup_vs_torch_eager']:.2f}x** (onnxruntime), "
                  f"{r['torchscript_speedup_vs_torch_eager']:.2f}x (TorchScript)",
            source=ex, versions=vers,
            note=f"median of alternating calls, best of rounds; export took {o['export_onnx_s']:.0f} s (ONNX)"))
    v = o.get("verify")
    if v:
        t, e, own = v["success_torch"], v["success_exported"], v["success_torch_own_sampler"]
        rows.append(row(
            f"Export: `make demo` policy exported to ONNX, success on {e['num_episodes']} unseen seeds ({e['seeds']})",
            ours=f"exported {e['success_rate']:.2f} ({e['num_successes']}/{e['num_episodes']}); "
                 f"max abs diff {v['fidelity']['max_abs_diff']:.1e}",
            peer=f"torch {t['success_rate']:.2f} ({t['num_successes']}/{t['num_episodes']}) with the same noise; "
                 f"{own['success_rate']:.2f} with its own sampler",
            ratio=f"gap **{v['success_gap_points']:+.0f} points**", source=ex, versions=vers,
            note=f"run {ex.get('run_dir')}"))
    return rows


def encoders_rows(en: dict) -> list[dict]:
    """Observation encoders (bench/encoders.py): no peer, per-CPU-second figures first."""
    vers = _v(en, "torch", "sentence-transformers")
    note = (f"{en['threads']} torch thread, best of {en['rounds']} rounds; shared CPU, load "
            f"{en['load_avg_1m_start']:.1f}-{en['load_avg_1m_end']:.1f}")

    def rates(cases: dict, label) -> str:
        return "; ".join(f"{label(c)}: {_f(c['samples_per_cpu_s'])}/CPU-s ({_f(c['samples_per_s'])}/s wall)"
                         for c in cases.values())
    rows = []
    for backbone, name in (("small_cnn", "small CNN"), ("resnet18", "ResNet-18")):
        cases = {k: c for k, c in en["images"].items() if c["backbone"] == backbone}
        if cases:
            rows.append(row(f"Image encoder ({name}, GroupNorm + spatial softmax), 2 RGB cameras: "
                            "forward + backward samples/s, batch 64",
                            ours=rates(cases, lambda c: f"{c['image_size']} px"), peer="—", ratio="—", source=en,
                            versions=vers, note=note))
    if en.get("point_cloud"):
        rows.append(row("Point-cloud encoder (PointNet, xyz): forward + backward samples/s, batch 64",
                        ours=rates(en["point_cloud"], lambda c: f"{c['points']} points"), peer="—", ratio="—",
                        source=en, versions=vers, note=note))
    t = en.get("instructions_minilm")
    if t:
        rows.append(row("Instruction encoder (all-MiniLM-L6-v2): strings/s",
                        ours=f"cold {_f(t['cold_strings_per_cpu_s'])}/CPU-s ({_f(t['cold_strings_per_s'])}/s wall); "
                             f"memory cache {_f(t['memory_cached_strings_per_s'])}/s; disk cache "
                             f"{_f(t['disk_cached_strings_per_s'])}/s",
                        peer="—", ratio="—", source=en, versions=vers,
                        note=f"{t['strings']} built-in instructions; model load {t['load_cpu_s']:.1f} s CPU"))
    return rows


def video_rows(vd: dict) -> list[dict]:
    """Evaluation video frames (bench/video.py): the new default against the old frame, CPU time first."""
    old, *new = vd["rows"]
    note = (f"MuJoCo, MUJOCO_GL={vd['mujoco_gl']}, {vd['frames']} frames of a stack_blocks oracle episode, best of "
            f"{vd['rounds']} rounds; shared CPU, load {vd['load_avg_1m_start']:.1f}-{vd['load_avg_1m_end']:.1f}")

    def cost(r: dict) -> str:
        return (f"{r['total_cpu_ms']:.1f} ms CPU ({r['total_ms']:.0f} ms wall): render {r['render_cpu_ms']:.1f}, "
                f"text {r['overlay_cpu_ms']:.1f}, encode {r['encode_cpu_ms']:.1f}")
    return [row(f"Evaluation video frame: {r['setting']} vs {old['setting']}",
                ours=cost(r), peer=cost(old), ratio=f"**{r['vs_old_cpu']:.2f}x** the old cost (CPU time), "
                                                    f"{r['vs_old']:.2f}x (wall)",
                source=vd, versions=_v(vd, "mujoco", "pillow", "imageio-ffmpeg"), note=note) for r in new]


def frame_note(r: dict) -> str:
    """One camera frame's cost as bench/dataset.py recorded it (results from before the plain
    observation look measured the full look, with and without the shadow map)."""
    if "render_ms_per_frame_full_look" in r:
        return (f"one camera frame {r['render_ms_per_frame']:.1f} ms (plain observation look), "
                f"{r['render_ms_per_frame_full_look']:.0f} ms in the full look with shadows")
    return (f"measured before the plain observation look: one camera frame {r['render_ms_per_frame']:.0f} ms, "
            f"{r['render_ms_per_frame_no_shadows']:.0f} ms without the shadow map (bench/rendering.py has today's)")


def dataset_rows(ds: dict) -> list[dict]:
    """Image demos (bench/dataset.py): rendering cost, store bytes and reads, loader vs trainer; no peer."""
    vers = _v(ds, "mujoco", "h5py", "torch")
    shared = f"shared CPU, load {ds['load_avg_1m_start']:.1f}-{ds['load_avg_1m_end']:.1f}"
    r, cases, ld = ds["rendering"], ds["storage"]["cases"], ds["loader"]
    rows = [row(f"Demo rendering: {r['task']} oracle demos, MuJoCo, front + wrist cameras at {r['image_size']} px RGB",
                ours=f"{r['frames_per_s']:.1f} frames/s wall ({r['frames_per_cpu_s']:.1f}/CPU-s); "
                     f"{r['s_per_episode']:.1f} s per episode of {r['steps'] / r['episodes']:.0f} steps",
                peer=f"the same demos in obs_mode=state: {r['state_s_per_episode']:.2f} s per episode",
                ratio=f"rendering makes a demo **{r['s_per_episode'] / r['state_s_per_episode']:.0f}x** slower",
                source=ds, versions=vers,
                note=f"MUJOCO_GL={r['mujoco_gl']}; {frame_note(r)}; {r['episodes']} episodes; {shared}")]

    def store(c: dict) -> str:
        return (f"{c['bytes_per_frame'] / 1000:.1f} kB/frame ({100 * c['of_raw']:.0f}% of raw), "
                f"{_f(c['read_frames_per_s'])} frames/s")
    ours = [c for c in cases.values() if c["chosen"]]
    rgb, lzf, raw = next(c for c in ours if c["kind"] == "rgb"), cases["rgb lzf, 4 frames/chunk"], cases["rgb raw"]
    depth_mm = cases["depth uint16 mm, gzip-4, 4 frames/chunk"]
    rows.append(row(f"Demo store, {r['image_size']} px camera frames: bytes per frame and reads/s (random 2-frame "
                    "windows, no chunk cache)",
                    ours="; ".join(f"{c['kind']} {c['dtype']} {c['compression']}-{c['level']}, {c['frames_per_chunk']} "
                                   f"frames/chunk: {store(c)}" for c in ours),
                    peer=f"rgb lzf: {store(lzf)}; rgb raw: {store(raw)}; depth uint16 mm gzip-4: {store(depth_mm)}",
                    ratio=f"**{lzf['bytes_per_frame'] / rgb['bytes_per_frame']:.1f}x** fewer bytes than lzf, "
                          f"{rgb['read_frames_per_s'] / lzf['read_frames_per_s']:.2f}x its read rate",
                    source=ds, versions=vers,
                    note=f"{ds['storage']['rgb_frames_per_camera']} rendered frames per camera; best of "
                         f"{ds['rounds']} rounds; {shared}"))
    w0, w1, tr = ld["workers_0"], ld["workers_1"], ld["trainer"]
    rows.append(row(f"Multitask loader alone vs the trainer: samples/s, batch {ld['batch']}, 2 cameras "
                    f"{r['image_size']} px + proprio ({ld['n_obs_steps']} obs steps, {ld['horizon']} actions)",
                    ours=f"0 workers: {_f(w0['samples_per_s'])}/s; 1 worker: {_f(w1['samples_per_s'])}/s",
                    peer=f"small-CNN image encoder forward + backward + AdamW: {_f(tr['samples_per_s'])}/s "
                         f"({_f(tr['samples_per_cpu_s'])}/CPU-s)",
                    ratio=f"loader **{ld['loader_over_trainer']:.1f}x** the trainer", source=ds, versions=vers,
                    note=f"train.datasets.MultiTaskDataset over a format 3 store, {ds['threads']} torch thread, "
                         f"best of {ds['rounds']} rounds; {shared}"))
    return rows


def keyposes_rows(kp: dict) -> list[dict]:
    """GravMAD keypose discovery vs the oracle's phase boundaries (bench/keyposes.py); no peer."""
    t3, t8 = kp["total"]["3"], kp["total"]["8"]
    eps = sum(t["episodes"] for t in kp["tasks"])
    source = ("MuJoCo demo store, contacts by replay" if kp.get("sim", "mujoco") == "mujoco"
              else f"{ {'maniskill': 'ManiSkill3'}.get(kp['sim'], kp['sim'])} oracle runs")
    return [row(f"GravMAD sub-goal keypose discovery vs the oracle's phase boundaries, {len(kp['tasks'])} built-in "
                f"tasks ({source})",
                ours=f"precision {t3['precision']:.2f}, recall {t3['recall']:.2f} within 3 steps; "
                     f"{t8['precision']:.2f} / {t8['recall']:.2f} within 8 steps",
                peer="—", ratio="—", source=kp, versions=_v(kp, "mujoco", "gymnasium"),
                note=f"{eps} episodes, {t3['reference']} oracle boundaries, {t3['predicted']} keyposes; per task: "
                     "docs/benchmarks.md section 11")]


def hilp_rows(h: dict) -> list[dict]:
    """HILP zero-shot goal reaching vs goal-conditioned BC on the same data (bench/hilp.py)."""
    c, rows = h["config"], []
    for task, s in h["summary"].items():
        hi, bc = s["hilp"], s["gcbc"]
        rows.append(row(f"HILP zero-shot goal reaching on {task} vs goal-conditioned BC, same data "
                        f"({c['demos']} demos + {c['explore']} exploratory episodes)",
                        ours=f"success {hi['mean']:.2f} (+-{hi['std']:.2f})", peer=f"GCBC {bc['mean']:.2f} (+-{bc['std']:.2f})",
                        ratio=f"{(hi['mean'] - bc['mean']) * 100:+.0f} points",
                        source={**h, "machine_short": f"{h['machine'].get('cores', '?')} cores"}, versions="",
                        note=f"{len(c['seeds'])} seed(s) x {c['eval_episodes']} unseen goals, {c['steps']} steps; "
                             f"{h['wall_s'] / 60:.0f} min (shared CPU)"))
    return rows


def scale_rows(sc: dict) -> list[dict]:
    """Ray fan-out on local workers vs one process (bench/scale.py): demos, evaluation, gates; and
    the 2-process DDP trainer vs one process at the same global batch."""
    m = sc["machine"]
    src = {**sc, "machine_short": f"{m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB, {m['os']}, "
                                  f"{'no GPU' if m['gpu'] == 'none' else m['gpu']}"}
    ev = sc.get("eval", {})
    what = {"demos": f"{sc['task']} oracle demos",
            "eval_episodes": f"{sc['task']} evaluation episodes"
                             + (f" ({ev['steps_per_episode']} steps, {ev['batch']} in lockstep)" if ev else ""),
            "gate_candidates": "generation gate candidates (runtime + oracle, sandboxed"
                               + (f", {sc['gates_mode']} mode)" if sc.get("gates_mode") else ")")}
    load = f"load {sc['load_avg_1m_start']:.2f}-{sc['load_avg_1m_end']:.2f}"
    rows = []
    if sc.get("rows"):
        overhead = (f"Ray start {sc['ray_start_s']:.1f} s, {sc['ray_s_per_noop_item_in_flight'] * 1e3:.2f} ms per item "
                    f"in flight, {sc['ray_round_trip_s_median'] * 1e3:.1f} ms round trip")
        rows += [row(f"{what[name]}: Ray on {sc['workers']} local workers vs one process",
                     ours=f"{r['ray_per_min']:,.0f}/min", peer=f"one process {r['serial_per_min']:,.0f}/min",
                     ratio=f"**{r['ratio']:.2f}x**", source=src, versions=_v(sc, "ray", "mujoco", "torch"),
                     note=f"{r['items']} items; {overhead}; {load}")
                 for name, r in sc["rows"].items()]
    d = sc.get("ddp")
    if d:
        one, two = d["processes_1"], d["processes_2"]
        rows.append(row("imitation trainer (default diffusion policy): accelerate launch, 2 DDP processes (gloo) vs "
                        "one process, same global batch",
                        ours=f"{two['samples_per_s']:,.0f} samples/s", peer=f"one process {one['samples_per_s']:,.0f} samples/s",
                        ratio=f"**{d['ratio']:.2f}x**", source=src, versions=_v(sc, "accelerate", "torch"),
                        note=f"global batch {d['global_batch']}, {d['steps']} steps; final weights equal across the 2 "
                             f"processes: {'yes' if d['weights_equal_across_processes'] else '**no**'}; process start "
                             f"{two['start_s']:.0f} s (2) vs {one['start_s']:.0f} s (1), not in samples/s; {load}"))
    return rows


def rendering_rows(rd: dict) -> list[dict]:
    """Observation cameras (bench/rendering.py): MuJoCo's plain look vs the full one; ManiSkill's cost."""
    vers = _v(rd, "mujoco", "mani-skill", "sapien")
    shared = f"shared CPU, load {rd['load_avg_1m_start']:.1f}-{rd['load_avg_1m_end']:.1f}"
    size, fr, dm = rd["image_size"], rd["frames"], rd["demos"]
    plain, full = fr["plain (now)"], fr["full (before)"]
    alone = "; ".join(f"{name[len('full '):]}: {r['cpu_ms_per_frame']:.1f}" for name, r in fr.items()
                      if name.startswith("full without"))
    rows = [row(f"Observation camera frame, MuJoCo, {rd['task']} at {size} px: plain look (no shadows, reflections, "
                "skybox, multisampling) vs the full look it had before",
                ours=f"{plain['cpu_ms_per_frame']:.1f} ms CPU ({plain['ms_per_frame']:.1f} wall), "
                     f"{plain['frames_per_s']:,.0f} frames/s",
                peer=f"{full['cpu_ms_per_frame']:.1f} ms CPU ({full['ms_per_frame']:.1f} wall), "
                     f"{full['frames_per_s']:,.0f} frames/s",
                ratio=f"**{full['cpu_ms_per_frame'] / plain['cpu_ms_per_frame']:.0f}x** less CPU per frame",
                source=rd, versions=vers,
                note=f"MUJOCO_GL={rd['mujoco_gl']} (Mesa llvmpipe); ms CPU of the full look with one setting "
                     f"turned off, {alone}; best of {rd['rounds']} rounds; {shared}")]
    def demo(d: dict) -> str:
        return (f"{d['s_per_episode']:.2f} s/episode ({d['cpu_s_per_episode']:.2f} CPU-s), {d['frames_per_s']:,.0f} "
                f"frames/s ({d['frames_per_cpu_s']:,.0f}/CPU-s)")
    p, f, pc, st = dm["rgb, plain"], dm["rgb, full"], dm["pointcloud, plain"], dm["state"]
    rows.append(row(f"{rd['task']} oracle demos, obs_mode=rgb (front + wrist, {size} px): plain vs full look",
                    ours=demo(p), peer=demo(f),
                    ratio=f"**{f['cpu_s_per_episode'] / p['cpu_s_per_episode']:.1f}x** less CPU per demo",
                    source=rd, versions=vers,
                    note=f"{p['episodes']} episode(s) of {p['steps'] // p['episodes']} steps each; "
                         f"train.demos.rollout_oracle; {shared}"))
    rows.append(row(f"{rd['task']} oracle demos, obs_mode=pointcloud (RGB + depth of both cameras at {size} px, "
                    "unprojected; plain look) vs obs_mode=state",
                    ours=demo(pc), peer=f"{st['s_per_episode']:.2f} s/episode ({st['cpu_s_per_episode']:.2f} CPU-s)",
                    ratio=f"{pc['cpu_s_per_episode'] / st['cpu_s_per_episode']:.1f}x the CPU of a state demo",
                    source=rd, versions=vers, note=f"{pc['episodes']} episode(s); {shared}"))
    ms = rd.get("maniskill", {})
    if _ok(ms):
        rows.append(row(f"Observation camera frame, ManiSkill (SAPIEN {ms['shader_pack']} shader pack, lavapipe), "
                        f"{size} px, from env steps in rgb vs state",
                        ours=f"{ms['camera_cpu_ms_per_frame']:.1f} ms CPU ({ms['camera_ms_per_frame']:.1f} wall) per "
                             f"frame; rgb step {ms['rgb']['ms_per_step']:.1f} ms, state step "
                             f"{ms['state']['ms_per_step']:.1f} ms",
                        peer=f"MuJoCo plain look: {plain['cpu_ms_per_frame']:.1f} ms CPU per frame",
                        ratio=f"{ms['camera_cpu_ms_per_frame'] / plain['cpu_ms_per_frame']:.1f}x MuJoCo's CPU per frame",
                        source={**rd, **{k: ms[k] for k in ("command", "date") if k in ms}}, versions=vers,
                        note=f"zero-action steps, 1 torch thread; half the rgb-minus-state step is one camera's "
                             f"frame; shared CPU, load {ms.get('load_avg_1m', rd['load_avg_1m_end']):.1f}"))
    return rows


# result file name -> its rows, in table order. Files not written by `python -m bench.run` itself
# (rl_learning: long; maniskill_overhead / maniskill_gpu: need the ManiSkill extra or a GPU;
# encoders, video, dataset, keyposes, rendering, hilp, scale: their own scripts, bench/encoders.py, bench/video.py,
# bench/dataset.py, bench/keyposes.py, bench/rendering.py, bench/hilp.py, bench/scale.py) are read the same way.
def vla_decoding_rows(vd: dict) -> list[dict]:
    """Parallel (OFT) vs autoregressive (OpenVLA) decoding of the tiny VLA (bench/vla_decoding.py)."""
    rows, q = vd["rows"], vd["ratios"]
    par = next(r for r in rows.values() if r["decoding"] == "parallel" and r["action_head"] == "tokens")
    ar = next(r for r in rows.values() if r["decoding"] == "autoregressive" and r["chunk_size"] == par["chunk_size"])
    ar1 = next(r for r in rows.values() if r["decoding"] == "autoregressive" and r["chunk_size"] == 1)
    k = par["chunk_size"]
    return [row(f"VLA ({vd['size']}, {par['parameters']:,} parameters) actions/s: parallel decoding (OFT, one pass) vs "
                f"autoregressive ({k * 7} tokens one by one), chunk {k}, batch 1",
                ours=f"{par['actions_per_cpu_s']:,.0f} actions/CPU-s ({par['actions_per_s']:,.0f}/s wall)",
                peer=f"{ar['actions_per_cpu_s']:,.0f} actions/CPU-s ({ar['actions_per_s']:,.1f}/s wall)",
                ratio=f"**{q['parallel_vs_autoregressive_same_chunk_cpu']:.1f}x** (CPU time), "
                      f"{q['parallel_vs_autoregressive_same_chunk']:.1f}x (wall); target >= 5x",
                source=vd, versions=_v(vd, "torch", "transformers"),
                note=f"same model; vs OpenVLA's chunk 1 ({ar1['actions_per_cpu_s']:,.0f} actions/CPU-s): "
                     f"{q['parallel_vs_openvla_chunk_1_cpu']:.1f}x CPU; 1 torch thread, median of "
                     f"{par['calls']} calls per mode; shared CPU, load {vd['machine']['load_avg_1m_at_start']:.1f}-"
                     f"{vd['load_avg_1m_end']:.1f}")]


def _machine_of(d: dict) -> dict:
    """A result that records a machine dict but no ``machine_short``: the row's Machine column."""
    m = d.get("machine")
    if isinstance(m, dict):
        return {**d, "machine_short": f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
                                      f"{'no GPU' if m.get('gpu', 'none') == 'none' else m.get('gpu')}"}
    return {**d, "machine_short": m or "—"}


def oracle_tasks_rows(ot: dict) -> list[dict]:
    """Oracle success of the orientation and insertion tasks on both backends (bench/oracle_tasks.py)."""
    by_sim: dict[str, list] = {}
    for p in ot["pairs"]:
        by_sim.setdefault(p["sim"], []).append(f"{p['task']} {p['successes']}/{p['episodes']}")
    src = {**_machine_of(ot), "command": ot.get("command", "python -m bench.oracle_tasks"),
           "date": max(p.get("when", "") for p in ot["pairs"])}
    return [row(f"Oracle success, orientation and insertion tasks, {sim} (unseen seeds 70000-70019)",
                ours="; ".join(cells), peer="—", ratio="—", source=src, versions=_v(ot, "mujoco", "mani_skill"),
                note="issue 19 target 2 (oracle half); docs/orientation.md")
            for sim, cells in by_sim.items()]


def dart_paths_rows(dp: dict) -> list[dict]:
    """How far DART demos wander from the expert's path (bench/dart_paths.py), per noise std."""
    rows = []
    for noise in sorted({r["noise"] for r in dp["rows"]}):
        ours, own = (next(r for r in dp["rows"] if r["noise"] == noise and r["oracle"].startswith(k))
                     for k in ("re-plans", "plans from its own"))
        rows.append(row(f"DART demos, {dp['task']}, noise σ={noise}: farthest TCP from the expert's path; oracle "
                        "re-planning from the noisy arm vs planning from its own path",
                        ours=f"{ours['off_path_mm_mean']:.1f} mm, success {ours['successes']}/{ours['episodes']}",
                        peer=f"{own['off_path_mm_mean']:.1f} mm, success {own['successes']}/{own['episodes']}",
                        ratio=f"**{ours['off_path_mm_mean'] / own['off_path_mm_mean']:.1f}x** farther",
                        source={**_machine_of(dp), **dp}, versions=_v(dp, "mujoco", "gymnasium"),
                        note=f"seeds {dp['seeds'][0]}-{dp['seeds'][1]}, state obs; mean abs label xyz "
                             f"{ours['label_xyz_mean']:.3f} vs {own['label_xyz_mean']:.3f}; docs/datasets.md"))
    return rows


def fixtures_oracle_rows(fo: dict, what: str = "container and drawer tasks") -> list[dict]:
    """Oracle success of the container, drawer (and door) tasks (bench/fixtures.py oracle)."""
    sims = sorted({r["sim"] for r in fo["rows"]})
    return [row(f"Oracle success, {what}, {', '.join(sims)} (20 unseen seeds)",
                ours="; ".join(f"{r['task']} {r['wins']}/{r['seeds']}" for r in fo["rows"]), peer="—", ratio="—",
                source=fo, versions=_v(fo, "mujoco", "mani_skill", "sapien"),
                note=f"issue 19 target 2 (oracle half); load {fo['load_avg_1m_start']}-{fo['load_avg_1m_end']}; "
                     "docs/fixtures.md")]


def door_oracle_rows(fo: dict) -> list[dict]:
    """Oracle success of the door tasks (bench/fixtures.py oracle --tasks open_door,close_door)."""
    return fixtures_oracle_rows(fo, "door tasks (revolute joint)")


def fixtures_step_rows(fs: dict) -> list[dict]:
    """Env step CPU cost of articulated tasks vs stack_blocks (bench/fixtures.py step)."""
    base = {r["sim"]: r["cpu_ms"] for r in fs["rows"] if r["task"] == "stack_blocks"}
    others = [r for r in fs["rows"] if r["task"] != "stack_blocks"]
    return [row(f"Env step CPU cost, {r['task']} vs stack_blocks, {r['sim']} (state obs, oracle actions replayed)",
                ours=f"{r['cpu_ms']:.2f} ms CPU", peer=f"stack_blocks {base[r['sim']]:.2f} ms CPU",
                ratio=f"**{r['cpu_ms'] / base[r['sim']]:.2f}x**", source=fs,
                versions=_v(fs, "mujoco", "mani_skill", "sapien"),
                note=f"{r['steps']} steps x {r['rounds']} rounds; load {fs['load_avg_1m_start']}-{fs['load_avg_1m_end']}")
            for r in others if r["sim"] in base]


def generation_space_rows(g: dict) -> list[dict]:
    """The procedural generator's space and the structural novelty check (bench/generation_space.py)."""
    src = {**_machine_of(g), "command": g.get("command", f"python -m bench.generation_space --{g['mode'].replace('_', '-')}"),
           "date": g.get("date", "2026-12-01")}
    if g["mode"] == "offline":
        return [row("Procedural generation space, read offline (no simulator): mutually novel drafts at the unchanged "
                    f"threshold {g['threshold']}", ours=f"{g['mutually_novel']} of {g['drafts']} drafts "
                    f"({g['structural_classes']} distinct structures)", peer="—", ratio="—", source=src, versions="",
                    note=f"an upper bound on a live run (the live run, next row, admitted as many); left out by text "
                         f"{g['rejected']['text']}, by structure {g['rejected']['structure']}; {g['wall_s'] / 60:.0f} min")]
    if g["mode"] == "live":
        return [_generation_live_row(g, src)]
    if g["mode"] == "oracle_sample":
        return [row(f"Procedural drafts: oracle success >= 0.8 on {g['seeds']} seeds, sampled drafts",
                    ours=f"{g['pass_at_0.8']}/{g['drafts']}", peer="—", ratio="—", source=src, versions="",
                    note="random sample of composed drafts")]
    return [row("Structural novelty calibration: built-in pairs judged duplicates; hand-made drafts' distinct "
                "structures", ours=f"{len(g['builtin_duplicates'])} of {g['builtin_pairs']} built-in pairs; "
                f"{g['catalogue_structures']} structures in {g['catalogue_drafts']} drafts", peer="—", ratio="—",
                source=src, versions="", note="docs/generation.md")]


def _generation_live_row(g: dict, src: dict) -> dict:
    """Issue 19 target 1: procedural generation into an empty library, then a second run."""
    runs = [(k, g[k]) for k in ("first", "second") if isinstance(g.get(k), dict)]
    parts = []
    for k, r in runs:
        split = r.get("novelty_split") or {}
        rej = ", ".join(f"{gate} {n}" for gate, n in sorted(r["rejected"].items())) or "none"
        if split:
            rej += " (" + ", ".join(f"{m} {n}" for m, n in sorted(split.items())) + ")"
        parts.append(f"{k} run: {r['admitted']} of {r['attempted']} attempts admitted, rejected {rej}, "
                     f"{r['wall_s'] / 60:.1f} min, load {r.get('load_start', '?')}-{r['load_end']}")
    lib = g.get("library", {})
    if lib:
        parts.append(f"library: {lib['tasks']} tasks, {lib['distinct_structures']} distinct structures, highest "
                     f"pairwise cosine {lib['max_pairwise_cosine']}; oracle on 10 seeds "
                     + ", ".join(f"{float(k):.1f}: {v}" for k, v in sorted(lib["oracle_counts"].items(), reverse=True)))
    counts = [r["admitted"] for _, r in runs]
    met = bool(counts) and counts[0] >= 150 and len(counts) > 1 and counts[1] > 0 and \
        all(r.get("oracle_min") is None or r["oracle_min"] >= 0.8 for _, r in runs)
    return row("Procedural generation into an empty library (every gate, oracle on 10 seeds each), then a second run",
               ours=" + ".join(map(str, counts)) + f" = {sum(counts)} admitted", peer="—", ratio="—", source=src,
               versions="", note="; ".join(parts) + f"; nice 10, one process; issue 19 target 1 {'met' if met else 'missed'}")


def gravmad_rows(gm: dict) -> list[dict]:
    """GravMAD vs the point-cloud diffusion policy, seen tasks and held-out variants (bench/gravmad.py)."""
    by = {r["name"]: r for r in gm["rows"]}
    out = []
    for name, r in by.items():
        held = next(iter(r["heldout"].values()), {})
        out.append(row(f"{name}: success on {len(r['seen'])} seen tasks and {len(held)} held-out variants "
                       f"({r['train_steps']} training steps)",
                       ours=f"seen mean {r['seen_mean']:.2f}; held-out mean "
                            f"{(sum(held.values()) / len(held)) if held else 0:.2f}", peer="—", ratio="—",
                       source=_machine_of(gm), versions=_v(gm, "torch", "mujoco"),
                       note=f"{sum(r['num_demos'].values())} demos; {r['wall_time_s'] / 60:.0f} min on a shared CPU; "
                            "issue 16 targets 1-2 missed (far below the budget these policies need)"))
    return out


def curriculum_rows(cr: dict) -> list[dict]:
    """Curriculum arms: tasks mastered at the end, mean over seeds (bench/curriculum.py)."""
    c = cr["config"]
    return [row(f"Curriculum {arm}: tasks mastered (success >= 0.5), pool of {s['pool']}, {c['steps']} steps",
                ours=f"{s['mean']:.1f} (+-{s['std']:.1f}) over {len(s['per_seed'])} seed(s)", peer="—", ratio="—",
                source=_machine_of(cr), versions="", note=f"reduced run; {s['wall_s_mean'] / 60:.0f} min per run")
            for arm, s in cr["summary"].items()]


def curriculum_loop_rows(cl: dict) -> list[dict]:
    """The closed loop: refills by the procedural generator and what the learner mastered."""
    gen = cl["generated"]
    return [row(f"Closed loop: pool refilled {len(cl['refills'])} times by the procedural generator",
                ours=f"{sum(g['joined'] for g in gen)} generated tasks joined; "
                     f"{sum(g['mastered'] for g in gen)} mastered", peer="—", ratio="—",
                source={"command": f"python -m bench.curriculum refills {cl['run_dir']}"}, versions="",
                note="issue 17 target 3; per task: docs/curriculum.md")]


def instruction_swap_rows(sw: dict) -> list[dict]:
    """Does a trained stack_blocks policy follow a swapped instruction? (bench/instruction_swap.py)"""
    n = sw["episodes"]
    # what besides the words could say which block goes where, as this policy saw it
    if sw["obs_mode"] != "slots":
        variant = sw["obs_mode"] + (", token fusion" if sw.get("obs_encoder") == "transformer" else "") + \
            (" + pointer" if sw.get("fusion_pointer") else "") + \
            (f" + pointer loss {sw['fusion_pointer_loss']}" if sw.get("fusion_pointer_loss") else "")
        reads = "images carry no goal"
    elif not sw.get("drop_goal_features"):
        variant, reads = "slots", "the slots' goal_delta says the goal"
    elif sw.get("obs_encoder") == "transformer":
        variant = "slots, goal fields dropped, token fusion" + (" + pointer" if sw.get("fusion_pointer") else "") + \
            (f" + pointer loss {sw['fusion_pointer_loss']}" if sw.get("fusion_pointer_loss") else "")
        reads = "only the words say the goal (the fusion reads slots as a set)"
    elif not sw.get("shuffle_slots"):
        variant, reads = "slots, goal fields dropped", "slot order still says the roles (slot 0 = the block to move)"
    else:
        variant, reads = "slots, goal fields dropped, slots shuffled", "only the words say the goal"
    if sw["as_given_success"] is None:   # --pointer-only: the grounding alone, no episodes
        pr = sw["pointer_right"]
        return [row(f"Pointer grounding, stack_blocks {variant} policy: readouts at the named blocks, first observation",
                    ours=f"as given {pr['as given_readout0']:.2f}/{pr['as given_readout1']:.2f}, "
                         f"swapped {pr['swapped_readout0']:.2f}/{pr['swapped_readout1']:.2f}",
                    peer="—", ratio="—", source=sw, versions="",
                    note=f"{n} unseen seeds {sw['seeds'][0]}-{sw['seeds'][1]}; readout 0 should point at the block "
                         f"to move, 1 at the base ({'front camera patch' if sw['obs_mode'] != 'slots' else 'slot'})"
                         + (f"; at the other named block instead: as given {pr['as given_readout0_other']:.2f}/"
                            f"{pr['as given_readout1_other']:.2f}, swapped {pr['swapped_readout0_other']:.2f}/"
                            f"{pr['swapped_readout1_other']:.2f}" if "as given_readout0_other" in pr else "")
                         + f"; {reads}")]
    return [row(f"Instruction swap, stack_blocks {variant} policy: stacks as asked, scene's vs swapped instruction",
                ours=f"as given {sw['as_given_success']}/{n}; swapped {sw['swapped_success']}/{n}",
                peer="—", ratio="—", source=sw, versions="",
                note=f"same seeds {sw['seeds'][0]}-{sw['seeds'][1]}; {reads}; followed both {sw['followed_both']}/{n}"
                     + (f"; pointer at the named blocks: as given {pr['as given_readout0']:.2f}/{pr['as given_readout1']:.2f}, "
                        f"swapped {pr['swapped_readout0']:.2f}/{pr['swapped_readout1']:.2f}" if (pr := sw.get("pointer_right")) else ""))]


def condition_use_rows(cu: dict) -> list[dict]:
    """Does a diffusion policy's U-Net act on its condition? (bench/condition_use.py)"""
    out = []
    for r in cu["rows"]:
        if "action_change" in r:   # a VLA: how far its decoded actions move when each input is shuffled
            out.append(row(f"Input use, {Path(r['run']).name} (VLA, cameras {'+'.join(r['cameras'])}): action change "
                           f"with one input shuffled; fit on training windows",
                           ours=", ".join(f"{k} {v:.3f}" for k, v in r["action_change"].items())
                           + f"; xyz error {r['fit_xyz']:.3f} (mean action {r['mean_action_xyz']:.3f})",
                           peer="—", ratio="—", source=cu, versions="",
                           note=f"{r['windows']} training windows, raw action units; gripper error "
                                f"{r['fit_gripper']:.3f} (mean action {r['mean_action_gripper']:.3f})"
                                + position_note(r)))
            continue
        reads = (f"{r['obs_encoder']} encoder, cameras {'+'.join(r['cameras'])}" if r["cameras"]
                 else f"{r['obs_encoder']} encoder, {r['obs_key']}")
        out.append(row(f"Condition use, {Path(r['run']).name} ({reads}): U-Net change with shuffled conditions; "
                       f"fit on training windows",
                       ours=f"{r['condition_use']:.3f}; xyz error {r['fit_xyz']:.3f} (mean action {r['mean_action_xyz']:.3f})",
                       peer="—", ratio="—", source=cu, versions="",
                       note=f"{r['windows']} training windows, diffusion step {r['diffusion_step']}; one input "
                            "shuffled: " + ", ".join(f"{k} {v:.3f}" for k, v in r.get("condition_use_by_input", {}).items())
                            + f"; gripper error {r['fit_gripper']:.3f} (mean action {r['mean_action_gripper']:.3f})"
                            + position_note(r)))
    return out


ROW_BUILDERS: dict[str, Callable[[dict], list[dict]]] = {
    "throughput": throughput_rows,
    "scaling": scaling_rows,
    "maniskill_overhead": maniskill_overhead_rows,
    "maniskill_gpu": maniskill_gpu_rows,
    "demos": demos_rows,
    "diffusion": diffusion_rows,
    "learning": learning_rows,
    "rl_learning": rl_learning_rows,
    "export": export_rows,
    "encoders": encoders_rows,
    "video": video_rows,
    "dataset": dataset_rows,
    "keyposes": keyposes_rows,
    "keyposes_maniskill": keyposes_rows,
    "rendering": rendering_rows,
    "hilp": hilp_rows,
    "scale": scale_rows,
    "instruction_swap": instruction_swap_rows,
    "instruction_swap_nogoal": instruction_swap_rows,
    "instruction_swap_fusion": instruction_swap_rows,
    "instruction_swap_pointer": instruction_swap_rows,
    "instruction_swap_rgb_pointer": instruction_swap_rows,
    "oracle_tasks": oracle_tasks_rows,
    "fixtures_oracle": fixtures_oracle_rows,
    "fixtures_oracle_maniskill": fixtures_oracle_rows,
    "fixtures_step": fixtures_step_rows,
    "fixtures_step_maniskill": fixtures_step_rows,
    "fixtures_oracle_door": door_oracle_rows,
    "fixtures_oracle_door_maniskill": door_oracle_rows,
    "fixtures_step_door": fixtures_step_rows,
    "generation_space_offline": generation_space_rows,
    "generation_space_oracle": generation_space_rows,
    "generation_space": generation_space_rows,
    "generation_space_calibration": generation_space_rows,
    "gravmad": gravmad_rows,
    "curriculum_reduced5": curriculum_rows,
    "curriculum_loop": curriculum_loop_rows,
    "vla_decoding": vla_decoding_rows,
    "condition_use": condition_use_rows,
    "condition_use_vla": condition_use_rows,
    "condition_use_poscond": condition_use_rows,
    "condition_use_explore": condition_use_rows,
    "condition_use_vla_aux": condition_use_rows,
    "condition_use_noagent": condition_use_rows,
    "dart_paths": dart_paths_rows,
}
# rows that say how to get a missing result, instead of leaving it out
WHEN_MISSING = {
    "maniskill_gpu": row("ManiSkill3 backend on the GPU: num_envs sweep 1-4096 vs StackCube-v1", ours="—", peer="—",
                         ratio="—", source={}, versions="",
                         note="needs a CUDA machine: `python bench/maniskill_gpu.py`"),
}


def load_results(folder: Path = RESULTS) -> dict[str, dict]:
    """``{name: result}`` for each result file of :data:`ROW_BUILDERS` present in ``folder``."""
    out = {}
    for name in ROW_BUILDERS:
        p = folder / f"{name}.json"
        if p.exists():
            out[name] = json.loads(p.read_text())
    return out


def rows_from(results: dict[str, dict]) -> list[dict]:
    """One table row per comparison, from the per-benchmark result files."""
    rows = []
    for name, build in ROW_BUILDERS.items():
        if results.get(name):
            rows += build(results[name])
        elif name in WHEN_MISSING:
            rows.append(WHEN_MISSING[name])
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


def write_doc(rows: list[dict], extra: list[str] = (), doc: Path = DOC) -> None:
    """Replace the table between the markers of ``doc`` (appended when the page has none)."""
    def cell(x: str) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = [TABLE_START, "<!-- generated by `python -m bench.run`; edit bench/report.py, not this table -->", "",
             "| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(cell(r[k]) for k in COLUMNS) + " |")
    lines += [*extra, TABLE_END]
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{TABLE_START}\n{TABLE_END}\n"
    if TABLE_START not in text:
        text += f"\n{TABLE_START}\n{TABLE_END}\n"
    pre, rest = text.split(TABLE_START, 1)
    post = rest.split(TABLE_END, 1)[1] if TABLE_END in rest else ""
    doc.write_text(pre + "\n".join(lines) + post)


def write_report(results: dict[str, dict], doc: Path = DOC) -> list[dict]:
    """Render ``results`` (see :func:`load_results`) into ``doc``; returns the table rows."""
    rows = rows_from(results)
    write_doc(rows, profile_md(results), doc)
    return rows


def print_table(rows: list[dict]) -> None:
    """The table on the terminal (rich when installed, plain lines otherwise)."""
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
