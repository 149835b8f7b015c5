"use strict";
// Worker's page: my grid's open orders (accept, note + photo, handle) and new reports.
// What cannot be sent (offline) waits in IndexedDB, photos included, and goes when online.
(() => {
  const { SEV, el, api, duration, time } = SB;
  const $ = (id) => document.getElementById(id);
  // the worker's steps here; the command centre's (screen, dispatch, verify …) are on the dashboard
  const ACTIONS = { track: "确认跟单", accept: "接单", handle: "办结", false_alarm: "误报", escalate: "上报上级" };
  const REASONS = ["鸟", "树影", "光照", "水面反光", "人员正常活动", "设备故障", "其他"];
  const NEEDS_FORM = new Set(["handle", "false_alarm", "escalate"]);
  const state = { user: null, orders: [], forms: new Map() };

  // ------------------------------------------------------------------ offline queue (IndexedDB)
  const DB = {
    open() {
      return new Promise((resolve, reject) => {
        const req = indexedDB.open("shaobing-m", 1);
        req.onupgradeneeded = () => req.result.createObjectStore("outbox", { keyPath: "client_id" });
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
    },
    async tx(mode, fn) {
      const db = await DB.open();
      return new Promise((resolve, reject) => {
        const t = db.transaction("outbox", mode), store = t.objectStore("outbox");
        const out = fn(store);
        t.oncomplete = () => { db.close(); resolve(out && out.result !== undefined ? out.result : out); };
        t.onerror = () => { db.close(); reject(t.error); };
      });
    },
    put(item) { return DB.tx("readwrite", (s) => s.put(item)); },
    del(id) { return DB.tx("readwrite", (s) => s.delete(id)); },
    all() { return DB.tx("readonly", (s) => s.getAll()); },
  };
  const newId = () => Date.now().toString(36) + "-" + Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");

  function offlineError(err) { return !navigator.onLine || !err || err.status == null; }

  async function uploadPhoto(blob, woId) {
    const q = woId ? `?work_order_id=${encodeURIComponent(woId)}` : "";
    const ctype = ["image/jpeg", "image/png", "image/webp"].includes(blob.type) ? blob.type : "image/jpeg";
    const up = await api("/api/v1/uploads" + q, { method: "POST", body: blob, headers: { "Content-Type": ctype } });
    return up.id;
  }

  async function send(item) {
    const photos = [];
    for (const blob of item.photos || []) photos.push(await uploadPhoto(blob, item.wo_id));
    if (item.kind === "report") {
      await api(item.url || "/api/v1/reports", { method: "POST", json: Object.assign({}, item.body, { photos, client_id: item.client_id }) });
    } else {
      // a refusal (the order moved on meanwhile) is reported to the worker, never dropped
      await api(`/api/v1/work-orders/${encodeURIComponent(item.wo_id)}/transitions`, { method: "POST", json: Object.assign({}, item.body, { photos }) });
    }
  }

  // send now; keep it in the outbox when the network is down
  async function submit(item) {
    item.client_id = item.client_id || newId();
    item.made_at = new Date().toISOString();
    if (item.kind === "report") item.body.made_at = item.made_at;
    try {
      await send(item);
      return "sent";
    } catch (err) {
      if (!offlineError(err)) throw err;
      await DB.put(item);
      await showQueue();
      return "queued";
    }
  }

  let flushing = false;
  async function flush() {
    if (flushing || !navigator.onLine || !state.user) return;
    flushing = true;
    try {
      const items = (await DB.all()).sort((a, b) => (a.made_at < b.made_at ? -1 : 1));
      for (const item of items) {
        try { await send(item); await DB.del(item.client_id); }
        catch (err) {
          if (offlineError(err)) break;
          // refused by the hub: retrying cannot help, but the worker must see it and its note
          refused(item, err);
          await DB.del(item.client_id);
        }
      }
    } finally { flushing = false; }
    await showQueue();
    loadOrders();
  }

  function refused(item, err) {
    const what = item.kind === "report" ? "上报" : (ACTIONS[item.body.action] || item.body.action);
    const order = state.orders.find((o) => o.id === item.wo_id);
    const note = item.body.note || item.body.text || "";
    const li = el("li", {}, `${what}${order ? "（" + order.summary + "）" : ""}未被接受：${err.message}`,
      note ? el("div", { class: "kept", text: `您填写的内容：${note}` }) : null);
    $("m-refused").hidden = false;
    $("m-refused-list").append(li);
  }

  async function showQueue() {
    let n = 0;
    try { n = (await DB.all()).length; } catch (e) { n = 0; }
    $("m-queue").hidden = n === 0;
    $("m-queue").textContent = `有 ${n} 条记录待发送（联网后自动发送）`;
  }

  function renderNet() {
    $("net").textContent = navigator.onLine ? "在线" : "离线";
    $("net").className = "net" + (navigator.onLine ? "" : " off");
  }
  window.addEventListener("online", () => { renderNet(); flush(); });
  window.addEventListener("offline", renderNet);

  // ------------------------------------------------------------------ login
  async function start() {
    renderNet();
    const u = await SB.me();
    state.user = u && u.name !== "anonymous" ? u : null;
    $("m-login").hidden = !!state.user;
    $("app").hidden = !state.user;
    if (!state.user) return;
    $("m-who").textContent = `${state.user.name}（${SB.ROLE[state.user.role] || state.user.role}）`;
    $("m-grid").textContent = state.user.role === "grid_worker" ? "本网格的在办工单" : "我范围内的在办工单";
    await showQueue();
    await SB.typesReady;
    await loadOrders();
    flush();
    connect();
  }
  $("m-login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("m-login-msg").textContent = "";
    try { await SB.login($("m-name").value, $("m-pass").value); $("m-pass").value = ""; start(); }
    catch (err) { $("m-login-msg").textContent = "登录失败：" + err.message; }
  });
  $("m-logout").addEventListener("click", async () => { await SB.logout(); location.reload(); });

  // ------------------------------------------------------------------ tabs
  function tab(which) {
    $("orders-view").hidden = which !== "orders";
    $("report-view").hidden = which !== "report";
    $("tab-orders").classList.toggle("on", which === "orders");
    $("tab-report").classList.toggle("on", which === "report");
  }
  $("tab-orders").addEventListener("click", () => tab("orders"));
  $("tab-report").addEventListener("click", () => tab("report"));

  // ------------------------------------------------------------------ orders
  async function loadOrders() {
    try {
      const page = await api("/api/v1/work-orders?limit=100");
      state.orders = page.items.filter((o) => !["closed", "false_alarm"].includes(o.state));
      renderOrders();
    } catch (err) {
      if (err.status === 401) { state.user = null; $("app").hidden = true; $("m-login").hidden = false; }
    }
  }

  function renderOrders() {
    const ul = $("m-orders");
    if (!state.orders.length) { ul.replaceChildren(el("li", { class: "empty", text: "暂无在办工单" })); return; }
    const me = state.user.person_id || state.user.name;
    // a live update moves an open form into the new list: the worker typing in it keeps
    // the focus and the caret (moved, the field would lose them, and the next keys with them)
    const typing = ul.contains(document.activeElement) && document.activeElement.tagName === "TEXTAREA" ? document.activeElement : null;
    const caret = typing ? [typing.selectionStart, typing.selectionEnd] : null;
    ul.replaceChildren(...state.orders.map((o) => {
      const mine = o.assignee_id === me;
      const due = o.accepted_at ? o.handle_due_at : (o.accept_due_at || o.handle_due_at);
      const left = due ? (Date.parse(due) - Date.now()) / 1000 : null;
      const li = el("li", { class: `order sev-${o.severity}` + (mine ? " mine" : ""), dataset: { id: o.id, state: o.state } },
        el("div", { class: "top" }, el("span", { text: `${SB.typeName(o.type)}` + (o.severity !== "normal" ? ` · ${SEV[o.severity]}` : "") }), el("span", { class: "step", text: o.step })),
        el("div", { class: "summary", text: o.summary }),
        el("div", { class: "meta" }, `${o.grid_name || o.grid_id || ""} · 承办：${o.assignee_name || "—"} · ${time(o.updated_at)} `,
          left == null ? "" : el("span", { class: left < 0 ? "late" : "", text: left < 0 ? `已超时 ${duration(-left)}` : `剩余 ${duration(left)}` })));
      const acts = el("div", { class: "actions" });
      // the phone page is where workers and handlers act; the command centre acts on the dashboard
      const field = ["grid_worker", "board_handler"].includes(state.user.role);
      const mayDo = new Set(field ? (state.user.actions || Object.keys(ACTIONS)) : []);
      if (!field && !acts.childElementCount) acts.append(el("span", { class: "empty", text: "指挥中心请在大屏（/）办理" }));
      for (const a of o.allowed) {
        if (!ACTIONS[a] || !mayDo.has(a)) continue;
        const b = el("button", { type: "button", class: a === "false_alarm" ? "secondary" : (a === "escalate" ? "warn" : ""), dataset: { action: a }, text: ACTIONS[a] });
        b.addEventListener("click", () => (NEEDS_FORM.has(a) ? openForm(li, o, a) : act(o, a, "", [], b)));
        acts.append(b);
      }
      const hist = el("button", { type: "button", class: "link", text: "办理记录" });
      hist.addEventListener("click", () => toggleHistory(li, o));
      acts.append(hist);
      li.append(acts);
      const form = state.forms.get(o.id);
      if (form && o.allowed.includes(form.action)) li.append(form.node);
      return li;
    }));
    if (typing && typing.isConnected && document.activeElement !== typing) {
      typing.focus();
      typing.setSelectionRange(caret[0], caret[1]);
    }
  }

  // who did what to this order, when, with which notes and photos
  async function toggleHistory(li, o) {
    const old = li.querySelector(".history");
    if (old) { old.remove(); return; }
    const box = el("ol", { class: "history" }, el("li", { class: "empty", text: "读取中…" }));
    li.append(box);
    try {
      const trail = (await api(`/api/v1/work-orders/${encodeURIComponent(o.id)}/transitions`)).items;
      box.replaceChildren(...trail.map((t) => el("li", {},
        `${time(t.at)} ${t.actor}：${SB.ACTION[t.action] || t.action}（${SB.STATE[t.from] || t.from} → ${SB.STATE[t.to] || t.to}）`,
        t.note ? el("div", { class: "note", text: t.note }) : null,
        ...(t.photos || []).map((p) => el("img", { class: "preview", src: `/api/v1/uploads/${encodeURIComponent(p)}`, alt: "照片" })))));
    } catch (err) { box.replaceChildren(el("li", { class: "msg", text: err.message })); }
  }

  // an open form survives re-renders of the list (live updates) until it is sent
  function openForm(li, o, action) {
    const old = li.querySelector(".handle");
    if (old) old.remove();
    state.forms.delete(o.id);
    const note = el("textarea", { rows: "3", maxlength: "1000", class: "note", placeholder: action === "handle" ? "处置情况" : "说明" });
    const file = el("input", { type: "file", accept: "image/*", capture: "environment", class: "photo" });
    const reason = el("select", { class: "reason" }, ...REASONS.map((r) => el("option", { value: r, text: r })));
    const preview = el("div");
    const msg = el("p", { class: "msg" });
    file.addEventListener("change", () => {
      preview.replaceChildren();
      if (file.files[0]) preview.append(el("img", { class: "preview", src: URL.createObjectURL(file.files[0]), alt: "照片" }));
    });
    const ok = el("button", { type: "button", class: "submit", text: "提交" + ACTIONS[action] });
    ok.addEventListener("click", async () => {
      if (action === "handle" && !note.value.trim() && !file.files.length) { msg.textContent = "请填写处置情况或拍照"; return; }
      await act(o, action, note.value, Array.from(file.files), ok, msg, action === "false_alarm" ? { reason: reason.value } : {});
    });
    const node = el("div", { class: "handle" },
      action === "false_alarm" ? el("label", { text: "误报原因" }, reason) : null,
      el("label", { text: "说明" }, note), el("label", { text: "现场照片" }, file), preview, ok, msg);
    state.forms.set(o.id, { action, node });
    li.append(node);
  }

  async function act(o, action, note, photos, button, msg, extra) {
    if (button) button.disabled = true;
    try {
      const res = await submit({ kind: "transition", wo_id: o.id, body: Object.assign({ action, note }, extra || {}), photos });
      // only this step's form is done: a form opened meanwhile for the next step stays
      if (state.forms.has(o.id) && state.forms.get(o.id).action === action) state.forms.delete(o.id);
      if (msg) { msg.className = "msg ok"; msg.textContent = res === "queued" ? "已保存，联网后发送" : "已提交"; }
      if (res === "sent") await loadOrders();
    } catch (err) {
      if (button) button.disabled = false;
      // said in Chinese; the form and what was typed stay for another try
      const text = `未能${ACTIONS[action] || action}：${err.message}`;
      if (msg) { msg.className = "msg"; msg.textContent = text; } else alert(text);
    }
  }

  // ------------------------------------------------------------------ report
  $("r-photo").addEventListener("change", () => {
    const old = $("report-view").querySelector("img.preview");
    if (old) old.remove();
    const f = $("r-photo").files[0];
    if (f) $("r-photo").after(el("img", { class: "preview", src: URL.createObjectURL(f), alt: "照片" }));
  });
  function position() {
    return new Promise((resolve) => {
      if (!$("r-geo").checked || !navigator.geolocation) return resolve(null);
      navigator.geolocation.getCurrentPosition((p) => resolve(p.coords), () => resolve(null), { timeout: 5000, maximumAge: 60000 });
    });
  }
  // the extracted fields, editable, before anything is sent (the worker confirms; the hub learns)
  const check = { text: null, fields: null };
  function fillTypes() {
    const sel = $("r-type");
    if (sel.options.length) return;
    for (const [code, name] of Object.entries(SB.TYPES)) sel.append(el("option", { value: code }, name));
  }
  function resetFields() {
    check.text = null; check.fields = null;
    $("r-fields").hidden = true; $("r-ask").hidden = true; $("r-confirm-row").hidden = true;
    $("r-confirmed").checked = false; $("r-address-row").hidden = false;
  }
  async function extractFields() {
    const text = $("r-text").value.trim();
    if (!text) return null;
    const f = await api("/api/v1/reports/extract", { method: "POST", json: { text } });
    fillTypes();
    if (!$("r-type").querySelector(`option[value="${f.type}"]`)) $("r-type").append(el("option", { value: f.type }, f.type_name || f.type));
    $("r-type").value = f.type;
    $("r-place").value = f.location || $("r-address").value.trim();
    $("r-sev").value = f.severity;
    $("r-ask").hidden = !f.needs_confirmation;
    $("r-confirm-row").hidden = !f.needs_confirmation;
    $("r-confirmed").checked = false;
    $("r-fields").hidden = false;
    $("r-address-row").hidden = true;
    check.text = text; check.fields = f;
    return f;
  }
  $("r-check").addEventListener("click", async () => {
    const msg = $("r-msg");
    msg.className = "msg"; msg.textContent = "";
    try { await extractFields(); } catch (err) { msg.textContent = offlineError(err) ? "离线：提交后由系统识别" : "识别失败：" + err.message; }
  });
  $("r-text").addEventListener("input", () => { if (check.text !== null && $("r-text").value.trim() !== check.text) resetFields(); });
  $("m-report").addEventListener("submit", async (e) => {
    e.preventDefault();
    const msg = $("r-msg");
    msg.className = "msg"; msg.textContent = "";
    const text = $("r-text").value.trim();
    if (check.text !== text && navigator.onLine) {
      // first the worker sees what the system understood
      try {
        await extractFields();
        msg.textContent = "请核对识别结果，确认后再点提交";
        return;
      } catch (err) {
        if (!offlineError(err)) { msg.textContent = "识别失败：" + err.message; return; }
      }
    }
    let item;
    if (check.text === text && check.fields) {
      if (check.fields.needs_confirmation && !$("r-confirmed").checked) {
        msg.textContent = "请确认事件类型和地点（勾选“我已核对”）";
        $("r-confirmed").focus();
        return;
      }
      const body = { text, type: $("r-type").value, severity: $("r-sev").value };
      if ($("r-place").value.trim()) body.address = $("r-place").value.trim();
      item = { kind: "report", url: "/api/v1/reports/confirmed", body };
    } else {
      // offline: the hub extracts the fields when the report arrives
      const body = { text };
      if ($("r-address").value.trim()) body.address = $("r-address").value.trim();
      item = { kind: "report", body };
    }
    const pos = await position();
    if (pos) { item.body.lat = pos.latitude; item.body.lon = pos.longitude; }
    try {
      const res = await submit(Object.assign(item, { photos: Array.from($("r-photo").files) }));
      msg.className = "msg ok";
      msg.textContent = res === "queued" ? "网络不可用：已保存，联网后自动发送" : "上报成功";
      $("m-report").reset();
      resetFields();
      const img = $("report-view").querySelector("img.preview");
      if (img) img.remove();
    } catch (err) { msg.textContent = "上报失败：" + err.message; }
  });

  // ------------------------------------------------------------------ live
  let es = null, timer = null;
  function connect() {
    if (es) es.close();
    es = new EventSource("/api/v1/stream");
    es.addEventListener("work_order", () => { clearTimeout(timer); timer = setTimeout(loadOrders, 200); });
  }

  start();
})();
