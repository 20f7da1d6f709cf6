// The auditor's page: `audit export`'s filters as a form (search in the page, a page at a
// time, or download JSON Lines / CSV), `audit verify` with its last result, and the evidence
// package for a period.

import { get, post } from "./api";
import { h, show } from "./dom";

interface SearchPage {
  entries: Record<string, unknown>[];
  next: number | null;
}

interface VerifyRun {
  at: string;
  by: string;
  ok: boolean;
  report: { links: number; writes_checked: number; recordings_checked: number; casts_checked: number; problems: unknown[] };
}

const FILTERS = ["from", "to", "identity", "connection", "protocol", "verdict"];

function verifyText(run: VerifyRun | null): string {
  if (!run) return "Not run from the console since the gateway started.";
  const r = run.report;
  const verdict = run.ok ? "intact" : `${r.problems.length} problem(s) found`;
  return `${verdict}: ${r.links} chain links, ${r.writes_checked} writes re-read, ${r.recordings_checked} recordings and ${r.casts_checked} terminal casts checked (run by ${run.by} at ${run.at})`;
}

export function auditPage(main: HTMLElement) {
  const input = (name: string, label: string, placeholder = "") =>
    h("label", {}, label, h("input", { name, placeholder }));
  const form = h(
    "form",
    { id: "audit-filter", class: "filters" },
    input("from", "From", "7d or 2026-12-01"),
    input("to", "To (exclusive)", "now"),
    input("identity", "Identity"),
    input("connection", "Connection"),
    h(
      "label",
      {},
      "Wire",
      h("select", { name: "protocol" }, ...["", "postgres", "mysql", "ssh"].map((p) => h("option", { value: p }, p || "any"))),
    ),
    h(
      "label",
      {},
      "Verdict",
      h("select", { name: "verdict" }, ...["", "allow", "deny", "approved", "rejected"].map((v) => h("option", { value: v }, v || "any"))),
    ),
    h("button", { type: "submit" }, "Search"),
  ) as HTMLFormElement;
  const jsonl = h("a", { id: "download-jsonl", class: "button", download: "" }, "Download JSON Lines") as HTMLAnchorElement;
  const csv = h("a", { id: "download-csv", class: "button", download: "" }, "Download CSV") as HTMLAnchorElement;
  const results = h("div", { id: "audit-results" });
  const more = h("button", { type: "button", id: "audit-more", hidden: true }, "More") as HTMLButtonElement;
  const verifyStatus = h("p", { id: "verify-status" }, "…");
  const verifyButton = h("button", { type: "button", id: "verify-run" }, "Run audit verify") as HTMLButtonElement;
  const evFrom = h("input", { name: "ev-from", id: "evidence-from", value: "30d" }) as HTMLInputElement;
  const evTo = h("input", { name: "ev-to", id: "evidence-to", placeholder: "now" }) as HTMLInputElement;
  const evidence = h("a", { id: "evidence-download", class: "button", download: "" }, "Download the evidence package") as HTMLAnchorElement;

  const query = () => {
    const q = new URLSearchParams();
    for (const name of FILTERS) {
      const el = form.elements.namedItem(name) as HTMLInputElement | null;
      if (el?.value) q.set(name, el.value);
    }
    return q;
  };
  const links = () => {
    const q = query();
    q.set("format", "jsonl");
    jsonl.href = `/v1/audit/export?${q}`;
    q.set("format", "csv");
    csv.href = `/v1/audit/export?${q}`;
    const p = new URLSearchParams({ from: evFrom.value || "30d" });
    if (evTo.value) p.set("to", evTo.value);
    evidence.href = `/v1/evidence?${p}`;
  };
  form.addEventListener("input", links);
  evFrom.addEventListener("input", links);
  evTo.addEventListener("input", links);
  links();

  let after: number | null = null;
  let body: HTMLElement | null = null;
  const cell = (v: unknown) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const load = async (fresh: boolean) => {
    const q = query();
    q.set("limit", "100");
    if (!fresh && after !== null) q.set("after", String(after));
    try {
      const page = await get<SearchPage>(`/v1/audit/search?${q}`);
      if (fresh || !body) {
        body = h("tbody", {});
        show(
          results,
          h(
            "table",
            { id: "audit-table" },
            h("thead", {}, h("tr", {}, ...["Id", "At", "Identity", "Connection", "Statement", "Verdict", "Status", "Rows"].map((t) => h("th", {}, t)))),
            body,
          ),
        );
      }
      for (const e of page.entries) {
        body.append(
          h(
            "tr",
            {},
            h("td", {}, cell(e.id)),
            h("td", {}, cell(e.at)),
            h("td", {}, cell(e.identity)),
            h("td", {}, cell(e.connection)),
            h("td", { class: "sql" }, cell(e.statement)),
            h("td", {}, cell(e.verdict)),
            h("td", {}, cell(e.status ?? "unknown")),
            h("td", {}, cell(e.rows_affected || e.rows_returned)),
          ),
        );
      }
      if (fresh && page.entries.length === 0) show(results, h("p", { class: "muted" }, "No entry matches."));
      after = page.next;
      more.hidden = page.next === null;
    } catch (err) {
      show(results, h("p", { class: "error" }, err instanceof Error ? err.message : String(err)));
    }
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void load(true);
  });
  more.addEventListener("click", () => void load(false));
  verifyButton.addEventListener("click", async () => {
    verifyButton.disabled = true;
    verifyStatus.textContent = "Verifying…";
    try {
      verifyStatus.textContent = verifyText(await post<VerifyRun>("/v1/audit/verify"));
    } catch (err) {
      verifyStatus.textContent = err instanceof Error ? err.message : String(err);
    } finally {
      verifyButton.disabled = false;
    }
  });
  get<VerifyRun | null>("/v1/audit/verify")
    .then((run) => {
      verifyStatus.textContent = verifyText(run);
    })
    .catch(() => undefined);

  show(
    main,
    h("h1", {}, "Audit"),
    form,
    h("p", { class: "downloads" }, jsonl, " ", csv),
    results,
    more,
    h("h2", {}, "Integrity"),
    verifyStatus,
    verifyButton,
    h("h2", {}, "Evidence package"),
    h(
      "p",
      { class: "filters" },
      h("label", {}, "From", evFrom),
      h("label", {}, "To (exclusive)", evTo),
      evidence,
    ),
  );
  void load(true);
}
