// Small hand-written SVG charts (grouped bars, lines on log or linear axes) for
// docs/benchmarks.md: no dependency, deterministic output, readable in any browser
// and on GitHub.

const PALETTE = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030", "#718096"];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

export interface Series {
  name: string;
  values: Array<number | undefined>;
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  if (Number.isInteger(value) && abs < 10_000) return String(value);
  if (abs >= 10_000) return `${(value / 1000).toFixed(abs >= 100_000 ? 0 : 1)}k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Round tick values covering [min, max], min ≤ 0 ≤ max. */
function linearTicks(max: number, min = 0): number[] {
  const span = Math.max(max, 0) - Math.min(min, 0);
  if (!(span > 0)) return [0, 1];
  const rough = span / 5;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((candidate) => candidate >= rough) ?? rough;
  const ticks: number[] = [];
  const first = Math.floor(Math.min(min, 0) / step) * step;
  for (let value = first; value <= max + step * 0.999 && ticks.length < 14; value += step) {
    ticks.push(Math.round(value / step) * step);
  }
  return ticks;
}

/** Powers of ten covering [min, max]. */
function logTicks(min: number, max: number): number[] {
  const low = Math.floor(Math.log10(Math.max(min, 1e-9)));
  const high = Math.ceil(Math.log10(Math.max(max, min * 10)));
  const ticks: number[] = [];
  for (let exponent = low; exponent <= high && ticks.length < 14; exponent++) ticks.push(10 ** exponent);
  return ticks;
}

function open(frame: Frame, title: string, subtitle: string | undefined): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${frame.width}" height="${frame.height}" viewBox="0 0 ${frame.width} ${frame.height}" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${frame.left}" y="22" ${FONT} font-size="15" font-weight="600" fill="#1a202c">${escapeXml(title)}</text>`,
    subtitle
      ? `<text x="${frame.left}" y="40" ${FONT} font-size="11.5" fill="#4a5568">${escapeXml(subtitle)}</text>`
      : "",
  ];
}

function legend(frame: Frame, names: readonly string[], markers: readonly string[] = []): string[] {
  const parts: string[] = [];
  let x = frame.left;
  const y = frame.height - 14;
  for (const [index, name] of names.entries()) {
    parts.push(
      `<rect x="${x}" y="${y - 9}" width="10" height="10" fill="${PALETTE[index % PALETTE.length]}"/>`,
    );
    parts.push(
      `<text x="${x + 14}" y="${y}" ${FONT} font-size="11.5" fill="#2d3748">${escapeXml(name)}</text>`,
    );
    x += 24 + name.length * 6.4;
  }
  for (const name of markers) {
    parts.push(
      `<line x1="${x}" x2="${x + 18}" y1="${y - 4}" y2="${y - 4}" stroke="#c53030" stroke-dasharray="5 4"/>`,
    );
    parts.push(
      `<text x="${x + 22}" y="${y}" ${FONT} font-size="11.5" fill="#c53030">${escapeXml(name)}</text>`,
    );
    x += 32 + name.length * 6.4;
  }
  return parts;
}

export interface BarChartOptions {
  title: string;
  subtitle?: string;
  categories: string[];
  series: Series[];
  unit: string;
  /** Dashed horizontal lines, such as a target. */
  markers?: Array<{ value: number; label: string }>;
  width?: number;
  height?: number;
}

/** Vertical grouped bars on a linear axis from 0, each bar labelled with its value. */
export function barChart(options: BarChartOptions): string {
  const frame: Frame = {
    width: options.width ?? 760,
    height: options.height ?? 360,
    left: 64,
    right: 20,
    top: 56,
    bottom: 74,
  };
  const values = options.series
    .flatMap((series) => series.values)
    .filter((v): v is number => Number.isFinite(v));
  const max = Math.max(0, ...values, ...(options.markers ?? []).map((marker) => marker.value));
  const min = Math.min(0, ...values);
  const ticks = linearTicks(max * 1.08, min < 0 ? min * 1.15 : 0);
  const top = ticks[ticks.length - 1] ?? 1;
  const bottom = ticks[0] ?? 0;
  const plotWidth = frame.width - frame.left - frame.right;
  const plotHeight = frame.height - frame.top - frame.bottom;
  const y = (value: number) => frame.top + plotHeight - ((value - bottom) / (top - bottom || 1)) * plotHeight;
  const parts = open(frame, options.title, options.subtitle);
  for (const tick of ticks) {
    parts.push(
      `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${y(tick).toFixed(1)}" y2="${y(tick).toFixed(1)}" stroke="#e2e8f0"/>`,
      `<text x="${frame.left - 6}" y="${(y(tick) + 4).toFixed(1)}" ${FONT} font-size="11" fill="#4a5568" text-anchor="end">${formatNumber(tick)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${frame.top + plotHeight / 2}" ${FONT} font-size="11.5" fill="#4a5568" transform="rotate(-90 14 ${frame.top + plotHeight / 2})" text-anchor="middle">${escapeXml(options.unit)}</text>`,
  );
  const groupWidth = plotWidth / Math.max(1, options.categories.length);
  const barWidth = Math.min(48, (groupWidth * 0.8) / Math.max(1, options.series.length));
  const zero = y(0);
  for (const [categoryIndex, category] of options.categories.entries()) {
    const groupLeft =
      frame.left + categoryIndex * groupWidth + (groupWidth - barWidth * options.series.length) / 2;
    for (const [seriesIndex, series] of options.series.entries()) {
      const value = series.values[categoryIndex];
      if (value === undefined || !Number.isFinite(value)) continue;
      const x = groupLeft + seriesIndex * barWidth;
      const barTop = Math.min(y(value), zero);
      const height = Math.max(0.5, Math.abs(zero - y(value)));
      const labelY = value >= 0 ? y(value) - 4 : y(value) + 12;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${barTop.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${height.toFixed(1)}" fill="${PALETTE[seriesIndex % PALETTE.length]}"><title>${escapeXml(`${series.name}, ${category}: ${formatNumber(value)} ${options.unit}`)}</title></rect>`,
        `<text x="${(x + barWidth / 2 - 1).toFixed(1)}" y="${labelY.toFixed(1)}" ${FONT} font-size="10" fill="#2d3748" text-anchor="middle">${formatNumber(value)}</text>`,
      );
    }
    parts.push(
      `<text x="${(frame.left + (categoryIndex + 0.5) * groupWidth).toFixed(1)}" y="${frame.top + plotHeight + 16}" ${FONT} font-size="11" fill="#2d3748" text-anchor="middle">${escapeXml(category)}</text>`,
    );
  }
  for (const marker of options.markers ?? []) {
    parts.push(
      `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${y(marker.value).toFixed(1)}" y2="${y(marker.value).toFixed(1)}" stroke="#c53030" stroke-dasharray="5 4"><title>${escapeXml(`${marker.label}: ${formatNumber(marker.value)} ${options.unit}`)}</title></line>`,
    );
  }
  parts.push(
    `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${zero.toFixed(1)}" y2="${zero.toFixed(1)}" stroke="#4a5568"/>`,
  );
  parts.push(
    ...legend(
      frame,
      options.series.map((series) => series.name),
      (options.markers ?? []).map(
        (marker) => `${marker.label} (${formatNumber(marker.value)} ${options.unit})`,
      ),
    ),
    "</svg>",
  );
  return `${parts.filter((part) => part !== "").join("\n")}\n`;
}

export interface LineChartOptions {
  title: string;
  subtitle?: string;
  /** The x value of each point (shared by every series). */
  x: number[];
  xLabel: string;
  series: Series[];
  unit: string;
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
}

/** Lines with dots, on log or linear axes; every point labelled with its value. */
export function lineChart(options: LineChartOptions): string {
  const frame: Frame = {
    width: options.width ?? 760,
    height: options.height ?? 380,
    left: 70,
    right: 30,
    top: 56,
    bottom: 84,
  };
  const plotWidth = frame.width - frame.left - frame.right;
  const plotHeight = frame.height - frame.top - frame.bottom;
  const values = options.series
    .flatMap((series) => series.values)
    .filter((v): v is number => v !== undefined && Number.isFinite(v) && v > 0);
  const minY = Math.min(...values, Number.POSITIVE_INFINITY);
  const maxY = Math.max(...values, 0);
  const yTicks = options.logY ? logTicks(minY, maxY) : linearTicks(maxY * 1.08);
  const yLow = options.logY ? Math.log10(yTicks[0] ?? 1) : 0;
  const yHigh = options.logY ? Math.log10(yTicks[yTicks.length - 1] ?? 10) : (yTicks[yTicks.length - 1] ?? 1);
  const yOf = (value: number) => {
    const v = options.logY ? Math.log10(value) : value;
    return frame.top + plotHeight - ((v - yLow) / (yHigh - yLow || 1)) * plotHeight;
  };
  const xs = options.x.map((value) => (options.logX ? Math.log10(value) : value));
  const xLow = Math.min(...xs);
  const xHigh = Math.max(...xs);
  const pad = (xHigh - xLow || 1) * 0.06;
  const xOf = (index: number) =>
    frame.left + (((xs[index] ?? 0) - (xLow - pad)) / (xHigh - xLow + 2 * pad || 1)) * plotWidth;

  const parts = open(frame, options.title, options.subtitle);
  for (const tick of yTicks) {
    const ty = yOf(tick);
    parts.push(
      `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${ty.toFixed(1)}" y2="${ty.toFixed(1)}" stroke="#e2e8f0"/>`,
      `<text x="${frame.left - 6}" y="${(ty + 4).toFixed(1)}" ${FONT} font-size="11" fill="#4a5568" text-anchor="end">${formatNumber(tick)}</text>`,
    );
  }
  parts.push(
    `<text x="14" y="${frame.top + plotHeight / 2}" ${FONT} font-size="11.5" fill="#4a5568" transform="rotate(-90 14 ${frame.top + plotHeight / 2})" text-anchor="middle">${escapeXml(options.unit)}${options.logY ? " (log scale)" : ""}</text>`,
  );
  for (const [index, value] of options.x.entries()) {
    parts.push(
      `<text x="${xOf(index).toFixed(1)}" y="${frame.top + plotHeight + 16}" ${FONT} font-size="11" fill="#2d3748" text-anchor="middle">${formatNumber(value)}</text>`,
    );
  }
  parts.push(
    `<text x="${frame.left + plotWidth / 2}" y="${frame.top + plotHeight + 34}" ${FONT} font-size="11.5" fill="#4a5568" text-anchor="middle">${escapeXml(options.xLabel)}${options.logX ? " (log scale)" : ""}</text>`,
    `<line x1="${frame.left}" x2="${frame.width - frame.right}" y1="${frame.top + plotHeight}" y2="${frame.top + plotHeight}" stroke="#4a5568"/>`,
  );
  // A point's label goes above it when no other series is higher there, else below.
  const highest = (index: number, value: number) =>
    options.series.every((other) => !((other.values[index] ?? Number.NEGATIVE_INFINITY) > value));
  for (const [seriesIndex, series] of options.series.entries()) {
    const color = PALETTE[seriesIndex % PALETTE.length];
    const points = series.values
      .map((value, index) => ({ value, index }))
      .filter(
        (point): point is { value: number; index: number } =>
          Number.isFinite(point.value) && (point.value ?? 0) > 0,
      );
    if (points.length > 1) {
      const path = points
        .map((point) => `${xOf(point.index).toFixed(1)},${yOf(point.value).toFixed(1)}`)
        .join(" ");
      parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    }
    for (const point of points) {
      const px = xOf(point.index);
      const py = yOf(point.value);
      parts.push(
        `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.5" fill="${color}"><title>${escapeXml(`${series.name}, ${formatNumber(options.x[point.index] ?? 0)}: ${formatNumber(point.value)} ${options.unit}`)}</title></circle>`,
        `<text x="${(px + 5).toFixed(1)}" y="${(highest(point.index, point.value) ? py - 7 : py + 15).toFixed(1)}" ${FONT} font-size="10" fill="${color}">${formatNumber(point.value)}</text>`,
      );
    }
  }
  parts.push(
    ...legend(
      frame,
      options.series.map((series) => series.name),
    ),
    "</svg>",
  );
  return `${parts.filter((part) => part !== "").join("\n")}\n`;
}
