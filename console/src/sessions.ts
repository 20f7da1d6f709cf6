// Sessions: a filtered list that pages on the server, and a session's page with its
// statements in order (verdict, rows, duration, what was masked) and, for SSH, its
// terminals replayed in the browser.

import { get } from "./api";
import { h, show } from "./dom";
import { replay } from "./replay";

interface Session {
  id: string;
  identity: string;
  groups: string[];
  connection: string;
  protocol: string;
  client: string;
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  commands: number;
}

interface Entry {
  seq: number;
  at: string;
  statement: string;
  params: (string | null)[];
  class: string;
  verdict: string;
  status: string | null;
  tag: string | null;
  sqlstate: string | null;
  error: string | null;
  rows_returned: number | null;
  rows_affected: number | null;
  duration_us: number | null;
  rule: string | null;
  approval: string | null;
  approved_by: string | null;
  masked: Record<string, number>;
}

export interface Cast {
  channel: number;
  file: string;
  started: string;
  term: string | null;
  command: string | null;
  seal: { status: string | null } | null;
}

const PAGE = 50;

export function sessionsPage(main: HTMLElement) {
  const params = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const field = (name: string, label: string, attrs: Record<string, string> = {}) =>
    h("label", {}, label, h("input", { name, value: params.get(name) ?? "", ...attrs }));
  const box = (name: string, label: string) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", name, checked: params.get(name) === "true" }), label);
  const wire = h(
    "select",
    { name: "protocol" },
    ...["", "postgres", "mysql", "ssh"].map((p) =>
      h("option", { value: p, selected: (params.get("protocol") ?? "") === p }, p || "any wire"),
    ),
  );
  const form = h(
    "form",
    { id: "session-filter", class: "filters" },
    field("identity", "Identity"),
    field("connection", "Connection"),
    h("label", {}, "Wire", wire),
    field("since", "Since", { placeholder: "1h or 2026-12-01" }),
    field("until", "Until", { placeholder: "2026-12-07T12:00:00Z" }),
    box("refused", "refused"),
    box("open", "still open"),
    h("button", { type: "submit" }, "Filter"),
  ) as HTMLFormElement;
  const table = h("div", { id: "sessions" });
  const pager = h("div", { class: "pager" });
  show(main, h("h1", {}, "Sessions"), form, table, pager);
  let offset = Number(params.get("offset") ?? 0) || 0;
  const query = () => {
    const q = new URLSearchParams();
    for (const el of Array.from(form.elements) as HTMLInputElement[]) {
      if (!el.name) continue;
      if (el.type === "checkbox") {
        if (el.checked) q.set(el.name, "true");
      } else if (el.value) q.set(el.name, el.value);
    }
    return q;
  };
  const load = async () => {
    const q = query();
    q.set("limit", String(PAGE));
    q.set("offset", String(offset));
    try {
      const rows = await get<Session[]>(`/v1/sessions?${q}`);
      show(
        table,
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ...["Started", "Identity", "Connection", "Wire", "Client", "Commands", "Ended", "Why"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            ...rows.map((s) =>
              h(
                "tr",
                { "data-id": s.id },
                h("td", {}, h("a", { href: `#/sessions/${encodeURIComponent(s.id)}` }, s.started_at)),
                h("td", {}, s.identity),
                h("td", {}, s.connection),
                h("td", {}, s.protocol),
                h("td", {}, s.client),
                h("td", {}, s.commands),
                h("td", {}, s.ended_at ?? "open"),
                h("td", {}, s.end_reason ?? ""),
              ),
            ),
          ),
        ),
        rows.length ? null : h("p", { class: "muted" }, "No session matches."),
      );
      const prev = h("button", { type: "button", disabled: offset === 0 }, "Newer") as HTMLButtonElement;
      const next = h("button", { type: "button", disabled: rows.length < PAGE }, "Older") as HTMLButtonElement;
      prev.addEventListener("click", () => {
        offset = Math.max(0, offset - PAGE);
        void load();
      });
      next.addEventListener("click", () => {
        offset += PAGE;
        void load();
      });
      show(pager, prev, ` ${offset + 1}–${offset + rows.length} `, next);
    } catch (err) {
      show(table, h("p", { class: "error" }, err instanceof Error ? err.message : String(err)));
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    offset = 0;
    void load();
  });
  void load();
}

function rows(e: Entry): string {
  if (e.rows_affected) return `${e.rows_affected} affected`;
  if (e.rows_returned !== null) return `${e.rows_returned}`;
  return "";
}

function outcome(e: Entry): string {
  if (e.status === "ok") return e.tag ?? "ok";
  if (e.status === "error") return `${e.sqlstate ?? ""} ${e.error ?? ""}`.trim();
  if (e.status === "not-run") return `not run: ${e.error ?? ""}`;
  return "outcome unknown";
}

export async function sessionPage(main: HTMLElement, id: string) {
  show(main, h("p", {}, h("a", { href: "#/sessions" }, "← Sessions")), h("p", { class: "muted" }, "Loading…"));
  try {
    const { session: s, statements } = await get<{ session: Session; statements: Entry[] }>(
      `/v1/sessions/${encodeURIComponent(id)}`,
    );
    const facts = h(
      "dl",
      { class: "facts" },
      ...[
        ["Identity", `${s.identity} (${s.groups.join(", ")})`],
        ["Connection", `${s.connection} (${s.protocol})`],
        ["Client", s.client],
        ["Started", s.started_at],
        ["Ended", s.ended_at ?? "still open"],
        ["Why", s.end_reason ?? "-"],
      ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
    );
    const timeline = h(
      "table",
      { id: "statements" },
      h("thead", {}, h("tr", {}, ...["#", "At", "Statement", "Verdict", "Outcome", "Rows", "Duration", "Masked"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        ...statements.map((e) =>
          h(
            "tr",
            { class: e.status ?? "unknown" },
            h("td", {}, e.seq),
            h("td", {}, e.at),
            h("td", { class: "sql" }, e.statement, e.params.length ? h("div", { class: "params" }, JSON.stringify(e.params)) : null),
            h("td", {}, e.verdict, e.rule ? ` (${e.rule})` : "", e.approved_by ? ` by ${e.approved_by}` : ""),
            h("td", {}, outcome(e)),
            h("td", {}, rows(e)),
            h("td", {}, e.duration_us === null ? "" : `${(e.duration_us / 1000).toFixed(2)} ms`),
            h(
              "td",
              {},
              Object.entries(e.masked)
                .map(([k, n]) => `${k}: ${n}`)
                .join(", "),
            ),
          ),
        ),
      ),
    );
    const terminals = h("section", { id: "terminals" });
    show(
      main,
      h("p", {}, h("a", { href: "#/sessions" }, "← Sessions")),
      h("h1", {}, `Session ${s.id}`),
      facts,
      s.protocol === "ssh" ? h("h2", {}, "Terminals") : null,
      s.protocol === "ssh" ? terminals : null,
      h("h2", {}, s.protocol === "ssh" ? "Commands" : "Timeline"),
      statements.length ? timeline : h("p", { class: "muted" }, "No statements."),
    );
    if (s.protocol === "ssh") {
      const casts = await get<Cast[]>(`/v1/sessions/${encodeURIComponent(s.id)}/casts`);
      show(
        terminals,
        ...(casts.length
          ? casts.map((c) => {
              const stage = h("div", { class: "player" });
              const play = h("button", { type: "button", class: "play" }, `Play channel ${c.channel}`) as HTMLButtonElement;
              play.addEventListener("click", () => {
                play.disabled = true;
                void replay(stage, s.id, c);
              });
              return h(
                "div",
                { class: "cast", "data-file": c.file },
                h("p", {}, `${c.command ? `exec: ${c.command}` : "shell"} · started ${c.started} · ${c.seal?.status ?? "open"} `, play),
                stage,
              );
            })
          : [h("p", { class: "muted" }, "No terminal was recorded.")]),
      );
    }
  } catch (err) {
    show(main, h("p", {}, h("a", { href: "#/sessions" }, "← Sessions")), h("p", { class: "error" }, err instanceof Error ? err.message : String(err)));
  }
}
