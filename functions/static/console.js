// The operator console: talks to /api/admin with the admin key typed in (kept in this page's memory only).
"use strict";

const state = { key: "", tenant: null, pending: 0 };
const LIMITS = ["daily_tokens", "monthly_tokens", "daily_usd", "monthly_usd", "rpm", "tpm"];
const $ = (id) => document.getElementById(id);

function show(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function api(method, path, body) {
  // An Entra access token (three dot-separated parts) goes as a Bearer token, an admin key as x-api-key.
  const jwt = /^[\w-]+\.[\w-]+\.[\w-]+$/.test(state.key);
  const init = { method, headers: jwt ? { authorization: `Bearer ${state.key}` } : { "x-api-key": state.key } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  // <body data-busy> while a call is out: tests (and people) can tell a settled page.
  state.pending += 1;
  document.body.dataset.busy = "true";
  try {
    const response = await fetch(`/api/admin${path}`, init);
    if (response.status === 204) return null;
    const data = await response.json();
    if (!response.ok) throw new Error(`${response.status}: ${data.detail || data.title || "request failed"}`);
    return data;
  } finally {
    state.pending -= 1;
    if (state.pending === 0) delete document.body.dataset.busy;
  }
}

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content); else td.textContent = content;
  row.append(td);
  return td;
}

function bar(used, limit, unit) {
  const wrap = document.createElement("span");
  const text = document.createElement("span");
  text.className = "amount";
  const shown = unit === "usd" ? `$${used.toFixed(used < 0.01 ? 6 : 2)}` : used.toLocaleString("en");
  if (limit === null || limit === undefined) {
    text.textContent = `${shown} (no limit)`;
    wrap.append(text);
    return wrap;
  }
  const meter = document.createElement("progress");
  meter.max = limit || 1;
  meter.value = Math.min(used, limit);
  meter.title = `${shown} of ${unit === "usd" ? "$" + limit : limit.toLocaleString("en")}`;
  text.textContent = meter.title;
  if (used >= limit) text.classList.add("over");
  wrap.append(meter, text);
  return wrap;
}

async function loadTenants() {
  const { tenants } = await api("GET", "/tenants");
  const usages = await Promise.all(tenants.map((t) => api("GET", `/tenants/${t.tenant}/usage`)));
  const body = $("tenants").querySelector("tbody");
  body.replaceChildren();
  tenants.forEach((tenant, i) => {
    const use = usages[i];
    const row = document.createElement("tr");
    row.dataset.tenant = tenant.tenant;
    if (tenant.tenant === state.tenant) row.classList.add("selected");
    cell(row, tenant.tenant + (tenant.disabled ? " (disabled)" : "")).className = tenant.disabled ? "disabled" : "";
    cell(row, bar(use.daily.tokens_used, use.daily.token_limit, "tokens")).className = "spend-day-tokens";
    cell(row, bar(use.daily.usd_spent, use.daily.usd_limit, "usd")).className = "spend-day-usd";
    cell(row, bar(use.monthly.tokens_used, use.monthly.token_limit, "tokens")).className = "spend-month-tokens";
    cell(row, bar(use.monthly.usd_spent, use.monthly.usd_limit, "usd")).className = "spend-month-usd";
    const hour = use.last_hour;
    cell(row, `${hour.requests} request${hour.requests === 1 ? "" : "s"}, ${hour.refusals} refused`).className =
      "last-hour";
    cell(row, hour.requests ? `${Math.round((100 * hour.cache_hits) / hour.requests)} %` : "–").className = "hit-rate";
    const open = document.createElement("button");
    open.textContent = "Keys and limits";
    open.className = "open";
    open.addEventListener("click", () => openTenant(tenant.tenant).catch((e) => show(e.message, true)));
    cell(row, open);
    body.append(row);
  });
  show(`Signed in. ${tenants.length} tenants; refreshed ${new Date().toLocaleTimeString()}.`);
}

async function openTenant(name) {
  state.tenant = name;
  const [tenant, use] = await Promise.all([api("GET", `/tenants/${name}`), api("GET", `/tenants/${name}/usage`)]);
  $("detail").hidden = false;
  $("detail-name").textContent = name;
  const today = Object.fromEntries(use.keys.map((k) => [k.id, k.daily]));
  const body = $("keys").querySelector("tbody");
  body.replaceChildren();
  for (const key of tenant.keys) {
    const row = document.createElement("tr");
    row.dataset.key = key.id;
    cell(row, key.id);
    cell(row, key.created || "–");
    cell(row, key.expires || "never");
    cell(row, key.last_used || "never").className = "last-used";
    cell(row, key.limits ? Object.entries(key.limits).filter(([, v]) => v !== null).map(([k, v]) => `${k} ${v}`)
      .join(", ") || "tenant's" : "tenant's");
    const day = today[key.id] || { tokens_used: 0, usd_spent: 0 };
    cell(row, bar(day.tokens_used, day.token_limit, "tokens")).className = "key-today";
    const revoke = document.createElement("button");
    revoke.textContent = "Revoke";
    revoke.className = "revoke";
    revoke.addEventListener("click", () => revokeKey(key.id).catch((e) => show(e.message, true)));
    cell(row, revoke);
    body.append(row);
  }
  for (const field of LIMITS) {
    const value = tenant.config.limits[field];
    $(`limit-${field}`).value = value === null || value === undefined ? "" : value;
  }
  $("tenants").querySelectorAll("tr").forEach((r) => r.classList.toggle("selected", r.dataset.tenant === name));
}

function number(id) {
  const text = $(id).value.trim();
  return text === "" ? null : Number(text);
}

async function createKey(event) {
  event.preventDefault();
  const limits = { daily_tokens: number("new-key-daily-tokens"), daily_usd: number("new-key-daily-usd"),
    rpm: number("new-key-rpm") };
  const body = {};
  if ($("new-key-id").value.trim()) body.id = $("new-key-id").value.trim();
  if (Object.values(limits).some((v) => v !== null)) body.limits = limits;
  const created = await api("POST", `/tenants/${state.tenant}/keys`, body);
  $("secret").textContent = created.key;
  $("secret-box").hidden = false;
  $("new-key").reset();
  await openTenant(state.tenant);
  show(`Key ${created.id} created: copy it now, it is not shown again.`);
}

async function revokeKey(id) {
  await api("DELETE", `/tenants/${state.tenant}/keys/${id}`);
  $("secret-box").hidden = true;
  await openTenant(state.tenant);
  show(`Key ${id} revoked: refused on every instance within the directory's refresh.`);
}

async function saveLimits(event) {
  event.preventDefault();
  const limits = {};
  for (const field of LIMITS) {
    limits[field] = number(`limit-${field}`);  // null removes the limit (a JSON merge patch)
  }
  await api("PATCH", `/tenants/${state.tenant}`, { limits });
  await Promise.all([loadTenants(), openTenant(state.tenant)]);
  show(`Limits of ${state.tenant} saved.`);
}

async function signIn(event) {
  event.preventDefault();
  state.key = $("admin-key").value.trim();
  try {
    await loadTenants();
    $("main").hidden = false;
    $("refresh").hidden = false;
  } catch (error) {
    $("main").hidden = true;
    show(`Sign-in failed: ${error.message}`, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", signIn);
  $("refresh").addEventListener("click", () => loadTenants().then(() => state.tenant && openTenant(state.tenant))
    .catch((e) => show(e.message, true)));
  $("new-key").addEventListener("submit", (e) => createKey(e).catch((err) => show(err.message, true)));
  $("limits").addEventListener("submit", (e) => saveLimits(e).catch((err) => show(err.message, true)));
});
