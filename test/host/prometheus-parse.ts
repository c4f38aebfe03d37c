/** A strict reader of the Prometheus text format (0.0.4), enough to check what the node serves. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
  /** The value of the one sample with this name and exactly these labels. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, line: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  if (text === "" || Number.isNaN(value)) throw new Error(`bad sample value in: ${line}`);
  return value;
}

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    const name = text.slice(i, eq);
    if (eq < 0 || !labelName.test(name) || text[eq + 1] !== '"') throw new Error(`bad label in: ${line}`);
    let value = "";
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === "\\") {
        const next = text[++j];
        value += next === "n" ? "\n" : next;
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
    else if (i < text.length) throw new Error(`expected , between labels in: ${line}`);
  }
  return labels;
}

export function parsePrometheusText(text: string): ParsedMetrics {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline");
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
      const [, kind, name, ...rest] = line.split(" ");
      if (!metricName.test(name!)) throw new Error(`bad metric name in: ${line}`);
      if (kind === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest[0]!)) throw new Error(`bad type in: ${line}`);
        if (types.has(name!)) throw new Error(`duplicate TYPE for ${name}`);
        types.set(name!, rest[0]!);
      } else help.set(name!, rest.join(" "));
      continue;
    }
    // The text format ignores empty lines (prom-client puts one between families).
    if (line === "") continue;
    if (line.startsWith("#")) throw new Error(`unexpected line: ${JSON.stringify(line)}`);
    const brace = line.indexOf("{");
    const space = line.lastIndexOf(" ");
    const name = brace >= 0 ? line.slice(0, brace) : line.slice(0, space);
    if (!metricName.test(name)) throw new Error(`bad metric name in: ${line}`);
    const labels = brace >= 0 ? parseLabels(line.slice(brace + 1, line.lastIndexOf("}")), line) : {};
    const family = [...types.keys()].find((t) => name === t || (types.get(t) === "histogram" && [`${t}_bucket`, `${t}_sum`, `${t}_count`].includes(name)));
    if (!family) throw new Error(`sample ${name} before its TYPE line`);
    samples.push({ name, labels, value: parseValue(line.slice(space + 1), line) });
  }
  return {
    types,
    help,
    samples,
    value(name, labels = {}) {
      const found = samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
      if (found.length > 1) throw new Error(`${found.length} samples for ${name} ${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
  };
}
