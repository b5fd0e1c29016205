// A 24-hour sparkline as inline SVG: requests per hour as a line, failed requests as red bars on the same
// scale. Hand-drawn because a chart library per table row would cost more than the table itself.

const NS = "http://www.w3.org/2000/svg";
export const WIDTH = 120;
export const HEIGHT = 28;

function el(name, attrs) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/**
 * points: [{start, total_requests, failed_requests}] from /series (hours without requests left out);
 * fromMs..toMs is the 24 h window, slots the number of hourly slots in it.
 */
export function sparkline(points, fromMs, toMs, slots = 24) {
  const totals = new Array(slots).fill(0);
  const failed = new Array(slots).fill(0);
  const slotMs = (toMs - fromMs) / slots;
  for (const p of points) {
    const i = Math.floor((Date.parse(p.start) - fromMs) / slotMs);
    if (i >= 0 && i < slots) {
      totals[i] += p.total_requests;
      failed[i] += p.failed_requests;
    }
  }
  const max = Math.max(1, ...totals);
  const sumAll = totals.reduce((a, b) => a + b, 0);
  const sumFailed = failed.reduce((a, b) => a + b, 0);
  const svg = el("svg", {
    width: WIDTH, height: HEIGHT, viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "sparkline",
    "aria-label": `last 24 h: ${sumAll.toLocaleString("en")} requests, ${sumFailed.toLocaleString("en")} failed, ` +
      `busiest hour ${max.toLocaleString("en")}`,
  });
  const step = WIDTH / slots;
  const y = (v) => (HEIGHT - 2 - (v / max) * (HEIGHT - 4)).toFixed(1);
  failed.forEach((f, i) => {
    if (f > 0) {
      const h = Math.max(1.5, (f / max) * (HEIGHT - 4));
      svg.appendChild(el("rect", { x: (i * step + 0.5).toFixed(1), y: (HEIGHT - 2 - h).toFixed(1),
        width: (step - 1).toFixed(1), height: h.toFixed(1), class: "spark-failed" }));
    }
  });
  const pts = totals.map((v, i) => `${(i * step + step / 2).toFixed(1)},${y(v)}`).join(" ");
  svg.appendChild(el("polyline", { points: pts, class: "spark-total" }));
  return svg;
}
