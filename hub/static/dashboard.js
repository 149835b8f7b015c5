"use strict";
// Command-centre dashboard: live over /api/v1/stream (SSE). Every string from the server is
// inserted as text (textContent), never as HTML.
(() => {
  const { SEV, BOARD, LEVEL, STEPS, ROLE, CAM, el, api, duration, time } = SB;
  const OPEN_INC = (i) => !["closed", "false_alarm", "resolved"].includes(i.state);
  const state = {
    user: null, incidents: [], orders: [], registry: null, grids: [], gridFilter: null,
    town: null, early: [], sound: localStorage.getItem("sb.sound") === "on", heard: new Set(), audio: null,
  };
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ login
  async function refreshUser() {
    const u = await SB.me();
    state.user = u && u.name !== "anonymous" ? u : null;
    $("who").textContent = state.user ? `${state.user.name}（${ROLE[state.user.role] || state.user.role}）`
      : (u && u.anonymous ? "未登录：匿名只读已开启（auth.anonymous_read），登录后可操作" : "只读");
    $("login").hidden = !!state.user;
    $("logout").hidden = !state.user;
    renderPinned();
    return u;
  }
  $("login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-msg").textContent = "";
    try {
      await SB.login($("login-name").value, $("login-pass").value);
      $("login-pass").value = "";
      await refreshUser();
      loadAll();
    } catch (err) { $("login-msg").textContent = "登录失败：" + err.message; }
  });
  $("logout").addEventListener("click", async () => { await SB.logout(); await refreshUser(); });

  // ------------------------------------------------------------------ sound
  function renderSound() {
    $("sound").textContent = state.sound ? "声音：开" : "声音：关";
    $("sound").setAttribute("aria-pressed", String(state.sound));
  }
  $("sound").addEventListener("click", () => {
    state.sound = !state.sound;
    localStorage.setItem("sb.sound", state.sound ? "on" : "off");
    if (state.sound && !state.audio && window.AudioContext) state.audio = new AudioContext();
    renderSound();
    if (state.sound) beep();
  });
  function beep() {
    if (!state.sound || !state.audio) return;
    const ctx = state.audio, o = ctx.createOscillator(), g = ctx.createGain();
    o.type = "square"; o.frequency.value = 880; g.gain.value = 0.08;
    o.connect(g); g.connect(ctx.destination);
    o.start(); o.stop(ctx.currentTime + 0.35);
  }

  // ------------------------------------------------------------------ emergencies
  function orderOf(inc) { return state.orders.find((o) => o.incident_id === inc.id); }

  // An emergency event is shown the moment the feed brings it, before its incident is filed;
  // the card gives way to the incident's own once the incident list holds it.
  function filed(ev) {
    const at = Date.parse(ev.occurred_at) - 1000, grid = (ev.location || {}).grid_id;
    return state.incidents.some((i) => i.type === ev.type && (!grid || !i.grid_id || i.grid_id === grid) && Date.parse(i.last_at) >= at);
  }
  function earlyCard(ev) {
    const loc = ev.location || {};
    return el("article", { class: "red-card flashing early", dataset: { event: ev.id } },
      el("div", { class: "red-title" }, el("strong", { text: SB.typeName(ev.type) }), " ",
        el("span", { class: "place", text: loc.address || gridName(loc.grid_id) || "位置待定" })),
      el("div", { class: "red-summary", text: ev.summary }),
      el("div", { class: "red-meta", text: `${time(ev.occurred_at)} · 收到告警，正在立案…` }));
  }

  function renderPinned() {
    const box = $("pinned");
    const now = Date.now();
    state.early = state.early.filter((x) => now - x.seen < 15000 && !filed(x.ev));
    const reds = state.incidents.filter((i) => i.severity === "emergency" && OPEN_INC(i));
    reds.sort((a, b) => (b.pinned - a.pinned) || (a.first_at < b.first_at ? 1 : -1));
    if (!reds.length && !state.early.length) { box.replaceChildren(el("p", { class: "empty", text: "暂无紧急事件" })); return; }
    let fresh = false;
    for (const x of state.early) if (!state.heard.has(x.ev.id)) { state.heard.add(x.ev.id); fresh = true; }
    box.replaceChildren(...state.early.map((x) => earlyCard(x.ev)), ...reds.map((i) => {
      const unacked = i.pinned && !i.acked_at;
      if (unacked && !state.heard.has(i.id)) { state.heard.add(i.id); fresh = true; }
      const wo = orderOf(i);
      const card = el("article", { class: "red-card" + (unacked ? " flashing" : " acked"), dataset: { id: i.id } },
        el("div", { class: "red-title" },
          el("strong", { text: i.type_name || i.type }), " ",
          el("span", { class: "place", text: i.grid_name || i.address || i.grid_id || "位置待定" })),
        el("div", { class: "red-summary", text: i.summary }),
        saidLine(i),
        el("div", { class: "red-meta", text: `首报 ${time(i.first_at)} · ${i.event_count} 条事件` +
          (wo ? ` · ${wo.step} · ${wo.assignee_name || ""}` : "") }),
        evidenceThumbs(i));
      if (unacked) {
        const btn = el("button", { class: "ack", type: "button", text: "确认收到" });
        btn.disabled = !state.user;
        btn.title = state.user ? "" : "登录后可确认";
        btn.addEventListener("click", async () => {
          btn.disabled = true;
          try { await api(`/api/v1/incidents/${encodeURIComponent(i.id)}/ack`, { method: "POST", json: {} }); loadIncidents(); }
          catch (err) { btn.disabled = false; btn.textContent = "确认失败：" + err.message; }
        });
        card.append(btn);
      } else {
        card.append(el("div", { class: "acked-by", text: `已确认：${i.acked_by || ""} ${time(i.acked_at)}` }));
      }
      return card;
    }));
    if (fresh) beep();
  }

  // what the reporter said (the transcript of a voice report) or what a photo showed
  function saidLine(inc) {
    const said = inc.said || {};
    const parts = [];
    if (said.transcript) parts.push(`语音：“${said.transcript}”`);
    else if (said.text) parts.push(`文字：“${said.text}”`);
    if (said.photo_type_name) parts.push(`照片识别为：${said.photo_type_name}`);
    return parts.length ? el("div", { class: "red-said", text: parts.join(" · ") }) : null;
  }

  function evidenceThumbs(inc) {
    const span = el("span", { class: "thumbs" });
    for (const ev of (inc.evidence || []).slice(0, 4)) {
      const url = `/api/v1/evidence/${encodeURIComponent(ev.id)}?node_id=${encodeURIComponent(ev.node_id || "")}`;
      const a = el("a", { href: url, target: "_blank", rel: "noopener", title: ev.kind });
      if (ev.kind === "image") a.append(el("img", { src: url, alt: "证据", loading: "lazy" }));
      else a.append(el("span", { class: "clip", text: ({ clip: "▶ 视频", audio: "▶ 录音", text: "文本" })[ev.kind] || ev.kind }));
      span.append(a);
    }
    return span;
  }

  // ------------------------------------------------------------------ incident list
  function renderIncidents() {
    const now = Date.now();
    const list = state.incidents.filter((i) => !state.gridFilter || i.grid_id === state.gridFilter);
    $("incidents").querySelector("tbody").replaceChildren(...list.map((i) => {
      const wo = orderOf(i);
      let sla = "–", late = false;
      if (wo && !["closed", "false_alarm"].includes(wo.state)) {
        const due = wo.accepted_at ? wo.handle_due_at : (wo.accept_due_at || wo.handle_due_at);
        if (due) { const left = (Date.parse(due) - now) / 1000; sla = (left < 0 ? "超时 " : "剩余 ") + duration(Math.abs(left)); late = left < 0; }
      } else if (wo) sla = wo.state === "closed" ? "已结案" : "误报";
      const tr = el("tr", { class: "sev-" + i.severity + (i.pinned ? " is-pinned" : ""), dataset: { id: i.id } },
        el("td", { text: i.type_name || i.type }),
        el("td", { text: i.grid_name || i.address || i.grid_id || "待定" }),
        el("td", { text: SEV[i.severity] || i.severity }),
        el("td", { text: wo ? (BOARD[wo.board] || wo.board || "") : "" }),
        el("td", { class: "age", dataset: { since: i.first_at }, text: duration((now - Date.parse(i.first_at)) / 1000) }),
        el("td", { class: "sla" + (late ? " late" : ""), dataset: { due: slaDue(wo) || "" }, text: sla }),
        el("td", { class: "summary", text: i.summary }),
        el("td", {}, evidenceThumbs(i)));
      return tr;
    }));
  }

  function slaDue(wo) {
    if (!wo || ["closed", "false_alarm"].includes(wo.state)) return null;
    return wo.accepted_at ? wo.handle_due_at : (wo.accept_due_at || wo.handle_due_at);
  }
  function tick() {
    const now = Date.now();
    for (const td of document.querySelectorAll("#incidents td.age")) td.textContent = duration((now - Date.parse(td.dataset.since)) / 1000);
    for (const td of document.querySelectorAll("#incidents td.sla[data-due]")) {
      if (!td.dataset.due) continue;
      const left = (Date.parse(td.dataset.due) - now) / 1000;
      td.textContent = (left < 0 ? "超时 " : "剩余 ") + duration(Math.abs(left));
      td.classList.toggle("late", left < 0);
    }
  }

  // ------------------------------------------------------------------ work orders by step
  // the seven steps (7单流程); 核查 is the check of step 6, not a step of its own
  const STEP_NO = { reported: "1", tracked: "2", screened: "3", dispatched: "4", accepted: "5", handled: "6", rated: "7" };
  const HEALTH = {
    black: "黑屏", frozen: "画面冻结", covered: "遮挡", blurred: "模糊", tampered: "被移动",
    source_lost: "信号中断", unreachable: "无法连接",
  };
  function renderSteps() {
    const box = $("steps");
    const cols = STEPS.map(([code, name], n) => {
      const items = state.orders.filter((o) => o.state === code && (!state.gridFilter || o.grid_id === state.gridFilter));
      return el("div", { class: "step", dataset: { state: code } },
        el("h3", { text: `${STEP_NO[code] ? STEP_NO[code] + " " : "↳ "}${name}` }, el("span", { class: "count", text: String(items.length) })),
        el("ul", {}, ...items.slice(0, 30).map((o) => el("li", { class: "sev-" + o.severity, dataset: { id: o.id } },
          el("span", { class: "t", text: o.summary }),
          el("span", { class: "m", text: `${LEVEL[o.level] || o.level || ""} · ${o.grid_name || o.grid_id || "待筛选"} · ${o.assignee_name || ""}` })))));
    });
    const done = state.orders.filter((o) => o.state === "closed").length;
    cols.push(el("div", { class: "step done" }, el("h3", { text: "结案" }, el("span", { class: "count", text: String(done) }))));
    box.replaceChildren(...cols);
  }

  // ------------------------------------------------------------------ one work order
  // Its facts, a button for each step the signed-in person may take now, and its history
  // (who, when, from → to, notes, photos). A refused step says why, in Chinese, and the
  // note stays as typed.
  const { ACTION, STATE } = SB;
  const DANGER = new Set(["false_alarm", "rework", "reopen", "escalate"]);
  let openOrder = null;
  async function showOrder(id) {
    openOrder = id;
    $("order-msg").textContent = "";
    let wo, trail;
    try {
      [wo, trail] = await Promise.all([
        api(`/api/v1/work-orders/${encodeURIComponent(id)}`),
        api(`/api/v1/work-orders/${encodeURIComponent(id)}/transitions`),
      ]);
    } catch (err) { $("order-msg").textContent = err.message; $("order-dlg").showModal(); return; }
    $("order-title").textContent = `${SB.typeName(wo.type)} · ${wo.step}`;
    const row = (k, v) => el("div", {}, el("span", { class: "k", text: k }), String(v == null || v === "" ? "–" : v));
    const link = wo.rating_code ? `${location.origin}/r/${wo.rating_code}` : "";
    $("order-info").replaceChildren(
      row("摘要", wo.summary), row("级别", SEV[wo.severity] || wo.severity),
      row("层级", `${LEVEL[wo.level] || wo.level || ""} · ${BOARD[wo.board] || wo.board || ""}`),
      row("网格", wo.grid_name || wo.grid_id || "待核实位置"),
      row("办理人", wo.assignee_name || wo.assignee_id), row("状态", STATE[wo.state] || wo.state),
      link ? el("div", {}, el("span", { class: "k", text: "群众评价" }),
        el("a", { href: link, target: "_blank", rel: "noopener", text: link })) : null);
    const mine = (wo.my_actions || []).filter((a) => a !== "ack");
    $("order-reason-box").hidden = !mine.includes("false_alarm");
    $("order-rating-box").hidden = !mine.includes("rate");
    $("order-buttons").replaceChildren(...mine.map((a) => {
      const b = el("button", { type: "button", class: DANGER.has(a) ? "danger" : "", dataset: { action: a }, text: ACTION[a] || a });
      b.addEventListener("click", () => act(wo.id, a, b));
      return b;
    }));
    if (!mine.length) $("order-buttons").replaceChildren(el("span", { class: "empty", text: state.user ? "此状态下您无可办理的步骤" : "登录后可办理" }));
    $("order-history").replaceChildren(...trail.items.map((t) => el("li", {},
      el("span", { class: "who", text: `${time(t.at)} · ${t.actor} · ` }),
      `${ACTION[t.action] || t.action}：${STATE[t.from] || t.from} → ${STATE[t.to] || t.to}`,
      t.note ? el("div", { text: t.note }) : null,
      t.data && t.data.reason ? el("div", { text: "原因：" + t.data.reason }) : null,
      t.data && t.data.rating ? el("div", { text: "评分：" + t.data.rating }) : null,
      ...(t.photos || []).map((p) => el("a", { href: `/api/v1/uploads/${encodeURIComponent(p)}`, target: "_blank", rel: "noopener" },
        el("img", { src: `/api/v1/uploads/${encodeURIComponent(p)}`, alt: "办理照片", loading: "lazy" }))))));
    if (!$("order-dlg").open) $("order-dlg").showModal();
  }
  async function act(id, action, button) {
    const body = { action, note: $("order-note").value };
    if (action === "false_alarm") body.reason = $("order-reason").value;
    if (action === "rate") body.rating = Number($("order-rating").value);
    button.disabled = true;
    $("order-msg").textContent = "";
    try {
      await api(`/api/v1/work-orders/${encodeURIComponent(id)}/transitions`, { method: "POST", json: body });
      $("order-note").value = "";
      loadOrders(); loadIncidents();
      await showOrder(id);
    } catch (err) {
      // the note stays as typed; the reason is said in Chinese
      $("order-msg").textContent = `未能${ACTION[action] || action}：${err.message}`;
      button.disabled = false;
    }
  }
  $("steps").addEventListener("click", (e) => {
    const li = e.target.closest("li[data-id]");
    if (li) showOrder(li.dataset.id);
  });
  $("order-dlg").addEventListener("close", () => { openOrder = null; });

  // ------------------------------------------------------------------ KPIs
  const pct = (x) => (x == null ? "–" : Math.round(x * 100) + "%");
  async function loadStats() {
    try {
      const s = await api("/api/v1/stats");
      $("kpi-ontime").textContent = pct(s.on_time_close_rate);
      $("kpi-close").textContent = pct(s.close_rate);
      $("kpi-rework").textContent = pct(s.rework_rate);
      $("kpi-accept").textContent = duration(s.avg_accept_s);
      $("kpi-closetime").textContent = duration(s.avg_close_s);
      $("kpi-open").textContent = s.work_orders_open == null ? "–" : s.work_orders_open;
      $("kpi-total").textContent = s.events_total;
      $("kpi-pinned").textContent = s.incidents_pinned || 0;
      $("kpi-pinned-box").classList.toggle("alarm", (s.incidents_pinned || 0) > 0);
      drawTrend(s.incidents_trend || []);
    } catch (e) { /* next tick */ }
  }
  function drawTrend(points) {
    const svg = $("trend"), NS = "http://www.w3.org/2000/svg";
    const pts = points.slice(-14), max = Math.max(1, ...pts.map((p) => p.count));
    const w = 140 / Math.max(1, pts.length);
    svg.replaceChildren(...pts.map((p, k) => {
      const r = document.createElementNS(NS, "rect"), h = (p.count / max) * 38;
      r.setAttribute("x", String(k * w + 1)); r.setAttribute("width", String(Math.max(1, w - 2)));
      r.setAttribute("y", String(40 - h)); r.setAttribute("height", String(h));
      const t = document.createElementNS(NS, "title"); t.textContent = `${p.date}：${p.count}`; r.append(t);
      return r;
    }));
  }

  // ------------------------------------------------------------------ nodes
  async function loadNodes() {
    try {
      const n = await api("/api/v1/nodes");
      $("nodes").replaceChildren(...n.items.map((x) => {
        const cams = (x.status && x.status.cameras) || [];
        const li = el("li", { class: x.online ? "online" : "offline", dataset: { node: x.node_id } },
          el("strong", { text: x.node_id }), " ",
          el("span", { class: "badge", text: x.online ? "在线" : "离线" }), " ",
          el("span", { class: "m", text: "更新 " + time(x.updated_at) }));
        if (cams.length) {
          li.append(el("ul", { class: "cams" }, ...cams.map((c) => el("li", { class: "cam-" + c.state },
            `${c.id} · ${CAM[c.state] || c.state}` + (c.health ? ` · ${HEALTH[c.health] || c.health}` : "") +
            (c.fps_in ? ` · ${c.fps_in.toFixed(1)}帧/秒` : "")))));
        }
        return li;
      }));
      if (!n.items.length) $("nodes").replaceChildren(el("li", { class: "empty", text: "暂无节点" }));
    } catch (e) { /* next tick */ }
  }

  // ------------------------------------------------------------------ false alarms
  // Which camera and rule raise false alarms, and why; the command centre silences a noisy
  // source for a day with one click (audited at the hub).
  async function loadFalseAlarms() {
    const box = $("false-alarms");
    let stats;
    try { stats = (await api("/api/v1/stats")).false_alarms; } catch (e) { return; }
    const week = (stats && stats["7d"]) || { total: 0, by_camera: [], by_reason: {} };
    let sources = [];
    const staff = state.user && ["admin", "command_centre"].includes(state.user.role);
    if (staff) { try { sources = (await api("/api/v1/sources")).items; } catch (e) { sources = []; } }
    if (!week.total && !sources.some((x) => x.suppressed_until)) { box.replaceChildren(el("p", { class: "empty", text: "近7天暂无误报" })); return; }
    const reasons = Object.entries(week.by_reason || {}).map(([r, n]) => `${r} ${n}`).join("、");
    const rows = (week.by_camera || []).map((c) => {
      const src = sources.filter((x) => x.source.startsWith(c.key + "/"));
      const cell = el("td", {});
      for (const x of src) {
        if (x.suppressed_until) cell.append(el("span", { class: "suppressed", text: `已屏蔽至 ${time(x.suppressed_until)} ` }));
        if (!staff) continue;
        const b = el("button", { type: "button", text: x.suppressed_until ? "解除屏蔽" : "屏蔽24小时", dataset: { source: x.source } });
        b.addEventListener("click", async () => {
          b.disabled = true;
          try {
            await api("/api/v1/sources/suppress", { method: "POST", json: { source: x.source, hours: x.suppressed_until ? 0 : 24, reason: "误报过多，指挥中心手动屏蔽" } });
            loadFalseAlarms();
          } catch (err) { b.disabled = false; b.textContent = err.message; }
        });
        cell.append(b);
      }
      return el("tr", {}, el("td", { text: c.key }), el("td", { text: `${c.false_alarms}/${c.orders}` }),
        el("td", { text: Math.round(c.rate * 100) + "%" }), cell);
    });
    const pipes = (week.by_pipeline || []).map((p) => `${p.key} ${Math.round(p.rate * 100)}%`).join("、");
    box.replaceChildren(el("div", { class: "reasons", text: `共 ${week.total} 次；原因：${reasons || "–"}` }),
      el("div", { class: "reasons", text: `按规则：${pipes || "–"}` }),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "摄像头/设备" }), el("th", { text: "误报/工单" }), el("th", { text: "误报率" }), el("th", { text: "" }))),
        el("tbody", {}, ...rows)));
  }

  // ------------------------------------------------------------------ map
  function walkGrids(reg) {
    const out = [];
    for (const d of reg.districts || []) for (const t of d.towns || []) for (const c of t.communities || []) {
      for (const g of c.grids || []) {
        const worker = Array.isArray(g.worker) ? g.worker[0] : g.worker;
        out.push({ id: g.id, name: g.name, community: c.name, town: t.name, townId: t.id, worker: worker ? worker.name : "", polygon: g.polygon || [] });
      }
    }
    return out;
  }
  let project = null;
  // one town at a time: the chosen one, else the one with most open incidents
  function mapTown() {
    if (state.town) return state.town;
    const count = {};
    const townOf = Object.fromEntries(state.grids.map((g) => [g.id, g.townId]));
    for (const i of state.incidents) if (OPEN_INC(i) && townOf[i.grid_id]) count[townOf[i.grid_id]] = (count[townOf[i.grid_id]] || 0) + 1;
    const best = Object.entries(count).sort((a, b) => b[1] - a[1])[0];
    return best ? best[0] : (state.grids[0] && state.grids[0].townId);
  }
  function renderTowns(current) {
    const towns = [];
    for (const g of state.grids) if (!towns.some((t) => t.id === g.townId)) towns.push({ id: g.townId, name: g.town });
    $("map-towns").replaceChildren(...towns.map((t) => el("button", {
      type: "button", class: "town" + (t.id === current ? " on" : ""), text: t.name,
      onclick: () => { state.town = t.id; drawMap(); },
    })));
  }
  function drawMap() {
    const svg = $("map"), NS = "http://www.w3.org/2000/svg";
    const town = mapTown();
    renderTowns(town);
    const grids = state.grids.filter((g) => g.polygon.length >= 3 && g.townId === town);
    if (!grids.length) { svg.replaceChildren(); return; }
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const g of grids) for (const [lon, lat] of g.polygon) { x0 = Math.min(x0, lon); x1 = Math.max(x1, lon); y0 = Math.min(y0, lat); y1 = Math.max(y1, lat); }
    const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
    const sx = 580 / Math.max(1e-9, (x1 - x0) * k), sy = 380 / Math.max(1e-9, y1 - y0), s = Math.min(sx, sy);
    const ox = (600 - (x1 - x0) * k * s) / 2, oy = (400 - (y1 - y0) * s) / 2;
    project = (lon, lat) => [ox + (lon - x0) * k * s, oy + (y1 - lat) * s];
    const open = {};
    for (const i of state.incidents) if (OPEN_INC(i) && i.grid_id) open[i.grid_id] = (open[i.grid_id] || 0) + 1;
    const shapes = grids.map((g) => {
      const p = document.createElementNS(NS, "polygon");
      p.setAttribute("points", g.polygon.map(([lon, lat]) => project(lon, lat).map((v) => v.toFixed(1)).join(",")).join(" "));
      p.setAttribute("class", "grid" + (state.gridFilter === g.id ? " selected" : "") + (open[g.id] ? " busy" : ""));
      p.dataset.grid = g.id;
      p.addEventListener("mousemove", (e) => showTip(e, [g.name, `${g.town} · ${g.community}`, `值班网格员：${g.worker || "—"}`, `在办事件：${open[g.id] || 0}`]));
      p.addEventListener("mouseleave", () => { $("tip").hidden = true; });
      p.addEventListener("click", () => setFilter(state.gridFilter === g.id ? null : g.id));
      return p;
    });
    const centre = {};
    for (const g of grids) {
      const pts = g.polygon.map(([lon, lat]) => project(lon, lat));
      centre[g.id] = [pts.reduce((a, p) => a + p[0], 0) / pts.length, pts.reduce((a, p) => a + p[1], 0) / pts.length];
    }
    const markers = state.incidents.filter(OPEN_INC).slice(0, 200).map((i, n) => {
      if (i.grid_id && !centre[i.grid_id]) return null;
      let xy = i.lat != null && i.lon != null ? project(i.lon, i.lat) : centre[i.grid_id];
      if (!xy || xy[0] < 0 || xy[0] > 600 || xy[1] < 0 || xy[1] > 400) return null;
      if (i.lat == null) xy = [xy[0] + ((n * 7) % 21) - 10, xy[1] + ((n * 13) % 21) - 10];
      const c = document.createElementNS(NS, "circle");
      c.setAttribute("cx", xy[0].toFixed(1)); c.setAttribute("cy", xy[1].toFixed(1));
      c.setAttribute("r", i.severity === "emergency" ? "9" : "6");
      c.setAttribute("class", "marker sev-" + i.severity + (i.pinned ? " flashing" : ""));
      c.dataset.id = i.id;
      c.addEventListener("mousemove", (e) => showTip(e, [i.type_name || i.type, i.summary, i.grid_name || i.address || ""]));
      c.addEventListener("mouseleave", () => { $("tip").hidden = true; });
      c.addEventListener("click", () => setFilter(i.grid_id || null));
      return c;
    }).filter(Boolean);
    const labels = grids.map((g) => {
      const t = document.createElementNS(NS, "text");
      t.setAttribute("x", centre[g.id][0].toFixed(1)); t.setAttribute("y", (centre[g.id][1] + 4).toFixed(1));
      t.setAttribute("text-anchor", "middle"); t.setAttribute("class", "label");
      t.textContent = g.name;
      return t;
    });
    svg.replaceChildren(...shapes, ...labels, ...markers);
  }
  function showTip(e, lines) {
    const tip = $("tip"), box = $("map").parentElement.getBoundingClientRect();
    tip.replaceChildren(...lines.map((t, n) => el(n ? "div" : "strong", { text: t })));
    tip.style.left = (e.clientX - box.left + 12) + "px";
    tip.style.top = (e.clientY - box.top + 12) + "px";
    tip.hidden = false;
  }
  function setFilter(grid) {
    state.gridFilter = grid;
    const chip = $("map-filter");
    const g = state.grids.find((x) => x.id === grid);
    chip.hidden = !grid;
    chip.textContent = grid ? `筛选：${g ? g.name : grid} ✕` : "";
    renderAll();
  }
  $("map-filter").addEventListener("click", () => setFilter(null));

  // ------------------------------------------------------------------ live events
  function gridName(id) {
    if (!id) return "";
    const g = state.grids.find((x) => x.id === id);
    return g ? g.name : id;
  }
  // One row per situation: the events of one incident (or, before it is filed, of one
  // source and type) share a row that shows the latest time and a repeat count, so a busy
  // camera cannot push an emergency off the screen.
  const evBody = $("events").querySelector("tbody");
  // an event names its row by its incident once filed, else by its source and type; the row
  // also remembers its events' ids, so the filed copy of a live event finds the same row
  const rowKeys = (ev) => {
    const src = ev.source || {};
    if (ev.incident_id) return [`inc:${ev.incident_id}`];
    return [`src:${src.node_id}/${src.device_id}/${ev.type}/${(ev.location || {}).grid_id || ""}`];
  };
  const rows = new Map(); // key → tr
  function eventRow(ev) {
    const loc = ev.location || {}, src = ev.source || {};
    const place = loc.address || gridName(loc.grid_id) || (loc.lat != null ? `${loc.lat},${loc.lon}` : "");
    return el("tr", { class: "sev-" + ev.severity, dataset: { id: ev.id, count: "1", at: ev.occurred_at } },
      el("td", { class: "at", text: time(ev.occurred_at) }), el("td", { text: SB.typeName(ev.type) }),
      el("td", { class: "sev", text: SEV[ev.severity] || ev.severity }),
      el("td", { text: place }),
      el("td", { class: "summary", text: ev.summary }),
      el("td", { text: `${src.node_id}/${src.device_id}` }),
      el("td", { class: "count", text: "" }));
  }
  const SEV_RANK = Object.fromEntries(Object.keys(SEV).map((k, i) => [k, i]));  // SEV is lowest first
  function addEvent(ev, fromFeed) {
    const keys = rowKeys(ev);
    const known = rows.get("id:" + ev.id);
    let tr = known || keys.map((k) => rows.get(k)).find(Boolean);
    if (known) { for (const k of keys) rows.set(k, known); return known; }
    if (!tr) {
      tr = eventRow(ev);
      tr.dataset.ids = ev.id;
      if (fromFeed) evBody.prepend(tr); else evBody.append(tr);
    } else {
      const n = Number(tr.dataset.count) + 1;
      tr.dataset.count = String(n);
      tr.dataset.ids = (tr.dataset.ids + "," + ev.id).split(",").slice(-50).join(",");
      tr.querySelector("td.count").textContent = `×${n}`;
      const rank = SEV_RANK[ev.severity] || 0, rowRank = SEV_RANK[tr.className.replace("sev-", "")] || 0;
      if (Date.parse(ev.occurred_at) >= Date.parse(tr.dataset.at)) {
        tr.dataset.at = ev.occurred_at;
        tr.querySelector("td.at").textContent = time(ev.occurred_at);
        // the words of the most severe event stay (a flood of lesser ones does not hide them)
        if (rank >= rowRank) tr.querySelector("td.summary").textContent = ev.summary;
      }
      if (rank > rowRank) {
        tr.className = "sev-" + ev.severity;
        tr.querySelector("td.sev").textContent = SEV[ev.severity] || ev.severity;
      }
      if (fromFeed) evBody.prepend(tr);
    }
    for (const k of keys) rows.set(k, tr);
    rows.set("id:" + ev.id, tr);
    return tr;
  }
  function trimRows() {
    while (evBody.children.length > 100) {
      const gone = evBody.lastChild;
      for (const [k, v] of rows) if (v === gone) rows.delete(k);
      gone.remove();
    }
  }

  // ------------------------------------------------------------------ loading
  function renderAll() { renderPinned(); renderIncidents(); renderSteps(); drawMap(); }

  async function loadIncidents() {
    try { state.incidents = (await api("/api/v1/incidents?limit=200")).items; renderAll(); } catch (e) { onReadError(e); }
  }
  async function loadOrders() {
    try { state.orders = (await api("/api/v1/work-orders?limit=300")).items; renderAll(); } catch (e) { onReadError(e); }
  }
  async function loadEvents() {
    try {
      const items = (await api("/api/v1/events?limit=200")).items;
      // oldest first, so that each situation's row ends with its latest event
      for (const ev of items.slice().reverse()) addEvent(ev, true);
      trimRows();
    } catch (e) { onReadError(e); }
  }
  async function loadRegistry() {
    try { state.registry = await api("/api/v1/registry"); state.grids = walkGrids(state.registry); drawMap(); } catch (e) { onReadError(e); }
    loadEvents();
  }
  function onReadError(e) {
    if (e.status === 401) { $("conn").textContent = "请登录后查看"; }
  }
  function loadAll() { loadRegistry(); loadIncidents(); loadOrders(); loadStats(); loadNodes(); loadFalseAlarms(); connect(); }

  // coalesce bursts of changes into one reload each (at most one in flight per kind)
  function debounced(fn, ms) {
    let timer = null, running = false, again = false;
    const run = async () => {
      timer = null;
      if (running) { again = true; return; }
      running = true;
      try { await fn(); } finally { running = false; if (again) { again = false; schedule(); } }
    };
    const schedule = () => { if (!timer) timer = setTimeout(run, ms); };
    return schedule;
  }
  const soonIncidents = debounced(loadIncidents, 30);
  const soonOrders = debounced(loadOrders, 30);
  const soonStats = debounced(loadStats, 1000);

  let es = null;
  function connect() {
    if (es) es.close();
    es = new EventSource("/api/v1/stream");
    es.onopen = () => { $("conn").textContent = "实时连接"; $("conn").className = "conn live"; };
    es.onerror = () => { $("conn").textContent = "重新连接中…"; $("conn").className = "conn"; };
    es.addEventListener("event", (msg) => {
      const ev = JSON.parse(msg.data);
      addEvent(ev, true);
      trimRows();
      if (ev.severity === "emergency" && ev.state !== "cleared" && !filed(ev)) {
        state.early.unshift({ ev, seen: Date.now() });
        state.early.length = Math.min(state.early.length, 20);
        renderPinned();
      }
      soonIncidents(); soonStats();
    });
    es.addEventListener("incident", () => { soonIncidents(); soonStats(); });
    es.addEventListener("work_order", () => { soonOrders(); soonIncidents(); soonStats(); });
  }

  renderSound();
  SB.typesReady.then(refreshUser).then(loadAll);
  setInterval(tick, 1000);
  setInterval(() => { loadStats(); loadNodes(); loadFalseAlarms(); }, 10000);
})();
