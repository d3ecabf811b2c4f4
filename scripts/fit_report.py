# SPDX-License-Identifier: Apache-2.0
"""Issue 11's demonstrations, every figure from a command; writes docs/fit.md, docs/fit.json
and README.md's "Will it fit?" blocks (`make fit-report`):

    python scripts/fit_report.py [--model dynamic-nsnet2] [--work out/fit-report]

1. `nsconv fit MODEL --part P --json` (and its table) for every part of the parts table;
   measurements cached in out/fit/<model> (shared with `export --part`).
2. `nsconv export MODEL --part P -o WORK/P --json` for stm32h743 and nrf5340 (when no exit
   of a part meets all three budgets, the deepest exits that fit its flash and RAM are kept
   with `--exits`, and export's warning about the clock is reported as it is).
3. For both exports: `nsconv verify WORK/P --exit-schedule random --json` (generated C vs
   TFLM on every kept exit); `nsconv verify WORK/P --target CORE --json` (the firmware on the
   part's core in QEMU vs TFLM); `nsconv run WORK/P CLIP WORK/P/run-CORE.wav --schedule
   <kept exits> --json` and the host build of the same firmware project on the same clip and
   schedule (qemu.run(host=True), what `make host` builds): the two wavs must be byte-equal.
4. `nsconv evaluate WORK/P --audio tests/data --json`: each exit against the all-int8
   conversion of the same model, clip by clip (eval/formats.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NSCONV = [sys.executable, "-m", "nsconv.cli"]
EXPORT_PARTS = ("stm32h743", "nrf5340")
CLIP = ROOT / "tests" / "data" / "0072_noisy.wav"


def _run(args: list[str], ok=(0,)) -> tuple[int, str, str, float]:
    """(status, stdout, stderr, seconds) of `nsconv ARGS`, run in the checkout."""
    print("$ nsconv " + " ".join(args), file=sys.stderr, flush=True)
    t0 = time.monotonic()
    p = subprocess.run(NSCONV + args, capture_output=True, text=True, cwd=ROOT)
    if p.returncode not in ok:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"nsconv {' '.join(args)}: exit status {p.returncode}")
    return p.returncode, p.stdout, p.stderr, round(time.monotonic() - t0, 1)


def fit_part(model: str, part: str) -> dict:
    """{"json": fit --json, "table": fit's table} of one part (the table from the cache)."""
    _, js, _, sec = _run(["fit", model, "--part", part, "--json"])
    _, table, _, _ = _run(["fit", model, "--part", part])
    return {"json": json.loads(js), "table": table.rstrip(), "seconds": sec}


def export_part(model: str, part: str, fit: dict, dest: Path) -> dict:
    """export --part; when no exit meets every budget, `--part P --exits` with the deepest
    prefix of exits whose export fits the part's flash and RAM (export chooses its formats
    and refuses prefixes that do not fit even with int4 layers; its clock warning is kept)."""
    args = ["export", model, "--part", part, "-o", str(dest), "--json"]
    status, js, err, sec = _run(args, ok=(0, 1))
    record = {"command": "nsconv " + " ".join(args), "status": status, "seconds": sec}
    if status == 1:
        record["error"] = err.strip().splitlines()[-1]
        record["refused"] = []
        for e in reversed([e for e in fit["json"]["exits"] if e["fits_ram"]]):
            kept = ",".join(e["kept_exits"])
            floor = _int4_floor(e, fit["json"]["part"]["flash_bytes"])
            if floor:  # what export would refuse with, without converting first
                record["refused"].append({"exits": kept, "error": floor})
                continue
            args = ["export", model, "--part", part, "--exits", kept, "-o", str(dest), "--json"]
            status, js, err, sec = _run(args, ok=(0, 1))
            record["seconds"] += sec
            if status == 0:
                record["command_kept"] = "nsconv " + " ".join(args)
                break
            record["refused"].append({"exits": kept,
                                      "error": err.strip().splitlines()[-1]})
        else:
            return record
    record["export"] = json.loads(js)
    record["warnings"] = [line.split("warning: ", 1)[1] for line in err.splitlines()
                          if "warning: " in line]
    return record


def _int4_floor(e: dict, flash_bytes: int) -> str | None:
    """The refusal export --part --exits would end with when even every layer in int4 cannot
    fit the flash bench leaves for the weights (budget as in target/fit.py, floor as in
    quant/int4_choose.choose_formats, from the same functions), or None."""
    from nsconv.model.netspec import NetSpec
    from nsconv.quant.int4_choose import _layers_of
    from nsconv.quant.weights import layer_weight_bytes

    spec = NetSpec.load(Path(e["export_dir"]) / "model.npz")
    budget = flash_bytes - (e["flash_bytes"] - e["weights_bytes"])
    floor = sum(layer_weight_bytes(spec, n, "int4") for n in _layers_of(spec, e["kept_exits"]))
    if floor <= budget:
        return None
    return (f"the weights of exits {', '.join(e['kept_exits'])} need {floor:,} bytes even with "
            f"every layer int4, over the budget of {budget:,} (not exported)")


def check_export(dest: Path, core: str, kept: list[str], target_frames: int,
                 run_frames: int) -> dict:
    """verify (host C vs TFLM), verify --target (core in QEMU vs TFLM), run on the core vs
    the host build of the same project."""
    from nsconv.target import firmware, qemu

    status, js, _, sec = _run(["verify", str(dest), "--exit-schedule", "random", "--json"],
                              ok=(0, 3))
    host_verify = {"status": status, "seconds": sec, "report": json.loads(js)}
    status, js, _, sec = _run(["verify", str(dest), "--target", core, "--exit-schedule",
                               "random", "--frames", str(target_frames), "--json"], ok=(0, 3))
    target_verify = {"status": status, "seconds": sec, "report": json.loads(js)}
    schedule = ",".join(kept)
    core_wav, host_wav = dest / f"run-{core}.wav", dest / "run-host.wav"
    _, js, _, sec = _run(["run", str(dest), str(CLIP), str(core_wav), "--schedule", schedule,
                          "--frames", str(run_frames), "--json"])
    project = firmware.load_project(dest / "firmware" / core)
    qemu.build(project, host=True)
    host = qemu.run(project, CLIP, host_wav, schedule=schedule, frames=run_frames, host=True)
    digest = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in (core_wav, host_wav)}
    return {"verify": host_verify, "verify_target": target_verify,
            "run": {"core": json.loads(js), "seconds": sec, "host_frames": host.frames,
                    "schedule": schedule, "clip": CLIP.name, "frames": run_frames,
                    "sha256": digest, "byte_equal": core_wav.read_bytes() == host_wav.read_bytes()}}


def evaluate(dest: Path) -> dict:
    _, js, _, sec = _run(["evaluate", str(dest), "--audio", "tests/data", "--json"])
    return {"seconds": sec, "report": json.loads(js)}


# ------------------------------------------------------------------------------ markdown


def fit_rows(fits: dict) -> str:
    lines = ["| part | core | exit (kept exits) | weights | flash B | RAM B | MHz needed | fits |",
             "|---|---|---|---|---|---|---|---|"]
    for name, f in fits.items():
        j = f["json"]
        for e in j["exits"]:
            why = [w for w, k in (("flash", "fits_flash"), ("RAM", "fits_ram"),
                                  ("clock", "fits_mhz")) if not e[k]]
            verdict = "yes" if e["fits"] else "no: " + ", ".join(why)
            fmt = "int8" if not e["int4_layers"] else "int4: " + ", ".join(e["int4_layers"])
            lines.append(f"| `{name}` | {j['part']['core']} | {e['exit']} "
                         f"({','.join(e['kept_exits'])}) | {fmt} | {e['flash_bytes']:,} | "
                         f"{e['ram_bytes']:,} | {e['mhz_needed']:.1f} | {verdict} |")
    return "\n".join(lines)


def export_section(part: str, rec: dict, checks: dict | None, ev: dict | None) -> list[str]:
    from nsconv.eval.formats import table
    from nsconv.target.parts import part as find_part

    out = [f"### `{part}`", "", f"`{rec.get('command_kept', rec['command'])}`", ""]
    if "export" not in rec:
        return out + [f"export refused: `{rec['error']}`", ""]
    if "command_kept" in rec:
        out += [f"`{rec['command']}` refused (exit status 1): `{rec['error']}`", ""]
        out += [f"- `--exits {r['exits']}` refused: `{r['error']}`" for r in rec["refused"]]
        out += ["", "The deepest exits that fit the part's flash and RAM were then kept with "
                "`--exits` (the command above).", ""]
    x = rec["export"]
    fit = x["fit"]
    out += [f"- kept exits: {', '.join(e['name'] for e in x['exits'])}; dropped: "
            f"{', '.join(x['dropped_exits']) or 'none'}",
            f"- weights: {fit['format']}",
            f"- measured by bench on {fit['exit']}: flash {fit['flash_bytes']:,} B (all int8: "
            f"{fit['int8_flash_bytes'] or fit['flash_bytes']:,} B), RAM {fit['ram_bytes']:,} B, "
            f"{fit['mhz_needed']:.1f} MHz needed (estimate at 1 instruction/cycle)"]
    out += [f"- warning (from export): {w}" for w in rec["warnings"]]
    if not fit["fits_mhz"]:
        out.append(f"- clock: {fit['exit']} needs {fit['mhz_needed']:.1f} MHz at one "
                   f"instruction per cycle (bench estimate), more than the part's "
                   f"{find_part(part).max_mhz} MHz: not real time "
                   "on this part (export --part warns; fits_mhz false in its JSON)")
    if checks:
        v, t, r = checks["verify"], checks["verify_target"], checks["run"]
        out += [f"- `nsconv verify`: {_verify_line(v['report'])}"]
        out += [f"- `nsconv verify --target`: {_verify_line(r2)}"
                for r2 in t["report"]["reports"]]
        out.append(f"- `nsconv run` on the core, schedule {r['schedule']}, {r['frames']} frames "
                   f"of {r['clip']}: output wav "
                   f"{'byte-equal' if r['byte_equal'] else 'DIFFERENT'} to the host build's "
                   f"(sha256 {r['sha256'][next(iter(r['sha256']))][:16]})")
    out.append("")
    if ev:
        out += ["`nsconv evaluate` against all-int8 (tests/data):", "", "```",
                table(ev["report"]["vs_int8"]), "```", ""]
    return out


def _verify_line(rep: dict) -> str:
    """One verify report (host or a core): bit-exact or not, frames, mismatches per exit."""
    where = "host C" if rep["target"] == "host" else f"{rep['target']} ({rep['board']}, QEMU)"
    per_exit = ", ".join(f"{e['name']} {e['frames']:,} frames {e['mismatches']} mismatches"
                         for e in rep["exits"])
    return (f"{where} vs TFLM: {'bit-exact' if rep['ok'] else 'MISMATCH'}, kernel path "
            f"{rep['kernels_path'] or '?'}, schedule {rep['schedule']}: {per_exit}")


def write_docs(model: str, fits: dict, exports: dict) -> None:
    doc = ["# Will it fit? `dynamic-nsnet2` on real parts", "",
           "Written by `make fit-report` (`python scripts/fit_report.py`): every figure below "
           "is the output of the command shown. flash = code + constants of network and front "
           "end as linked, RAM = arena + states + scratch + peak stack of a step + the front "
           "end's state, MHz = instructions per frame x 100 frames/s at one instruction per "
           "cycle (an estimate), all measured by `nsconv bench` in QEMU on the part's core.", "",
           "## `nsconv fit` per part", "", fit_rows(fits), ""]
    for name, f in fits.items():
        doc += [f"`nsconv fit {model} --part {name}`:", "", "```", f["table"], "```", ""]
    doc += ["## Fitted exports", ""]
    for part, e in exports.items():
        doc += export_section(part, e["export"], e.get("checks"), e.get("evaluate"))
    here = str(ROOT) + "/"
    (ROOT / "docs" / "fit.md").write_text("\n".join(doc).rstrip().replace(here, "") + "\n")
    (ROOT / "docs" / "fit.json").write_text(json.dumps(
        {"model": model, "fit": {k: v["json"] for k, v in fits.items()},
         "tables": {k: v["table"] for k, v in fits.items()},
         "exports": exports}, indent=2).replace(here, "") + "\n")


def replace_block(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m[1] + body.strip() + "\n" + m[2], text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="dynamic-nsnet2")
    ap.add_argument("--work", type=Path, default=Path("out/fit-report"))
    ap.add_argument("--target-frames", type=int, default=500,
                    help="Frames of verify --target per export.")
    ap.add_argument("--run-frames", type=int, default=300, help="Frames of the run check.")
    ap.add_argument("--resume", action="store_true",
                    help="Keep the exports docs/fit.json already holds (fit runs again, from "
                         "its cache).")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "toolchain"))
    _, parts_md, _, _ = _run(["fit", "--list-parts", "--markdown"])
    from nsconv.target.parts import PARTS

    order = list(EXPORT_PARTS) + [p.name for p in PARTS if p.name not in EXPORT_PARTS]
    fits: dict = {}
    exports: dict = {}
    done = json.loads((ROOT / "docs" / "fit.json").read_text())["exports"] \
        if args.resume and (ROOT / "docs" / "fit.json").is_file() else {}
    for name in order:  # the exported parts first, then the rest of the table
        fits[name] = fit_part(args.model, name)
        if name in EXPORT_PARTS:
            exports[name] = done.get(name) or export_checked(args, name, fits[name])
        _write_all(args.model, parts_md, fits, exports)


def export_checked(args, part: str, fit: dict) -> dict:
    dest = (ROOT / args.work / part).resolve()
    rec = export_part(args.model, part, fit, dest)
    out = {"export": rec}
    if "export" in rec:
        core = rec["export"]["target"]
        kept = [e["name"] for e in rec["export"]["exits"]]
        out["checks"] = check_export(dest, core, kept, args.target_frames, args.run_frames)
        out["evaluate"] = evaluate(dest)
    return out


def _write_all(model: str, parts_md: str, fits: dict, exports: dict) -> None:
    """docs/fit.md, docs/fit.json and the README blocks, from what has run so far (parts in
    the table's order)."""
    from nsconv.target.parts import PARTS

    fits = {p.name: fits[p.name] for p in PARTS if p.name in fits}
    write_docs(model, fits, exports)
    readme = ROOT / "README.md"
    text = replace_block(readme.read_text(), "parts", parts_md)
    readme.write_text(replace_block(text, "fit", fit_rows(fits)))


if __name__ == "__main__":
    main()
