// admin/charts.js: bar and line charts as inline SVG, no chart library. Each chart is an
// <svg role="img"> with a <title> and an aria-label that reads its figures aloud, so a
// screen reader gets the numbers the picture shows.

const SVG = 'http://www.w3.org/2000/svg';
/** Plot size in SVG user units; the SVG scales to its container's width. */
const WIDTH = 640;
const HEIGHT = 220;
/** Room for the axis labels. */
const PAD = { top: 12, right: 12, bottom: 42, left: 48 };

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * The axis: a "nice" step (1, 2 or 5 times a power of ten) for about four gridlines, and
 * the top, a whole number of steps at or above `max`. Counts get whole steps only.
 */
function axis(max, whole) {
  if (max <= 0) return { top: 1, step: whole ? 1 : 0.25 };
  const raw = max / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * power).find((v) => v >= raw);
  if (whole) step = Math.max(1, Math.round(step));
  return { top: step * Math.ceil(max / step - 1e-9), step };
}

function frame(title, summary) {
  const svg = s('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': `${title}: ${summary}`,
    class: 'chart',
    preserveAspectRatio: 'xMidYMid meet',
  });
  svg.append(s('title', {}, title));
  return svg;
}

function yAxis(svg, { top, step }, format) {
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  for (let value = 0; value <= top + 1e-9; value += step) {
    const y = PAD.top + plotH - (plotH * value) / top;
    svg.append(s('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: 'grid' }));
    svg.append(s('text', { x: PAD.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, format(value)));
  }
}

const whole = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
/** Whether every value is a whole number (counts): then the axis steps are whole too. */
const allWhole = (values) => values.every((v) => Number.isInteger(v));

/**
 * A bar chart. `bars` is [{label, value, parts?: [{value, className}]}]: with `parts`, the
 * bar is stacked (e.g. kept / flagged). `onSelect(bar)` makes each bar a link-like target.
 */
export function barChart(title, bars, { format = whole, onSelect } = {}) {
  const summary = bars.map((b) => `${b.label} ${format(b.value)}`).join(', ') || 'no data';
  const svg = frame(title, summary);
  const scale = axis(Math.max(0, ...bars.map((b) => b.value)), allWhole(bars.map((b) => b.value)));
  const { top } = scale;
  yAxis(svg, scale, format);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, bars.length);
  const barW = Math.max(2, Math.min(48, slot * 0.7));
  const everyLabel = Math.max(1, Math.ceil(bars.length / 16));
  bars.forEach((bar, i) => {
    const x = PAD.left + slot * i + (slot - barW) / 2;
    const group = s('g', { class: 'bar' });
    let base = PAD.top + plotH;
    const parts = bar.parts || [{ value: bar.value, className: 'fill' }];
    for (const part of parts) {
      const height = (plotH * part.value) / top;
      base -= height;
      group.append(s('rect', { x, y: base, width: barW, height: Math.max(0, height), class: part.className }));
    }
    group.append(s('title', {}, `${bar.label}: ${format(bar.value)}`));
    if (i % everyLabel === 0) {
      group.append(s('text', {
        x: x + barW / 2, y: HEIGHT - PAD.bottom + 16, 'text-anchor': 'middle', class: 'label',
      }, bar.label.length > 12 ? `${bar.label.slice(0, 11)}…` : bar.label));
    }
    if (onSelect) {
      group.setAttribute('class', 'bar selectable');
      group.addEventListener('click', () => onSelect(bar));
    }
    svg.append(group);
  });
  return svg;
}

/** A line chart of [{label, value}] in order (e.g. per day, or loss per epoch). */
export function lineChart(title, points, { format = whole } = {}) {
  const summary = points.map((p) => `${p.label} ${format(p.value)}`).join(', ') || 'no data';
  const svg = frame(title, summary);
  const scale = axis(Math.max(0, ...points.map((p) => p.value)), allWhole(points.map((p) => p.value)));
  const { top } = scale;
  yAxis(svg, scale, format);
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const xAt = (i) => PAD.left + (points.length <= 1 ? plotW / 2 : (plotW * i) / (points.length - 1));
  const yAt = (v) => PAD.top + plotH - (plotH * v) / top;
  if (points.length > 0) {
    const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${xAt(i).toFixed(1)},${yAt(p.value).toFixed(1)}`).join(' ');
    const area = `${d} L${xAt(points.length - 1).toFixed(1)},${PAD.top + plotH} L${xAt(0).toFixed(1)},${PAD.top + plotH} Z`;
    svg.append(s('path', { d: area, class: 'area' }));
    svg.append(s('path', { d, class: 'line' }));
  }
  const everyLabel = Math.max(1, Math.ceil(points.length / 8));
  points.forEach((p, i) => {
    const dot = s('circle', { cx: xAt(i), cy: yAt(p.value), r: 3.5, class: 'dot' });
    dot.append(s('title', {}, `${p.label}: ${format(p.value)}`));
    svg.append(dot);
    if (i % everyLabel === 0 || i === points.length - 1) {
      svg.append(s('text', { x: xAt(i), y: HEIGHT - PAD.bottom + 16, 'text-anchor': 'middle', class: 'label' }, p.label));
    }
  });
  return svg;
}

/** A histogram of [{from, to, count}] with a marker at `threshold` (0..1). */
export function histogram(title, bins, threshold) {
  const bars = bins.map((b) => ({
    label: b.from.toFixed(2),
    value: b.count,
    parts: [{ value: b.count, className: threshold !== null && b.to <= threshold + 1e-9 ? 'fill low' : 'fill' }],
  }));
  const svg = barChart(title, bars);
  if (threshold !== null && threshold !== undefined) {
    const plotW = WIDTH - PAD.left - PAD.right;
    const x = PAD.left + plotW * threshold;
    svg.append(s('line', { x1: x, x2: x, y1: PAD.top, y2: HEIGHT - PAD.bottom, class: 'threshold' }));
    svg.append(s('text', { x: x + 4, y: PAD.top + 12, class: 'tick threshold-label' }, `auto-flag below ${threshold}`));
  }
  return svg;
}
