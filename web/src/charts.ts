// Chart data without React: days of labelled values (from the summary routes), days
// filled, a "nice" scale, and the bars' rectangles of a stacked bar chart.

/** One UTC day and a value per label (kind, status, currency…). */
export interface DayValues {
  date: string; // YYYY-MM-DD
  values: Record<string, number>;
}

export interface Series {
  days: DayValues[];
  labels: string[]; // in the order they first appear
}

/** Summary days (int64 values arrive as strings) as a Series: `items` gives each
 * day's labelled values; every label is on every day (0 where a day lacks it). */
export function toSeries<T>(
  days: readonly T[],
  date: (day: T) => string | undefined,
  items: (day: T) => readonly { label?: string; value?: string | number }[],
): Series {
  const labels: string[] = [];
  const raw = days.map((day) => {
    const values: Record<string, number> = {};
    for (const item of items(day)) {
      const label = item.label ?? "";
      if (!labels.includes(label)) labels.push(label);
      values[label] = (values[label] ?? 0) + toNumber(item.value);
    }
    return { date: date(day) ?? "", values };
  });
  return { labels, days: raw.map((d) => ({ date: d.date, values: withLabels(d.values, labels) })) };
}

function withLabels(values: Record<string, number>, labels: readonly string[]): Record<string, number> {
  return Object.fromEntries(labels.map((l) => [l, values[l] ?? 0]));
}

export function toNumber(value: string | number | undefined | null): number {
  if (typeof value === "number") return Number.isFinite(value) ? value : 0;
  const parsed = Number(value ?? 0);
  return Number.isFinite(parsed) ? parsed : 0;
}

/** The `count` UTC days ending with `last` (YYYY-MM-DD), oldest first. */
export function dayRange(last: string, count: number): string[] {
  const end = Date.parse(`${last}T00:00:00Z`);
  if (Number.isNaN(end) || count <= 0) return [];
  return Array.from({ length: count }, (_, i) => new Date(end - (count - 1 - i) * 86_400_000).toISOString().slice(0, 10));
}

/** The series over exactly `count` days ending `last`: days missing from it are zeros. */
export function fillDays(series: Series, last: string, count: number): Series {
  const byDate = new Map(series.days.map((d) => [d.date, d.values]));
  return {
    labels: series.labels,
    days: dayRange(last, count).map((date) => ({ date, values: withLabels(byDate.get(date) ?? {}, series.labels) })),
  };
}

/** Each day's total over its labels. */
export function totals(series: Series): number[] {
  return series.days.map((d) => Object.values(d.values).reduce((a, b) => a + b, 0));
}

/** The smallest 1, 2 or 5 × 10ⁿ at or above `max` (1 for an empty or all-zero chart). */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/** Evenly spaced axis values from 0 to niceMax(max): 4 or 5 steps, whole numbers
 * whenever the top is one (counts and credits are never fractional). */
export function ticks(max: number): number[] {
  const top = niceMax(max);
  const lead = Math.round(top / 10 ** Math.floor(Math.log10(top)));
  let parts = lead === 5 ? 5 : 4;
  if (top >= 1 && !Number.isInteger(top / parts)) parts = top === 10 ? 5 : top; // 1, 2 → steps of 1
  return Array.from({ length: parts + 1 }, (_, i) => (top * i) / parts);
}

export interface Bar {
  date: string;
  label: string;
  value: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Layout {
  width: number;
  height: number; // of the plot area
  top: number; // the scale's maximum
  bars: Bar[];
}

/** The rectangles of a stacked bar chart in a `width` × `height` plot (y grows down):
 * one column per day with a gap between columns, a segment per non-zero label. */
export function stackBars(series: Series, width: number, height: number): Layout {
  const top = niceMax(Math.max(0, ...totals(series)));
  const slot = series.days.length ? width / series.days.length : width;
  const gap = Math.min(4, slot * 0.2);
  const bars: Bar[] = [];
  series.days.forEach((day, i) => {
    let base = height;
    for (const label of series.labels) {
      const value = day.values[label] ?? 0;
      if (value <= 0) continue;
      const h = (value / top) * height;
      base -= h;
      bars.push({ date: day.date, label, value, x: i * slot + gap / 2, y: base, width: slot - gap, height: h });
    }
  });
  return { width, height, top, bars };
}

/** "2 Dec" for 2026-12-02 (UTC). */
export function shortDate(iso: string): string {
  const time = Date.parse(`${iso}T00:00:00Z`);
  if (Number.isNaN(time)) return iso;
  return new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", timeZone: "UTC" }).format(time);
}

/** A label in words: "AVATAR_VIDEO" → "Avatar video", "eur" → "EUR". */
export function labelWords(label: string): string {
  if (/^[a-z]{3}$/.test(label)) return label.toUpperCase();
  const words = label.replace(/_/g, " ").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

// Mid-tone colours, each about 3:1 or more against both the light and the dark card
// (WCAG 1.4.11 for graphics); the legend and the data table name every series too.
export const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d"];
