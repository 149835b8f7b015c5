"use strict";
// Shared helpers of the dashboard and the worker's page. Every string from the server is
// inserted as text (textContent / attributes), never as HTML.
const SB = (() => {
  const SEV = { normal: "一般", urgent: "紧急", emergency: "特急" };
  const BOARD = { party_building: "党的建设", economy: "经济发展", livelihood: "民生服务", safety_law: "平安法治" };
  const LEVEL = { grid: "网格件", community: "社区件", town: "镇街件", district: "区级件" };
  const STEPS = [
    ["reported", "双网点单"], ["tracked", "网格跟单"], ["screened", "筛选订单"], ["dispatched", "提级派单"],
    ["accepted", "板块接单"], ["handled", "现场办单"], ["verified", "核查"], ["rated", "群众评单"],
  ];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = String(v);
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c == null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // Mutations carry the CSRF header: the session lives in an HttpOnly SameSite cookie.
  async function api(path, opts) {
    const o = Object.assign({ credentials: "same-origin" }, opts || {});
    o.headers = Object.assign({}, o.headers || {});
    if (o.method && o.method !== "GET") o.headers["X-Shaobing-CSRF"] = "1";
    if (o.json !== undefined) { o.body = JSON.stringify(o.json); o.headers["Content-Type"] = "application/json"; delete o.json; }
    const r = await fetch(path, o);
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      const msg = body && (body.detail || (body.error && body.error.message)) || ("HTTP " + r.status);
      const err = new Error(msg); err.status = r.status; throw err;
    }
    return body;
  }

  function duration(s) {
    if (s == null || isNaN(s)) return "–";
    const neg = s < 0; s = Math.abs(Math.round(s));
    let out;
    if (s < 60) out = s + "秒";
    else if (s < 3600) out = Math.floor(s / 60) + "分" + (s % 60 ? (s % 60) + "秒" : "");
    else if (s < 86400) out = Math.floor(s / 3600) + "小时" + Math.floor((s % 3600) / 60) + "分";
    else out = Math.floor(s / 86400) + "天" + Math.floor((s % 86400) / 3600) + "小时";
    return (neg ? "-" : "") + out;
  }

  function time(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString("zh-CN", { hour12: false });
  }

  async function login(name, password) {
    return api("/api/v1/login?cookie=true", { method: "POST", json: { name, password } });
  }

  async function me() {
    try { return await api("/api/v1/me"); } catch (e) { return null; }
  }

  async function logout() {
    try { await api("/api/v1/logout", { method: "POST" }); } catch (e) { /* gone anyway */ }
  }

  // Chinese names of the event types (one Open311 service per taxonomy type)
  const TYPES = {};
  const typesReady = fetch("/open311/v2/services.json").then((r) => r.json()).then((list) => {
    for (const s of list) TYPES[s.service_code] = s.service_name;
  }).catch(() => {});
  const typeName = (code) => TYPES[code] || code;

  return { SEV, BOARD, LEVEL, STEPS, TYPES, typesReady, typeName, el, api, duration, time, login, me, logout };
})();
