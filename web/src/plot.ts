/**
 * Inline SVG charts (no chart library, nothing loaded): bars for counts per
 * bucket, points joined by a line for a value over time. Each chart carries a
 * text summary for screen readers and a table of its numbers in <details>.
 */
import { h } from "./dom.ts";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 200;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };

function svg(tag: string, attrs: Record<string, string | number>, ...children: (SVGElement | string)[]): SVGElement {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

export interface Point {
  x: number;
  y: number;
}

function frame(title: string, summary: string, maxY: number, xLabels: [number, string, ("start" | "middle" | "end")?][], xMin: number, xMax: number, body: (sx: (x: number) => number, sy: (y: number) => number) => SVGElement[]): SVGElement {
  const sx = (x: number) => PAD.left + ((x - xMin) / Math.max(xMax - xMin, 1e-9)) * (W - PAD.left - PAD.right);
  const sy = (y: number) => H - PAD.bottom - (y / Math.max(maxY, 1e-9)) * (H - PAD.top - PAD.bottom);
  const ticks = [0, maxY / 2, maxY].map((v) =>
    svg("g", {}, svg("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(v), y2: sy(v), class: "grid" }), svg("text", { x: PAD.left - 6, y: sy(v) + 4, "text-anchor": "end", class: "tick" }, fmt(v))),
  );
  const labels = xLabels.map(([x, label, anchor = "middle"]) => svg("text", { x: sx(x), y: H - 8, "text-anchor": anchor, class: "tick" }, label));
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${summary}`, class: "plot" }, svg("title", {}, title), ...ticks, ...labels, ...body(sx, sy));
}

function fmt(v: number): string {
  return v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
}

/** Counts per bucket (e.g. tasks per minute). */
export function barChart(title: string, unit: string, buckets: { label: string; value: number }[]): HTMLElement {
  const maxY = Math.max(1, ...buckets.map((b) => b.value));
  const total = buckets.reduce((s, b) => s + b.value, 0);
  const summary = `${total} ${unit} over ${buckets.length} buckets, at most ${maxY} in one`;
  const every = Math.max(1, Math.ceil(buckets.length / 6));
  const chart = frame(title, summary, maxY, buckets.flatMap((b, i) => (i % every === 0 ? [[i + 0.5, b.label] as [number, string]] : [])), 0, buckets.length, (sx, sy) =>
    buckets.map((b, i) => svg("rect", { x: sx(i) + 1, y: sy(b.value), width: Math.max(sx(i + 1) - sx(i) - 2, 1), height: sy(0) - sy(b.value), class: "bar" }, svg("title", {}, `${b.label}: ${b.value}`))),
  );
  return figure(title, summary, chart, ["bucket", unit], buckets.map((b) => [b.label, String(b.value)]));
}

/** A value over time; x in Unix seconds. */
export function lineChart(title: string, unit: string, points: (Point & { label: string })[]): HTMLElement {
  if (points.length === 0) return h("figure", { class: "chart" }, h("figcaption", null, title), h("p", { class: "empty" }, "No data yet."));
  const maxY = Math.max(...points.map((p) => p.y)) * 1.1 || 1;
  const xMin = Math.min(...points.map((p) => p.x));
  const xMax = Math.max(...points.map((p) => p.x), xMin + 1);
  const mean = points.reduce((s, p) => s + p.y, 0) / points.length;
  const summary = `${points.length} points, mean ${fmt(mean)} ${unit}, max ${fmt(Math.max(...points.map((p) => p.y)))} ${unit}`;
  // Minutes, or seconds too when the points span less than ten minutes.
  const clock = (x: number) => new Date(x * 1000).toISOString().slice(11, xMax - xMin < 600 ? 19 : 16);
  const chart = frame(title, summary, maxY, [[xMin, clock(xMin), "start"], [xMax, clock(xMax), "end"]], xMin, xMax, (sx, sy) => [
    svg("polyline", { points: points.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "), class: "line" }),
    ...points.map((p) => svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 3, class: "dot" }, svg("title", {}, `${p.label}: ${fmt(p.y)} ${unit}`))),
  ]);
  return figure(title, summary, chart, ["point", unit], points.map((p) => [p.label, fmt(p.y)]));
}

function figure(title: string, summary: string, chart: SVGElement, headers: string[], rows: string[][]): HTMLElement {
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", null, h("strong", null, title), h("span", { class: "muted" }, ` — ${summary}`)),
    chart,
    h(
      "details",
      null,
      h("summary", null, "The numbers"),
      h("table", null, h("thead", null, h("tr", null, headers.map((x) => h("th", { scope: "col" }, x)))), h("tbody", null, rows.slice(-60).map((r) => h("tr", null, r.map((c) => h("td", null, c)))))),
    ),
  );
}
