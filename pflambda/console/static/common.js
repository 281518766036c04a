// pflambda console: what both pages share. Every value from the server is put into
// the page with textContent or setAttribute, never as HTML.
"use strict";

const Console = (() => {
  const marker = "/console/";
  const at = location.pathname.indexOf(marker);
  const base = (at >= 0 ? location.pathname.slice(0, at) : "") + marker;

  function credentials() {
    return {
      scheme: sessionStorage.getItem("pflambda.scheme") || "bearer",
      token: sessionStorage.getItem("pflambda.token") || "",
    };
  }

  function headers(extra) {
    const out = Object.assign({ Accept: "application/json" }, extra || {});
    const { scheme, token } = credentials();
    if (token) {
      if (scheme === "apikey") out["x-api-key"] = token;
      else out.Authorization = "Bearer " + token;
    }
    return out;
  }

  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.body ? { "Content-Type": "application/json" } : {});
    const response = await fetch(base + "api/" + path, opts);
    let doc = {};
    try {
      doc = await response.json();
    } catch (err) {
      doc = { error: "the server answered " + response.status + " without JSON" };
    }
    if (response.status === 401) showAuth();
    if (!response.ok) {
      const error = new Error(doc.error || "HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return doc;
  }

  function post(path, body) {
    return api(path, { method: "POST", body: JSON.stringify(body || {}) });
  }

  function showAuth() {
    const form = document.getElementById("auth");
    if (form) form.hidden = false;
  }

  function setupAuth(onChange) {
    const form = document.getElementById("auth");
    if (!form) return;
    const { scheme } = credentials();
    form.elements.scheme.value = scheme;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem("pflambda.scheme", form.elements.scheme.value);
      sessionStorage.setItem("pflambda.token", form.elements.token.value);
      form.elements.token.value = "";
      form.hidden = true;
      onChange();
    });
  }

  async function whoami() {
    const who = document.getElementById("who");
    try {
      const me = await api("me");
      who.textContent = me.principal + (me.operator ? " (operator: every run)" : " (your runs)");
    } catch (err) {
      who.textContent = "";
    }
  }

  // el("td", {class: "x"}, "text", child): text children become text nodes.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  function age(seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 60) return Math.round(seconds) + " s";
    if (seconds < 3600) return Math.round(seconds / 60) + " min";
    if (seconds < 86400) return (seconds / 3600).toFixed(1) + " h";
    return (seconds / 86400).toFixed(1) + " d";
  }

  function bytes(n) {
    if (n === null || n === undefined) return "";
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function when(epoch) {
    return new Date(epoch * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function status(run) {
    const span = el("span", { class: "status " + (run.stalled ? "stalled" : run.status) });
    span.textContent = run.stalled ? "stalled" : run.status;
    return span;
  }

  function message(text, kind) {
    const box = document.getElementById("message");
    if (!box) return;
    box.hidden = !text;
    box.className = "message " + (kind || "info");
    box.textContent = text || "";
  }

  // A confirmation dialog; resolves to true (confirmed) or false. With ``json``, it
  // shows an editable textarea and resolves to its text instead of true.
  function confirmDialog(title, text, json) {
    const dialog = document.getElementById("dialog");
    document.getElementById("dialog-title").textContent = title;
    document.getElementById("dialog-text").textContent = text;
    const area = document.getElementById("dialog-json");
    area.hidden = json === undefined;
    area.value = json === undefined ? "" : json;
    return new Promise((resolve) => {
      dialog.addEventListener(
        "close",
        () => resolve(dialog.returnValue === "ok" ? (json === undefined ? true : area.value) : false),
        { once: true },
      );
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  return { api, post, base, setupAuth, whoami, el, svg, age, bytes, when, status, message, confirmDialog };
})();
