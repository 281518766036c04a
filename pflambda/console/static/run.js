// A run's page: graph with the cursor, timeline, shared at a step and its diff, actions.
"use strict";

(() => {
  const { api, post, el, svg, bytes, when, message, confirmDialog } = Console;
  const runId = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const timeline = document.querySelector("#timeline tbody");
  let run = null;
  let selected = null;
  let followLatest = true;

  document.getElementById("run-id").textContent = runId;
  const path = (suffix) => "runs/" + encodeURIComponent(runId) + (suffix || "");

  function facts(doc) {
    const list = document.getElementById("facts");
    list.replaceChildren();
    const add = (name, value, href) => {
      if (value === null || value === undefined || value === "") return;
      const dd = href ? el("dd", {}, el("a", { href }, value)) : el("dd", {}, value);
      list.append(el("dt", {}, name), dd);
    };
    add("Agent", doc.agent);
    add("Flow", doc.flow);
    add("Owner", doc.owner);
    add("Created", when(doc.created_at));
    add("Last activity", when(doc.updated_at));
    add("Steps", String(doc.steps));
    add("At node", doc.node);
    if (doc.forked_from) {
      add("Forked from", doc.forked_from + " @ step " + doc.forked_at, encodeURIComponent(doc.forked_from));
    }
    if (doc.cancel_requested && doc.status === "running") add("Cancel", "requested");
  }

  function header(doc) {
    const badge = document.getElementById("status");
    badge.textContent = doc.stalled ? "stalled" : doc.status;
    badge.className = "status " + (doc.stalled ? "stalled" : doc.status);
    facts(doc);
    document.getElementById("error-box").hidden = !doc.error;
    document.getElementById("error").textContent = doc.error || "";
    document.getElementById("prompt-box").hidden = doc.status !== "paused";
    document.getElementById("prompt").textContent = doc.prompt || "";
    const fan = document.getElementById("fanout-box");
    fan.hidden = !doc.fanout;
    if (doc.fanout) {
      const f = doc.fanout;
      const total = f.chunks === null ? "?" : f.chunks;
      document.getElementById("fanout").textContent =
        "Node " + f.node + ": " + f.done + " of " + total + " chunks done" +
        (f.items === null ? "" : " (" + f.items + " items)");
      const bar = document.getElementById("fanout-bar");
      bar.max = f.chunks || 1;
      bar.value = f.done;
    }
    const terminal = ["completed", "cancelled"].includes(doc.status);
    document.getElementById("resume").disabled = !(doc.status === "failed" || doc.stalled);
    document.getElementById("cancel").disabled = terminal || doc.status === "failed";
  }

  // -- the graph ------------------------------------------------------------------

  function drawGraph(doc) {
    const box = document.getElementById("graph");
    const note = document.getElementById("graph-note");
    const g = doc.graph;
    note.hidden = !(g.error || g.warning);
    note.textContent = g.error || g.warning || "";
    box.replaceChildren();
    if (g.error) return;
    const margin = 12;
    const root = svg("svg", {
      width: g.width + 2 * margin + 40,
      height: g.height + 2 * margin,
      viewBox: [-margin, -margin, g.width + 2 * margin + 40, g.height + 2 * margin].join(" "),
      role: "img",
      "aria-label": "flow graph",
    });
    const defs = svg("defs");
    const marker = svg("marker", {
      id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7,
      orient: "auto-start-reverse",
    });
    marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head" }));
    defs.append(marker);
    root.append(defs);
    const cursor = doc.cursor || [];
    const current = cursor.length ? cursor[cursor.length - 1].node : null;
    const inside = new Set(cursor.slice(0, -1).map((f) => f.node).filter(Boolean));
    // groups first (behind), then edges, then nodes
    const ordered = [...g.nodes].sort((a, b) => (a.kind === "flow" ? 0 : 1) - (b.kind === "flow" ? 0 : 1));
    for (const node of ordered.filter((n) => n.kind === "flow")) root.append(nodeShape(node, doc, current, inside));
    for (const edge of g.edges) root.append(edgeShape(edge));
    for (const node of ordered.filter((n) => n.kind !== "flow")) root.append(nodeShape(node, doc, current, inside));
    box.append(root);
  }

  function nodeShape(node, doc, current, inside) {
    const classes = ["node", node.kind];
    if (node.id === current && doc.status !== "completed") classes.push("cursor");
    if (inside.has(node.id)) classes.push("active");
    const group = svg("g", { class: classes.join(" "), "data-node": node.id });
    const title = svg("title");
    const visits = doc.visits[node.id] || 0;
    title.textContent = node.id + (visits ? " — visited " + visits + "×" : "");
    group.append(title);
    group.append(svg("rect", { x: node.x, y: node.y, width: node.w, height: node.h, rx: node.kind === "flow" ? 6 : 4 }));
    const label = svg("text", {
      x: node.x + node.w / 2,
      y: node.kind === "flow" ? node.y + 15 : node.y + node.h / 2 + 4,
      "text-anchor": "middle",
      class: "label",
    });
    label.textContent = node.label;
    group.append(label);
    if (visits && node.kind !== "flow") {
      const count = svg("text", { x: node.x + node.w - 4, y: node.y + 11, "text-anchor": "end", class: "visits" });
      count.textContent = "×" + visits;
      group.append(count);
    }
    return group;
  }

  function edgeShape(edge) {
    const group = svg("g", { class: "edge" + (edge.back ? " back" : "") });
    const points = edge.points.map((p) => p.join(",")).join(" ");
    group.append(svg("polyline", { points, "marker-end": "url(#arrow)" }));
    if (edge.action !== "default") {
      const [a, b] = edge.back ? [edge.points[1], edge.points[2]] : [edge.points[0], edge.points[1]];
      const label = svg("text", { x: (a[0] + b[0]) / 2 + 4, y: (a[1] + b[1]) / 2, class: "edge-label" });
      label.textContent = edge.action;
      group.append(label);
    }
    return group;
  }

  // -- timeline and steps ------------------------------------------------------------

  function drawTimeline(doc) {
    timeline.replaceChildren();
    for (const step of doc.timeline) {
      const tr = el(
        "tr",
        { "data-seq": step.seq, class: step.seq === selected ? "selected" : null },
        el("td", { class: "num" }, step.seq),
        el("td", {}, step.node || (step.seq === 0 ? "(start)" : "(reply)")),
        el("td", {}, step.action === null ? "—" : step.action),
        el("td", { class: "num" }, step.duration_ms === null ? "—" : step.duration_ms.toFixed(1)),
        el("td", { class: "num" }, bytes(step.bytes) + (step.snapshot ? " ◆" : "")),
        el("td", { class: "num" }, step.retries),
        el("td", {}, step.next || "—"),
      );
      tr.addEventListener("click", () => {
        followLatest = step.seq === doc.steps;
        selectStep(step.seq);
      });
      timeline.append(tr);
    }
    const note = document.getElementById("timeline-note");
    note.textContent = doc.timeline_total > doc.timeline.length
      ? "(latest " + doc.timeline.length + " of " + doc.timeline_total + ")"
      : "";
  }

  async function selectStep(seq) {
    selected = seq;
    for (const tr of timeline.children) tr.classList.toggle("selected", Number(tr.dataset.seq) === seq);
    document.getElementById("step-no").textContent = String(seq);
    try {
      const step = await api(path("/steps/" + seq));
      if (selected !== seq) return;
      document.getElementById("shared").textContent = JSON.stringify(step.display, null, 2);
      drawOffloaded(step);
      drawDiff(step.diff);
    } catch (err) {
      message(err.message, "error");
    }
  }

  function drawOffloaded(step) {
    const box = document.getElementById("offloaded");
    box.replaceChildren();
    for (const [key, info] of Object.entries(step.offloaded)) {
      const out = el("pre", { class: "json", hidden: true });
      const button = el("button", { type: "button", class: "load" }, "Load");
      button.addEventListener("click", async () => {
        try {
          const doc = await api(path("/steps/" + step.seq + "/value?key=" + encodeURIComponent(key)));
          out.textContent = JSON.stringify(doc.value, null, 2);
          out.hidden = false;
          button.hidden = true;
        } catch (err) {
          message(err.message, "error");
        }
      });
      box.append(el("div", { class: "offloaded", "data-key": key }, el("code", {}, key), " — " + bytes(info.size) + " of JSON, kept in the blob store ", button, out));
    }
  }

  function drawDiff(d) {
    const list = document.getElementById("diff");
    list.replaceChildren();
    if (!d.changes.length) list.append(el("li", { class: "muted" }, "nothing changed in shared"));
    for (const c of d.changes) {
      const where = c.path.map((p) => (typeof p === "number" ? "[" + p + "]" : "." + p)).join("");
      const item = el("li", { class: c.op }, el("span", { class: "op" }, c.op), " ", el("code", {}, where.replace(/^\./, "")));
      if (c.op !== "added") item.append(" ", el("span", { class: "before" }, JSON.stringify(c.before)));
      if (c.op === "changed") item.append(" → ");
      if (c.op !== "removed") item.append(" ", el("span", { class: "after" }, JSON.stringify(c.after)));
      list.append(item);
    }
    if (d.total > d.changes.length) list.append(el("li", { class: "muted" }, "… and " + (d.total - d.changes.length) + " more"));
  }

  // -- actions ----------------------------------------------------------------------

  async function act(name, body, title, text) {
    if (!(await confirmDialog(title, text))) return;
    try {
      const result = await post(path("/" + name), body);
      message(result.message, "ok");
      await refresh();
    } catch (err) {
      message(err.message, "error");
    }
  }

  document.getElementById("resume").addEventListener("click", () =>
    act("resume", {}, "Resume this run?", "It continues from its last checkpoint."));
  document.getElementById("cancel").addEventListener("click", () =>
    act("cancel", {}, "Cancel this run?", "A paused run stops now; a running one before its next node."));
  document.getElementById("reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = event.target.elements.text.value;
    act("reply", { text }, "Send this reply?", text).then(() => { event.target.elements.text.value = ""; });
  });
  document.getElementById("fork").addEventListener("click", async () => {
    const at = selected === null ? run.steps : selected;
    let shared;
    try {
      shared = (await api(path("/steps/" + at))).shared;
    } catch (err) {
      message(err.message, "error");
      return;
    }
    const text = await confirmDialog(
      "Fork from step " + at + "?",
      "A new run starts from this step's shared state. Edit it first if you like (large values, not shown, are kept as they are).",
      JSON.stringify(shared, null, 2),
    );
    if (text === false) return;
    let edited;
    try {
      edited = JSON.parse(text);
    } catch (err) {
      message("the edited shared is not JSON: " + err.message, "error");
      return;
    }
    try {
      const result = await post(path("/fork"), { at, shared: edited });
      message(result.message, "ok");
      const link = el("a", { href: encodeURIComponent(result.run_id), id: "fork-link" }, "open the new run");
      document.getElementById("message").append(" — ", link);
    } catch (err) {
      message(err.message, "error");
    }
  });

  // -- loading ----------------------------------------------------------------------

  async function refresh() {
    try {
      const doc = await api(path());
      const first = run === null;
      const moved = run !== null && run.steps !== doc.steps;
      run = doc;
      header(doc);
      drawGraph(doc);
      drawTimeline(doc);
      if (first || (moved && followLatest)) await selectStep(doc.steps);
    } catch (err) {
      message(err.message, "error");
    }
  }

  Console.setupAuth(() => {
    Console.whoami();
    refresh();
  });
  Console.whoami();
  refresh();
  // Live: poll while the run can still change.
  setInterval(() => {
    if (run && !document.hidden && ["running", "paused"].includes(run.status)) refresh();
  }, 2000);
})();
