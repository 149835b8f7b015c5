"use strict";
// Command-centre dashboard: every string from the server is inserted as text, never as HTML.
const SEV = { normal: "一般", urgent: "紧急", emergency: "特急" };
const tbody = document.querySelector("#events tbody");

function cell(text) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); return td; }

function row(ev) {
  const tr = document.createElement("tr");
  tr.className = "sev-" + ev.severity;
  tr.dataset.id = ev.id;
  const loc = ev.location || {};
  tr.append(
    cell(new Date(ev.occurred_at).toLocaleString("zh-CN", { hour12: false })),
    cell(ev.type), cell(SEV[ev.severity] || ev.severity),
    cell(loc.address || loc.grid_id || ""), cell(ev.summary),
    cell((ev.source || {}).node_id + "/" + (ev.source || {}).device_id));
  return tr;
}

async function refreshStats() {
  try {
    const s = await (await fetch("/api/v1/stats")).json();
    document.getElementById("kpi-total").textContent = s.events_total;
    document.getElementById("kpi-emergency").textContent = (s.events_by_severity || {}).emergency || 0;
    document.getElementById("kpi-open").textContent = s.work_orders_open == null ? "–" : s.work_orders_open;
    document.getElementById("kpi-ontime").textContent = s.on_time_close_rate == null ? "–" : Math.round(s.on_time_close_rate * 100) + "%";
    document.getElementById("kpi-pinned").textContent = s.incidents_pinned || 0;
    document.getElementById("kpi-pinned-box").classList.toggle("alarm", (s.incidents_pinned || 0) > 0);
    const n = await (await fetch("/api/v1/nodes")).json();
    document.getElementById("kpi-nodes").textContent = n.items.filter((x) => x.online).length + " / " + n.items.length;
  } catch (e) { /* next tick */ }
}

const LEVEL = { grid: "网格件", community: "社区件", town: "镇街件", district: "区级件" };

function orderRow(o) {
  const tr = document.createElement("tr");
  tr.className = "sev-" + o.severity;
  tr.append(
    cell(new Date(o.updated_at).toLocaleString("zh-CN", { hour12: false })),
    cell(o.type), cell(LEVEL[o.level] || o.level), cell(o.step),
    cell(o.grid_name || o.grid_id || "待筛选"), cell(o.assignee_name || o.assignee_id || ""), cell(o.summary));
  return tr;
}

async function loadOrders() {
  try {
    const r = await fetch("/api/v1/work-orders?limit=50");
    if (!r.ok) return;
    const page = await r.json();
    document.querySelector("#orders tbody").replaceChildren(...page.items.map(orderRow));
  } catch (e) { /* next tick */ }
}

async function load() {
  const r = await fetch("/api/v1/events?limit=100");
  if (!r.ok) return;
  const page = await r.json();
  tbody.replaceChildren(...page.items.map(row));
}

function connect() {
  const es = new EventSource("/api/v1/stream");
  const conn = document.getElementById("conn");
  es.onopen = () => { conn.textContent = "实时连接"; };
  es.onerror = () => { conn.textContent = "重新连接中…"; };
  es.addEventListener("event", (msg) => {
    const ev = JSON.parse(msg.data);
    if (!tbody.querySelector(`tr[data-id="${CSS.escape(ev.id)}"]`)) tbody.prepend(row(ev));
    while (tbody.children.length > 200) tbody.lastChild.remove();
    refreshStats();
  });
  for (const kind of ["work_order", "incident"]) {
    es.addEventListener(kind, () => { loadOrders(); refreshStats(); });
  }
}

load(); loadOrders(); refreshStats(); connect(); setInterval(refreshStats, 5000);
