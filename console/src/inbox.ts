// The approvals inbox: pending requests live from /v1/approvals/events (server-sent events,
// no reload), each with who asked, where, the statement as the audit trail keeps it, the rule,
// its age and time left; approve or deny with a reason. Below, the latest decisions.

import { get, post, type Me } from "./api";
import { duration, h, show, since } from "./dom";

export interface Request {
  id: string;
  state: string;
  identity: string;
  groups: string[];
  connection: string;
  protocol: string;
  statement: string;
  params: (string | null)[];
  class: string;
  rule: string;
  approvers: string[];
  session: string;
  requested_at: string;
  expires_at: string;
  decided_by: string | null;
  decided_at: string | null;
  reason: string | null;
  executed_at: string | null;
  can_decide: boolean;
}

interface Inbox {
  pending: Request[];
  decided: Request[];
}

function decideForm(r: Request, done: (message: string) => void): HTMLElement {
  const reason = h("input", {
    class: "reason",
    placeholder: "Reason (kept in the audit trail)",
    "aria-label": `Reason for ${r.id}`,
  }) as HTMLInputElement;
  const status = h("span", { class: "error", role: "alert" });
  const act = (approve: boolean) => async () => {
    try {
      await post(`/v1/approvals/${encodeURIComponent(r.id)}/${approve ? "approve" : "deny"}`, {
        reason: reason.value || undefined,
      });
      done(`${r.id} ${approve ? "approved" : "denied"}`);
    } catch (err) {
      status.textContent = err instanceof Error ? err.message : String(err);
    }
  };
  return h(
    "div",
    { class: "decide" },
    reason,
    h("button", { class: "approve", type: "button", onclick: act(true) }, "Approve"),
    h("button", { class: "deny", type: "button", onclick: act(false) }, "Deny"),
    status,
  );
}

function requestCard(r: Request, me: Me, done: (message: string) => void): HTMLElement {
  const left = h("span", { class: "left" });
  const age = h("span", { class: "age" });
  const tick = () => {
    age.textContent = `asked ${duration(since(r.requested_at))} ago`;
    left.textContent = `${duration(-since(r.expires_at))} left`;
  };
  tick();
  const card = h(
    "article",
    { class: "card request", "data-id": r.id },
    h(
      "header",
      {},
      h("a", { href: `#/approvals/${encodeURIComponent(r.id)}` }, r.id),
      " ",
      h("strong", {}, r.identity),
      ` on ${r.connection} (${r.protocol}) · rule ${r.rule} · `,
      age,
      " · ",
      left,
    ),
    h("pre", { class: "statement" }, r.statement),
    r.params.length > 0 ? h("p", { class: "params" }, `parameters: ${JSON.stringify(r.params)}`) : null,
    r.can_decide
      ? decideForm(r, done)
      : h(
          "p",
          { class: "muted" },
          r.identity === me.identity
            ? "Your own request: another approver decides it."
            : `Only members of ${r.approvers.join(", ")} decide this.`,
        ),
  );
  (card as HTMLElement & { tick?: () => void }).tick = tick;
  return card;
}

function decidedRow(r: Request): HTMLElement {
  return h(
    "tr",
    { "data-id": r.id },
    h("td", {}, h("a", { href: `#/approvals/${encodeURIComponent(r.id)}` }, r.id)),
    h("td", { class: `state ${r.state}` }, r.state),
    h("td", {}, r.identity),
    h("td", {}, r.connection),
    h("td", { class: "sql" }, r.statement),
    h("td", {}, r.decided_by ?? "-"),
    h("td", {}, r.decided_at ?? "-"),
    h("td", {}, r.reason ?? ""),
  );
}

function decidedTable(rows: Request[]): HTMLElement {
  return h(
    "table",
    { id: "decided" },
    h(
      "thead",
      {},
      h("tr", {}, ...["Request", "State", "Who asked", "Connection", "Statement", "Decided by", "When", "Why"].map((t) => h("th", {}, t))),
    ),
    h("tbody", {}, ...rows.map(decidedRow)),
  );
}

/// The inbox page; returns what stops its live stream.
export function inboxPage(main: HTMLElement, me: Me): () => void {
  const pending = h("section", { id: "pending", "aria-live": "polite" }, h("p", { class: "muted" }, "Connecting…"));
  const decided = h("section", { id: "recent" });
  const notice = h("p", { id: "notice", class: "notice", role: "status" });
  const olderRows = h("div", { id: "older" });
  // Older decisions page through /v1/approvals (newest first), skipping what the live
  // inbox shows already.
  let offset = 0;
  let shown = new Set<string>();
  const more = h("button", { type: "button", id: "more" }, "Older decisions") as HTMLButtonElement;
  more.addEventListener("click", async () => {
    const rows = await get<Request[]>(`/v1/approvals?limit=50&offset=${offset}`);
    offset += rows.length;
    const older = rows.filter((r) => r.state !== "pending" && !shown.has(r.id));
    for (const r of older) shown.add(r.id);
    if (older.length) olderRows.append(decidedTable(older));
    if (rows.length < 50) more.hidden = true;
  });
  show(
    main,
    h("h1", {}, "Approvals"),
    notice,
    h("h2", {}, "Waiting for a decision"),
    pending,
    h("h2", {}, "Decided"),
    decided,
    olderRows,
    more,
  );
  const done = (message: string) => {
    notice.textContent = message;
  };
  const events = new EventSource("/v1/approvals/events");
  events.addEventListener("inbox", (e) => {
    const inbox = JSON.parse((e as MessageEvent).data) as Inbox;
    show(
      pending,
      ...(inbox.pending.length
        ? inbox.pending.map((r) => requestCard(r, me, done))
        : [h("p", { class: "muted", id: "none-pending" }, "Nothing is waiting.")]),
    );
    show(decided, inbox.decided.length ? decidedTable(inbox.decided) : h("p", { class: "muted" }, "No decisions yet."));
    shown = new Set([...shown, ...inbox.decided.map((r) => r.id)]);
  });
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) {
      notice.textContent = "The live inbox stopped (signed out, or the token was revoked): reload to sign in again.";
    }
  });
  const timer = window.setInterval(() => {
    for (const card of pending.querySelectorAll<HTMLElement & { tick?: () => void }>(".request")) card.tick?.();
  }, 1000);
  return () => {
    events.close();
    window.clearInterval(timer);
  };
}

/// One request's page (the link webhooks carry); it follows the inbox for changes.
export function approvalPage(main: HTMLElement, me: Me, id: string): () => void {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  show(main, h("p", {}, h("a", { href: "#/approvals" }, "← Approvals")), h("h1", {}, `Request ${id}`), body);
  const load = async () => {
    try {
      const r = await get<Request>(`/v1/approvals/${encodeURIComponent(id)}`);
      const facts = h(
        "dl",
        { class: "facts" },
        ...[
          ["State", r.state],
          ["Who asked", `${r.identity} (${r.groups.join(", ")})`],
          ["Connection", `${r.connection} (${r.protocol})`],
          ["Rule", r.rule],
          ["Classes", r.class],
          ["Approvers", r.approvers.join(", ")],
          ["Asked", r.requested_at],
          ["Waits until", r.expires_at],
          ["Decided by", r.decided_by ?? "-"],
          ["Decided at", r.decided_at ?? "-"],
          ["Why", r.reason ?? "-"],
          ["Ran at", r.executed_at ?? "-"],
        ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
        h("dt", {}, "Session"),
        h("dd", {}, me.admin ? h("a", { id: "session-link", href: `#/sessions/${encodeURIComponent(r.session)}` }, r.session) : r.session),
      );
      show(
        body,
        facts,
        h("pre", { class: "statement" }, r.statement),
        r.state === "pending" && r.can_decide ? decideForm(r, () => void load()) : null,
      );
    } catch (err) {
      show(body, h("p", { class: "error" }, err instanceof Error ? err.message : String(err)));
    }
  };
  void load();
  const events = new EventSource("/v1/approvals/events");
  events.addEventListener("inbox", () => void load());
  return () => events.close();
}
