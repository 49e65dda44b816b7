#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Turns run-bench.sh's raw records into results.json, report.md and plots.

    report.py --raw RAW.jsonl --machine MACHINE.json --out DIR [--quick]
    report.py --check DIR/results.json     # every figure present and finite

Every figure is summarised over the repetitions as {"median", "min", "max",
"n"}; every comparison is the median of per-repetition ratios, each taken
between contenders measured back to back in that repetition. The keys are
documented in tests/bench/README.md and are stable.
"""
import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys

OPS = ["getrandom", "pcrextend", "nvwrite", "createprimary"]
CONTENDERS = ["vtpmd", "swtpm", "inproc"]
OP_TITLES = {
    "getrandom": "GetRandom(8)",
    "pcrextend": "PCR_Extend",
    "nvwrite": "NV_Write 16 B",
    "createprimary": "CreatePrimary ECC P-256",
}


def stats(values):
    values = [float(v) for v in values]
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def by(records, fig):
    return [r for r in records if r["fig"] == fig]


def ratio_stats(num, den):
    """num, den: {rep: value}; the ratio of each repetition where both exist."""
    return stats([num[k] / den[k] for k in num if k in den and den[k] > 0])


def build(records, machine, quick):
    res = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": quick,
        "machine": machine,
    }

    # 1. latency
    lat = by(records, "latency")
    res["reps"] = max([r["rep"] for r in lat], default=0)
    latency = {}
    per = {}  # (op, contender) -> {rep: p50}, and p99
    for op in OPS:
        latency[op] = {}
        for who in CONTENDERS + ["vtpmd_poll"]:
            rs = [r for r in lat if r["op"] == op and r["contender"] == who]
            if not rs:
                continue
            per[(op, who, "p50")] = {r["rep"]: r["data"]["p50_us"] for r in rs}
            per[(op, who, "p99")] = {r["rep"]: r["data"]["p99_us"] for r in rs}
            latency[op][who] = {
                "count": rs[0]["data"]["count"],
                "p50_us": stats(per[(op, who, "p50")].values()),
                "p99_us": stats(per[(op, who, "p99")].values()),
            }
        ratios = {}
        for other in ("swtpm", "inproc"):
            for q in ("p50", "p99"):
                if (op, "vtpmd", q) in per and (op, other, q) in per:
                    ratios["vtpmd_over_%s_%s" % (other, q)] = ratio_stats(
                        per[(op, "vtpmd", q)], per[(op, other, q)])
        if (op, "vtpmd_poll", "p50") in per and (op, "swtpm", "p50") in per:
            ratios["vtpmd_poll_over_swtpm_p50"] = ratio_stats(per[(op, "vtpmd_poll", "p50")], per[(op, "swtpm", "p50")])
        latency[op]["ratios"] = ratios
    res["latency"] = latency

    # the bare transport floor (vtpm-bench hops), measured in the same repetitions
    hops = by(records, "hops")
    h2 = {r["rep"]: r["data"]["p50_us"] for r in hops if r["relays"] == 0}
    h4 = {r["rep"]: r["data"]["p50_us"] for r in hops if r["relays"] == 1}
    res["transport_floor"] = {
        "wakeups_2_p50_us": stats(h2.values()),
        "wakeups_4_p50_us": stats(h4.values()),
        "wakeups_4_over_2_p50": ratio_stats(h4, h2) if h2 and h4 else None,
        "vtpmd_getrandom_over_wakeups_4_p50": ratio_stats(per[("getrandom", "vtpmd", "p50")], h4)
        if h4 and ("getrandom", "vtpmd", "p50") in per else None,
    }
    cv, ci = per.get(("createprimary", "vtpmd", "p50")), per.get(("createprimary", "inproc", "p50"))
    if cv and ci:
        res["transport_floor"]["createprimary_vtpmd_minus_inproc_p50_us"] = stats(
            [cv[k] - ci[k] for k in cv if k in ci])

    # 2. CPU per GetRandom
    cpu = by(records, "cpu")
    us = {}
    for who in ("vtpmd", "swtpm"):
        us[who] = {
            r["rep"]: r["data"]["ticks"] / r["data"]["hz"] / r["data"]["commands"] * 1e6
            for r in cpu if r["contender"] == who
        }
    sup = {
        r["rep"]: r["data"]["supervisor_ticks"] / r["data"]["hz"] / r["data"]["commands"] * 1e6
        for r in cpu if r["contender"] == "vtpmd"
    }
    res["cpu_per_getrandom"] = {
        "commands": cpu[0]["data"]["commands"] if cpu else 0,
        "clock_ticks_per_s": cpu[0]["data"]["hz"] if cpu else 0,
        "vtpmd_us": stats(us["vtpmd"].values()),
        "vtpmd_supervisor_us": stats(sup.values()),
        "swtpm_us": stats(us["swtpm"].values()),
        "vtpmd_over_swtpm": ratio_stats(us["vtpmd"], us["swtpm"]),
    }

    # 3. throughput
    tp = by(records, "throughput")
    levels = sorted({r["guests"] for r in tp})
    res["throughput"] = {
        "duration_s": tp[0]["data"]["seconds"] if tp else 0,
        "levels": levels,
        "cmds_per_s": {str(k): stats([r["data"]["cmds_per_s"] for r in tp if r["guests"] == k]) for k in levels},
    }

    # 4. memory
    workers = by(records, "memory_worker")
    sv = by(records, "memory_supervisor")
    sw = by(records, "memory_swtpm")
    fs = by(records, "memory_fork_server")
    res["memory"] = {
        "guests_attached": sv[0]["guests"] if sv else 0,
        "worker_uss_kib": stats([r["data"]["uss_kib"] for r in workers]),
        "worker_rss_kib": stats([r["data"]["rss_kib"] for r in workers]),
        "worker_pss_kib": stats([r["data"].get("pss_kib") for r in workers if r["data"].get("pss_kib") is not None]),
        "fork_server_uss_kib": fs[0]["data"]["uss_kib"] if fs else None,
        "supervisor_rss_kib": sv[0]["data"]["rss_kib"] if sv else None,
        "supervisor_uss_kib": sv[0]["data"]["uss_kib"] if sv else None,
        "swtpm_idle_uss_kib": sw[0]["data"]["uss_kib"] if sw else None,
        "swtpm_idle_rss_kib": sw[0]["data"]["rss_kib"] if sw else None,
    }

    # 5. attach at scale
    at = by(records, "attach")
    res["attach"] = {
        "guests": at[0]["data"]["guests"] if at else 0,
        "domains_before_watch": max([r["data"]["domains_before_watch"] for r in at], default=0),
        "all_connected_s": stats([r["data"]["all_connected_ms"] / 1000 for r in at]),
        "launcher_s": stats([r["launcher_ms"] / 1000 for r in at]),
        "per_guest_p50_ms": stats([r["data"]["p50_ms"] for r in at]),
        "per_guest_p99_ms": stats([r["data"]["p99_ms"] for r in at]),
        "per_guest_max_ms": stats([r["data"]["max_ms"] for r in at]),
    }

    # 6. boot storm
    bs = by(records, "boot_storm")
    res["boot_storm"] = {
        "vtpms": bs[0]["vtpms"] if bs else 0,
        "ready_ms": stats([r["data"]["ready_ms"] for r in bs]),
        "down_ms": stats([r["data"]["down_ms"] for r in bs]),
        "all_serving_ms": stats([r["data"]["all_serving_ms"] for r in bs]),
        "host_tpm_commands": stats([r["data"]["host_tpm_commands"] for r in bs]),
        "host_tpm_unseals": stats([r["data"]["host_tpm_unseals"] for r in bs]),
    }

    # 7. durable write: vtpmd's NV_Write from its own run ("vtpmd_bare"), where
    # each NV_Write is followed by the bare write it is compared with; figure
    # 1's plain vtpmd run carries no extra disk traffic and is not used here.
    bare = by(records, "bare")
    bare50 = {r["rep"]: r["data"]["p50_us"] for r in bare}
    bare99 = {r["rep"]: r["data"]["p99_us"] for r in bare}
    nvb = [r for r in lat if r["op"] == "nvwrite" and r["contender"] == "vtpmd_bare"]
    nvb50 = {r["rep"]: r["data"]["p50_us"] for r in nvb}
    nvb99 = {r["rep"]: r["data"]["p99_us"] for r in nvb}
    nvd = by(records, "nv_durable")
    res["durable_write"] = {
        "file_bytes": bare[0]["data"]["bytes"] if bare else 0,
        # Every repetition's NV_Write runs (both of vtpmd's) replaced the state file on disk.
        "vtpmd_state_file_written": bool(nvd) and all(
            r["data"]["state_file_written"] for r in nvd if r["contender"] in ("vtpmd", "vtpmd_bare")),
        "swtpm_state_file_written": bool(nvd) and all(
            r["data"]["state_file_written"] for r in nvd if r["contender"] == "swtpm"),
        "bare_p50_us": stats(bare50.values()),
        "bare_p99_us": stats(bare99.values()),
        "nv_write_p50_us": stats(nvb50.values()),
        "nv_write_over_bare_p50": ratio_stats(nvb50, bare50),
        "nv_write_over_bare_p99": ratio_stats(nvb99, bare99),
        "swtpm_nv_write_over_bare_p50": ratio_stats(per.get(("nvwrite", "swtpm", "p50"), {}), bare50),
    }

    def med(s):
        return s["median"] if s else None

    def target(name, value, op, limit, unit):
        met = value is not None and (value <= limit if op == "<=" else value == limit)
        return {"name": name, "value": value, "target": limit, "cmp": op, "unit": unit, "met": met}

    wu = med(res["memory"]["worker_uss_kib"])
    res["targets"] = [
        target("getrandom_p50_vtpmd_over_swtpm", med(latency["getrandom"]["ratios"].get("vtpmd_over_swtpm_p50")),
               "<=", 0.5, "ratio"),
        target("createprimary_p50_vtpmd_over_inproc",
               med(latency["createprimary"]["ratios"].get("vtpmd_over_inproc_p50")), "<=", 1.05, "ratio"),
        target("cpu_per_getrandom_vtpmd_over_swtpm", med(res["cpu_per_getrandom"]["vtpmd_over_swtpm"]), "<=", 1.0,
               "ratio"),
        target("idle_worker_uss_mib", wu / 1024 if wu is not None else None, "<=", 1.0, "MiB"),
        target("attach_all_connected_s", med(res["attach"]["all_connected_s"]), "<=", 10.0, "s"),
        target("boot_storm_host_tpm_unseals", med(res["boot_storm"]["host_tpm_unseals"]), "==", 1, "count"),
        target("durable_nv_write_over_bare_write", med(res["durable_write"]["nv_write_over_bare_p50"]), "<=", 1.5,
               "ratio"),
    ]
    return res


# ---- report.md and plots ----

def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, dict):
        return "%s (%s–%s)" % (fmt(v["median"], digits), fmt(v["min"], digits), fmt(v["max"], digits))
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 100:
            return "%.0f" % v
        return ("%." + str(digits) + "g") % v
    return str(v)


TARGET_TITLES = {
    "getrandom_p50_vtpmd_over_swtpm": "GetRandom p50, vtpmd / swtpm socket",
    "createprimary_p50_vtpmd_over_inproc": "CreatePrimary ECC, vtpmd / in-process libtpms",
    "cpu_per_getrandom_vtpmd_over_swtpm": "CPU per GetRandom, vtpmd / swtpm",
    "idle_worker_uss_mib": "idle worker USS (MiB)",
    "attach_all_connected_s": "guests attached at once, all Connected (s)",
    "boot_storm_host_tpm_unseals": "boot storm: host-TPM unseals",
    "durable_nv_write_over_bare_write": "durable NV_Write / bare durable file write",
}


def targets_table(res):
    lines = ["| figure | value | target | met |", "|---|---|---|---|"]
    for t in res["targets"]:
        title = TARGET_TITLES[t["name"]]
        if t["name"] == "attach_all_connected_s":
            title = "%d %s" % (res["attach"]["guests"], title)
        if t["name"] == "boot_storm_host_tpm_unseals":
            title = "boot storm with %d vTPMs: host-TPM unseals" % res["boot_storm"]["vtpms"]
        lines.append("| %s | %s | %s %s | %s |" % (title, fmt(t["value"]), "≤" if t["cmp"] == "<=" else "=",
                                                   fmt(t["target"]), "yes" if t["met"] else "**no**"))
    return "\n".join(lines)


def write_report(res, out, notes):
    m = res["machine"]
    L = res["latency"]
    r = []
    r.append("# vtpmd benchmark report\n")
    r.append("Measured %s%s on %s (%d cores), %s; libtpms %s, swtpm %s, tpm2-tss %s; state on %s. "
             "Optimised build (release, -O2, no sanitizers). Each figure is the median of %d repetitions "
             "with (min–max); ratios are medians of per-repetition ratios between contenders run back to back.\n"
             % (res["date"], " (QUICK MODE: few iterations, values meaningless)" if res["quick"] else "",
                m["cpu"], m["cores"], m["kernel"], m["libtpms"], m["swtpm"], m["tpm2_tss"], m["state_fs"],
                res["reps"]))
    busy = max(m.get("loadavg_start", 0), m.get("loadavg_end", 0))
    if busy > m["cores"]:
        r.append("**The machine was busy with other work during this run (load average %s at the start, %s at the "
                 "end, on %d cores): the figures carry that noise; the interleaved ratios are the robust ones.**\n"
                 % (m.get("loadavg_start"), m.get("loadavg_end"), m["cores"]))
    r.append("## Targets\n")
    r.append(targets_table(res) + "\n")
    r.append("## 1. Round-trip latency (µs)\n")
    r.append("vtpmd: a C client on the simulated guest's TPM socket (guest → shared page → worker → libtpms "
             "and back; guest in interrupt-driven mode, see below). swtpm: `swtpm socket --tpm2` on its Unix socket, state on the same disk. in-process: "
             "libtpms called directly, memory-only state (so its NV_Write is not durable).\n")
    r.append("| command | vtpmd p50 | swtpm p50 | in-process p50 | vtpmd p99 | swtpm p99 | in-process p99 | "
             "vtpmd/swtpm p50 | vtpmd/in-process p50 |")
    r.append("|---|---|---|---|---|---|---|---|---|")
    for op in OPS:
        o = L[op]
        g = lambda who, q: o.get(who, {}).get(q + "_us")
        r.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            OP_TITLES[op], fmt(g("vtpmd", "p50")), fmt(g("swtpm", "p50")), fmt(g("inproc", "p50")),
            fmt(g("vtpmd", "p99")), fmt(g("swtpm", "p99")), fmt(g("inproc", "p99")),
            fmt(o["ratios"].get("vtpmd_over_swtpm_p50")), fmt(o["ratios"].get("vtpmd_over_inproc_p50"))))
    gp = L["getrandom"].get("vtpmd_poll")
    if gp:
        r.append("\nWith the simulated guest polling like Linux xen-tpmfront (no completion interrupt: 1 ms and "
                 "5 ms sleeps between looks at the shared page), GetRandom takes p50 %s µs, p99 %s µs through "
                 "vtpmd (%s × swtpm's p50): that is the guest driver's polling, not the backend. The rows above "
                 "use the simulated guest's interrupt-driven mode (`--wait event`)." % (
                     fmt(gp["p50_us"]), fmt(gp["p99_us"]), fmt(L["getrandom"]["ratios"].get("vtpmd_poll_over_swtpm_p50"))))
    tf = res.get("transport_floor") or {}
    if tf.get("wakeups_4_p50_us"):
        r.append("\nThe bare transport floor, measured in the same repetitions (`vtpm-bench hops`: a 12-byte "
                 "message through processes on SOCK_SEQPACKET pairs, no work): 2 process wake-ups per round trip "
                 "(swtpm's shape: client, server) p50 %s µs; 4 wake-ups (the simulation's: client, guest, worker) "
                 "p50 %s µs, %s × the 2-wake-up floor. vtpmd's GetRandom p50 is %s × the 4-wake-up floor: what "
                 "the backend adds is the difference. A vtpmd/swtpm ratio below the floors' ratio would need the "
                 "backend to take negative time." % (
                     fmt(tf["wakeups_2_p50_us"]), fmt(tf["wakeups_4_p50_us"]), fmt(tf["wakeups_4_over_2_p50"]),
                     fmt(tf["vtpmd_getrandom_over_wakeups_4_p50"])))
        f4 = tf["wakeups_4_p50_us"]["median"]
        sw = (L["getrandom"].get("swtpm") or {}).get("p50_us")
        ip = (L["createprimary"].get("inproc") or {}).get("p50_us")
        diff = tf.get("createprimary_vtpmd_minus_inproc_p50_us")
        if sw and ip and diff:
            r.append("\nAgainst the targets: GetRandom ≤ 0.5 × swtpm's p50 means ≤ %s µs, under the 4-wake-up floor "
                     "alone (%s µs). CreatePrimary ≤ 1.05 × in-process leaves %s µs for the transport, also under "
                     "that floor; vtpmd's CreatePrimary p50 exceeds in-process by %s µs per repetition (the floor, "
                     "the two hand-offs to and from the worker's TPM thread, where a key generation stays "
                     "cancellable, and the noise of a key generation whose own time varies from run to run)." % (
                         fmt(0.5 * sw["median"]), fmt(f4), fmt(0.05 * ip["median"]), fmt(diff)))
    r.append("\n![latency](latency.png)\n")
    c = res["cpu_per_getrandom"]
    r.append("## 2. dom0 CPU per GetRandom\n")
    r.append("user+sys CPU (`/proc/PID/stat`, %s ticks/s) per command over %d GetRandom: vtpmd supervisor + "
             "the guest's worker %s µs (of which the supervisor %s µs); swtpm %s µs; ratio %s.\n" % (
                 c["clock_ticks_per_s"], c["commands"], fmt(c["vtpmd_us"]), fmt(c["vtpmd_supervisor_us"]),
                 fmt(c["swtpm_us"]), fmt(c["vtpmd_over_swtpm"])))
    t = res["throughput"]
    r.append("## 3. Throughput (GetRandom, all guests sending at once, %.1f s windows)\n" % t["duration_s"])
    r.append("| guests | commands/s | per guest |")
    r.append("|---|---|---|")
    for k in t["levels"]:
        s = t["cmds_per_s"][str(k)]
        r.append("| %d | %s | %s |" % (k, fmt(s, 4), fmt(s["median"] / k, 4)))
    r.append("\n![throughput](throughput.png)\n")
    mm = res["memory"]
    r.append("## 4. Memory\n")
    r.append("With %d guests attached: idle worker USS %s KiB (RSS %s KiB, PSS %s KiB), over all workers; "
             "supervisor RSS %s KiB (USS %s KiB); worker fork server USS %s KiB (once for all workers: the "
             "pages forked workers share are counted in its RSS and their PSS, not their USS); one idle swtpm "
             "USS %s KiB (RSS %s KiB).\n" % (
                 mm["guests_attached"], fmt(mm["worker_uss_kib"], 4), fmt(mm["worker_rss_kib"], 4),
                 fmt(mm["worker_pss_kib"], 4), fmt(mm["supervisor_rss_kib"]), fmt(mm["supervisor_uss_kib"]),
                 fmt(mm["fork_server_uss_kib"]), fmt(mm["swtpm_idle_uss_kib"]), fmt(mm["swtpm_idle_rss_kib"])))
    a = res["attach"]
    r.append("## 5. Attach at scale\n")
    r.append("%d guests created at once by `vtpm-sim start --guests %d` (domains created back to back, like a "
             "loop of `xl create`), watched on xenstore: all Connected after %s s (first domain node to last "
             "frontend Connected); per guest (its first node to its frontend Connected) p50 %s ms, p99 %s ms; "
             "the launcher's whole run (including xenstored, swtpm and vtpmd start) %s s.\n" % (
                 a["guests"], a["guests"], fmt(a["all_connected_s"]), fmt(a["per_guest_p50_ms"]),
                 fmt(a["per_guest_p99_ms"]), fmt(a["launcher_s"])))
    b = res["boot_storm"]
    r.append("## 6. Boot storm\n")
    r.append("`vtpm-sim restart-daemon` with %d sealed vTPMs in use: vtpmd start to READY=1 %s ms; until every "
             "guest answers again %s ms; host-TPM commands at start %s (vtpmd's count), of which TPM2_Unseal %s "
             "(counted in the host swtpm's command log).\n" % (
                 b["vtpms"], fmt(b["ready_ms"]), fmt(b["all_serving_ms"]), fmt(b["host_tpm_commands"]),
                 fmt(b["host_tpm_unseals"])))
    d = res["durable_write"]
    r.append("## 7. Durable write overhead\n")
    r.append("NV_Write (16 B) through vtpmd p50 %s µs against a bare write+fsync+rename+dir-fsync of a %d-byte "
             "file (the size of the vTPM's permall) on the same file system, done by the client right after each "
             "NV_Write of that same run (a run of its own: figure 1's NV_Write run has no bare writes), "
             "p50 %s µs (p99 %s µs): ratio p50 %s, "
             "p99 %s; swtpm's NV_Write / bare %s.\n" % (
                 fmt(d["nv_write_p50_us"]), d["file_bytes"], fmt(d["bare_p50_us"]), fmt(d["bare_p99_us"]),
                 fmt(d["nv_write_over_bare_p50"]), fmt(d["nv_write_over_bare_p99"]),
                 fmt(d["swtpm_nv_write_over_bare_p50"])))
    if not d["vtpmd_state_file_written"]:
        r.append("**NV_Write through vtpmd did not rewrite the vTPM's permall on disk in this run: the durable-"
                 "write figure measures no durable write.**\n")
    if not d["swtpm_state_file_written"]:
        r.append("swtpm did not rewrite its state file during its NV_Write runs.\n")
    if notes:
        r.append(notes)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(r) + "\n")


def plots(res, out):
    L = res["latency"]
    with open(os.path.join(out, "latency.dat"), "w") as f:
        f.write("# op vtpmd swtpm inproc (p50 us)\n")
        for op in OPS:
            vals = []
            for who in CONTENDERS:
                s = L[op].get(who, {}).get("p50_us")
                vals.append("%g" % s["median"] if s else "NaN")
            f.write('"%s" %s\n' % (OP_TITLES[op], " ".join(vals)))
    with open(os.path.join(out, "throughput.dat"), "w") as f:
        f.write("# guests median min max (commands/s)\n")
        for k in res["throughput"]["levels"]:
            s = res["throughput"]["cmds_per_s"][str(k)]
            f.write("%d %g %g %g\n" % (k, s["median"], s["min"], s["max"]))
    script = """
set terminal pngcairo size 900,500 font ",10" noenhanced
set output '%(out)s/latency.png'
set title 'Round trip p50 (µs, log scale) — %(machine)s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set ylabel 'µs'
set key top left
plot '%(out)s/latency.dat' using 2:xtic(1) title 'vtpmd (simulated Xen transport)', \\
     '' using 3 title 'swtpm socket', '' using 4 title 'libtpms in-process'
unset logscale y
set output '%(out)s/throughput.png'
set title 'GetRandom throughput, all guests sending at once'
set style data linespoints
set xlabel 'guests'
set ylabel 'commands/s'
set logscale x 2
set xrange [0.8:40]
set yrange [0:*]
plot '%(out)s/throughput.dat' using 1:2:3:4 with yerrorlines title 'vtpmd total'
""" % {"out": out, "machine": res["machine"]["cpu"]}
    with open(os.path.join(out, "plots.gp"), "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", os.path.join(out, "plots.gp")], check=True)


# ---- --check ----

REQUIRED = [
    "machine.cpu", "machine.cores", "machine.kernel", "machine.libtpms", "machine.swtpm", "machine.tpm2_tss",
    "cpu_per_getrandom.vtpmd_us", "cpu_per_getrandom.swtpm_us", "cpu_per_getrandom.vtpmd_over_swtpm",
    "memory.worker_uss_kib", "memory.supervisor_rss_kib", "memory.swtpm_idle_uss_kib",
    "attach.all_connected_s", "attach.per_guest_p50_ms", "attach.per_guest_p99_ms",
    "boot_storm.ready_ms", "boot_storm.host_tpm_commands", "boot_storm.host_tpm_unseals",
    "durable_write.bare_p50_us", "durable_write.nv_write_over_bare_p50",
]
for _op in OPS:
    for _who in CONTENDERS:
        REQUIRED += ["latency.%s.%s.p50_us" % (_op, _who), "latency.%s.%s.p99_us" % (_op, _who)]
    REQUIRED += ["latency.%s.ratios.vtpmd_over_swtpm_p50" % _op, "latency.%s.ratios.vtpmd_over_inproc_p50" % _op]
REQUIRED += ["latency.getrandom.vtpmd_poll.p50_us", "latency.getrandom.ratios.vtpmd_poll_over_swtpm_p50"]
REQUIRED += ["transport_floor.wakeups_2_p50_us", "transport_floor.wakeups_4_p50_us",
             "transport_floor.wakeups_4_over_2_p50", "transport_floor.vtpmd_getrandom_over_wakeups_4_p50"]


def finite_numbers(v, path, errors):
    if isinstance(v, bool) or v is None:
        if v is None:
            errors.append("%s is null" % path)
        return
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            errors.append("%s is not finite" % path)
    elif isinstance(v, dict):
        for k, x in v.items():
            finite_numbers(x, path + "." + k, errors)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            finite_numbers(x, "%s[%d]" % (path, i), errors)


def check(path):
    with open(path) as f:
        res = json.load(f)
    errors = []
    for key in REQUIRED:
        v = res
        for part in key.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is None:
            errors.append("missing %s" % key)
            continue
        if isinstance(v, dict) and set(v) != {"median", "min", "max", "n"} and "median" in v:
            errors.append("%s is not a summary" % key)
        finite_numbers(v, key, errors)
    for k in res.get("throughput", {}).get("levels", []) or [None]:
        if k is None or res["throughput"]["cmds_per_s"].get(str(k)) is None:
            errors.append("missing throughput.cmds_per_s.%s" % k)
        else:
            finite_numbers(res["throughput"]["cmds_per_s"][str(k)], "throughput.cmds_per_s.%s" % k, errors)
    names = [t.get("name") for t in res.get("targets", [])]
    if len(names) != 7 or len(set(names)) != 7:
        errors.append("targets must have the 7 rows of issue 7, has %s" % names)
    for t in res.get("targets", []):
        if set(t) < {"name", "value", "target", "met"} or not isinstance(t.get("met"), bool):
            errors.append("target %s is malformed" % t.get("name"))
        finite_numbers(t.get("value"), "targets.%s.value" % t.get("name"), errors)
    for e in errors:
        print("report.py --check: " + e, file=sys.stderr)
    if not errors:
        print("report.py --check: %d figures and %d targets present and finite" % (len(REQUIRED), len(names)))
    return 1 if errors else 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--raw")
    p.add_argument("--machine")
    p.add_argument("--out")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--notes", help="markdown appended to report.md (profile findings)")
    p.add_argument("--check")
    a = p.parse_args()
    if a.check:
        return check(a.check)
    with open(a.raw) as f:
        records = [json.loads(line) for line in f if line.strip()]
    with open(a.machine) as f:
        machine = json.load(f)
    res = build(records, machine, a.quick)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=False)
        f.write("\n")
    notes = None
    if a.notes and os.path.exists(a.notes):
        with open(a.notes) as f:
            notes = f.read()
    write_report(res, a.out, notes)
    plots(res, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
