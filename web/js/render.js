// render.js: paints strokes onto a 2D canvas. Points are in CSS pixels ({x, y}); the caller
// sets the transform for devicePixelRatio. Used live by the board and for summary thumbnails.

/** Round caps and joins, so a stroke drawn segment by segment looks the same as one redrawn whole. */
function style(ctx, stroke, scale) {
  ctx.strokeStyle = stroke.color || '#000000';
  ctx.fillStyle = stroke.color || '#000000';
  ctx.lineWidth = Math.max(1, (stroke.width || 3) * scale);
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
}

/** A single-point stroke (a tap) shows as a dot. */
function dot(ctx, p, stroke, scale) {
  style(ctx, stroke, scale);
  ctx.beginPath();
  ctx.arc(p.x * scale, p.y * scale, ctx.lineWidth / 2, 0, Math.PI * 2);
  ctx.fill();
}

export function drawStroke(ctx, stroke, scale = 1) {
  const pts = stroke.points;
  if (pts.length === 0) return;
  if (pts.length === 1) {
    dot(ctx, pts[0], stroke, scale);
    return;
  }
  style(ctx, stroke, scale);
  ctx.beginPath();
  ctx.moveTo(pts[0].x * scale, pts[0].y * scale);
  for (let i = 1; i < pts.length; i += 1) ctx.lineTo(pts[i].x * scale, pts[i].y * scale);
  ctx.stroke();
}

export function drawStrokes(ctx, strokes, scale = 1) {
  for (const stroke of strokes) drawStroke(ctx, stroke, scale);
}

/** Extends a stroke being drawn by one segment (or starts it with a dot). */
export function drawSegment(ctx, from, to, stroke) {
  if (!from) {
    dot(ctx, to, stroke, 1);
    return;
  }
  style(ctx, stroke, 1);
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
}

/** Redraws a submitted drawing ({canvas, strokes}) to fit a thumbnail canvas, crisp on high-DPI. */
export function drawThumbnail(canvas, drawing) {
  const css = canvas.getBoundingClientRect();
  const side = Math.max(1, Math.round(css.width || 150));
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(side * dpr);
  canvas.height = Math.round(side * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, side, side);
  const scale = side / Math.max(drawing.canvas.width, drawing.canvas.height);
  // Thin lines would vanish at thumbnail size: keep them at least 2px.
  const strokes = drawing.strokes.map((s) => ({ ...s, width: Math.max(2 / scale, s.width || 3) }));
  drawStrokes(ctx, strokes, scale);
}
