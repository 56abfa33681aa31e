// board.js: captures a drawing on a <canvas> with Pointer Events (mouse, touch and pen), with
// pressure and a timestamp per point, and keeps it drawn crisply on high-DPI screens.
// Coordinates are CSS pixels of the canvas; `payload()` gives them in the server's format.

import { drawSegment, drawStrokes } from './render.js';

/** Ink for every stroke. */
export const INK_COLOR = '#000000';
/** Stroke width in CSS pixels. */
export const INK_WIDTH = 3;
/** Points closer than this (CSS px) to the previous one add nothing visible and are dropped. */
const MIN_STEP = 0.75;
/** The server takes at most 8000 points and 1000 strokes per drawing; stop short of that. */
const MAX_POINTS = 7000;
const MAX_STROKES = 900;

const round2 = (v) => Math.round(v * 100) / 100;
const round3 = (v) => Math.round(v * 1000) / 1000;
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const deviceOf = (pointerType) => (pointerType === 'pen' || pointerType === 'touch' ? pointerType : 'mouse');

/**
 * Mice report a fixed pressure, and many touch screens report a constant 0, 0.5 or 1.
 * Pressure is sent only when it looks real: no mouse strokes, and it actually varies.
 */
function hasRealPressure(strokes) {
  if (strokes.some((s) => s.device === 'mouse')) return false;
  const seen = new Set();
  for (const s of strokes) for (const p of s.points) seen.add(p.p);
  if (seen.size !== 1) return seen.size > 1;
  const [only] = seen;
  return !(only === 0 || only === 0.5 || only === 1);
}

/**
 * hooks: onStrokeStart(), onMove(), onStrokeEnd(), onChange() (undo, clear, reset), onLimit().
 * The board sizes its canvas to the integer CSS size of `wrap`.
 */
export function createBoard(canvas, wrap, hooks = {}) {
  const ctx = canvas.getContext('2d');
  let size = { w: 0, h: 0 };
  let strokes = [];   // finished strokes: {points:[{x,y,p,t}], color, width, device}
  let history = [];   // undo stack: {kind:'stroke'} or {kind:'clear', strokes}
  let active = null;  // the stroke under the pointer: {id, stroke}
  let enabled = false;
  let lastTime = 0;   // timestamps never go backwards within a drawing
  let clockOffset = 0;

  const pointCount = () => strokes.reduce((n, s) => n + s.points.length, 0) + (active ? active.stroke.points.length : 0);

  function redraw() {
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, size.w, size.h);
    drawStrokes(ctx, strokes);
    if (active) drawStrokes(ctx, [active.stroke]);
  }

  /** A rotated phone changes the board's size: scale what is drawn so it still fits. */
  function rescale(fx, fy) {
    const all = new Set([...strokes, ...(active ? [active.stroke] : [])]);
    for (const step of history) if (step.kind === 'clear') step.strokes.forEach((s) => all.add(s));
    for (const s of all) for (const p of s.points) { p.x *= fx; p.y *= fy; }
  }

  function resize() {
    const w = Math.floor(wrap.clientWidth);
    const h = Math.floor(wrap.clientHeight);
    if (!w || !h) return;
    if (size.w && (w !== size.w || h !== size.h)) rescale(w / size.w, h / size.h);
    size = { w, h };
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    redraw();
  }

  new ResizeObserver(resize).observe(wrap);
  // Browser zoom or moving the window to another screen changes devicePixelRatio.
  const watchDpr = () => {
    matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener('change', () => { resize(); watchDpr(); }, { once: true });
  };
  watchDpr();

  function stamp(event) {
    const t = Math.round(clockOffset + event.timeStamp);
    lastTime = Math.max(lastTime, t);
    return lastTime;
  }

  function addPoint(event, rect) {
    const stroke = active.stroke;
    const point = {
      x: clamp(event.clientX - rect.left - canvas.clientLeft, 0, size.w),
      y: clamp(event.clientY - rect.top - canvas.clientTop, 0, size.h),
      p: clamp(Number.isFinite(event.pressure) ? event.pressure : 0.5, 0, 1),
      t: stamp(event),
    };
    const prev = stroke.points[stroke.points.length - 1];
    if (prev && Math.hypot(point.x - prev.x, point.y - prev.y) < MIN_STEP) return;
    if (pointCount() >= MAX_POINTS) {
      hooks.onLimit?.();
      return;
    }
    stroke.points.push(point);
    drawSegment(ctx, prev, point, stroke);
  }

  function finishStroke() {
    if (!active) return;
    const { stroke, id } = active;
    active = null;
    if (canvas.hasPointerCapture?.(id)) canvas.releasePointerCapture(id);
    if (stroke.points.length === 0) return;
    strokes.push(stroke);
    history.push({ kind: 'stroke' });
    hooks.onStrokeEnd?.();
  }

  canvas.addEventListener('pointerdown', (event) => {
    if (!enabled || active) return; // one pointer at a time: a second finger is ignored
    if (event.pointerType === 'mouse' && event.button !== 0) return;
    if (strokes.length >= MAX_STROKES || pointCount() >= MAX_POINTS) {
      hooks.onLimit?.();
      return;
    }
    event.preventDefault();
    // A button clicked earlier keeps focus, and Enter would press it again: give focus back.
    if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
    try {
      canvas.setPointerCapture(event.pointerId);
    } catch {
      // Capture can fail for a pointer that is already gone; the stroke still works inside the canvas.
    }
    clockOffset = Date.now() - performance.now();
    active = { id: event.pointerId, stroke: { points: [], color: INK_COLOR, width: INK_WIDTH, device: deviceOf(event.pointerType) } };
    hooks.onStrokeStart?.();
    addPoint(event, canvas.getBoundingClientRect());
  });

  canvas.addEventListener('pointermove', (event) => {
    if (!active || event.pointerId !== active.id) return;
    event.preventDefault();
    const rect = canvas.getBoundingClientRect();
    const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const sample of samples.length ? samples : [event]) addPoint(sample, rect);
    hooks.onMove?.();
  });

  const end = (event) => {
    if (!active || event.pointerId !== active.id) return;
    finishStroke();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('lostpointercapture', end);
  canvas.addEventListener('contextmenu', (event) => event.preventDefault());

  function serialize(list) {
    const pressure = hasRealPressure(list);
    return {
      canvas: { width: size.w, height: size.h },
      strokes: list.map((s) => ({
        points: s.points.map((p) => (pressure
          ? { x: round2(p.x), y: round2(p.y), pressure: round3(p.p), timestamp: p.t }
          : { x: round2(p.x), y: round2(p.y), timestamp: p.t })),
        color: s.color,
        width: s.width,
      })),
      device: list.length ? list[0].device : 'mouse',
    };
  }

  const changed = () => { redraw(); hooks.onChange?.(); };

  return {
    /** Whether pointer input draws (off between rounds). */
    setEnabled(on) {
      enabled = on;
      wrap.classList.toggle('off', !on);
    },
    isEmpty: () => strokes.length === 0 && !active,
    isDrawing: () => active !== null,
    canUndo: () => history.length > 0 && !active,
    /** Removes the last stroke; after a clear, brings the cleared drawing back. */
    undo() {
      const step = !active && history.pop();
      if (!step) return;
      if (step.kind === 'stroke') strokes.pop();
      else strokes = step.strokes;
      changed();
    },
    clear() {
      if (active || strokes.length === 0) return;
      history.push({ kind: 'clear', strokes });
      strokes = [];
      changed();
    },
    /** Ends a stroke still under the pointer (used when the time runs out). */
    endStroke: finishStroke,
    /** A fresh, empty drawing. */
    reset() {
      active = null;
      strokes = [];
      history = [];
      lastTime = 0;
      changed();
    },
    /** The finished strokes as the API wants them: {canvas, strokes, device}. */
    payload: () => serialize(strokes),
    /** Like payload(), including the stroke being drawn: for live guessing. */
    livePayload: () => serialize(active && active.stroke.points.length ? [...strokes, active.stroke] : strokes),
  };
}
