// timer.js: a countdown measured against a deadline, so a slow or throttled tab still ends on time.

/** How often the display is refreshed. */
const TICK_MS = 100;

export function createCountdown({ onTick, onDone }) {
  let deadline = 0;
  let total = 0;
  let interval = null;

  const stop = () => {
    clearInterval(interval);
    interval = null;
  };

  function tick() {
    const left = Math.max(0, deadline - performance.now());
    onTick(left, total);
    if (left === 0) {
      stop();
      onDone();
    }
  }

  return {
    start(ms) {
      stop();
      total = ms;
      deadline = performance.now() + ms;
      interval = setInterval(tick, TICK_MS);
      tick();
    },
    stop,
    running: () => interval !== null,
  };
}
