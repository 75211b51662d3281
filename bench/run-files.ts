import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { round } from './stats';

/** The machine a benchmark ran on, as its results record it. */
export function hostInfo(): { cpus: number; cpuModel: string; kernel: string } {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', kernel: release() };
}

/** The load averages now, to 2 decimals. */
export function loadNow(): number[] {
  return loadavg().map((l) => round(l, 2));
}

/**
 * `<name>.json` (every raw sample and the analysis) and `<name>.md` (the report) in `dir`; the paths written.
 */
export async function writeRunFiles(
  dir: string,
  name: string,
  raw: object,
  analysis: object,
  markdown: string,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, `${name}.json`);
  const md = join(dir, `${name}.md`);
  await writeFile(json, JSON.stringify({ ...raw, analysis }, null, 2) + '\n');
  await writeFile(md, markdown);
  return [json, md];
}
