"""The benchmark report: the run's figures as Markdown tables (ratios beside the targets) and
JSON, in bench/results/<date>-<size>.{md,json}."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import peers

ROOT = Path(__file__).resolve().parents[1]
PAGE = 1000  # the simulator's (and current kpi's) largest page: the floor and peers ask for it
RSS_TARGET_MB = 1.5 * 1024  # issue #8: the province backfill within 1.5 GiB


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "—"


def cell(text: str) -> str:
    """Text (an error message, say) made safe for a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def write(results: dict[str, Any]) -> None:
    """The run's figures as JSON first (a table that fails to render loses no run: re-render
    with `python -m bench.report bench/results/<date>-<size>.json`), then the tables."""
    stem = ROOT / "bench" / "results" / f"{results['date']}-{results['size']}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    sections = [
        header(results),
        targets_table(results),
        main_table(results),
        simulator_table(results),
        peers_table(results),
        rss_table(results),
    ]
    text = "\n\n".join("\n".join(lines) for lines in sections) + "\n"
    print(text)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")


def header(results: dict[str, Any]) -> list[str]:
    sim, back = results["simulator"], results["backfill"]
    roster = "generated, one per tambon" if results["size"] != "small" else "the bundled config's"
    return [
        f"# sammachip benchmarks — {results['size']}, {results['date']}, {results['cores']} cores",
        "",
        f"Roster ({roster}): {back['roster']}; the backfill wrote "
        f"{back['report_files']:,} report files.",
        "",
        f"Simulator: a process of its own (cohort generated and seeded in {sim['ready_s']:.1f} s, "
        f"peak RSS {sim['peak_rss_mb']:,.0f} MB), seeded the same way for every scenario and "
        "peer; no figure below counts its memory.",
    ]


def targets_table(results: dict[str, Any]) -> list[str]:
    """Issue 19's targets, each beside the figure of this run that it is about."""
    from bench.freshness import BURST, REDELIVERED, TRICKLE_EVERY
    from bench.webhook_load import percentile

    lines = [
        "## Issue 19's targets",
        "",
        "| figure | value | ratio | target |",
        "|---|---|---|---|",
    ]
    fresh, floor = results.get("freshness"), results.get("freshness_floor")
    if fresh and floor:
        trickle, burst = fresh["trickle"], fresh["burst"]
        n, fl = trickle["posts"], floor["latency_s"]
        floor_p50 = percentile(fl, 0.5)
        for what, key in (("officer's files rewritten", "files_s"), ("queryable", "queryable_s")):
            got = trickle[key]
            p50, p95 = percentile(got, 0.5), percentile(got, 0.95)
            target = "≤ 10 s / ≤ 20 s" if key == "files_s" else "—"
            lines.append(
                f"| freshness: post → {what}, p50 / p95 of {n} posts, one every "
                f"{TRICKLE_EVERY:.0f} s (`serve`, real Prefect server) | {p50:.1f} / {p95:.1f} s "
                f"| {ratio(p50, floor_p50)} / {ratio(p95, percentile(fl, 0.95))} of the floor "
                f"| {target} |"
            )
        lines.append(
            f"| · floor: land, validate, commit with the marts, rewrite the officers' files, "
            f"in a warm process (p50 / p95 of {len(fl)}) | {floor_p50:.2f} / "
            f"{percentile(fl, 0.95):.2f} s | 1.00× | — |"
        )
        problems = burst["problems"]
        lines += [
            f"| burst: {BURST} new submissions + {REDELIVERED} re-deliveries posted "
            f"({burst['posting_s']:.1f} s to post), all in the officers' files | "
            f"{burst['all_files_s']:.1f} s (queryable {burst['all_queryable_s']:.1f} s; "
            f"{burst['runs']} runs) | — | ≤ 60 s |",
            f"| · exactly once (answers, raw versions, clean + quarantined, landing empty) | "
            f"{'yes' if not problems else cell('; '.join(problems))} | — | yes |",
            f"| · `serve`'s peak RSS (receiver, runner, warm ingest) | "
            f"{fresh['serve_peak_rss_mb']:,.0f} MB | — | — |",
        ]
    if "backfill" in results and "floor" in results:
        back, base = results["backfill"]["stages"], results["floor"]["stages"]["total"]
        lines.append(
            f"| backfill, officer files included ÷ floor | {back['total']:.1f} s | "
            f"{ratio(back['total'], base)} | ≤ 4× |"
        )
        peer = results.get("peers", {}).get("koboextractor", {})
        ours = results["fetch_ours"]["stages"]["total"]
        if "seconds" in peer:
            lines.append(
                f"| fetch: ours (Kobo source, records and hashes; a process of its own) ÷ "
                f"koboextractor's fetch of the same pages | {ours:.2f} s / "
                f"{peer['seconds']:.2f} s | {ratio(ours, peer['seconds'])} | ≤ 1.00× |"
            )
        else:
            why = peer.get("error", "not run")
            lines.append(
                "| fetch: our fetch stage ÷ koboextractor's | no figure: koboextractor is not in "
                f"requirements.lock; bench/peers.py installs it apart ({cell(why)}) | — | ≤ 1.00× |"
            )
    if "incremental_province" in results:
        small, prov = results["incremental_small"], results["incremental_province"]
        a, b = small["stages"]["incremental"], prov["stages"]["incremental"]
        lines.append(
            f"| incremental night, province ÷ district (medians of {len(prov['runs_s'])} fresh "
            f"processes each; its sync and marts stages below) | {b:.2f} s / {a:.2f} s | "
            f"{ratio(b, a)} | ≤ 1.1× |"
        )
    if "backfill" in results:
        rss = results["backfill"]["tree_peak_rss_mb"]
        lines.append(
            f"| peak RSS, backfill with its officer-file processes ({results['size']}) | "
            f"{rss:,.0f} MB | {ratio(rss, RSS_TARGET_MB)} | ≤ 1.5 GiB at province |"
        )
    return lines


def main_table(results: dict[str, Any]) -> list[str]:
    floor = results["floor"]["stages"]["total"]
    back = results["backfill"]
    lines = [
        "| figure | value | ratio to baseline | baseline |",
        "|---|---|---|---|",
        f"| full backfill ({back['submissions']:,} submissions) | {back['stages']['total']:.1f} s"
        f" | {ratio(back['stages']['total'], floor)} | floor fetch+parse+Parquet {floor:.1f} s |",
    ]
    for stage, secs in sorted(back["stages"].items(), key=lambda kv: -kv[1]):
        if stage != "total":
            lines.append(f"| · stage {stage} | {secs:.2f} s | {ratio(secs, floor)} | floor |")
    small = results["incremental_small"]
    base = small["stages"]["incremental"]
    lines.append(
        f"| incremental nightly, {small['submissions']:,} new + {small['edits']} edited, "
        f"on small (median of {len(small['runs_s'])} fresh processes: "
        f"{', '.join(f'{t:.2f}' for t in small['runs_s'])} s) | {base:.2f} s | 1.00× "
        "| itself |"
    )
    if "incremental_province" in results:
        prov_run = results["incremental_province"]
        prov = prov_run["stages"]["incremental"]
        lines.append(
            f"| incremental nightly, the same, on province (runs: "
            f"{', '.join(f'{t:.2f}' for t in prov_run['runs_s'])} s) | {prov:.2f} s | "
            f"{ratio(prov, base)} | incremental on small |"
        )
        for stage in ("sync", "marts"):
            a, b = small["stages"][stage], prov_run["stages"][stage]
            lines.append(
                f"| · stage {stage}: small {a:.2f} s, province | {b:.2f} s | "
                f"{ratio(b, a)} | the same stage on small |"
            )
    if "workers_1" in results:
        one = results["workers_1"]["stages"]["total"]
        scale = "district" if results["size"] == "small" else results["size"]
        for n in (1, 2, 4):
            t = results[f"workers_{n}"]["stages"]["total"]
            how = "in the flow's own process" if n == 1 else f"on {n} Dask worker processes"
            lines.append(
                f"| nightly flow ({scale} backfill, officers' files included), {how} "
                f"| {t:.1f} s | {ratio(t, one)} | the flow's own process |"
            )
    v10, v500 = results["validation_10k"], results["validation_500k"]
    gx = v10["stages"]["gx_import_and_context"]
    lines += [
        f"| GX validation 10k rows | {v10['rows_per_s']:,.0f} rows/s | 1.00× | itself |",
        f"| GX validation 500k rows | {v500['rows_per_s']:,.0f} rows/s | "
        f"{ratio(v500['rows_per_s'], v10['rows_per_s'])} | 10k throughput |",
        f"| GX import + context | {gx:.1f} s | {ratio(gx, floor)} | floor |",
    ]
    return lines


def simulator_table(results: dict[str, Any]) -> list[str]:
    """Is the simulator the bottleneck? Its bare pages against the floor, and its own time
    (request in → response ready) in every scenario that fetched from it."""
    floor = results["floor"]["stages"]["total"]
    fetch = results["fetch"]
    secs, pages, size = fetch["stages"]["total"], fetch["pages"], fetch["bytes"]
    server = fetch["server"]["seconds"]
    lines = [
        "## The simulator (its own process)",
        "",
        "| figure | value | ratio to baseline | baseline |",
        "|---|---|---|---|",
        f"| bare fetch of every page, nothing parsed ({pages:,} pages of {PAGE}, "
        f"{size / 1e6:,.0f} MB) | {secs:.2f} s | {ratio(secs, floor)} | floor {floor:.1f} s |",
        f"| · throughput | {size / 1e6 / secs:,.0f} MB/s, {pages / secs:,.0f} pages/s, "
        f"{fetch['submissions'] / secs:,.0f} submissions/s | | |",
        f"| · server-side time | {server:.2f} s, {1000 * server / pages:.1f} ms/page | "
        f"{ratio(server, secs)} | the bare fetch |",
    ]
    back = results["backfill"]
    shares = [
        ("floor", results["floor"]["server"], floor, "the floor's total"),
        ("backfill", back["server"], back["stages"]["fetch"], "the backfill's fetch stage"),
    ]
    for name, peer in results["peers"].items():
        if "seconds" in peer:
            shares.append((name, peer["server"], peer["seconds"], f"{name}'s fetch"))
    for key in ("incremental_small", "incremental_province"):
        if key in results:
            run = results[key]
            shares.append(
                (
                    key.replace("_", " on "),
                    run["server"],
                    run["stages"]["incremental"],
                    "that incremental run",
                )
            )
    for name, stats, base, label in shares:
        spent = stats["seconds"]
        lines.append(
            f"| server-side time during {name} ({stats['pages']:,} pages) | "
            f"{spent:.2f} s | {ratio(spent, base)} | {label} |"
        )
    return lines


def peers_table(results: dict[str, Any]) -> list[str]:
    ours = results["backfill"]["stages"]["total"]
    floor = results["floor"]["stages"]["total"]
    lines = [
        "## Peers: their fetch of the same data from the same simulator",
        "",
        f"Target: our whole backfill ({ours:.1f} s) faster than their fetch alone — "
        "ours ÷ theirs below 1.00×.",
        "",
        "| peer | how it fetches | their fetch | ours ÷ their fetch | their fetch ÷ floor "
        "| peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for name, peer in results["peers"].items():
        label = f"{name} {peer.get('version', '')}".strip()
        if "error" in peer:
            lines.append(
                f"| {label} | {peers.HOW[name]} | no comparable time: "
                f"{cell(peer['error'])} | — | — | — |"
            )
            continue
        secs = peer["seconds"]
        lines.append(
            f"| {label} | {peers.HOW[name]} | {secs:.1f} s | {ratio(ours, secs)} | "
            f"{ratio(secs, floor)} | {peer['peak_rss_mb']:,.0f} MB |"
        )
    return lines


def rss_table(results: dict[str, Any]) -> list[str]:
    floor = results["floor"]["peak_rss_mb"]
    back = results["backfill"]["peak_rss_mb"]
    lines = [
        "## Peak RSS (each scenario's process alone; the simulator's is apart)",
        "",
        f"Target (issue #8): the province backfill within {RSS_TARGET_MB:,.0f} MB (1.5 GiB); "
        f"this {results['size']} backfill: {back:,.0f} MB, {ratio(back, RSS_TARGET_MB)} of it. "
        f"With the processes it started (officers' files: "
        f"{results['backfill']['report_processes'] - 1} beside its own, from 16 officers on), "
        "summed, sampled every 50 ms: "
        f"{results['backfill']['tree_peak_rss_mb']:,.0f} MB, "
        f"{ratio(results['backfill']['tree_peak_rss_mb'], RSS_TARGET_MB)} of the target.",
        "",
        "| scenario | peak RSS | ratio to baseline | baseline |",
        "|---|---|---|---|",
    ]
    for key, value in results.items():
        if isinstance(value, dict) and "peak_rss_mb" in value and key != "simulator":
            base = "itself" if key == "floor" else "floor"
            lines.append(
                f"| {key} | {value['peak_rss_mb']:,.0f} MB | "
                f"{ratio(value['peak_rss_mb'], floor)} | {base} |"
            )
    lines.append(
        f"| simulator (not in any row above) | {results['simulator']['peak_rss_mb']:,.0f} MB | | |"
    )
    return lines


if __name__ == "__main__":
    import sys

    write(json.loads(Path(sys.argv[1]).read_text()))
