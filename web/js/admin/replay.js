// admin/replay.js: replays a stored drawing on a canvas stroke by stroke, in real time from
// its point timestamps (play, pause, 1× or 4×). Long pauses between strokes are shortened
// to MAX_GAP_MS so a replay never sits still; points without timestamps get FALLBACK_STEP_MS.

/** The longest still moment a replay shows, in ms of drawing time. */
const MAX_GAP_MS = 1000;
/** Time between points that carry no timestamp, in ms. */
const FALLBACK_STEP_MS = 16;
/** Ink for strokes that name no colour. */
const INK = '#1d1d1f';

/** Turns a drawing's strokes into timed points: [{stroke, x, y, t}] with t from 0. */
export function timeline(drawing) {
  const out = [];
  let clock = 0;
  let last = null; // the previous point's own timestamp
  drawing.strokes.forEach((stroke, strokeIndex) => {
    for (const point of stroke.points) {
      const stamp = typeof point.timestamp === 'number' ? point.timestamp : null;
      if (last === null || stamp === null) {
        clock += out.length === 0 ? 0 : FALLBACK_STEP_MS;
      } else {
        clock += Math.min(MAX_GAP_MS, Math.max(0, stamp - last));
      }
      if (stamp !== null) last = stamp;
      out.push({ stroke: strokeIndex, x: point.x, y: point.y, t: clock });
    }
  });
  return out;
}

/** A replay bound to one canvas. */
export class Replay {
  constructor(canvas, drawing, { onState } = {}) {
    this.canvas = canvas;
    this.drawing = drawing;
    this.points = timeline(drawing);
    this.total = this.points.length ? this.points[this.points.length - 1].t : 0;
    this.speed = 1;
    this.elapsed = 0;   // drawing-time ms shown so far
    this.playing = false;
    this.frame = null;
    this.onState = onState || (() => {});
    this.draw();
  }

  /** Starts (or restarts, at the end) the replay. */
  play() {
    if (this.elapsed >= this.total) this.elapsed = 0;
    this.playing = true;
    let before = performance.now();
    const tick = (now) => {
      this.elapsed = Math.min(this.total, this.elapsed + (now - before) * this.speed);
      before = now;
      this.draw();
      if (this.elapsed >= this.total) {
        this.playing = false;
        this.frame = null;
        this.onState(this);
        return;
      }
      this.frame = requestAnimationFrame(tick);
    };
    this.frame = requestAnimationFrame(tick);
    this.onState(this);
  }

  pause() {
    this.playing = false;
    if (this.frame !== null) cancelAnimationFrame(this.frame);
    this.frame = null;
    this.onState(this);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  setSpeed(speed) {
    this.speed = speed;
    this.onState(this);
  }

  /** Shows the whole drawing at once. */
  finish() {
    this.pause();
    this.elapsed = this.total;
    this.draw();
  }

  /** Paints every point up to `elapsed`, scaled to fit the canvas, keeping proportions. */
  draw() {
    const canvas = this.canvas;
    const ctx = canvas.getContext('2d');
    const { width: w, height: h } = this.drawing.canvas;
    const scale = Math.min(canvas.width / w, canvas.height / h);
    const dx = (canvas.width - w * scale) / 2;
    const dy = (canvas.height - h * scale) / 2;
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    let previous = null;
    for (const p of this.points) {
      if (p.t > this.elapsed) break;
      const stroke = this.drawing.strokes[p.stroke];
      ctx.strokeStyle = stroke.color || INK;
      ctx.fillStyle = stroke.color || INK;
      ctx.lineWidth = Math.max(1.5, (stroke.width || 3) * scale);
      const x = dx + p.x * scale;
      const y = dy + p.y * scale;
      if (previous && previous.stroke === p.stroke) {
        ctx.beginPath();
        ctx.moveTo(previous.x, previous.y);
        ctx.lineTo(x, y);
        ctx.stroke();
      } else {
        ctx.beginPath();
        ctx.arc(x, y, ctx.lineWidth / 2, 0, Math.PI * 2);
        ctx.fill();
      }
      previous = { stroke: p.stroke, x, y };
    }
  }
}
