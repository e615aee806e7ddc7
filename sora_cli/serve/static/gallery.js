// The sora gallery: jobs newest first, live over server-sent events. No framework,
// no build step. Server text (prompts, labels, errors) is only ever set as
// textContent, never parsed as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ACTIVE = new Set(["queued", "submitting", "running", "downloading"]);
  const RETRYABLE = new Set(["failed", "cancelled", "expired"]);
  const state = {
    token: sessionStorage.getItem("sora-token"),
    access: null, next: null, events: null, spendTimer: null,
    cards: new Map(), labels: new Set(), providers: new Set(["openai"]),
  };

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, options = {}) {
    const headers = new Headers();
    if (state.token) headers.set("Authorization", "Bearer " + state.token);
    const init = { method: options.method || "GET", headers };
    if (options.json !== undefined) {
      headers.set("Content-Type", "application/json");
      init.body = JSON.stringify(options.json);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (_) { data = null; }
    if (res.status === 401) askToken();
    if (!res.ok) throw new ApiError(res.status, (data && data.detail) || res.statusText);
    return data;
  }

  function withAccess(url) {
    if (!state.access) return url;
    return url + (url.includes("?") ? "&" : "?") + "access=" + encodeURIComponent(state.access);
  }

  function askToken() {
    if (state.events) { state.events.close(); state.events = null; }
    $("token-form").hidden = false;
    $("token").focus();
  }

  const providerOf = (job) => job.provider || "openai";
  const money = (usd) => (usd === null || usd === undefined ? "–" : "$" + usd.toFixed(2));

  // --- filters ------------------------------------------------------------------

  function filters() {
    return {
      status: $("f-status").value, label: $("f-label").value.trim(),
      provider: $("f-provider").value, q: $("f-search").value.trim(),
    };
  }

  function query(extra) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries({ ...filters(), ...extra })) {
      if (value) params.set(key, value);
    }
    params.set("limit", "24");
    return "/api/jobs?" + params.toString();
  }

  function matches(job) {
    const f = filters();
    if (f.status && job.status !== f.status) return false;
    if (f.label && job.label !== f.label) return false;
    if (f.provider && providerOf(job) !== f.provider) return false;
    return !f.q || job.prompt.toLowerCase().includes(f.q.toLowerCase());
  }

  function remember(job) {
    const before = state.labels.size + state.providers.size;
    if (job.label) state.labels.add(job.label);
    state.providers.add(providerOf(job));
    if (state.labels.size + state.providers.size === before) return;
    fillOptions($("labels"), [...state.labels].sort(), false);
    const chosen = $("f-provider").value;
    fillOptions($("f-provider"), ["", ...[...state.providers].sort()], true);
    $("f-provider").value = chosen;
  }

  function fillOptions(list, values, withAny) {
    list.replaceChildren(...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = value === "" && withAny ? "any" : value;
      return option;
    }));
  }

  // --- cards ------------------------------------------------------------------------

  function renderCard(card, job) {
    const active = ACTIVE.has(job.status);
    card.dataset.id = job.id;
    card.dataset.status = job.status;
    card.dataset.created = job.created_at;
    card.dataset.label = job.label || "";
    card.classList.toggle("active", active);
    const status = card.querySelector(".status");
    status.textContent = job.status;
    status.dataset.status = job.status;
    card.querySelector(".percent").textContent = active ? job.progress + "%" : "";
    const bar = card.querySelector("progress");
    bar.value = job.progress;
    bar.setAttribute("aria-label", "Progress of job " + job.id);
    card.querySelector(".prompt").textContent = job.prompt;
    const meta = [providerOf(job) + " / " + job.model.replace(/^[^:]*:/, ""),
      job.seconds + " s", job.size,
      job.estimated_cost_usd === null ? "no price" : "~" + money(job.estimated_cost_usd)];
    if (job.label) meta.push("label: " + job.label);
    meta.push(job.id);
    card.querySelector(".meta").textContent = meta.join(" · ");
    card.querySelector(".problem").textContent = job.error ? job.error.message : "";
    renderMedia(card, job);
    renderActions(card, job);
  }

  function renderMedia(card, job) {
    const box = card.querySelector(".media");
    const playable = job.status === "completed" && job.output_path;
    const video = box.querySelector("video");
    if (playable && !video) {
      const v = document.createElement("video");
      v.controls = true;
      v.preload = "metadata";
      v.playsInline = true;
      v.setAttribute("aria-label", "Video of job " + job.id);
      if (job.thumbnail_path) v.poster = withAccess("/api/jobs/" + job.id + "/thumbnail");
      v.src = withAccess("/api/jobs/" + job.id + "/video");
      box.replaceChildren(v);
    } else if (!playable && !box.querySelector(".placeholder")) {
      const p = document.createElement("div");
      p.className = "placeholder";
      p.setAttribute("aria-hidden", "true");
      box.replaceChildren(p);
    }
  }

  function renderActions(card, job) {
    const actions = card.querySelector(".actions");
    const buttons = [];
    if (ACTIVE.has(job.status)) buttons.push(actionButton("Cancel", job, "cancel"));
    if (RETRYABLE.has(job.status)) buttons.push(actionButton("Retry", job, "retry"));
    actions.replaceChildren(...buttons);
  }

  function actionButton(text, job, action) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = text;
    button.setAttribute("aria-label", text + " job " + job.id);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        upsert(await api("/api/jobs/" + job.id + "/" + action, { method: "POST", json: {} }));
      } catch (err) {
        card.querySelector(".problem").textContent = err.message;
        button.disabled = false;
      }
    });
    return button;
  }

  function newCard() {
    return $("card-template").content.firstElementChild.cloneNode(true);
  }

  function upsert(job) {
    remember(job);
    const card = state.cards.get(job.id);
    if (card) {
      const was = card.dataset.status;
      if (!matches(job)) { removeCard(job.id); return; }
      renderCard(card, job);
      if (was !== job.status) announce("Job " + job.id + " is " + job.status);
      if (job.status !== was && !ACTIVE.has(job.status)) scheduleSpend();
      return;
    }
    if (!matches(job)) return;
    const grid = $("grid");
    const later = [...grid.children].find((c) => c.dataset.created < job.created_at);
    if (!later && state.next) return; // belongs to a page not loaded yet
    const fresh = newCard();
    renderCard(fresh, job);
    grid.insertBefore(fresh, later || null);
    state.cards.set(job.id, fresh);
    $("empty").hidden = true;
  }

  function removeCard(id) {
    const card = state.cards.get(id);
    if (card) card.remove();
    state.cards.delete(id);
    $("empty").hidden = state.cards.size > 0;
  }

  function announce(text) { $("live").textContent = text; }

  // --- loading ------------------------------------------------------------------------

  async function reload() {
    try {
      const page = await api(query({}));
      $("grid").replaceChildren();
      state.cards.clear();
      state.next = null;
      for (const job of page.jobs) upsert(job);
      state.next = page.next_before;
      $("more").hidden = !state.next;
      $("empty").hidden = page.jobs.length > 0;
      $("load-error").textContent = "";
    } catch (err) {
      $("load-error").textContent = err.message;
    }
  }

  async function more() {
    if (!state.next) return;
    const page = await api(query({ before: state.next }));
    const grid = $("grid");
    for (const job of page.jobs) {
      if (state.cards.has(job.id)) continue;
      const card = newCard();
      renderCard(card, job);
      remember(job);
      grid.appendChild(card);
      state.cards.set(job.id, card);
    }
    state.next = page.next_before;
    $("more").hidden = !state.next;
  }

  async function refreshSpend() {
    const s = await api("/api/spend");
    $("spend-today").textContent = "~" + money(s.today_usd) +
      (s.max_daily_cost !== null ? " of " + money(s.max_daily_cost) : "");
    $("spend-total").textContent = "~" + money(s.total_usd);
  }

  function scheduleSpend() {
    clearTimeout(state.spendTimer);
    state.spendTimer = setTimeout(() => refreshSpend().catch(() => {}), 300);
  }

  function connectEvents() {
    if (state.events) state.events.close();
    const events = new EventSource(withAccess("/api/events"));
    let opened = false;
    events.addEventListener("open", () => {
      if (opened) reload(); // a reconnect: changes may have been missed
      opened = true;
    });
    events.addEventListener("job", (e) => upsert(JSON.parse(e.data)));
    events.addEventListener("gone", (e) => removeCard(JSON.parse(e.data).id));
    state.events = events;
  }

  // --- the forms ----------------------------------------------------------------------

  function fillForm(info) {
    fillOptions($("models"), info.models, false);
    fillOptions($("seconds"), info.seconds.map(String), false);
    fillOptions($("size"), info.sizes, false);
    fillOptions($("f-status"), ["", ...info.statuses], true);
    $("model").value = info.defaults.model;
    $("seconds").value = String(info.defaults.seconds);
    $("size").value = info.defaults.size;
  }

  async function submit(event) {
    event.preventDefault();
    const error = $("submit-error");
    error.textContent = "";
    const body = {
      prompt: $("prompt").value, model: $("model").value.trim() || null,
      seconds: Number($("seconds").value), size: $("size").value,
      label: $("label").value.trim() || null,
    };
    try {
      const job = await api("/api/jobs", { method: "POST", json: body });
      $("prompt").value = "";
      upsert(job);
      announce("Submitted job " + job.id);
      scheduleSpend();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  let filterTimer = null;
  function onFilter() {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(reload, 250);
  }

  async function start() {
    try {
      const info = await api("/api/info");
      state.access = info.access;
      fillForm(info);
      $("token-form").hidden = true;
      await Promise.all([reload(), refreshSpend()]);
      connectEvents();
    } catch (err) {
      if (err.status !== 401) $("load-error").textContent = err.message;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("submit-form").addEventListener("submit", submit);
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.token = $("token").value;
      sessionStorage.setItem("sora-token", state.token);
      $("token").value = "";
      start();
    });
    for (const id of ["f-status", "f-provider"]) $(id).addEventListener("change", onFilter);
    for (const id of ["f-label", "f-search"]) $(id).addEventListener("input", onFilter);
    $("more").addEventListener("click", () => more().catch((err) => {
      $("load-error").textContent = err.message;
    }));
    start();
  });
})();
