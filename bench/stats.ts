/** Small, dependency-free statistics for the benchmark. Every value is in ms unless the name says otherwise. */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/** Percentile by linear interpolation between closest ranks (numpy's default). `p` in [0, 100]. */
export function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  if (sorted.length === 1) return sorted[0];
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function sortNumbers(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

export function median(values: readonly number[]): number {
  return percentile(sortNumbers(values), 50);
}

export function summarize(values: readonly number[]): Summary {
  const s = sortNumbers(values);
  const mean = s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: percentile(s, 50),
    p95: percentile(s, 95),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean,
  };
}

/**
 * mulberry32: a tiny, well-mixed 32-bit PRNG; the same seed gives the same sequence everywhere (the bootstrap
 * here, the seeded invariant test of the pool).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 95% percentile-bootstrap interval of the median. */
export function bootstrapMedianCi(values: readonly number[], rounds = 2000): [number, number] {
  if (values.length < 2) return [NaN, NaN];
  const next = mulberry32(0x5eed);
  const medians: number[] = [];
  const sample = new Array<number>(values.length);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < values.length; i++) sample[i] = values[Math.floor(next() * values.length)];
    medians.push(median(sample));
  }
  const s = sortNumbers(medians);
  return [percentile(s, 2.5), percentile(s, 97.5)];
}

/** Median of the pairwise differences a[i] - b[i], with its bootstrap interval. */
export function pairedDifference(
  a: readonly number[],
  b: readonly number[],
): { n: number; median: number; ci95: [number, number]; p95: number; mean: number } {
  const n = Math.min(a.length, b.length);
  const diffs = Array.from({ length: n }, (_, i) => a[i] - b[i]);
  const s = summarize(diffs);
  return { n, median: s.p50, ci95: bootstrapMedianCi(diffs), p95: s.p95, mean: s.mean };
}

/** Rounds for display and for the JSON (µs resolution is plenty). */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function roundSummary(s: Summary, digits = 2): Summary {
  return {
    n: s.n,
    min: round(s.min, digits),
    p50: round(s.p50, digits),
    p95: round(s.p95, digits),
    p99: round(s.p99, digits),
    max: round(s.max, digits),
    mean: round(s.mean, digits),
  };
}

/** n, p50, p90, p99 and the max of some samples (ms or bytes), to 2 decimals: the benchmarks' table rows. */
export interface Quantiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function quantiles(values: readonly number[]): Quantiles {
  const s = sortNumbers(values);
  return {
    n: s.length,
    p50: round(percentile(s, 50), 2),
    p90: round(percentile(s, 90), 2),
    p99: round(percentile(s, 99), 2),
    max: round(s[s.length - 1] ?? NaN, 2),
  };
}
