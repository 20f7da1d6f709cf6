// A tiny element builder: text always goes in as text (never parsed as HTML), so nothing a
// client typed, stored in the audit trail, can run in an approver's browser.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | boolean | ((e: Event) => void) | undefined>;

export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
  return el;
}

/// Replaces what `parent` shows.
export function show(parent: HTMLElement, ...children: Child[]) {
  parent.replaceChildren();
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.append(typeof c === "string" || typeof c === "number" ? String(c) : c);
  }
}

/// "3m 20s" from seconds.
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function since(iso: string): number {
  return (Date.now() - Date.parse(iso)) / 1000;
}
