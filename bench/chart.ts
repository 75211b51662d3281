/** A self-contained SVG of the latency distributions: per snippet, one row per method on a log time axis. */
import { percentile, sortNumbers } from './stats';

export interface ChartSeries {
  label: string;
  color: string;
  samples: number[];
}

export interface ChartPanel {
  title: string;
  series: ChartSeries[];
}

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Deterministic jitter so that the same data draws the same picture. */
function jitter(i: number): number {
  const x = Math.sin(i * 12.9898) * 43758.5453;
  return x - Math.floor(x) - 0.5;
}

/**
 * Each row: every sample as a faint dot, a box from p25 to p75, the median as a thick line, whiskers from p1 to
 * p99, and the p50 / p99 values written at the right.
 */
export function latencyChartSvg(panels: ChartPanel[], subtitle = ''): string {
  const width = 980;
  const left = 250;
  const right = 170;
  const rowH = 34;
  const panelGap = 46;
  const top = 84;
  const plotW = width - left - right;
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.samples)).filter((v) => v > 0);
  const lo = all.length ? Math.min(...all) : 1;
  const hi = all.length ? Math.max(...all) : 10;
  const ticks = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
  const min = Math.max(1, [...ticks].reverse().find((t) => t <= lo * 0.9) ?? 1);
  const max = ticks.find((t) => t >= hi * 1.05) ?? hi * 1.1;
  const x = (v: number) =>
    left +
    ((Math.log10(Math.max(v, min)) - Math.log10(min)) / (Math.log10(max) - Math.log10(min))) *
      plotW;

  const parts: string[] = [];
  let y = top;
  for (const panel of panels) {
    const h = panel.series.length * rowH;
    parts.push(`<text x="16" y="${y - 14}" class="panel">${esc(panel.title)}</text>`);
    for (const t of ticks.filter((t) => t >= min && t <= max)) {
      parts.push(`<line x1="${x(t)}" y1="${y - 6}" x2="${x(t)}" y2="${y + h}" class="grid"/>`);
      parts.push(`<text x="${x(t)}" y="${y + h + 14}" class="tick">${t}</text>`);
    }
    panel.series.forEach((s, r) => {
      const cy = y + r * rowH + rowH / 2;
      parts.push(`<text x="${left - 10}" y="${cy + 4}" class="label">${esc(s.label)}</text>`);
      if (!s.samples.length) return;
      const sorted = sortNumbers(s.samples);
      const q = (p: number) => percentile(sorted, p);
      s.samples.forEach((v, i) => {
        parts.push(
          `<circle cx="${x(v).toFixed(1)}" cy="${(cy + jitter(i) * (rowH * 0.6)).toFixed(1)}" r="1.6" fill="${s.color}" fill-opacity="0.28"/>`,
        );
      });
      const boxH = rowH * 0.5;
      parts.push(
        `<line x1="${x(q(1)).toFixed(1)}" y1="${cy}" x2="${x(q(99)).toFixed(1)}" y2="${cy}" stroke="${s.color}" stroke-width="1.2"/>`,
      );
      for (const p of [1, 99]) {
        parts.push(
          `<line x1="${x(q(p)).toFixed(1)}" y1="${cy - boxH / 3}" x2="${x(q(p)).toFixed(1)}" y2="${cy + boxH / 3}" stroke="${s.color}" stroke-width="1.2"/>`,
        );
      }
      parts.push(
        `<rect x="${x(q(25)).toFixed(1)}" y="${cy - boxH / 2}" width="${Math.max(1, x(q(75)) - x(q(25))).toFixed(1)}" height="${boxH}" fill="${s.color}" fill-opacity="0.25" stroke="${s.color}"/>`,
      );
      parts.push(
        `<line x1="${x(q(50)).toFixed(1)}" y1="${cy - boxH / 2 - 2}" x2="${x(q(50)).toFixed(1)}" y2="${cy + boxH / 2 + 2}" stroke="${s.color}" stroke-width="3"/>`,
      );
      parts.push(
        `<text x="${left + plotW + 10}" y="${cy + 4}" class="value">p50 ${q(50).toFixed(1)} · p99 ${q(99).toFixed(1)} ms</text>`,
      );
    });
    y += h + panelGap;
  }
  const height = y - panelGap + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    '<style>',
    '.title{font-size:16px;font-weight:bold}.sub{font-size:11px;fill:#555}.panel{font-size:13px;font-weight:bold}',
    '.grid{stroke:#ddd;stroke-width:1}.tick{font-size:10px;fill:#555;text-anchor:middle}',
    '.label{font-size:12px;text-anchor:end}.value{font-size:11px;fill:#333}',
    '</style>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="16" y="24" class="title">Latency per execution (ms, log scale)</text>`,
    `<text x="16" y="40" class="sub">${esc(subtitle || 'box: p25-p75, thick line: p50, whiskers: p1-p99, dots: every sample')}</text>`,
    ...parts,
    `<text x="${left + plotW / 2}" y="${height - 8}" class="tick">ms</text>`,
    '</svg>',
    '',
  ].join('\n');
}
