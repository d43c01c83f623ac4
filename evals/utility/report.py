"""The utility report: a text table, JSON, a plot of the comparisons (Pillow), and a dataset card section.

`write_report(report, out_dir)` writes `utility.json`, `utility.md` and `utility.png`;
`refresh_card_section(dataset_dir, report, plot)` puts a "Downstream utility" section (the comparison table and
the plot) into an exported dataset's card.md, replacing an older one.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path
from typing import Any

from synthloop.evals.utility.run import COMPARISONS, UtilityReport
from synthloop.tools.export.card import replace_card_section
from synthloop.tools.io import atomic_write_bytes, atomic_write_json, atomic_write_text

CARD_HEADING = "## Downstream utility"
PLOT_NAME = "utility.png"
_A, _B, _DIFF, _CLEAN = (46, 125, 50), (150, 150, 150), (33, 33, 33), (200, 90, 30)


def _interval(entry: dict[str, float]) -> str:
    return f"[{entry['low']:.3f}, {entry['high']:.3f}]"


def _recovery(c: dict[str, Any]) -> str:
    """What the bad samples cost and what share of it the critic's filtering won back."""
    share = ("not measurable (no loss shown)" if c["recovered_share"] is None
             else f"{c['recovered_share']:.0%} of it [{c['recovered_interval'][0]:.0%}, "
                  f"{c['recovered_interval'][1]:.0%}]")
    return (f"bad samples cost {c['lost']:+.3f} mAP [{c['lost_interval'][0]:.3f}, {c['lost_interval'][1]:.3f}] "
            f"(copy_paste − corrupted); the critic recovers {share}")


def format_report(report: UtilityReport) -> str:
    """Plain text: the arms (mAP@[.5:.95] with 95% intervals, AP50, seed spread), then the comparisons."""
    s = report.settings
    lines = [f"utility: {s['model']} trained from {'a checkpoint' if s.get('checkpoint') else 'scratch'} on "
             f"{s['size']}² images, {s['train']['epochs']} epochs, seeds {list(s['seeds'])}; test: "
             f"{report.test['source']}, {report.test['n_images']} images, {report.test['n_objects']} objects of "
             f"{', '.join(report.test['classes'])}",
             "", f"{'arm':<16}{'images':>7}{'objects':>8}   {'mAP':>6}  {'95% interval':<16}{'AP50':>6}{'seed sd':>9}"]
    for name, arm in report.arms.items():
        e = report.estimates[name]
        lines.append(f"{name:<16}{arm.n_images:>7}{arm.n_objects:>8}   {e['map']:6.3f}  {_interval(e):<16}"
                     f"{e['ap50']:6.3f}{e['seed_std']:9.3f}")
    lines += ["", f"{'comparison':<26}{'a − b':>8}  {'95% interval':<18}verdict"]
    for key, c in report.comparisons.items():
        verdict = ("a better" if c["low"] > 0 else "b better" if c["high"] < 0 else "no difference shown")
        lines.append(f"{key:<26}{c['difference']:+8.3f}  {_interval(c):<18}{verdict} ({c['a']} vs {c['b']})")
        if "lost" in c:
            lines.append(f"{'':<26}{_recovery(c)}")
    for name, arm in report.arms.items():
        lines += [f"note ({name}): {n}" for n in arm.notes]
    lines += [f"note: {n}" for n in report.notes]
    lines.append("mAP = COCOeval bbox mAP@[.5:.95] (mean over seeds); intervals: bootstrap over test images and "
                 f"training seeds ({s['rounds']} rounds, paired across arms); time: "
                 + ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items()))
    return "\n".join(lines)


def report_json(report: UtilityReport) -> dict[str, Any]:
    """JSON-ready report."""
    return {"settings": report.settings, "test": report.test,
            "arms": {k: dataclasses.asdict(v) for k, v in report.arms.items()}, "estimates": report.estimates,
            "comparisons": report.comparisons, "seconds": report.seconds, "notes": report.notes}


def draw_comparisons(report: UtilityReport) -> bytes:
    """PNG: one block per comparison, a bar per arm (mean mAP) with its 95% interval, and the difference."""
    from PIL import Image, ImageDraw

    blocks = list(report.comparisons.items())
    width, left, right, row, block = 860, 150, 260, 22, 84
    height = 40 + block * max(1, len(blocks))
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    top = max([report.estimates[a]["high"] for _, c in blocks for a in (c["a"], c["b"])] + [1e-3])
    scale = (width - left - right) / top
    draw.text((10, 10), "mAP@[.5:.95] on the test set, 95% bootstrap intervals (bars: mean over seeds)", fill=_DIFF)
    for k, (key, c) in enumerate(blocks):
        y = 34 + k * block
        draw.text((10, y), f"{key}: {COMPARISONS[key][2]}", fill=_DIFF)
        for j, (arm, colour) in enumerate(((c["a"], _A), (c["b"], _B))):
            e = report.estimates[arm]
            y0 = y + 18 + j * row
            draw.text((10, y0 + 3), arm, fill=_DIFF)
            draw.rectangle([left, y0 + 2, left + max(1.0, e["map"] * scale), y0 + row - 4], fill=colour)
            lo, hi = left + e["low"] * scale, left + e["high"] * scale
            draw.line([lo, y0 + row // 2 - 1, hi, y0 + row // 2 - 1], fill=_DIFF, width=2)
            draw.line([lo, y0 + 4, lo, y0 + row - 6], fill=_DIFF)
            draw.line([hi, y0 + 4, hi, y0 + row - 6], fill=_DIFF)
            draw.text((width - right + 10, y0 + 3), f"{e['map']:.3f} {_interval(e)}", fill=_DIFF)
        verdict = "separated" if c["separated"] else "overlaps 0"
        draw.text((width - right + 10, y + 18 + 2 * row), f"a - b {c['difference']:+.3f} {_interval(c)} {verdict}",
                  fill=_A if c["low"] > 0 else _DIFF)
        if "lost" in c and "copy_paste" in report.estimates:  # the clean arm: what the bad samples cost
            x = left + report.estimates["copy_paste"]["map"] * scale
            for y0 in range(y + 16, y + 18 + 2 * row, 6):
                draw.line([x, y0, x, y0 + 3], fill=_CLEAN, width=2)
            draw.text((left, y + 20 + 2 * row), f"dashed: clean copy_paste {report.estimates['copy_paste']['map']:.3f}"
                      + (f"; recovered {c['recovered_share']:.0%} of the loss" if c["recovered_share"] is not None
                         else "; no loss shown"), fill=_CLEAN)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def card_section(report: UtilityReport, plot: str = PLOT_NAME) -> str:
    """The card's "Downstream utility" section: what was trained and tested, the comparisons, the plot."""
    s = report.settings
    rows = ["| comparison | a | b | mAP a | mAP b | a − b [95%] |", "|---|---|---|---|---|---|"]
    for key, c in report.comparisons.items():
        a, b = report.estimates[c["a"]], report.estimates[c["b"]]
        rows.append(f"| {key} | {c['a']} | {c['b']} | {a['map']:.3f} {_interval(a)} | {b['map']:.3f} "
                    f"{_interval(b)} | {c['difference']:+.3f} {_interval(c)} |")
    return "\n".join([
        f"{CARD_HEADING}\n",
        f"A {s['model']} detector trained on each arm's data ({s['size']}² images, {s['train']['epochs']} epochs, "
        f"seeds {list(s['seeds'])}) and scored with COCOeval (bbox mAP@[.5:.95]) on {report.test['source']} "
        f"({report.test['n_images']} images); intervals bootstrap test images and seeds (`synthloop eval utility`).\n",
        *rows, *[f"\n{key}: {_recovery(c)}." for key, c in report.comparisons.items() if "lost" in c], "",
        f"![utility comparisons]({plot})\n"])


def write_report(report: UtilityReport, out_dir: Path) -> dict[str, Path]:
    """utility.json, utility.md (text and plot) and utility.png in `out_dir`; their paths."""
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "utility.json", "markdown": out_dir / "utility.md", "plot": out_dir / PLOT_NAME}
    atomic_write_json(paths["json"], report_json(report), indent=2)
    atomic_write_bytes(paths["plot"], draw_comparisons(report))
    atomic_write_text(paths["markdown"], "# Downstream utility\n\n```\n" + format_report(report) + "\n```\n\n"
                      f"![comparisons]({PLOT_NAME})\n")
    return paths


def refresh_card_section(dataset_dir: Path, report: UtilityReport, plot: Path) -> Path | None:
    """Put the "Downstream utility" section (and the plot, copied next to card.md) into `dataset_dir/card.md`,
    replacing an older one; its path, or None when the folder has no card."""
    card = Path(dataset_dir) / "card.md"
    if not card.is_file():
        return None
    if Path(plot).resolve() != (Path(dataset_dir) / PLOT_NAME).resolve():
        shutil.copyfile(plot, Path(dataset_dir) / PLOT_NAME)
    replace_card_section(card, CARD_HEADING, card_section(report))
    return card
