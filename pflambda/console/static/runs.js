// The runs page: a filtered list, newest first, refreshed while "live" is on.
"use strict";

(() => {
  const { api, el, age, status, message } = Console;
  const form = document.getElementById("filters");
  const body = document.querySelector("#runs tbody");
  const more = document.getElementById("more");
  const live = document.getElementById("live");
  let next = null;
  let loading = false;
  let extended = false;

  function query(token) {
    const params = new URLSearchParams();
    const agent = form.elements.agent.value.trim();
    if (agent) params.set("agent", agent);
    if (form.elements.status.value) params.set("status", form.elements.status.value);
    if (form.elements.stalled.checked) params.set("stalled", "true");
    for (const name of ["since", "until"]) {
      const value = form.elements[name].value;
      if (value) params.set(name, String(new Date(value).getTime() / 1000));
    }
    if (token) params.set("token", token);
    return params;
  }

  function fromUrl() {
    const params = new URLSearchParams(location.search);
    form.elements.agent.value = params.get("agent") || "";
    form.elements.status.value = params.get("status") || "";
    form.elements.stalled.checked = params.get("stalled") === "true";
  }

  function row(run, now) {
    const link = el("a", { href: "runs/" + encodeURIComponent(run.run_id), class: "run-link" }, run.run_id);
    const tr = el(
      "tr",
      { "data-run": run.run_id },
      el("td", {}, link),
      el("td", {}, run.agent || "—"),
      el("td", { class: "flow" }, run.flow),
      el("td", {}, status(run)),
      el("td", { class: "node" }, run.node || "—"),
      el("td", { class: "num" }, run.steps),
      el("td", { title: Console.when(run.created_at) }, age(now - run.created_at)),
      el("td", { class: "owner" }, run.owner || "—"),
    );
    return tr;
  }

  async function load(append) {
    if (loading) return;
    loading = true;
    try {
      const doc = await api("runs?" + query(append ? next : null).toString());
      if (!append) body.replaceChildren();
      for (const run of doc.runs) body.append(row(run, doc.now));
      next = doc.next_token;
      more.hidden = !next;
      document.getElementById("empty").hidden = body.children.length > 0;
      message("");
    } catch (err) {
      message(err.message, "error");
    } finally {
      loading = false;
    }
  }

  function refresh() {
    extended = false;
    const params = query(null);
    history.replaceState(null, "", params.toString() ? "?" + params.toString() : location.pathname);
    load(false);
  }

  fromUrl();
  form.addEventListener("change", refresh);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  more.addEventListener("click", () => {
    extended = true;
    load(true);
  });
  Console.setupAuth(() => {
    Console.whoami();
    refresh();
  });
  Console.whoami();
  refresh();
  // Live: the first page again every few seconds (older pages stay as they were).
  // Once older pages are shown, live updates pause (they would drop them).
  setInterval(() => {
    if (live.checked && !document.hidden && !extended) load(false);
  }, 3000);
})();
