"use strict";
// Shared helpers of the dashboard and the worker's page. Every string from the server is
// inserted as text (textContent / attributes), never as HTML.
const SB = (() => {
  const SEV = { normal: "一般", urgent: "紧急", emergency: "特急" };  // lowest first: the order ranks them
  const BOARD = { party_building: "党的建设", economy: "经济发展", livelihood: "民生服务", safety_law: "平安法治" };
  const LEVEL = { grid: "网格件", community: "社区件", town: "镇街件", district: "区级件" };
  const ROLE = { admin: "管理员", command_centre: "指挥中心", board_handler: "板块专班", grid_worker: "网格员", viewer: "只读用户", system: "系统" };
  const CAM = { starting: "启动中", online: "在线", reconnecting: "重连中", offline: "离线", fault: "故障", stopped: "已停止" };
  const ACTION = {
    track: "跟单确认", false_alarm: "误报", screen: "筛选", dispatch: "派单", escalate: "提级", reassign: "改派",
    accept: "接单", handle: "办结", verify: "核查", rework: "返工", rate: "评价", close: "结案", reopen: "重办", ack: "确认收到",
  };
  const STATE = {
    reported: "待跟单", tracked: "已跟单", screened: "已筛选", dispatched: "已派单", accepted: "已接单",
    handled: "已办结", verified: "已核查", rated: "已评价", closed: "已结案", false_alarm: "误报",
  };
  // what a person reads when the hub refuses: Chinese first, the hub's detail after it
  const REFUSED = {
    400: "请求有误", 401: "请先登录", 403: "无权进行此操作", 404: "未找到（或不在您的辖区）",
    409: "工单状态已变化，此操作不再可用", 413: "内容过大", 415: "文件类型不支持", 422: "填写内容有误",
    429: "尝试次数过多，请稍后再试", 503: "服务暂时不可用",
  };
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
      const detail = body && (body.detail || (body.error && body.error.message)) || "";
      let msg = REFUSED[r.status] || (r.status >= 500 ? "服务暂时不可用" : "操作未完成");
      const allowed = body && body.error && body.error.allowed;
      if (r.status === 409 && allowed) {
        msg += allowed.length ? `；当前可进行：${allowed.map((a) => ACTION[a] || a).join("、")}` : "；当前无可进行的操作";
      }
      const err = new Error(msg); err.status = r.status; err.detail = detail; err.body = body; throw err;
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

  return {
    SEV, BOARD, LEVEL, STEPS, ROLE, CAM, ACTION, STATE, TYPES, typesReady, typeName,
    el, api, duration, time, login, me, logout,
  };
})();
