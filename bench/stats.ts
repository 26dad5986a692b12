export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

/** Ratio of medians, with the spread of the per-round ratios (round i of A over round i of B). */
export function ratio(a: number[], b: number[]): Spread {
  const perRound = a.map((x, i) => x / (b[i] ?? NaN));
  const s = spread(perRound);
  return { ...s, median: spread(a).median / spread(b).median };
}
