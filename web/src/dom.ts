/**
 * A tiny element builder: every text goes in as a text node (never as HTML),
 * so nothing read from the chain or IPFS can inject markup into the page.
 */
export type Child = Node | string | number | bigint | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

export function h(tag: string, attrs: Attrs | null = null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** A table with a caption and a header row; `rows` are cells already built. */
export function table(caption: string, headers: string[], rows: Child[][], attrs: Attrs = {}): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, `${caption}: none yet.`);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attrs,
      h("caption", null, caption),
      h("thead", null, h("tr", null, headers.map((x) => h("th", { scope: "col" }, x)))),
      h("tbody", null, rows.map((cells) => h("tr", null, cells.map((c) => h("td", null, c))))),
    ),
  );
}

/** A definition list of label → value. */
export function facts(pairs: [string, Child][], attrs: Attrs = {}): HTMLElement {
  return h("dl", { class: "facts", ...attrs }, pairs.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
}

/** The prominent, textual mark of a simulated TEE: never colour or a tooltip alone. */
export function simulatedMark(): HTMLElement {
  return h("strong", { class: "badge sim" }, "SIMULATED");
}

/** A pass / fail mark that reads without colour: a symbol and a word. */
export function verdict(ok: boolean, okText = "verified", badText = "NOT verified"): HTMLElement {
  return h("strong", { class: ok ? "badge ok" : "badge bad" }, ok ? `✓ ${okText}` : `✗ ${badText}`);
}

/** A state word with a class for colour; the word itself carries the meaning. */
export function stateTag(state: string): HTMLElement {
  return h("span", { class: `state state-${state.toLowerCase().replace(/[^a-z]+/g, "-")}` }, state);
}

export function shortHex(value: string, keep = 6): string {
  return value.length > 2 + keep * 2 ? `${value.slice(0, 2 + keep)}…${value.slice(-keep)}` : value;
}

/** A long hex value shown short, with its full text available to copy and to screen readers. */
export function hex(value: string, keep = 6): HTMLElement {
  return h("code", { title: value, "aria-label": value }, shortHex(value, keep));
}

export function errorBox(title: string, message: string, hint?: string): HTMLElement {
  return h("div", { class: "error", role: "alert" }, h("h2", null, `⚠ ${title}`), h("p", null, message), hint ? h("p", null, hint) : null);
}

export function notDeployed(section: string, contract: string): HTMLElement {
  return h(
    "div",
    { class: "notice", "data-testid": "not-deployed" },
    h("p", null, h("strong", null, `${section}: not deployed on this network.`)),
    h("p", null, `The deployment this dashboard reads names no ${contract} contract. It appears here once the network's deployment includes one.`),
  );
}

export function unixTime(seconds: bigint | number): string {
  const n = Number(seconds);
  if (n === 0) return "—";
  return new Date(n * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "—";
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

/** Items separated by commas. */
export function list(items: Child[]): Child[] {
  return items.flatMap((item, i) => (i === 0 ? [item] : [", ", item]));
}
