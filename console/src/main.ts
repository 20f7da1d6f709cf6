// The console's shell: sign-in, the bar, and the pages by the URL's fragment
// (#/approvals, #/approvals/ID, #/sessions, #/sessions/ID).

import "./style.css";
import { ApiError, get, post, setCsrf, type Me } from "./api";
import { h, show } from "./dom";
import { auditPage } from "./audit";
import { approvalPage, inboxPage } from "./inbox";
import { sessionPage, sessionsPage } from "./sessions";

const main = document.getElementById("main") as HTMLElement;
const bar = document.getElementById("bar") as HTMLElement;
let me: Me | null = null;
/// Stops what the current page keeps running (the inbox's live stream).
let leave: (() => void) | null = null;

function signInPage(message?: string) {
  bar.hidden = true;
  const token = h("input", {
    id: "token",
    type: "password",
    autocomplete: "off",
    placeholder: "gh_... or a JWT",
    required: true,
  }) as HTMLInputElement;
  const error = h("p", { id: "sign-in-error", class: "error", role: "alert" }, message ?? "");
  const form = h(
    "form",
    { id: "sign-in", class: "card narrow" },
    h("h1", {}, "Sign in to Gatehouse"),
    h("label", { for: "token" }, "Your token"),
    token,
    h("button", { type: "submit" }, "Sign in"),
    error,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      me = await post<Me>("/v1/console/signin", { token: token.value });
      setCsrf(me.csrf);
      token.value = "";
      start();
    } catch (err) {
      error.textContent = err instanceof Error ? err.message : String(err);
    }
  });
  show(main, form);
  token.focus();
}

function start() {
  if (!me) return;
  bar.hidden = false;
  const who = document.getElementById("who") as HTMLElement;
  who.textContent = `${me.identity} (${me.groups.join(", ") || "no groups"})`;
  for (const a of bar.querySelectorAll<HTMLElement>("[data-nav]")) {
    const page = a.dataset.nav;
    a.hidden = page === "approvals" ? !me.approver : !me.admin;
  }
  if (!location.hash || location.hash === "#/") {
    location.hash = me.approver ? "#/approvals" : "#/sessions";
  }
  route();
}

function route() {
  if (!me) return;
  leave?.();
  leave = null;
  const parts = location.hash.replace(/^#\/?/, "").split("?")[0].split("/").map(decodeURIComponent);
  for (const a of bar.querySelectorAll<HTMLElement>("[data-nav]")) {
    a.classList.toggle("here", a.dataset.nav === parts[0]);
  }
  const [page, id] = parts;
  if (page === "approvals" && me.approver) {
    leave = id ? approvalPage(main, me, id) : inboxPage(main, me);
  } else if (page === "audit" && me.admin) {
    auditPage(main);
  } else if (page === "sessions" && me.admin) {
    if (id) sessionPage(main, id);
    else sessionsPage(main);
  } else {
    show(
      main,
      h(
        "p",
        { class: "card" },
        `There is nothing here for ${me.identity}: the console's pages need an approver or an administrator group.`,
      ),
    );
  }
}

document.getElementById("sign-out")?.addEventListener("click", async () => {
  try {
    await post("/v1/console/signout");
  } catch (err) {
    // Never claim a sign-out that did not happen (a shared machine).
    show(main, h("p", { class: "error", role: "alert" }, `Signing out failed: ${err instanceof Error ? err.message : String(err)}`));
    return;
  }
  leave?.();
  leave = null;
  me = null;
  setCsrf(null);
  signInPage("Signed out.");
});

window.addEventListener("hashchange", route);

get<Me>("/v1/console/me")
  .then((m) => {
    me = m;
    setCsrf(m.csrf);
    start();
  })
  .catch((err) => {
    signInPage(err instanceof ApiError && err.status === 401 ? undefined : String(err));
  });
